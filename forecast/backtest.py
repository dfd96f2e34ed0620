"""Rolling-origin backtest and per-series model selection (pure; runs inside a Ray task).

For a selection as of ``as_of``, each of the last ``backtest_days`` days is an origin: the
forecast issued the day before at the issue time of day, exactly as it would have been
issued. Time-series models are refitted at every origin; the regression models every
``refit_days`` origins on the ``train_days`` before that fold's first cut-off, so no model
ever sees an actual from after its cut-off. The candidate with the lowest normalised MAE wins;
its residuals calibrate the quantiles, and the 10-90 % coverage reported is measured
leave-one-origin-out (each origin's band comes from the other origins' residuals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast import calibration as cal_mod
from forecast.config import HorizonSpec
from forecast.features import build_features, issue_cutoffs
from forecast.hygiene import HygieneReport, clean_values
from forecast.metrics import all_metrics, normaliser, point_metrics
from forecast.models import CANDIDATES, UNIVARIATE, FittedModel, fit_exog, fit_univariate, predict
from forecast.series import SeriesSpec
from infra.scenario.model import Scenario

INTRADAY_ORIGIN_EVERY = 4  # replay an intraday issue every hour of the backtest
UNIVARIATE_EVERY = 3  # time-series models refit at every origin: backtest them on every 3rd one
LAG_MARGIN_DAYS = 8  # history needed before the first training row for the weekly lag


@dataclass
class Selection:
    series_id: str
    model: str
    fitted: FittedModel | None
    calibration: cal_mod.Calibration
    metrics: dict[str, dict[str, float]]  # candidate -> point metrics on the backtest
    selected: dict[str, float]  # all metrics of the chosen model (P50, pinball, coverage)
    intraday: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    hygiene: dict[str, int] = field(default_factory=dict)
    origins: int = 0

    @property
    def skill_vs_naive(self) -> float | None:
        """1 - nMAE(chosen) / nMAE(seasonal naive), on the issues where both were backtested."""
        naive = self.metrics.get("seasonal_naive", {}).get("nmae")
        mine = self.metrics.get(self.model, {}).get("nmae")
        return None if not naive or mine is None else 1.0 - mine / naive


def min_history_days(backtest_days: int) -> float:
    return backtest_days + 14 + LAG_MARGIN_DAYS


def origin_days(as_of: pd.Timestamp, horizon: HorizonSpec, backtest_days: int) -> list[pd.Timestamp]:
    """First target day of each backtest origin: all targets end before ``as_of``."""
    last = as_of.normalize() - pd.Timedelta(days=horizon.days)
    return [last - pd.Timedelta(days=i) for i in range(backtest_days - 1, -1, -1)]


def target_rows(first_day: pd.Timestamp, days: int, per_day: int) -> pd.DatetimeIndex:
    return pd.date_range(first_day, periods=days * per_day, freq=pd.Timedelta(days=1) / per_day)


def training_rows(y: pd.Series, end: pd.Timestamp, train_days: int, horizon: HorizonSpec) -> pd.DatetimeIndex:
    start = max(end - pd.Timedelta(days=train_days), y.index[0] + pd.Timedelta(days=LAG_MARGIN_DAYS))
    rows = y.index[(y.index >= start) & (y.index < end)]
    return rows


def fit_exog_model(
    name: str,
    spec: SeriesSpec,
    scenario: Scenario | None,
    y: pd.Series,
    ctx: pd.DataFrame,
    end: pd.Timestamp,
    horizon: HorizonSpec,
    issue_minutes: int,
    train_days: int,
    per_day: int,
    cache: dict,
) -> FittedModel:
    rows = training_rows(y, end, train_days, horizon)
    cutoffs = issue_cutoffs(rows, horizon.k_train, issue_minutes)
    X = build_features(spec, y, ctx, rows, cutoffs, cache)
    return fit_exog(name, y.loc[rows], X, per_day)


def day_origins(
    as_of: pd.Timestamp, horizon: HorizonSpec, backtest_days: int, issue_minutes: int, per_day: int
) -> list[tuple[pd.Timestamp, pd.DatetimeIndex]]:
    """(cut-off, target rows) of each backtest issue of a whole-day horizon."""
    return [
        (
            day - pd.Timedelta(days=1) + pd.Timedelta(minutes=issue_minutes),
            target_rows(day, horizon.days, per_day),
        )
        for day in origin_days(as_of, horizon, backtest_days)
    ]


def select(
    spec: SeriesSpec,
    scenario: Scenario | None,
    raw: pd.Series,
    ctx: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon: HorizonSpec,
    issue_minutes: int,
    levels: tuple[float, ...],
    backtest_days: int,
    refit_days: int,
    train_days: int,
    candidates: tuple[str, ...] = CANDIDATES,
    origins: list[tuple[pd.Timestamp, pd.DatetimeIndex]] | None = None,
    intraday_steps: int = 16,
) -> Selection:
    """Backtest every candidate for one series and horizon, pick one, calibrate it, fit it.

    ``origins`` defaults to the day-ahead style issues of :func:`day_origins`; a meter file
    passes its own (the same time of day as its last reading, on earlier days).
    """
    per_day = int(pd.Timedelta(days=1) / (ctx.index[1] - ctx.index[0]))
    report = HygieneReport(spec.series_id)
    known = raw[raw.index < as_of]
    y, report = clean_values(
        known,
        spec.series_id,
        1440 // per_day,
        spec.lower,
        spec.upper,
        min_history_days(backtest_days),
        report,
    )
    y = y.reindex(ctx.index)
    if origins is None:
        origins = day_origins(as_of, horizon, backtest_days, issue_minutes, per_day)
    weather_cache: dict = {}
    preds: dict[str, dict[int, np.ndarray]] = {c: {} for c in candidates}
    failures: dict[str, str] = {}
    rows_all: list[pd.DatetimeIndex] = []
    for fold_start in range(0, len(origins), refit_days):
        fold = origins[fold_start : fold_start + refit_days]
        fold_cut = fold[0][0]
        fitted: dict[str, FittedModel] = {}
        for name in candidates:
            if name in UNIVARIATE or name in failures:
                continue
            try:
                fitted[name] = fit_exog_model(
                    name,
                    spec,
                    scenario,
                    y,
                    ctx,
                    fold_cut,
                    horizon,
                    issue_minutes,
                    train_days,
                    per_day,
                    weather_cache,
                )
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot fit is dropped, not the series
                failures[name] = f"{type(exc).__name__}: {exc}"
        fold_rows = [rows for _cutoff, rows in fold]
        rows_all.extend(fold_rows)
        stacked = fold_rows[0].append(fold_rows[1:]) if len(fold_rows) > 1 else fold_rows[0]
        cutoffs = pd.DatetimeIndex([c for c, rows in fold for _ in range(len(rows))])
        X = build_features(spec, y, ctx, stacked, cutoffs, weather_cache)
        bounds = np.cumsum([0] + [len(r) for r in fold_rows])
        for name in candidates:
            if name in failures:
                continue
            try:
                if name in UNIVARIATE:
                    for offset, (cutoff, rows) in enumerate(fold, start=fold_start):
                        if offset % UNIVARIATE_EVERY == 0:
                            model = fit_univariate(name, y[y.index < cutoff], per_day)
                            preds[name][offset] = predict(model, rows, None, per_day)
                elif stacked.is_unique:  # one call for the whole fold
                    point = predict(fitted[name], stacked, X, per_day)
                    for j in range(len(fold)):
                        preds[name][fold_start + j] = point[bounds[j] : bounds[j + 1]]
                else:  # overlapping multi-day issues: ask per issue
                    for j, rows in enumerate(fold_rows):
                        part = X.iloc[bounds[j] : bounds[j + 1]]
                        preds[name][fold_start + j] = predict(fitted[name], rows, part, per_day)
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot predict is dropped
                failures[name] = f"{type(exc).__name__}: {exc}"
    index = rows_all[0].append(rows_all[1:]) if len(rows_all) > 1 else rows_all[0]
    # Score against the cleaned series where the meter recorded a value (gaps are not scored).
    recorded = raw.reindex(index).to_numpy()
    actual = np.where(np.isfinite(recorded), y.reindex(index).to_numpy(), np.nan)
    per_origin = len(rows_all[0])
    common = [i for i in range(len(rows_all)) if all(i in preds[c] for c in candidates if c not in failures)]
    common_rows = np.concatenate([np.arange(i * per_origin, (i + 1) * per_origin) for i in common])
    metrics: dict[str, dict[str, float]] = {}
    for name in candidates:
        if name not in failures:
            point_common = np.concatenate([preds[name][i] for i in common])
            metrics[name] = point_metrics(spec.kind, actual[common_rows], point_common, spec.capacity)
    if not metrics:
        raise RuntimeError(f"{spec.series_id}: every candidate model failed: {failures}")
    best = min(metrics, key=lambda n: (metrics[n]["nmae"], candidates.index(n)))
    mine = sorted(preds[best])
    rows_mine = np.concatenate([np.arange(i * per_origin, (i + 1) * per_origin) for i in mine])
    index, actual = index[rows_mine], actual[rows_mine]
    point = np.concatenate([preds[best][i] for i in mine])
    calibration = cal_mod.fit_calibration(spec, levels, index, point, actual, len(mine))
    selected = _cross_validated_metrics(spec, levels, index, point, actual, ctx, len(mine))
    if horizon.days > 1 and spec.capacity:
        selected.update(accuracy_by_day(point, actual, len(mine), horizon.days, spec.capacity))
    intraday: dict[str, float] = {}
    if horizon.name == "day_ahead" and intraday_steps > 0 and best not in UNIVARIATE:
        resid = pd.Series(actual - point, index=index)
        scale = normaliser(spec.kind, actual[np.isfinite(actual)], spec.capacity)
        intraday = cal_mod.fit_intraday(calibration, resid, intraday_steps, INTRADAY_ORIGIN_EVERY, scale)
    fitted_final = None
    if best not in UNIVARIATE:
        fitted_final = fit_exog_model(
            best, spec, scenario, y, ctx, as_of, horizon, issue_minutes, train_days, per_day, weather_cache
        )
    return Selection(
        spec.series_id,
        best,
        fitted_final,
        calibration,
        metrics,
        selected,
        intraday,
        failures,
        report.as_dict(),
        len(mine),
    )


def accuracy_by_day(
    point: np.ndarray, actual: np.ndarray, n_origins: int, days: int, capacity: float
) -> dict[str, float]:
    """Grid-code accuracy ``1 - RMSE / capacity`` of each lead day (day 1, 2, 3 of a 72 h issue)."""
    err = (point - actual).reshape(n_origins, days, -1)
    out = {}
    for d in range(days):
        block = err[:, d][np.isfinite(err[:, d])]
        if len(block):
            out[f"accuracy_day{d + 1}"] = float(1.0 - np.sqrt(np.mean(block**2)) / capacity)
    return out


def _cross_validated_metrics(
    spec: SeriesSpec,
    levels: tuple[float, ...],
    index: pd.DatetimeIndex,
    point: np.ndarray,
    actual: np.ndarray,
    ctx: pd.DataFrame,
    n_origins: int,
) -> dict[str, float]:
    """Metrics with each origin's quantiles calibrated on the other origins (honest coverage)."""
    per_origin = len(index) // n_origins
    quantiles = np.full((len(index), len(levels)), np.nan)
    night = _night(ctx, index)
    for i in range(n_origins):
        sel = np.zeros(len(index), dtype=bool)
        sel[i * per_origin : (i + 1) * per_origin] = True
        train_actual = np.where(sel, np.nan, actual)
        cal = cal_mod.fit_calibration(spec, levels, index, point, train_actual, n_origins - 1)
        part = cal_mod.quantile_forecast(spec, cal, index[sel], point[sel], night[sel])
        quantiles[sel] = np.column_stack([part[q] for q in levels])
    qdict = {q: quantiles[:, i] for i, q in enumerate(levels)}
    return all_metrics(spec.kind, actual, qdict, spec.capacity, ~night)


def _night(ctx: pd.DataFrame, index: pd.DatetimeIndex) -> np.ndarray:
    if "clearsky_ghi" not in ctx.columns:
        return np.zeros(len(index), dtype=bool)
    return ctx["clearsky_ghi"].reindex(index).to_numpy() <= 0.0
