"""Gas generation: fuel cost and emissions per MWh from the fuel's calorific value and factor.

Minimum load makes on/off a discrete choice. The model is solved with the unit free between
zero and capacity; intervals where the answer sits below minimum load are then committed
(on if at least half the minimum, else off) and the model is re-solved (relax and fix).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    FleetSolution,
    Part,
    Profiles,
    hour_of_day,
    param,
    problem,
)
from aggregator.devices.calls import Budgets

DAYS_PER_YEAR = 365.0
MJ_PER_MWH = 3600.0


def _fuel_per_mwh(a, park) -> float:
    return MJ_PER_MWH / (a.electric_efficiency * park.carbon.fuels[a.fuel].ncv_mj_per_unit)


def _tco2_per_unit(a, park) -> float:
    f = park.carbon.fuels[a.fuel]
    return f.ncv_mj_per_unit * f.ef_tco2_per_tj * f.oxidation_fraction / 1e6


@dataclass(frozen=True, eq=False, kw_only=True)
class GasFleet(Fleet):
    kind = "gas_generator"
    asset_types = ("gas_generator",)

    capacity_mw: np.ndarray = field(metadata=param())
    min_load_fraction: np.ndarray = field(metadata=param())
    fuel_units_per_mwh: np.ndarray = field(metadata=param(_fuel_per_mwh))
    fuel_price_cny_per_unit: np.ndarray = field(
        metadata=param(lambda a, park: park.carbon.fuels[a.fuel].price_cny_per_unit)
    )
    tco2_per_unit: np.ndarray = field(metadata=param(_tco2_per_unit))
    daily_fuel_units: np.ndarray = field(
        metadata=param(lambda a, park: a.annual_fuel_budget_units / DAYS_PER_YEAR)
    )

    @property
    def min_load(self) -> np.ndarray:
        return self.min_load_fraction * self.capacity_mw

    @property
    def fuel_cost_per_mwh(self) -> np.ndarray:
        return self.fuel_units_per_mwh * self.fuel_price_cny_per_unit

    @property
    def tco2_per_mwh(self) -> np.ndarray:
        return self.fuel_units_per_mwh * self.tco2_per_unit

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        dt = b.dt_h
        p = part.bounded("p", "output limits")
        part.constraints.append(
            cp.sum(p, axis=1) * dt <= b.rows(self.daily_fuel_units / self.fuel_units_per_mwh)
        )
        part.power = p
        part.cost = cp.multiply(b.column(self.fuel_cost_per_mwh) * dt, p)
        part.emissions = cp.multiply(b.column(self.tco2_per_mwh) * dt, p)
        part.up = part.params["p_hi"] - p
        part.down = p - part.params["p_lo"]
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        part.set("p_lo", 0.0)
        part.set("p_hi", b.rows(np.repeat(self.capacity_mw[:, None], b.T, axis=1)))

    def commit(self, part: Part) -> bool:
        p = np.asarray(part.outputs["p"].value)
        lo, hi = part.params["p_lo"], part.params["p_hi"]
        min_load = part.b.column(self.min_load)
        fractional = (
            (p > CHECK_TOLERANCE) & (p < min_load - CHECK_TOLERANCE) & (lo.value < min_load - CHECK_TOLERANCE)
        )
        if not np.any(fractional):
            return False
        on = p >= min_load / 2
        free = hi.value > lo.value  # frozen intervals keep their values
        lo.value = np.where(free & on, np.broadcast_to(min_load, p.shape), lo.value)
        hi.value = np.where(free & ~on, 0.0, hi.value)
        return True

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("p_lo", "p_hi"), part.b.rows(previous), mask)

    def peak_cut(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        capacity = np.maximum(self.capacity_mw[:, None] - solution.setpoints(scenario), 0.0)
        return capacity, self.fuel_cost_per_mwh + carbon_price * self.tco2_per_mwh

    def call_budgets(self, solution: FleetSolution, scenario: int, direction: str) -> Budgets:
        """The day's fuel left after the schedule."""
        p = solution.setpoints(scenario)
        left = self.daily_fuel_units / self.fuel_units_per_mwh - p.sum(axis=1) * solution.dt_h
        return Budgets.daily(left, p.shape[1])

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        hours = hour_of_day(setpoints.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            p = setpoints[i]
            bad = (p < -tol) | (p > self.capacity_mw[i] + tol) | ((p > tol) & (p < self.min_load[i] - tol))
            if np.any(bad):
                label = "output neither off nor within [minimum load, capacity]"
                out.append(f"{a}: " + problem(label, bad, hours, p[bad].max(), "MW"))
            fuel = p.sum() * dt_h * self.fuel_units_per_mwh[i]
            if fuel > self.daily_fuel_units[i] * (1 + 1e-6) + tol:
                out.append(
                    f"{a}: burns {fuel:.0f} fuel units, above the daily share "
                    f"{self.daily_fuel_units[i]:.0f} of the annual budget"
                )
        return out

    def numpy_cost(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        return (setpoints * self.fuel_cost_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h

    def numpy_emissions(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        return (setpoints * self.tco2_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h
