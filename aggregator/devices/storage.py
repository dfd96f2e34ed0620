"""Batteries: recursive state of charge with efficiencies, limits, a terminal state, wear cost.

Headroom (``up``/``down``) is what the fleet could add or take for one whole interval within
both its power limits and its state-of-charge window; the park model reserves frequency
regulation out of the batteries' headroom, because only storage follows the signal.

Flexibility bands (offer model, one scenario): ``up_band``/``down_band`` are extra discharge
or charge a battery offers per interval on top of its schedule. The state of charge must stay
in its window even if *every* up band (or every down band) is called, so any mix of calls the
market makes is deliverable; the bands are priced at the battery's marginal value of stored
energy, the dual of its state-of-charge balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Bands,
    Build,
    Fleet,
    FleetSolution,
    Part,
    Profiles,
    Soft,
    param,
    problem,
)
from aggregator.devices.calls import Budgets
from aggregator.devices.cluster import DEFAULT_RESOLUTION, Resolution, Virtual


@dataclass(frozen=True, eq=False, kw_only=True)
class BatteryFleet(Fleet):
    kind = "battery"
    asset_types = ("battery",)
    regulates = True

    power_mw: np.ndarray = field(metadata=param())
    energy_mwh: np.ndarray = field(metadata=param())
    charge_efficiency: np.ndarray = field(metadata=param())
    discharge_efficiency: np.ndarray = field(metadata=param())
    soc_min_fraction: np.ndarray = field(metadata=param())
    soc_max_fraction: np.ndarray = field(metadata=param())
    soc_initial_fraction: np.ndarray = field(metadata=param())
    degradation_cny_per_mwh: np.ndarray = field(metadata=param())

    @property
    def soc_min(self) -> np.ndarray:
        return self.soc_min_fraction * self.energy_mwh

    @property
    def soc_max(self) -> np.ndarray:
        return self.soc_max_fraction * self.energy_mwh

    @property
    def soc_initial(self) -> np.ndarray:
        return self.soc_initial_fraction * self.energy_mwh

    def regulation_capacity_mw(self) -> float:
        return float(np.sum(self.power_mw))

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        R, dt = part.rows, b.dt_h
        p_max = b.column(self.power_mw)
        eta_c, eta_d = b.column(self.charge_efficiency), b.column(self.discharge_efficiency)
        smin, smax = b.column(self.soc_min), b.column(self.soc_max)
        part.parameter("soc0", (R,))
        soc_end = part.parameter("soc_end", (R,))
        c, d, soc = self.flows(part)
        short = cp.Variable(R, nonneg=True, name="battery_terminal_short")
        if b.holds:  # energy (MWh at the grid) to keep deliverable / absorbable at each interval's end
            part.parameter("hold_up", (R, b.T), nonneg=True)
            part.parameter("hold_down", (R, b.T), nonneg=True)
        net = d - c
        part.constraints += [
            *self.soc_limits(part, soc),
            soc[:, b.T] + short >= soc_end,
        ]
        # Ending the day at the initial charge is a target: called flexibility bands may leave
        # a battery lower, which the market paid for at the energy's value.
        part.softs = [Soft("end-of-day charge below its initial level", short, "MWh", target=True)]
        part.outputs["soc"] = soc
        part.power = net
        part.cost = cp.multiply(b.column(self.degradation_cny_per_mwh) * dt, c + d)
        part.energy_up = cp.multiply(eta_d, soc[:, 1:] - smin)
        part.energy_down = cp.multiply(1 / eta_c, smax - soc[:, 1:])
        part.up = cp.minimum(p_max - net, cp.multiply(eta_d / dt, soc[:, 1:] - smin))
        part.down = cp.minimum(p_max + net, cp.multiply(1 / (eta_c * dt), smax - soc[:, 1:]))
        if b.band_scenario is not None:
            self._build_bands(part, net, soc)
        return part

    def flows(self, part: Part) -> tuple[cp.Expression, cp.Expression, cp.Expression]:
        """Charge and discharge (R, T; MW at the grid) within their bounds, and the state of
        charge (R, T+1; MWh) their balance leads to from ``soc0``; the balance's dual is the
        value of stored energy the flexibility bands are priced at."""
        b = part.b
        eta_c, eta_d = b.column(self.charge_efficiency), b.column(self.discharge_efficiency)
        c = part.bounded("charge", "charge power limits")
        d = part.bounded("discharge", "discharge power limits")
        soc = cp.Variable((part.rows, b.T + 1), name="battery_soc")
        balance = soc[:, 1:] == soc[:, :-1] + (cp.multiply(eta_c, c) - cp.multiply(1 / eta_d, d)) * b.dt_h
        part.constraints += [soc[:, 0] == part.params["soc0"], balance]
        part.duals["balance"] = balance
        return c, d, soc

    def soc_limits(self, part: Part, soc: cp.Expression) -> list[cp.Constraint]:
        """The state-of-charge window (a pool of batteries states its members' own)."""
        return self.window(part, soc)

    def window(self, part: Part, soc: cp.Expression, rows: np.ndarray | None = None) -> list[cp.Constraint]:
        """The window on ``rows`` (all by default), narrowed at each interval's end by the holds
        if the model keeps them (MWh at the grid, so divided by the efficiency they pass through)."""
        b = part.b

        def on(x: Any) -> Any:
            return x if rows is None else x[rows]

        smin, smax = on(b.column(self.soc_min)), on(b.column(self.soc_max))
        if not b.holds:
            return [on(soc) >= smin, on(soc) <= smax]
        eta_c, eta_d = on(b.column(self.charge_efficiency)), on(b.column(self.discharge_efficiency))
        start, ends = on(soc)[:, :1], on(soc)[:, 1:]
        return [
            start >= smin,
            start <= smax,
            ends >= smin + cp.multiply(1 / eta_d, on(part.params["hold_up"])),
            ends <= smax - cp.multiply(eta_c, on(part.params["hold_down"])),
        ]

    def _build_bands(self, part: Part, net: cp.Expression, soc_all: cp.Variable) -> None:
        """Bands on one scenario's rows; its headroom is what is left with every band called."""
        b = part.b
        n, dt, s = self.n, b.dt_h, b.band_scenario
        rows = slice(s * n, (s + 1) * n)
        p_max = self.power_mw[:, None]
        eta_c, eta_d = self.charge_efficiency[:, None], self.discharge_efficiency[:, None]
        smin, smax = self.soc_min[:, None], self.soc_max[:, None]
        up_band = cp.Variable((n, b.T), nonneg=True, name="battery_up_band")
        down_band = cp.Variable((n, b.T), nonneg=True, name="battery_down_band")
        # Energy the calls could take out (put in) by the end of each interval; discharge
        # losses are counted both ways, which over-states the charge added: the cautious side.
        drawn = cp.Variable((n, b.T + 1), nonneg=True, name="battery_band_drawn")
        added = cp.Variable((n, b.T + 1), nonneg=True, name="battery_band_added")
        soc = soc_all[rows]
        part.constraints += [
            drawn[:, 0] == 0,
            added[:, 0] == 0,
            drawn[:, 1:] == drawn[:, :-1] + cp.multiply(dt / eta_d, up_band),
            added[:, 1:] == added[:, :-1] + cp.multiply(dt / eta_d, down_band),
            soc - drawn >= smin,
            soc + added <= smax,
            net[rows] + up_band <= p_max,
            net[rows] - down_band >= -p_max,
        ]
        band_up = cp.minimum(
            p_max - net[rows] - up_band, cp.multiply(eta_d / dt, soc[:, 1:] - drawn[:, 1:] - smin)
        )
        band_down = cp.minimum(
            p_max + net[rows] - down_band,
            cp.multiply(1 / (eta_c * dt), smax - soc[:, 1:] - added[:, 1:]),
        )
        energy_up = cp.multiply(eta_d, soc[:, 1:] - drawn[:, 1:] - smin)
        energy_down = cp.multiply(1 / eta_c, smax - soc[:, 1:] - added[:, 1:])

        def on_band_rows(band: cp.Expression, other: cp.Expression) -> cp.Expression:
            blocks = [band if k == s else other[k * n : (k + 1) * n] for k in range(b.K)]
            return cp.vstack(blocks) if b.K > 1 else blocks[0]

        part.up = on_band_rows(band_up, part.up)
        part.down = on_band_rows(band_down, part.down)
        part.energy_up = on_band_rows(energy_up, part.energy_up)
        part.energy_down = on_band_rows(energy_down, part.energy_down)
        part.band_value = cp.sum(up_band + down_band) * dt
        part.outputs["up_band"] = up_band
        part.outputs["down_band"] = down_band

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        p_max = b.rows(np.repeat(self.power_mw[:, None], b.T, axis=1))
        part.set("charge_lo", 0.0)
        part.set("discharge_lo", 0.0)
        part.set("charge_hi", p_max)
        part.set("discharge_hi", p_max)
        part.set("soc0", b.rows(self.soc_initial))
        part.set("soc_end", b.rows(self.soc_initial))
        if b.holds:
            part.set("hold_up", 0.0)
            part.set("hold_down", 0.0)

    def headroom_room(self, part: Part) -> tuple[np.ndarray, np.ndarray]:
        """How much more headroom (K*n, T, MW) up and down each battery could give than in the solved
        schedule: at most its power (idle, with the energy to sustain it for an interval)."""
        p_max = part.b.column(self.power_mw)
        return tuple(np.maximum(p_max - np.asarray(h.value, dtype=float), 0.0) for h in (part.up, part.down))

    def hold_headroom(self, part: Part, up_mw: np.ndarray, down_mw: np.ndarray) -> None:
        """Keep ``up_mw`` more upward (``down_mw`` downward) headroom (K*n, T) than the solved
        schedule (:mod:`aggregator.holds`): the discharge (charge) limit drops below what it
        discharged (charged) as far as its power needs, never below the lower bound, and the
        energy hold covers the new headroom for one interval."""
        net = np.asarray(part.power.value, dtype=float)
        p_max = part.b.column(self.power_mw)
        for direction, more, flow, power_room in (
            ("up", up_mw, "discharge", p_max - net),
            ("down", down_mw, "charge", p_max + net),
        ):
            target = np.asarray(getattr(part, direction).value, dtype=float) + more
            over = np.where(more > 0, np.maximum(target - power_room, 0.0), 0.0)
            now = np.asarray(part.outputs[flow].value, dtype=float)
            lo, hi = part.params[f"{flow}_lo"].value, part.params[f"{flow}_hi"]
            hi.value = np.where(over > 0, np.minimum(hi.value, np.maximum(now - over, lo)), hi.value)
            self.hold_energy(part, direction, target * part.b.dt_h, more > 0)

    @staticmethod
    def hold_energy(part: Part, direction: str, mwh: np.ndarray, where: np.ndarray) -> None:
        """Hold at least ``mwh`` (K*n, T) deliverable (``direction`` "up") or receivable ("down")
        where ``where`` holds; holds only grow between solves (:mod:`aggregator.holds`)."""
        hold = part.params[f"hold_{direction}"]
        hold.value = np.where(where, np.maximum(hold.value, mwh), hold.value)

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        b = part.b
        part.pin(("charge_lo", "charge_hi"), b.rows(np.maximum(-previous, 0.0)), mask)
        part.pin(("discharge_lo", "discharge_hi"), b.rows(np.maximum(previous, 0.0)), mask)

    # --- reading a solve -------------------------------------------------------------------------

    def flexibility_bands(self, solution: FleetSolution) -> Bands | None:
        """Bands with their prices, each (n, T).

        The value of one more MWh stored at the end of an interval is the sum over scenarios
        of the state-of-charge balance duals (each already weighted by its probability; their
        split between scenarios is arbitrary where the offer's monotonicity binds, their sum is
        not). Selling one more MWh costs 1/eta_d MWh of storage at that value plus wear;
        buying one stores eta_c MWh, less wear.
        """
        if "up_band" not in solution.values:
            return None
        value = solution.values["balance"].reshape(solution.K, self.n, -1).sum(axis=0)
        wear = self.degradation_cny_per_mwh[:, None]
        return Bands(
            up_mw=np.maximum(solution.values["up_band"], 0.0),
            up_price=value / self.discharge_efficiency[:, None] + wear,
            down_mw=np.maximum(solution.values["down_band"], 0.0),
            down_price=value * self.charge_efficiency[:, None] - wear,
        )

    def _sustained(
        self, solution: FleetSolution, scenario: int, hours: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Headroom each way sustainable for ``hours``, net of what the flexibility bands offer."""
        net = solution.setpoints(scenario)
        soc = solution.rows("soc", scenario)[:, 1:]
        up_band = np.maximum(solution.values.get("up_band", 0.0), 0.0)
        down_band = np.maximum(solution.values.get("down_band", 0.0), 0.0)
        up = np.minimum(
            self.power_mw[:, None] - net - up_band,
            (soc - self.soc_min[:, None]) * self.discharge_efficiency[:, None] / hours,
        )
        down = np.minimum(
            self.power_mw[:, None] + net - down_band,
            (self.soc_max[:, None] - soc) / (self.charge_efficiency[:, None] * hours),
        )
        return np.maximum(up, 0.0), np.maximum(down, 0.0)

    def peak_cut(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Discharging more now costs wear twice and the recharge losses at the reference price."""
        rte = self.charge_efficiency * self.discharge_efficiency
        cost = self.degradation_cny_per_mwh * (1 + 1 / rte) + reference_price * (1 / rte - 1)
        return self._sustained(solution, scenario, hours)[0], cost

    def valley_fill(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Charging more now costs wear twice and the losses when the energy is used later."""
        rte = self.charge_efficiency * self.discharge_efficiency
        cost = 2 * self.degradation_cny_per_mwh + reference_price * (1 - rte)
        return self._sustained(solution, scenario, hours)[1], cost

    def call_budgets(self, solution: FleetSolution, scenario: int, direction: str) -> Budgets:
        """The charge above the floor (peak cut) or room below the ceiling (valley fill) at the end
        of each interval, at the grid, net of what the flexibility bands could take."""
        soc = solution.rows("soc", scenario)[:, 1:]
        eta_d = self.discharge_efficiency[:, None]
        band = np.maximum(
            solution.values.get("up_band" if direction == "peak_cut" else "down_band", 0.0), 0.0
        )
        banded = np.cumsum(np.broadcast_to(band, soc.shape), axis=1) * solution.dt_h
        # A grid MWh moves the charge by at most 1 / eta_d (discharging more or less; charging moves
        # it by eta_c only): counted at that rate both ways, the cautious side.
        room = soc - self.soc_min[:, None] if direction == "peak_cut" else self.soc_max[:, None] - soc
        return Budgets.state(room * eta_d - banded)

    # --- plain numpy -----------------------------------------------------------------------------

    def soc_trajectory(self, setpoints: np.ndarray, dt_h: float) -> np.ndarray:
        """State of charge (n, T+1) implied by net set-points alone (no simultaneous charge and discharge)."""
        flow = (
            self.charge_efficiency[:, None] * np.maximum(-setpoints, 0)
            - np.maximum(setpoints, 0) / self.discharge_efficiency[:, None]
        )
        return self.soc_initial[:, None] + np.concatenate(
            [np.zeros((self.n, 1)), np.cumsum(flow * dt_h, axis=1)], axis=1
        )

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        out = []
        hours = np.arange(setpoints.shape[1]) * dt_h
        soc = self.soc_trajectory(setpoints, dt_h)
        tol = CHECK_TOLERANCE
        for i, asset in enumerate(self.ids):
            over = np.abs(setpoints[i]) - self.power_mw[i]
            if np.any(over > tol):
                out.append(
                    f"{asset}: " + problem("power limit exceeded", over > tol, hours, over.max(), "MW")
                )
            low = self.soc_min[i] - soc[i, 1:]
            high = soc[i, 1:] - self.soc_max[i]
            if np.any(low > tol):
                out.append(
                    f"{asset}: "
                    + problem("state of charge below minimum", low > tol, hours, low.max(), "MWh")
                )
            if np.any(high > tol):
                out.append(
                    f"{asset}: "
                    + problem("state of charge above maximum", high > tol, hours, high.max(), "MWh")
                )
        return out

    def numpy_cost(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        """Wear on |net| (no simultaneous charge and discharge)."""
        return (np.abs(setpoints) * self.degradation_cny_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h

    def virtualise(
        self, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
    ) -> Virtual:
        """Batteries at one node in the same bins of power-to-energy ratio, round-trip efficiency
        and initial charge (:func:`~aggregator.devices.pooled_storage.pool_batteries`)."""
        from aggregator.devices.pooled_storage import pool_batteries

        return pool_batteries(self, T, dt_h, resolution or DEFAULT_RESOLUTION)
