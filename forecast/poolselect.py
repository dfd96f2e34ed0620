"""Honest selection and conditional quantiles over rolling forecasts (see :mod:`forecast.pool`).

At a decision time ``d`` (a cut-off), the evidence is every origin whose targets had all ended
by ``d``, at most ``max_origins`` of them. Each model runs where its data needs are met; it is
compared with persistence on the origins where it ran (MAE ratio), and only models with
enough origins compete. Persistence always competes, so the chosen model is never worse than
persistence in backtest. The spread of the per-origin ratio (10th-90th percentile) is reported.

Quantiles: split conformal, Mondrian by bucket (:mod:`forecast.conformal`; the bucket of a
forecast interval is its lead day, time-of-day block and the level of its P50 relative to the
series' range; for PV with a known site, the clear-sky irradiance replaces the time of day).
Levels are widened by the finite-sample factor ``(n+1)/n`` with n the number of origins. Then
physics: where the series is known to sit at its floor (PV with the sun down) the band has zero
width at the floor value; every quantile lies within the series' bounds; levels never cross.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecast.conformal import residual_quantiles, widened
from forecast.pool import MODEL_MIN_DAYS, RollingForecasts

MIN_ORIGINS = 2  # a model needs at least this many backtest origins to compete
BLOCK_HOURS = 3  # time-of-day blocks of the quantile buckets
LEVEL_EDGES = (0.1, 0.4, 0.7)  # P50 level buckets, as fractions of the series' observed range
CLEAR_EDGES = (1.0, 150.0, 450.0)  # clear-sky GHI buckets (W/m2) for PV with a known site
MIN_BUCKET = 30  # fewer residuals than this: fall back to the coarser bucket


MIN_SHIFT_ORIGINS = 5  # a bias correction needs this many earlier origins
SWITCH_RISK = 0.1  # ...and only if resampled origins show it losing to persistence less often than this
BOOTSTRAP_RESAMPLES = 400
SWITCH_MARGIN = 0.97  # another model replaces persistence only if its backtest MAE is this much lower:
# with tens of origins a smaller edge is within selection noise (a hedge, tuned on no test series)


@dataclass
class Choice:
    model: str
    debias: bool  # publish the P50 with the model's recent median error per bucket removed
    origins: list[int]  # evidence origins (cut-off positions), oldest first
    ratio_vs_persistence: dict[str, float]
    spread: dict[str, tuple[float, float]]  # model -> (P10, P90) of the per-origin MAE ratio
    reasons: dict[str, str] = field(default_factory=dict)  # model -> why it did not compete


def evidence(rf: RollingForecasts, decision: int, max_origins: int) -> list[int]:
    return [o for o in rf.origins if o + rf.steps <= decision][-max_origins:]


def choose(rf: RollingForecasts, y: np.ndarray, decision: int, max_origins: int, per_day: int) -> Choice:
    used = evidence(rf, decision, max_origins)
    ratios: dict[str, float] = {}
    spread: dict[str, tuple[float, float]] = {}
    shifted: dict[str, float] = {}
    consistent: dict[str, bool] = {}
    reasons: dict[str, str] = dict(rf.excluded)
    persist = rf.points.get("persistence", {})
    for name, points in rf.points.items():
        if name == "climatology":
            reasons.setdefault(name, "a reference (CLIPER's climatology), not a forecast to publish")
            continue
        mine = [o for o in used if o in points and o in persist]
        if len(mine) < min(MIN_ORIGINS, len([o for o in used if o in persist])) or not mine:
            have = (decision - int(np.argmax(np.isfinite(y)))) / per_day
            reasons.setdefault(
                name,
                f"needs {MODEL_MIN_DAYS[name]:g} days of history before each backtest origin; the latest "
                f"origin has {have - rf.steps / per_day:.1f}",
            )
            continue
        own = np.array([_mae(y, o, points[o]) for o in mine])
        ref = np.array([_mae(y, o, persist[o]) for o in mine])
        ok = np.isfinite(own) & np.isfinite(ref) & (ref > 0)
        if not ok.any():
            reasons.setdefault(name, "no scored backtest origin")
            continue
        ratios[name] = float(own[ok].sum() / ref[ok].sum())
        per_origin = own[ok] / ref[ok]
        spread[name] = (float(np.percentile(per_origin, 10)), float(np.percentile(per_origin, 90)))
        debiased = np.array(
            [_mae(y, o, p) for o, p in zip(mine, online_debiased(points, y, mine, per_day), strict=True)]
        )
        consistent[name] = beats_persistence(own[ok], ref[ok])
        if np.isfinite(debiased[ok]).all():
            shifted[name] = float(debiased[ok].sum() / ref[ok].sum())
            consistent[f"{name}+debias"] = beats_persistence(debiased[ok], ref[ok])
    if "persistence" not in ratios:
        return Choice("persistence", False, used, ratios, spread, reasons)
    options = [(r, n != "persistence", n, False) for n, r in ratios.items()]
    options += [(r, True, n, True) for n, r in shifted.items()]
    options = [
        o
        for o in options
        if (o[2] == "persistence" and not o[3])
        or (o[0] <= SWITCH_MARGIN and consistent.get(o[2] + ("+debias" if o[3] else ""), False))
    ]
    _r, _p, best, debias = min(options, key=lambda t: (round(t[0], 6), t[1], t[3], t[2]))
    for name, r in shifted.items():
        ratios[f"{name}+debias"] = r
    return Choice(best, debias, used, ratios, spread, reasons)


def beats_persistence(own: np.ndarray, ref: np.ndarray) -> bool:
    """True if the pooled MAE ratio stays below 1 when the origins are resampled (bootstrap over
    origins, seeded): a win that rests on one or two lucky days does not count."""
    n = len(own)
    if n == 0:
        return False
    idx = np.random.default_rng(0).integers(0, n, (BOOTSTRAP_RESAMPLES, n))
    ratio = own[idx].sum(axis=1) / np.maximum(ref[idx].sum(axis=1), 1e-12)
    return float(np.mean(ratio >= 1.0)) < SWITCH_RISK


def step_buckets(steps: int, first_slot: int, per_day: int) -> np.ndarray:
    """Bias buckets per lead: lead day and time-of-day block (origins share the time of day)."""
    h = np.arange(steps)
    slot = (first_slot + h) % per_day
    return (h // per_day) * 100 + (slot * 24 // per_day) // BLOCK_HOURS


def online_debiased(
    points: dict[int, np.ndarray], y: np.ndarray, origins: list[int], per_day: int
) -> list[np.ndarray]:
    """Each origin's forecast minus the median error per bucket over the origins before it
    (unchanged until ``MIN_SHIFT_ORIGINS`` are known)."""
    if not origins:
        return []
    steps = len(points[origins[0]])
    resid = np.array([y[o : o + steps] - points[o] for o in origins])
    keys = step_buckets(steps, origins[0] % per_day, per_day)
    out = []
    for k, o in enumerate(origins):
        before = [j for j in range(k) if origins[j] + steps <= o]
        out.append(
            points[o] - median_shift(resid[before], keys) if len(before) >= MIN_SHIFT_ORIGINS else points[o]
        )
    return out


def median_shift(resid: np.ndarray, keys: np.ndarray) -> np.ndarray:
    shift = np.zeros(len(keys))
    for key in np.unique(keys):
        cols = resid[:, keys == key]
        vals = cols[np.isfinite(cols)]
        if len(vals):
            shift[keys == key] = -np.median(vals)
    return shift


def _mae(y: np.ndarray, origin: int, point: np.ndarray) -> float:
    actual = y[origin : origin + len(point)]
    ok = np.isfinite(actual) & np.isfinite(point)
    return float(np.mean(np.abs(actual[ok] - point[ok]))) if ok.any() else float("nan")


@dataclass
class Bounds:
    lower: float | None
    upper: float | None
    floor: float | None  # the value the series sits at when it is known to be off (PV at night)


def buckets(
    steps_idx: np.ndarray,
    slots: np.ndarray,
    per_day: int,
    point: np.ndarray,
    scale: tuple[float, float],
    clear: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fine, coarse) bucket keys per interval."""
    lead_day = steps_idx // per_day
    lo, hi = scale
    level = np.digitize((point - lo) / max(hi - lo, 1e-9), LEVEL_EDGES)
    tod = np.digitize(clear, CLEAR_EDGES) if clear is not None else slots * 24 // per_day // BLOCK_HOURS
    coarse = lead_day * 100 + tod
    return coarse * 10 + level, coarse


