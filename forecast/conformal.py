"""Residual quantiles by Mondrian conformal prediction (crepes' conformal predictive system).

Every forecast quantile is the point forecast plus a quantile of backtest residuals (actual
minus point) from forecasts like it: the same bucket (hour of day, lead day, level, clear-sky
band). ``crepes.ConformalPredictiveSystem`` turns the residuals of each bucket (a Mondrian
category) into a conformal predictive distribution and reads its percentiles with the
finite-sample rank ``(m + 1) p`` of ``m`` residuals, rounded outward (lower levels down,
upper levels up). What is ours: a bucket with fewer than ``min_samples`` residuals borrows
the distribution of the next coarser bucket (the last is all residuals), and the
levels are widened first by ``(n + 1) / n`` for ``n`` independent origins, because the
errors of one day's intervals move together, so ``m`` overstates the independent samples.
A level beyond the residuals' rank (a small bucket, a far tail) takes the extreme residual.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from crepes import ConformalPredictiveSystem


def widened(levels: Sequence[float], independent_samples: int) -> np.ndarray:
    """Levels pushed away from the median by ``(n + 1) / n`` for ``n`` independent samples."""
    n = max(int(independent_samples), 1)
    return np.clip(0.5 + (np.asarray(levels, dtype=float) - 0.5) * (n + 1) / n, 0.0, 1.0)


def residual_quantiles(
    residuals: np.ndarray,
    levels: Sequence[float],
    keys: Sequence[np.ndarray] = (),
    query: Sequence[np.ndarray] = (),
    min_samples: int = 1,
) -> np.ndarray:
    """Residual quantiles (query rows, levels) for each query row.

    ``keys`` are the residuals' bucket labels from finest to coarsest and ``query`` the query
    rows' labels at the same granularities; a row uses the finest bucket holding at least
    ``min_samples`` residuals, else all residuals; without granularities, one row of the
    quantiles of all residuals. Residuals must be finite; none at all gives zero offsets.
    """
    rows = len(query[0]) if len(query) else 1
    levels = np.asarray(levels, dtype=float)
    if not len(residuals):
        return np.zeros((rows, len(levels)))
    keys = [*map(np.asarray, keys), np.zeros(len(residuals), dtype=int)]  # last: all residuals
    query = [*map(np.asarray, query), np.zeros(rows, dtype=int)]
    chosen = np.full(rows, len(keys) - 1)
    for depth in range(len(keys) - 2, -1, -1):
        labels, counts = np.unique(keys[depth], return_counts=True)
        chosen[np.isin(query[depth], labels[counts >= min_samples])] = depth
    lower = levels < 0.5
    out = np.zeros((rows, len(levels)))
    for depth in np.unique(chosen):
        for label in np.unique(query[depth][chosen == depth]):
            mine = residuals[keys[depth] == label]
            out[(chosen == depth) & (query[depth] == label)] = _percentiles(mine, levels, lower)
    return out


def _percentiles(residuals: np.ndarray, levels: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """One bucket's conformal residual quantiles; a level beyond its ranks takes its extreme residual.

    One predictive system per bucket (Mondrian by hand): crepes' own Mondrian ``predict`` fails
    when a bucket is too small for several levels (crepes 0.9.1 indexes rows and columns
    without ``np.ix_``)."""
    cps = ConformalPredictiveSystem().fit(residuals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crepes warns of tails beyond the bucket's ranks
        values = cps.predict(
            np.zeros(1),
            lower_percentiles=100 * levels[lower],
            higher_percentiles=100 * levels[~lower],
            y_min=float(residuals.min()),
            y_max=float(residuals.max()),
        )[0]
    out = np.empty(len(levels))
    out[lower], out[~lower] = values[: int(lower.sum())], values[int(lower.sum()) :]
    return out
