"""Quantiles from backtest residuals (split conformal, :mod:`forecast.conformal`), then physics.

The point forecast plus the conformal quantiles of its backtest residuals (actual minus
point) in the same bucket gives every quantile, the median included (which also removes
bias). Buckets: the hour of day for most series; for wind the forecast level, because the
power curve makes errors small at calm and at rated wind and large in between. Then
generation respects physics: 0 <= value <= capacity and PV is zero when the sun is down;
prices stay inside the market's clearing limits; the levels are sorted so they never cross.

Intraday: the latest known error decays as ``rho ** lead``; its residual quantiles per lead
come from replaying the day-ahead backtest as rolling intraday issues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.conformal import residual_quantiles, widened
from forecast.series import SeriesSpec

WIND_LEVEL_EDGES = (0.05, 0.2, 0.45, 0.75)  # fractions of capacity splitting wind buckets
MIN_BUCKET_SAMPLES = 40  # fewer residuals than this: use the pooled residuals


@dataclass
class Calibration:
    levels: tuple[float, ...]
    bucket_kind: str
    table: dict[int, list[float]]  # bucket -> residual quantile per level
    pooled: list[float]
    rho: float = 0.0
    intraday: dict[int, list[float]] = field(default_factory=dict)  # lead (1..) -> residual quantiles

    def as_dict(self) -> dict[str, object]:
        return {
            "levels": list(self.levels),
            "bucket_kind": self.bucket_kind,
            "table": {str(k): v for k, v in self.table.items()},
            "pooled": self.pooled,
            "rho": self.rho,
            "intraday": {str(k): v for k, v in self.intraday.items()},
        }

    @staticmethod
    def from_dict(raw: dict) -> Calibration:
        return Calibration(
            levels=tuple(raw["levels"]),
            bucket_kind=raw["bucket_kind"],
            table={int(k): v for k, v in raw["table"].items()},
            pooled=raw["pooled"],
            rho=float(raw.get("rho", 0.0)),
            intraday={int(k): v for k, v in raw.get("intraday", {}).items()},
        )


def bucket_kind(spec: SeriesSpec) -> str:
    return "level" if spec.kind == "wind" and spec.capacity else "hour"


def buckets(kind: str, index: pd.DatetimeIndex, point: np.ndarray, capacity: float | None) -> np.ndarray:
    if kind == "level":
        return np.digitize(point / float(capacity or 1.0), WIND_LEVEL_EDGES)
    return index.hour.to_numpy()


def _quantiles(residuals: np.ndarray, levels: Sequence[float]) -> list[float]:
    """Conformal quantiles of all ``residuals`` (:mod:`forecast.conformal`)."""
    return residual_quantiles(residuals, levels)[0].tolist()


def fit_calibration(
    spec: SeriesSpec,
    levels: tuple[float, ...],
    index: pd.DatetimeIndex,
    point: np.ndarray,
    actual: np.ndarray,
    independent_samples: int = 0,
) -> Calibration:
    kind = bucket_kind(spec)
    resid = actual - point
    ok = np.isfinite(resid)
    keys = buckets(kind, index, point, spec.capacity)[ok]
    used = widened(levels, independent_samples) if independent_samples else levels
    labels, counts = np.unique(keys, return_counts=True)
    big = labels[counts >= MIN_BUCKET_SAMPLES]  # smaller buckets use the pooled quantiles
    quantiles = residual_quantiles(resid[ok], used, [keys], [big])
    table = {int(key): q.tolist() for key, q in zip(big, quantiles, strict=True)}
    return Calibration(levels, kind, table, _quantiles(resid[ok], used))


def residual_offsets(
    cal: Calibration, index: pd.DatetimeIndex, point: np.ndarray, capacity: float | None
) -> np.ndarray:
    """Residual quantile per row and level, shape (rows, levels)."""
    keys = buckets(cal.bucket_kind, index, point, capacity)
    pooled = np.asarray(cal.pooled)
    return np.array([cal.table.get(int(k), pooled) for k in keys], dtype=float).reshape(
        len(index), len(cal.levels)
    )


def apply_physics(spec: SeriesSpec, values: np.ndarray, night: np.ndarray | None) -> np.ndarray:
    """Clip to physical bounds, zero PV at night, sort levels (axis 1) so quantiles never cross."""
    out = values.copy()
    if spec.lower is not None:
        out = np.maximum(out, spec.lower)
    if spec.upper is not None:
        out = np.minimum(out, spec.upper)
    if spec.kind == "pv" and night is not None:
        out[night] = 0.0
    return np.sort(out, axis=1)


def quantile_forecast(
    spec: SeriesSpec,
    cal: Calibration,
    index: pd.DatetimeIndex,
    point: np.ndarray,
    night: np.ndarray | None,
    offsets: np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """Quantiles per level for the rows in ``index``."""
    if offsets is None:
        offsets = residual_offsets(cal, index, point, spec.capacity)
    values = apply_physics(spec, point[:, None] + offsets, night)
    return {q: values[:, i] for i, q in enumerate(cal.levels)}


def fit_intraday(
    cal: Calibration, resid: pd.Series, steps: int, origin_every: int, normaliser: float
) -> dict[str, float]:
    """Estimate ``rho`` and the per-lead residual quantiles of the corrected intraday forecast.

    ``resid`` is the day-ahead backtest residual on a regular grid (NaN where not evaluated).
    Intraday issues are replayed every ``origin_every`` intervals. Returns the replay's
    metrics, with the band of each issue calibrated on the issues of the other parity
    (two-fold cross-fitting, so the coverage is out of sample).
    """
    r = resid.to_numpy()
    a, b = r[:-1], r[1:]
    ok = np.isfinite(a) & np.isfinite(b)
    rho = (
        float(np.clip(np.dot(a[ok], b[ok]) / max(np.dot(a[ok], a[ok]), 1e-12), 0.0, 0.999))
        if ok.sum() > 10
        else 0.0
    )
    cal.rho = rho
    errors = np.full((len(range(1, len(r) - steps, origin_every)), steps), np.nan)
    for i, origin in enumerate(range(1, len(r) - steps, origin_every)):
        last = r[origin - 1]
        if np.isfinite(last):
            leads = np.arange(1, steps + 1)
            errors[i] = r[origin - 1 + leads] - last * rho**leads
    cal.intraday = {
        h: _quantiles(errors[:, h - 1][np.isfinite(errors[:, h - 1])], cal.levels)
        for h in range(1, steps + 1)
    }
    return _intraday_metrics(errors, cal.levels, normaliser)


def _intraday_metrics(errors: np.ndarray, levels: tuple[float, ...], normaliser: float) -> dict[str, float]:
    parity = np.arange(len(errors)) % 2
    inside, losses = [], []
    for fold in (0, 1):
        train, test = errors[parity != fold], errors[parity == fold]
        for h in range(errors.shape[1]):
            tr, te = train[:, h][np.isfinite(train[:, h])], test[:, h][np.isfinite(test[:, h])]
            if not len(tr) or not len(te):
                continue
            q = dict(zip(levels, _quantiles(tr, levels), strict=True))
            if 0.1 in q and 0.9 in q:
                inside.extend((te >= q[0.1]) & (te <= q[0.9]))
            # The forecast quantile is point + q, the actual is point + e: pinball of e - q.
            losses.extend(
                np.mean([np.maximum(lv * (te - qv), (lv - 1) * (te - qv)) for lv, qv in q.items()], axis=0)
            )
    e = errors[np.isfinite(errors)]
    if not len(e):
        return {}
    mae = float(np.mean(np.abs(e)))
    return {
        "n": float(len(e)),
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(e**2))),
        "nmae": mae / normaliser,
        "pinball": float(np.mean(losses)) if losses else float("nan"),
        "coverage_10_90": float(np.mean(inside)) if inside else float("nan"),
    }
