"""The model pool for meter series of any length, and its rolling-origin forecasts.

Every model forecasts ``steps`` intervals from a cut-off using only readings before it:

* ``persistence``: the value one day earlier at the same time of day (the latest whole day
  known for each lead): the reference every model must beat. Needs 1 day.
* ``profile3`` / ``profile7``: the mean of the last 3 / 7 days at the same time of day. Needs 3 / 7 days.
* ``climatology``: the mean of all history at the same time of day (with persistence it makes
  CLIPER, the field's standard day-ahead reference; Yang, Solar Energy 193, 2019).
* ``theta``: sktime's ``ThetaForecaster`` on the series deseasonalised with its daily profile
  (sktime ``Deseasonalizer``, additive). Needs 4 days.
* ``gbm``: gradient-boosted trees (scikit-learn ``HistGradientBoostingRegressor``) on time of
  day, lead, calendar, the values of the models above and, with a site, pvlib clear-sky
  irradiance; trained on earlier origins only. Needs 10 days. Squared-error loss: absolute
  error, the P50's own loss, was tried on the real series on 2026-12-07 and lost on load
  (0.358 against 0.339 x persistence) for a gain of 0.006 on one PV plant.
* ``combo``: the mean of ``gbm`` and ``profile7`` (a combination, kept only when it wins).

:func:`rolling_forecasts` forecasts every model at every origin once; the selection and
calibration at any time then read the origins whose targets had ended by then
(:mod:`forecast.poolselect`), so backtests are nested and honest at no extra cost.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.features import off_days
from forecast.models import single_threaded

MODEL_MIN_DAYS: dict[str, float] = {
    "persistence": 1,
    "profile3": 3,
    "climatology": 2,
    "profile7": 7,
    "theta": 4,
    "gbm": 10,
    "combo": 10,
}
POOL = tuple(MODEL_MIN_DAYS)
THETA_FIT_DAYS = 21
GBM_REFIT_ORIGINS = 7  # the trees are refitted every this many origins, on origins before them
GBM_TRAIN_ORIGINS = 60
GBM_PARAMS = {
    "loss": "squared_error",
    "max_iter": 100,
    "learning_rate": 0.08,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 30,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}


@dataclass
class MeterSeries:
    """A regular, cleaned series (NaN = unknown) with what is known about it."""

    values: np.ndarray
    index: pd.DatetimeIndex  # regular grid covering history and the horizon
    per_day: int
    clearsky: np.ndarray | None = None  # W/m2 per interval when the site is known
    exog: pd.DataFrame | None = None  # known-ahead inputs on ``index``

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(days=1) / self.per_day


@dataclass
class RollingForecasts:
    """Point forecasts per model and origin (cut-off position in the series' index)."""

    origins: list[int]
    steps: int
    points: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # model -> why it never ran


def _lag_days(steps: int, per_day: int) -> np.ndarray:
    """Whole days back to the most recent value known at the cut-off, per lead 0..steps-1."""
    return np.array([math.ceil((h + 1) / per_day) for h in range(steps)])


def _same_slot(y: np.ndarray, cut: int, steps: int, per_day: int, days: int | None) -> np.ndarray:
    """Per lead: the mean over up to ``days`` (all when None) earlier days at the same slot."""
    first = _lag_days(steps, per_day)
    out = np.full(steps, np.nan)
    for h in range(steps):
        t = cut + h
        lags = np.arange(first[h], t // per_day + 1)
        if days is not None:
            lags = lags[:days]
        pos = t - lags * per_day
        pos = pos[(pos >= 0) & (pos < cut)]
        if len(pos):
            vals = y[pos]
            vals = vals[np.isfinite(vals)]
            if len(vals):
                out[h] = vals.mean()
    return out


def baseline(name: str, y: np.ndarray, cut: int, steps: int, per_day: int) -> np.ndarray:
    if name == "persistence":
        return _same_slot(y, cut, steps, per_day, 1)
    if name == "profile3":
        return _same_slot(y, cut, steps, per_day, 3)
    if name == "profile7":
        return _same_slot(y, cut, steps, per_day, 7)
    if name == "climatology":
        return _same_slot(y, cut, steps, per_day, None)
    raise ValueError(f"model={name!r}: not a baseline")


def _theta(y: np.ndarray, cut: int, steps: int, per_day: int) -> np.ndarray:
    from sktime.forecasting.compose import TransformedTargetForecaster
    from sktime.forecasting.theta import ThetaForecaster
    from sktime.transformations.series.detrend import Deseasonalizer

    start = max(0, cut - THETA_FIT_DAYS * per_day)
    start += (cut - start) % per_day  # whole days, so the season phase is the time of day
    hist = pd.Series(y[start:cut]).interpolate(limit_direction="both")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TransformedTargetForecaster(
            [
                ("deseasonalise", Deseasonalizer(sp=per_day, model="additive")),
                ("theta", ThetaForecaster(sp=1, deseasonalize=False)),
            ]
        )
        model.fit(hist)
        pred = model.predict(fh=np.arange(1, steps + 1))
    return np.asarray(pred, dtype=float)


def _features(s: MeterSeries, y: np.ndarray, cut: int, steps: int, base: dict[str, np.ndarray]) -> np.ndarray:
    rows = s.index[cut : cut + steps]
    slot = (np.arange(cut, cut + steps) % s.per_day) / s.per_day
    cols = [
        np.sin(2 * np.pi * slot),
        np.cos(2 * np.pi * slot),
        np.arange(steps) / s.per_day,
        off_days(rows),
        base["persistence"],
        base["profile3"],
        base["profile7"],
        base["climatology"],
    ]
    level = y[max(0, cut - s.per_day) : cut]
    cols.append(np.full(steps, np.nanmean(level) if np.isfinite(level).any() else np.nan))
    if s.clearsky is not None:
        cols.append(s.clearsky[cut : cut + steps])
    if s.exog is not None:
        cols.extend(s.exog.iloc[cut : cut + steps][c].to_numpy(dtype=float) for c in s.exog.columns)
    return np.column_stack(cols)


def rolling_forecasts(
    s: MeterSeries, origins: list[int], steps: int, models: tuple[str, ...] = POOL
) -> RollingForecasts:
    """Every model's forecast at every origin (positions of cut-offs), each from earlier data only.

    Single-threaded (one OpenMP/BLAS thread): parallelism comes from running series side by side."""
    with single_threaded():
        return _rolling(s, origins, steps, models)


def _rolling(s: MeterSeries, origins: list[int], steps: int, models: tuple[str, ...]) -> RollingForecasts:
    from sklearn.ensemble import HistGradientBoostingRegressor

    out = RollingForecasts(sorted(origins), steps, {m: {} for m in models})
    y = s.values
    feats: dict[int, np.ndarray] = {}
    first_valid = int(np.argmax(np.isfinite(y))) if np.isfinite(y).any() else len(y)
    all_cuts = sorted(set(origins) | set(_training_cuts(origins, steps, s.per_day, first_valid)))
    base_at: dict[int, dict[str, np.ndarray]] = {}
    for cut in all_cuts:
        days = (cut - first_valid) / s.per_day
        base = {
            n: baseline(n, y, cut, steps, s.per_day)
            for n in ("persistence", "profile3", "profile7", "climatology")
        }
        base_at[cut] = base
        for name in ("persistence", "profile3", "profile7", "climatology"):
            if name in models and cut in origins and days >= MODEL_MIN_DAYS[name]:
                out.points[name][cut] = base[name]
        if "theta" in models and cut in origins and days >= MODEL_MIN_DAYS["theta"]:
            try:
                out.points["theta"][cut] = _theta(y, cut, steps, s.per_day)
            except Exception as exc:  # noqa: BLE001 - a model that cannot fit is left out, with why
                out.excluded.setdefault("theta", f"{type(exc).__name__}: {exc}")
    if "gbm" in models:
        fitted = None
        for k, cut in enumerate(out.origins):
            if (cut - first_valid) / s.per_day < MODEL_MIN_DAYS["gbm"]:
                continue
            if fitted is None or k % GBM_REFIT_ORIGINS == 0:
                train = [c for c in all_cuts if c + steps <= cut][-GBM_TRAIN_ORIGINS:]
                X = [feats.setdefault(c, _features(s, y, c, steps, base_at[c])) for c in train]
                t = [y[c : c + steps] for c in train]
                if not train:
                    continue
                Xa, ta = np.vstack(X), np.concatenate(t)
                ok = np.isfinite(ta)
                if ok.sum() < 5 * s.per_day:
                    continue
                fitted = HistGradientBoostingRegressor(**GBM_PARAMS).fit(Xa[ok], ta[ok])
            X = feats.setdefault(cut, _features(s, y, cut, steps, base_at[cut]))
            out.points["gbm"][cut] = fitted.predict(X)
    if "combo" in models:
        for cut in out.origins:
            if cut in out.points.get("gbm", {}) and cut in out.points.get("profile7", {}):
                out.points["combo"][cut] = 0.5 * (out.points["gbm"][cut] + out.points["profile7"][cut])
    return out


def _training_cuts(origins: list[int], steps: int, per_day: int, first_valid: int) -> list[int]:
    """Extra daily cut-offs before the first origin that give the trees training examples."""
    if not origins:
        return []
    first = min(origins)
    cuts = []
    c = first - per_day
    while c - first_valid >= per_day and len(cuts) < GBM_TRAIN_ORIGINS:
        cuts.append(c)
        c -= per_day
    return cuts
