"""Exact money and quantity arithmetic: round each interval to the fen first, then sum.

Amounts travel as whole fen (``int64``) so that a statement's total is exactly the sum of its
lines and intervals, and enterprise statements reconcile with the park's to the fen. Carbon
and energy quantities in the ledger use the same idea with micro-units (gram, watt-hour).
"""

from __future__ import annotations

import numpy as np

FEN_PER_CNY = 100
MICRO = 1_000_000


def to_fen(amount_cny: np.ndarray | float) -> np.ndarray:
    """Amounts in CNY rounded to whole fen (half to even, the same rule everywhere)."""
    return np.rint(np.asarray(amount_cny, dtype=float) * FEN_PER_CNY).astype(np.int64)


def fen_to_cny(fen: np.ndarray | int) -> float | list[float]:
    """Whole fen back to CNY (the nearest float to an exact fen amount)."""
    arr = np.asarray(fen, dtype=np.int64)
    return (arr / FEN_PER_CNY).tolist()


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
