"""Forecast accuracy as a trading desk reads it.

``nMAE`` divides MAE by the capacity for PV and wind and by the mean absolute actual value
otherwise; ``accuracy`` is the grid-code figure ``1 - RMSE / capacity`` for PV and wind
(DOMAIN.md §3); MAPE is for loads; pinball loss averages over the quantile levels;
``coverage_10_90`` is the share of actuals inside the 10-90 % band (PV: daylight only, as a
band that is zero at night covers the zero trivially).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

LOAD_KINDS = ("load", "heat", "it_load")
MAPE_FLOOR_FRACTION = 0.05  # skip near-zero actuals in MAPE (below 5 % of the mean)


def normaliser(kind: str, actual: np.ndarray, capacity: float | None) -> float:
    if kind in ("pv", "wind") and capacity:
        return float(capacity)
    scale = float(np.nanmean(np.abs(actual))) if len(actual) else 0.0
    return scale if scale > 0 else 1.0


def point_metrics(
    kind: str, actual: np.ndarray, point: np.ndarray, capacity: float | None
) -> dict[str, float]:
    ok = np.isfinite(actual) & np.isfinite(point)
    a, p = actual[ok], point[ok]
    if not len(a):
        return {}
    err = p - a
    mae = float(np.mean(np.abs(err)))
    rmse = float(np.sqrt(np.mean(err**2)))
    out = {"n": float(len(a)), "mae": mae, "rmse": rmse, "nmae": mae / normaliser(kind, a, capacity)}
    if kind in LOAD_KINDS:
        floor = MAPE_FLOOR_FRACTION * float(np.mean(np.abs(a)))
        big = np.abs(a) > floor
        if big.any():
            out["mape"] = float(np.mean(np.abs(err[big]) / np.abs(a[big])))
    if kind in ("pv", "wind") and capacity:
        out["accuracy"] = 1.0 - rmse / capacity
    return out


def pinball(actual: np.ndarray, quantiles: Mapping[float, np.ndarray]) -> float:
    losses = []
    for q, pred in quantiles.items():
        ok = np.isfinite(actual) & np.isfinite(pred)
        diff = actual[ok] - pred[ok]
        losses.append(np.mean(np.maximum(q * diff, (q - 1) * diff)))
    return float(np.mean(losses)) if losses else float("nan")


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray, mask: np.ndarray | None = None) -> float:
    ok = np.isfinite(actual) & np.isfinite(low) & np.isfinite(high)
    if mask is not None:
        ok &= mask
    if not ok.any():
        return float("nan")
    return float(np.mean((actual[ok] >= low[ok] - 1e-9) & (actual[ok] <= high[ok] + 1e-9)))


def all_metrics(
    kind: str,
    actual: np.ndarray,
    quantiles: Mapping[float, np.ndarray],
    capacity: float | None,
    daylight: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric for one series: P50 point metrics, pinball loss and 10-90 % coverage."""
    out = point_metrics(kind, actual, quantiles[0.5], capacity)
    out["pinball"] = pinball(actual, quantiles)
    if 0.1 in quantiles and 0.9 in quantiles:
        mask = daylight if kind == "pv" else None
        out["coverage_10_90"] = coverage(actual, quantiles[0.1], quantiles[0.9], mask)
    return out