def conformal_quantiles(
    rf: RollingForecasts,
    model: str,
    y: np.ndarray,
    used: list[int],
    cut: int,
    point: np.ndarray,
    levels: tuple[float, ...],
    per_day: int,
    bounds: Bounds,
    clearsky: np.ndarray | None,
    night: np.ndarray | None,
) -> np.ndarray:
    """Quantiles (steps x levels) at cut-off ``cut`` from the residuals of ``model`` at ``used``."""
    steps = len(point)
    points = rf.points[model]
    known = y[np.isfinite(y)][: max(cut, 1)]
    scale = (
        (float(np.nanpercentile(known, 1)), float(np.nanpercentile(known, 99))) if len(known) else (0.0, 1.0)
    )
    res, fine_k, coarse_k = [], [], []
    origins = [o for o in used if o in points]
    for o in origins:
        actual = y[o : o + steps]
        p = points[o]
        clear = clearsky[o : o + steps] if clearsky is not None else None
        f, c = buckets(np.arange(steps), (np.arange(o, o + steps)) % per_day, per_day, p, scale, clear)
        res.append(actual - p)
        fine_k.append(f)
        coarse_k.append(c)
    out = np.repeat(point[:, None], len(levels), axis=1).astype(float)
    if not origins:
        return out
    r, fk, ck = np.concatenate(res), np.concatenate(fine_k), np.concatenate(coarse_k)
    ok = np.isfinite(r)
    clear_now = clearsky[cut : cut + steps] if clearsky is not None else None
    f_now, c_now = buckets(
        np.arange(steps), np.arange(cut, cut + steps) % per_day, per_day, point, scale, clear_now
    )
    used_levels = widened(levels, len(origins))
    return out + residual_quantiles(r[ok], used_levels, [fk[ok], ck[ok]], [f_now, c_now], MIN_BUCKET)


def published_point(
    rf: RollingForecasts, model: str, debias: bool, y: np.ndarray, used: list[int], cut: int, per_day: int
) -> np.ndarray:
    """The P50: the model's forecast, minus its median error per bucket when that won the backtest."""
    point = rf.points[model][cut]
    if not debias:
        return point
    origins = [o for o in used if o in rf.points[model]]
    resid = np.array([y[o : o + len(point)] - rf.points[model][o] for o in origins])
    return point - median_shift(resid, step_buckets(len(point), cut % per_day, per_day))


def apply_bounds(values: np.ndarray, bounds: Bounds, night: np.ndarray | None) -> np.ndarray:
    out = values.copy()
    if bounds.lower is not None:
        out = np.maximum(out, bounds.lower)
    if bounds.upper is not None:
        out = np.minimum(out, bounds.upper)
    if night is not None and bounds.floor is not None:
        out[night] = bounds.floor
    return np.sort(out, axis=1)
