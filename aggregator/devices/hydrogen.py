"""Electrolysers: run between minimum load and capacity within ramp limits, fill the day's hydrogen demand.

Stacks run continuously (alkaline stacks restart slowly), so the minimum load always holds.
Hydrogen is drawn evenly over the day; the store buffers production against it and must
end the day at least as full as it began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    Profiles,
    Soft,
    column,
    freeze_parameters,
    hour_of_day,
    identity,
    problem,
)
from aggregator.devices.thermal import storage_start_range


class ElectrolyserFleet(Fleet):
    kind = "electrolyser"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        capacity_mw: np.ndarray,
        min_load_fraction: np.ndarray,
        ramp_fraction_per_h: np.ndarray,
        kwh_per_kg: np.ndarray,
        demand_kg_per_day: np.ndarray,
        storage_kg: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.capacity = np.asarray(capacity_mw, dtype=float)
        self.min_load = np.asarray(min_load_fraction, dtype=float) * self.capacity
        self.ramp = np.asarray(ramp_fraction_per_h, dtype=float) * self.capacity
        self.kg_per_mwh = 1000.0 / np.asarray(kwh_per_kg, dtype=float)
        self.demand = np.asarray(demand_kg_per_day, dtype=float)
        self.storage = np.asarray(storage_kg, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> ElectrolyserFleet:
        return cls(
            *identity(assets),
            capacity_mw=column(assets, "capacity_mw"),
            min_load_fraction=column(assets, "min_load_fraction"),
            ramp_fraction_per_h=column(assets, "ramp_fraction_per_h"),
            kwh_per_kg=column(assets, "kwh_per_kg_h2"),
            demand_kg_per_day=column(assets, "h2_demand_kg_per_day"),
            storage_kg=column(assets, "h2_storage_kg"),
        )

    def build(self, b: Build) -> None:
        self.b = b
        R, dt = b.K * self.n, b.dt_h
        self.p, self.lo, self.hi = self.bounded(b, "electrolyser", "load limits")
        self.stock = cp.Variable((R, b.T + 1), name="h2_stock")
        self.stock0_lo = cp.Parameter(R, name="h2_start_lo")
        self.stock0_hi = cp.Parameter(R, name="h2_start_hi")
        unmet = cp.Variable((R, b.T), nonneg=True, name="h2_unmet")
        draw = b.column(self.demand / b.T)
        self.constraints += [
            cp.abs(self.p[:, 1:] - self.p[:, :-1]) <= b.column(self.ramp * dt),
            self.stock[:, 1:]
            == self.stock[:, :-1] + cp.multiply(b.column(self.kg_per_mwh * dt), self.p) - draw + unmet,
            self.stock >= 0,
            self.stock <= b.column(self.storage),
            self.stock[:, b.T] >= self.stock[:, 0],
            self.stock[:, 0] >= self.stock0_lo,
            self.stock[:, 0] <= self.stock0_hi,
        ]
        self.softs = [Soft("hydrogen demand not met", unmet, "kg")]
        self.power = -self.p
        self.up = self.p - self.lo
        self.down = self.hi - self.p
        self.set_profiles({})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        self.lo.value = b.rows(np.repeat(self.min_load[:, None], b.T, axis=1))
        self.hi.value = b.rows(np.repeat(self.capacity[:, None], b.T, axis=1))
        self.stock0_lo.value = np.zeros(b.K * self.n)
        self.stock0_hi.value = b.rows(self.storage)

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.lo, self.hi], self.b.rows(-previous), mask)

    def state(self) -> dict[str, float]:
        start = np.asarray(self.stock.value)[: self.n, 0]
        return {f"{a}.h2_start_kg": float(start[i]) for i, a in enumerate(self.ids)}

    def restore_state(self, state: Mapping[str, float]) -> None:
        start = np.array([state.get(f"{a}.h2_start_kg", np.nan) for a in self.ids])
        if np.all(np.isfinite(start)):
            self.stock0_lo.value = self.b.rows(start)
            self.stock0_hi.value = self.b.rows(start)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        p = -setpoints
        T = p.shape[1]
        hours = hour_of_day(T, dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            bad = (p[i] < self.min_load[i] - tol) | (p[i] > self.capacity[i] + tol)
            if np.any(bad):
                out.append(
                    f"{a}: "
                    + problem("load outside [minimum, capacity]", bad, hours, np.abs(p[i]).max(), "MW")
                )
            ramp = np.abs(np.diff(p[i])) - self.ramp[i] * dt_h
            if np.any(ramp > tol):
                out.append(
                    f"{a}: " + problem("ramps faster than allowed", ramp > tol, hours[1:], ramp.max(), "MW")
                )
            inflow = self.kg_per_mwh[i] * p[i] * dt_h - self.demand[i] / T
            lo, hi = storage_start_range(1.0, inflow, self.storage[i])
            if lo > hi + tol * max(1.0, self.demand[i]):
                out.append(f"{a}: production cannot meet the hydrogen demand within the store's limits")
        return out
