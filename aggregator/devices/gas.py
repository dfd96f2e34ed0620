"""Gas generation: fuel cost and emissions per MWh from the fuel's calorific value and factor.

Minimum load makes on/off a discrete choice. The model is solved with the unit free between
zero and capacity; intervals where the answer sits below minimum load are then committed
(on if at least half the minimum, else off) and the model is re-solved (relax and fix).
"""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    Profiles,
    freeze_parameters,
    hour_of_day,
    identity,
    problem,
)

DAYS_PER_YEAR = 365.0
MJ_PER_MWH = 3600.0


class GasFleet(Fleet):
    kind = "gas_generator"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        capacity_mw: np.ndarray,
        min_load_fraction: np.ndarray,
        fuel_units_per_mwh: np.ndarray,
        fuel_price_cny_per_unit: np.ndarray,
        tco2_per_unit: np.ndarray,
        daily_fuel_units: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.capacity = np.asarray(capacity_mw, dtype=float)
        self.min_load = np.asarray(min_load_fraction, dtype=float) * self.capacity
        self.fuel_per_mwh = np.asarray(fuel_units_per_mwh, dtype=float)
        self.fuel_cost_per_mwh = self.fuel_per_mwh * np.asarray(fuel_price_cny_per_unit, dtype=float)
        self.tco2_per_mwh = self.fuel_per_mwh * np.asarray(tco2_per_unit, dtype=float)
        self.daily_fuel = np.asarray(daily_fuel_units, dtype=float)
        self.carbon_price = 0.0  # set by the park model; prices peak-cut offers

    @classmethod
    def from_assets(cls, assets: Sequence, fuels: dict) -> GasFleet:
        fuel = [fuels[a.fuel] for a in assets]
        return cls(
            *identity(assets),
            capacity_mw=np.array([a.capacity_mw for a in assets]),
            min_load_fraction=np.array([a.min_load_fraction for a in assets]),
            fuel_units_per_mwh=np.array(
                [
                    MJ_PER_MWH / (a.electric_efficiency * f.ncv_mj_per_unit)
                    for a, f in zip(assets, fuel, strict=True)
                ]
            ),
            fuel_price_cny_per_unit=np.array([f.price_cny_per_unit for f in fuel]),
            tco2_per_unit=np.array(
                [f.ncv_mj_per_unit * f.ef_tco2_per_tj * f.oxidation_fraction / 1e6 for f in fuel]
            ),
            daily_fuel_units=np.array([a.annual_fuel_budget_units / DAYS_PER_YEAR for a in assets]),
        )

    def build(self, b: Build) -> None:
        self.b = b
        dt = b.dt_h
        self.p, self.lo, self.hi = self.bounded(b, "gas", "output limits")
        self.constraints.append(cp.sum(self.p, axis=1) * dt <= b.rows(self.daily_fuel / self.fuel_per_mwh))
        self.power = self.p
        self.cost = cp.multiply(b.column(self.fuel_cost_per_mwh) * dt, self.p)
        self.emissions = cp.multiply(b.column(self.tco2_per_mwh) * dt, self.p)
        self.up = self.hi - self.p
        self.down = self.p - self.lo
        self.set_profiles({})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        self.lo.value = np.zeros((b.K * self.n, b.T))
        self.hi.value = b.rows(np.repeat(self.capacity[:, None], b.T, axis=1))

    def commitment_changed(self) -> bool:
        p = np.asarray(self.p.value)
        min_load = self.b.column(self.min_load)
        fractional = (
            (p > CHECK_TOLERANCE)
            & (p < min_load - CHECK_TOLERANCE)
            & (self.lo.value < min_load - CHECK_TOLERANCE)
        )
        if not np.any(fractional):
            return False
        on = p >= min_load / 2
        free = self.hi.value > self.lo.value  # frozen intervals keep their values
        self.lo.value = np.where(free & on, np.broadcast_to(min_load, p.shape), self.lo.value)
        self.hi.value = np.where(free & ~on, 0.0, self.hi.value)
        return True

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.lo, self.hi], self.b.rows(previous), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        hours = hour_of_day(setpoints.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            p = setpoints[i]
            bad = (p < -tol) | (p > self.capacity[i] + tol) | ((p > tol) & (p < self.min_load[i] - tol))
            if np.any(bad):
                out.append(
                    f"{a}: "
                    + problem(
                        "output neither off nor within [minimum load, capacity]",
                        bad,
                        hours,
                        p[bad].max(),
                        "MW",
                    )
                )
            fuel = p.sum() * dt_h * self.fuel_per_mwh[i]
            if fuel > self.daily_fuel[i] * (1 + 1e-6) + tol:
                out.append(
                    f"{a}: burns {fuel:.0f} fuel units, above the daily share {self.daily_fuel[i]:.0f} of the annual budget"
                )
        return out

    def peak_cut(self, scenario: int, hours: float, reference_price: float) -> tuple[np.ndarray, np.ndarray]:
        p = self.scenario_rows(self.p.value, scenario)
        capacity = np.maximum(self.capacity[:, None] - p, 0.0)
        return capacity, self.fuel_cost_per_mwh + self.carbon_price * self.tco2_per_mwh
