"""Demand-response capacity that stays deliverable when every offered interval is called.

The grid may accept a demand-response offer in any interval it was made for and pays each
accepted interval as bid, so a device's offers over the day must be deliverable together, not
each on its own. A device states its energy limits as *budgets*: energy that the calls in a
set of intervals draw from together (a battery's charge above its floor at the end of each
interval is drawn by every call up to then; an interruptible load's daily energy by every
call; its rolling duration limit by the calls inside each window). :func:`deliverable` gives
power to the intervals the grid is likeliest to call first (dearest first for peak cut) as
long as every budget they draw from lasts. (Each interval's power is already what the device
sustains alone for the market's minimum response time.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budgets:
    """Energy limits of n devices over T intervals."""

    masks: np.ndarray  # (B, T) bool: the intervals whose calls draw from each budget
    remaining_mwh: np.ndarray  # (n, B) energy left in each budget (inf: no limit for that device)
    # (B,) the interval at whose end a budget is stored energy (that the park's cover for
    # forecast errors also counts on), -1 for other budgets.
    stored_at: np.ndarray

    def __add__(self, other: Budgets) -> Budgets:
        return Budgets(
            np.concatenate([self.masks, other.masks]),
            np.concatenate([self.remaining_mwh, other.remaining_mwh], axis=1),
            np.concatenate([self.stored_at, other.stored_at]),
        )

    @staticmethod
    def state(headroom_mwh: np.ndarray) -> Budgets:
        """Stored energy that every call up to the end of interval t draws from: ``headroom_mwh``
        (n, T) is what the store can still give at the end of each interval."""
        T = headroom_mwh.shape[1]
        return Budgets(np.tril(np.ones((T, T), dtype=bool)), np.maximum(headroom_mwh, 0.0), np.arange(T))

    def holding(self, fraction_kept: np.ndarray) -> Budgets:
        """These budgets with the fraction ``fraction_kept`` (T,) of stored energy at the end of
        each interval held back."""
        keep = np.where(self.stored_at >= 0, fraction_kept[np.maximum(self.stored_at, 0)], 0.0)
        return Budgets(self.masks, self.remaining_mwh * (1.0 - keep)[None, :], self.stored_at)

    def stored_mwh(self, T: int) -> np.ndarray:
        """Stored energy (T,) of all devices at the end of each interval."""
        out = np.zeros(T)
        on = self.stored_at >= 0
        np.add.at(out, self.stored_at[on], self.remaining_mwh[:, on].sum(axis=0))
        return out

    @staticmethod
    def daily(remaining_mwh: np.ndarray, T: int) -> Budgets:
        """One budget (n,) for the whole day."""
        return Budgets(np.ones((1, T), dtype=bool), np.maximum(remaining_mwh, 0.0)[:, None], np.array([-1]))

    @staticmethod
    def rolling(limit_mwh: np.ndarray, used_mwh: np.ndarray, lengths: np.ndarray) -> Budgets:
        """Every window of ``lengths`` (n,) intervals holds at most ``limit_mwh`` (n,), of which
        the schedule already uses ``used_mwh`` (n, T) per interval."""
        n, T = used_mwh.shape
        masks, remaining = [], []
        for L in np.unique(lengths):
            if L > T:
                continue
            mine = lengths == L
            for s in range(T - L + 1):
                mask = np.zeros(T, dtype=bool)
                mask[s : s + L] = True
                masks.append(mask)
                left = limit_mwh - used_mwh[:, s : s + L].sum(axis=1)
                remaining.append(np.where(mine, np.maximum(left, 0.0), np.inf))
        if not masks:
            return Budgets(np.zeros((0, T), dtype=bool), np.zeros((n, 0)), np.zeros(0, dtype=int))
        return Budgets(np.array(masks), np.stack(remaining, axis=1), np.full(len(masks), -1))


def deliverable(power_mw: np.ndarray, budgets: Budgets | None, order: np.ndarray, dt_h: float) -> np.ndarray:
    """Capacity (n, T) deliverable if every interval is called: intervals in ``order`` take up
    to ``power_mw`` (n, T) while every budget they draw from lasts; what they take is gone for
    the intervals after them in ``order``."""
    capacity = np.maximum(np.asarray(power_mw, dtype=float), 0.0)
    if budgets is None or budgets.masks.shape[0] == 0:
        return capacity
    remaining = budgets.remaining_mwh.astype(float).copy()
    out = np.zeros_like(capacity)
    for t in order:
        drawn = budgets.masks[:, t]
        if not drawn.any():
            out[:, t] = capacity[:, t]
            continue
        room = remaining[:, drawn].min(axis=1)
        take = np.clip(np.minimum(capacity[:, t], room / dt_h), 0.0, None)
        out[:, t] = take
        remaining[:, drawn] -= take[:, None] * dt_h
    return out
