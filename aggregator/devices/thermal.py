"""Heat pumps with a thermal tank: demand met every interval from the pump or the tank.

The tank is a :mod:`~aggregator.devices.stock` with losses: its level at midnight is the
solver's choice, but the day must end at least as full as it began, so tomorrow is not
robbed. Summer cooling from the cold store uses the same model.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    Soft,
    hour_of_day,
    param,
    problem,
    series,
)
from aggregator.devices.stock import add_stock, free_start, restore_start, start_state, stock_feasible

STATE_KEY = "tank_start_mwh_th"


@dataclass(frozen=True, eq=False, kw_only=True)
class HeatPumpFleet(Fleet):
    kind = "heat_pump"
    asset_types = ("heat_pump",)

    series: tuple[str, ...] = field(metadata=series("{id}.heat_mw_th"))
    electric_mw: np.ndarray = field(metadata=param())
    cop: np.ndarray = field(metadata=param())
    tank_mwh_th: np.ndarray = field(metadata=param())
    tank_loss_fraction_per_h: np.ndarray = field(metadata=param())

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        R, dt = part.rows, b.dt_h
        e = part.bounded("e", "electric power limits")
        demand = part.parameter("demand", (R, b.T))
        unmet = cp.Variable((R, b.T), nonneg=True, name="heat_unmet")
        cop, tank = b.column(self.cop), b.column(self.tank_mwh_th)
        decay = 1 - b.column(self.tank_loss_fraction_per_h) * dt
        level = add_stock(part, "tank", tank, (cp.multiply(cop, e) - demand + unmet) * dt, decay)
        part.softs = [Soft("heat demand not met", unmet, "MWh_th", dt)]
        part.power = -e
        nxt = level[:, 1:]
        part.up = cp.minimum(e - part.params["e_lo"], cp.multiply(1 / (cop * dt), nxt))
        part.down = cp.minimum(part.params["e_hi"] - e, cp.multiply(1 / (cop * dt), tank - nxt))
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        part.set("demand", b.rows(self.profile(profiles)))
        part.set("e_lo", 0.0)
        part.set("e_hi", b.rows(np.repeat(self.electric_mw[:, None], b.T, axis=1)))
        free_start(part, "tank", self.tank_mwh_th)

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("e_lo", "e_hi"), part.b.rows(-previous), mask)

    def state(self, solution: FleetSolution) -> dict[str, float]:
        return start_state(solution, "tank", STATE_KEY)

    def restore(self, part: Part, state: Mapping[str, float]) -> None:
        restore_start(part, "tank", STATE_KEY, self.ids, state)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        e = -setpoints
        hours = hour_of_day(e.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        demand = self.profile(profiles)
        out = []
        for i, a in enumerate(self.ids):
            bad = (e[i] < -tol) | (e[i] > self.electric_mw[i] + tol)
            if np.any(bad):
                out.append(
                    f"{a}: " + problem("power outside [0, electric_mw]", bad, hours, np.abs(e[i]).max(), "MW")
                )
            inflow = (self.cop[i] * e[i] - demand[i]) * dt_h
            decay = 1 - self.tank_loss_fraction_per_h[i] * dt_h
            if not stock_feasible(decay, inflow, self.tank_mwh_th[i], tol):
                out.append(f"{a}: no tank level at midnight lets the schedule meet the heat demand all day")
        return out

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """Without a VPP the pump follows the heat demand (the tank only covers its peaks)."""
        return -np.minimum(self.profile(profiles) / self.cop[:, None], self.electric_mw[:, None])
