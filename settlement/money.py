"""Exact money and quantity arithmetic: round each interval to the fen first, then sum.

Amounts travel as whole fen (``int64``) so that a statement's total is exactly the sum of its
lines and intervals, and enterprise statements reconcile with the park's to the fen. Carbon
and energy quantities in the ledger use the same idea with micro-units (gram, watt-hour).
"""

from __future__ import annotations

import math

import numpy as np

FEN_PER_CNY = 100
MICRO = 1_000_000
_MAX_NUDGES = 16  # one-ulp moves tried when making a float sum exact (far below a fen)


def to_fen(amount_cny: np.ndarray | float) -> np.ndarray:
    """Amounts in CNY rounded to whole fen (half to even, the same rule everywhere)."""
    return np.rint(np.asarray(amount_cny, dtype=float) * FEN_PER_CNY).astype(np.int64)


def fen_series(fen: np.ndarray) -> tuple[list[float], float]:
    """Per-interval amounts in CNY and their total, exact to the fen and to ``sum()``.

    Every value is its whole-fen amount, and Python's ``sum()`` of the list equals the total
    exactly: the last value is ``total - sum(the others)`` (a few ulps from its fen amount);
    when a rounding tie stops that, an earlier value moves by one ulp and the last is
    recomputed. Where no such list exists the total is the list's float sum (a few ulps from
    its fen amount). No fen ever changes, so consumers comparing as floats or in fen agree.
    """
    fen = np.asarray(fen, dtype=np.int64)
    values = (fen / FEN_PER_CNY).tolist()
    total = int(fen.sum()) / FEN_PER_CNY
    last_fen = int(fen[-1]) if len(fen) else 0
    for attempt in range(_MAX_NUDGES):
        if len(values) < 2 or sum(values) == total:
            return values, total
        head = sum(values[:-1])
        for candidate in _around(total - head):
            if round(candidate * FEN_PER_CNY) == last_fen and head + candidate == total:
                values[-1] = candidate
                return values, total
        j = len(values) - 2 - attempt % (len(values) - 1)  # break the tie earlier in the sum
        values[j] = math.nextafter(values[j], math.inf if attempt % 2 else -math.inf)
    # No fen-exact list sums to the total (the last addition cancels on a coarser grid): the
    # total is then the float sum itself, a few ulps from the fen amount, still exact to the fen.
    values = (fen / FEN_PER_CNY).tolist()
    return values, sum(values)


def _around(x: float) -> tuple[float, float, float]:
    return x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf)


def to_micro(quantity: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(quantity, dtype=float) * MICRO).astype(np.int64)


def allocate(total: np.ndarray | int, weights: np.ndarray) -> np.ndarray:
    """Split whole-unit totals pro rata to ``weights`` so the parts sum exactly to the total.

    ``weights`` has parties on axis 0 (and, optionally, columns on axis 1 with one total per
    column). Largest-remainder method; ties go to the lower index, so the split is
    deterministic. A column whose weights are all zero goes entirely to party 0.
    """
    w = np.asarray(weights, dtype=float)
    squeeze = w.ndim == 1
    if squeeze:
        w = w[:, None]
    totals = np.broadcast_to(np.asarray(total, dtype=np.int64), (w.shape[1],))
    if np.any(w < 0):
        raise ValueError("allocate: weights must not be negative")
    wsum = w.sum(axis=0)
    empty = wsum <= 0
    w = np.where(empty[None, :], 0.0, w)
    w[0, empty] = 1.0
    wsum = w.sum(axis=0)
    sign = np.where(totals < 0, -1, 1)
    magnitude = np.abs(totals)
    exact = w * (magnitude / wsum)[None, :]
    parts = np.floor(exact).astype(np.int64)
    short = magnitude - parts.sum(axis=0)
    order = np.argsort(-(exact - parts), axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(w.shape[0])[:, None].repeat(w.shape[1], axis=1), axis=0)
    parts += (ranks < short[None, :]).astype(np.int64)
    parts *= sign[None, :]
    return parts[:, 0] if squeeze else parts
