"""Heat pumps with a thermal tank: demand met every interval from the pump or the tank.

The tank's level at midnight is the solver's choice, but the day must end at least as full
as it began, so tomorrow is not robbed. Summer cooling from the cold store uses the same model.
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


def storage_start_range(decay: float, inflow: np.ndarray, capacity: float) -> tuple[float, float]:
    """Initial levels s0 for which ``s[t+1] = decay * s[t] + inflow[t]`` stays in [0, capacity]
    and ends at least at s0; empty (lo > hi) when there is none."""
    T = len(inflow)
    powers = decay ** np.arange(1, T + 1)
    offsets = np.array([np.sum(inflow[: t + 1] * decay ** np.arange(t, -1, -1)) for t in range(T)])
    lo = float(np.max(np.concatenate([[0.0], -offsets / powers])))
    hi = float(np.min(np.concatenate([[capacity], (capacity - offsets) / powers])))
    # periodic: decay^T s0 + offset_T >= s0
    if powers[-1] < 1:
        hi = min(hi, offsets[-1] / (1 - powers[-1]))
    elif offsets[-1] < -CHECK_TOLERANCE:
        hi = -np.inf
    return lo, hi


class HeatPumpFleet(Fleet):
    kind = "heat_pump"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        series: Sequence[str],
        electric_mw: np.ndarray,
        cop: np.ndarray,
        tank_mwh_th: np.ndarray,
        tank_loss_per_h: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.series = list(series)
        self.electric_mw = np.asarray(electric_mw, dtype=float)
        self.cop = np.asarray(cop, dtype=float)
        self.tank = np.asarray(tank_mwh_th, dtype=float)
        self.loss = np.asarray(tank_loss_per_h, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> HeatPumpFleet:
        return cls(
            *identity(assets),
            series=[f"{a.id}.heat_mw_th" for a in assets],
            electric_mw=column(assets, "electric_mw"),
            cop=column(assets, "cop"),
            tank_mwh_th=column(assets, "tank_mwh_th"),
            tank_loss_per_h=column(assets, "tank_loss_fraction_per_h"),
        )

    def build(self, b: Build) -> None:
        self.b = b
        R, dt = b.K * self.n, b.dt_h
        self.e, self.lo, self.hi = self.bounded(b, "heat_pump", "electric power limits")
        self.demand = cp.Parameter((R, b.T), name="heat_demand")
        self.level = cp.Variable((R, b.T + 1), name="tank_level")
        self.level0_lo = cp.Parameter(R, name="tank_start_lo")
        self.level0_hi = cp.Parameter(R, name="tank_start_hi")
        unmet = cp.Variable((R, b.T), nonneg=True, name="heat_unmet")
        cop, tank = b.column(self.cop), b.column(self.tank)
        nxt = self.level[:, 1:]
        self.constraints += [
            nxt
            == cp.multiply(1 - b.column(self.loss) * dt, self.level[:, :-1])
            + (cp.multiply(cop, self.e) - self.demand + unmet) * dt,
            self.level >= 0,
            self.level <= tank,
            self.level[:, b.T] >= self.level[:, 0],
            self.level[:, 0] >= self.level0_lo,
            self.level[:, 0] <= self.level0_hi,
        ]
        self.softs = [Soft("heat demand not met", unmet, "MWh_th", dt)]
        self.power = -self.e
        self.up = cp.minimum(self.e - self.lo, cp.multiply(1 / (cop * dt), nxt))
        self.down = cp.minimum(self.hi - self.e, cp.multiply(1 / (cop * dt), tank - nxt))
        self.set_profiles({s: np.zeros(b.T) for s in self.series})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        self.demand.value = b.rows(np.stack([np.asarray(profiles[s], dtype=float) for s in self.series]))
        self.lo.value = np.zeros((b.K * self.n, b.T))
        self.hi.value = b.rows(np.repeat(self.electric_mw[:, None], b.T, axis=1))
        self.level0_lo.value = np.zeros(b.K * self.n)
        self.level0_hi.value = b.rows(self.tank)

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.lo, self.hi], self.b.rows(-previous), mask)

    def state(self) -> dict[str, float]:
        start = np.asarray(self.level.value)[: self.n, 0]
        return {f"{a}.tank_start_mwh_th": float(start[i]) for i, a in enumerate(self.ids)}

    def restore_state(self, state: Mapping[str, float]) -> None:
        start = np.array([state.get(f"{a}.tank_start_mwh_th", np.nan) for a in self.ids])
        if np.all(np.isfinite(start)):
            self.level0_lo.value = self.b.rows(start)
            self.level0_hi.value = self.b.rows(start)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        e = -setpoints
        hours = hour_of_day(e.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            demand = np.asarray(profiles[self.series[i]], dtype=float)
            if np.any(e[i] < -tol) or np.any(e[i] > self.electric_mw[i] + tol):
                bad = (e[i] < -tol) | (e[i] > self.electric_mw[i] + tol)
                out.append(
                    f"{a}: " + problem("power outside [0, electric_mw]", bad, hours, np.abs(e[i]).max(), "MW")
                )
            inflow = (self.cop[i] * e[i] - demand) * dt_h
            lo, hi = storage_start_range(1 - self.loss[i] * dt_h, inflow, self.tank[i])
            if lo > hi + tol:
                out.append(f"{a}: no tank level at midnight lets the schedule meet the heat demand all day")
        return out
