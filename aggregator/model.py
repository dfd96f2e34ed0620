"""The park model: device fleets summed per scenario and grid node, with one objective.

A :class:`ParkModel` is compiled once, with every day-dependent number a ``cp.Parameter``;
:meth:`ParkModel.solve` loads a :class:`~aggregator.solution.DayData`, solves and returns an
immutable :class:`~aggregator.solution.Solution`. Two modes share the fleets:

* ``offer``: K price scenarios (forecast quantile paths); each scenario schedules every
  device, and the park's net injection must rise with the price at every interval (so the
  K points form a monotone offer curve). Objective: expected market revenue plus regulation
  revenue, minus fuel, wear and curtailment costs, minus the internal carbon price times
  expected emissions.
* ``dispatch``: one scenario that must deliver a cleared award; deviation from it is
  allowed only at a penalty above any price the market can clear at.

Every constraint family that data can make impossible (heat demand, energy by departure,
terminal charge, grid node limits, ...) has a slack priced at :data:`RELAXATION_PENALTY`,
so the model always solves; any slack left in the answer is reported as a
:class:`~aggregator.errors.Violation` naming the device and the family (the relaxed fallback).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Literal

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from aggregator.devices import Build, Part
from aggregator.errors import InputError, SolverFailed
from aggregator.holds import Holds
from aggregator.portfolio import Portfolio, per_node, per_scenario
from aggregator.solution import DayData, Regulation, Solution, SolveInfo, frozen
from aggregator.uncertainty import ENERGY_WINDOWS_H, energy_cover, shortfalls, uncovered
from aggregator.violations import check_bounds, slack_left

log = logging.getLogger(__name__)

Mode = Literal["offer", "dispatch"]
SOLVERS = ("ECOS", "CLARABEL", "HIGHS")

# Solver knobs (not domain numbers): penalties rank what the optimiser gives up first.
# A broken hard constraint costs more than anything the market can pay.
RELAXATION_PENALTY = 1e5  # CNY per unit of slack (MWh, kg, MW per interval)
# Missing the award costs more than any clearing price, so set-points deliver it whenever possible.
DEVIATION_PENALTY_CNY_PER_MWH = 1e4
# Forecast-uncertainty and awarded-reserve headroom outranks arbitrage (spreads stay below 3,000).
RESERVE_PENALTY_CNY_PER_MWH = 3e3
# Missing a planning target (a battery's end-of-day charge) costs more than any price the market
# pays for energy, but less than missing the award: called bands may leave a battery lower.
TARGET_PENALTY_CNY_PER_UNIT = 5e3
# Flexibility bands use only headroom nothing priced wants: a token value per MWh of band (far
# below any price spread, so the schedule does not bend for it) makes them as large as that allows.
BAND_VALUE_CNY_PER_MWH = 0.2
# ECOS's primal residual can stall just above its default 1e-8 at the optimum (a pooled dispatch
# looped at 5e-8 from iteration 13 to 500); 1e-7 is far below a MW that matters (checks: 1e-3).
SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "ECOS": {"max_iters": 500, "feastol": 1e-7},
    "CLARABEL": {},
    "HIGHS": {},
}


class ParkModel:
    """A compiled park model: :meth:`solve` it with each day's data, read the returned :class:`Solution`."""

    def __init__(
        self, portfolio: Portfolio, K: int, T: int, dt_h: float, mode: Mode, reserves: bool = True
    ) -> None:
        """Offer scenarios are ordered by price (scenario k+1 dearer than k in every interval); the
        offer model adds storage flexibility bands on the median scenario. ``reserves=False``
        leaves out regulation, reserve headroom, bands and the park-wide energy cover (a pooled
        park's energy offer, which keeps that cover by holds on each battery instead,
        :mod:`aggregator.holds`); its solutions report what the schedule leaves uncovered."""
        self.portfolio = portfolio
        self.mode = mode
        self._reserves = reserves
        offer = mode == "offer"
        bands = K // 2 if offer and reserves else None
        self.b = b = Build(K, T, dt_h, band_scenario=bands, holds=offer and not reserves)
        self._lock = threading.RLock()  # one solve at a time: load, solve, read
        self._parts: list[Part] = [f.build(b) for f in portfolio.fleets]
        self._holds = Holds(self._parts, self._per_scenario)  # none without Build.holds
        self._G = sum(self._per_scenario(p) @ p.power for p in self._parts)  # (K, T) park net injection
        self._weights = np.full(K, 1.0 / K)

        self._carbon_price = cp.Parameter(nonneg=True, name="carbon_price")
        self._green = cp.Parameter((K, T), nonneg=True, name="green_contract_mw")
        self._need_up = cp.Parameter((K, T), nonneg=True, name="need_up")
        self._need_down = cp.Parameter((K, T), nonneg=True, name="need_down")
        self._imports = cp.Variable((K, T), nonneg=True, name="non_green_import")
        self._short_up = cp.Variable((K, T), nonneg=True, name="headroom_short_up")
        self._short_down = cp.Variable((K, T), nonneg=True, name="headroom_short_down")
        cons: list[cp.Constraint] = [c for p in self._parts for c in p.constraints]
        cons.append(self._imports >= -self._G - self._green)
        self._grid_imports = None
        if portfolio.import_tariff_cny_per_mwh > 0:
            self._grid_imports = cp.Variable((K, T), nonneg=True, name="grid_import")
            cons.append(self._grid_imports >= -self._G)
        regulating = [p for p in self._parts if p.fleet.regulates] if reserves else []
        self._reg = cp.Variable(T, nonneg=True, name="regulation_mw") if regulating else None
        cons += self._headroom_constraints(regulating, reserves)
        self._energy = energy_cover(self._parts, b, self._per_scenario) if reserves else None
        if self._energy is not None:
            cons += self._energy.constraints
        self._grid_slacks: list[tuple[str, str, cp.Variable, int]] = []
        cons += self._grid_constraints()
        objective = self._value() - self._penalties()
        if mode == "offer":
            objective = objective + self._offer_terms(cons)
        else:
            objective = objective - self._dispatch_terms(cons)
        self._problem = cp.Problem(cp.Maximize(objective), cons)

    @property
    def variable_count(self) -> int:
        return int(self._problem.size_metrics.num_scalar_variables)

    def _headroom_constraints(self, regulating: list[Part], reserves: bool) -> list[cp.Constraint]:
        """Regulation is held by the regulating fleets (both directions); every other reserve by anyone."""
        K = self.b.K
        reg = cp.vstack([self._reg] * K) if self._reg is not None else 0.0
        cons = []
        if regulating:
            cons.append(sum(self._per_scenario(p) @ p.up for p in regulating) >= reg)
            cons.append(sum(self._per_scenario(p) @ p.down for p in regulating) >= reg)
        if reserves:
            ups = [self._per_scenario(p) @ p.up for p in self._parts if p.up is not None]
            downs = [self._per_scenario(p) @ p.down for p in self._parts if p.down is not None]
            cons.append(sum(ups) + self._short_up >= self._need_up + reg)
            cons.append(sum(downs) + self._short_down >= self._need_down + reg)
        return cons

    def _value(self) -> cp.Expression:
        """Minus expected costs (fuel, wear, curtailment, import charges) and carbon cost."""
        dt, w_col, portfolio = self.b.dt_h, self._weights[:, None], self.portfolio
        emissions = portfolio.grid_ef_tco2_per_mwh * dt * cp.sum(cp.multiply(w_col, self._imports))
        costs = 0.0
        if self._grid_imports is not None:
            costs = portfolio.import_tariff_cny_per_mwh * dt * cp.sum(cp.multiply(w_col, self._grid_imports))
        for p in self._parts:
            rows_w = np.repeat(self._weights, p.fleet.n)[:, None]
            if p.cost is not None:
                costs = costs + cp.sum(cp.multiply(rows_w, p.cost))
            if p.emissions is not None:
                emissions = emissions + cp.sum(cp.multiply(rows_w, p.emissions))
        return -costs - self._carbon_price * emissions

    def _penalties(self) -> cp.Expression:
        short = cp.multiply(self._weights[:, None], self._short_up + self._short_down)
        energy_short = 0.0
        if self._energy is not None:  # MWh short of a window's energy, each window counted
            w = np.tile(self._weights, len(ENERGY_WINDOWS_H))[:, None]
            energy_short = cp.sum(cp.multiply(w, self._energy.short_up + self._energy.short_down))
        return (
            RESERVE_PENALTY_CNY_PER_MWH * (self.b.dt_h * cp.sum(short) + energy_short)
            + RELAXATION_PENALTY * self._soft_total(target=False)
            + TARGET_PENALTY_CNY_PER_UNIT * self._soft_total(target=True)
        )

    def _offer_terms(self, cons: list[cp.Constraint]) -> cp.Expression:
        """Expected market revenue, regulation revenue, band value; monotone curves."""
        K, T, dt = self.b.K, self.b.T, self.b.dt_h
        self._weighted_price = cp.Parameter((K, T), name="weighted_price")
        terms = cp.sum(cp.multiply(self._weighted_price, self._G)) * dt
        for p in self._parts:
            if p.band_value is not None:
                terms = terms + BAND_VALUE_CNY_PER_MWH * p.band_value
        if K > 1:  # the offer curve: more injection at every dearer point
            cons.append(self._G[1:] >= self._G[:-1])
        if self._reg is not None:
            self._reg_value = cp.Parameter(nonneg=True, name="regulation_value_cny_per_mw_interval")
            self._reg_cap = cp.Parameter(T, nonneg=True, name="regulation_cap_mw")
            self._reg_cap_constraint = self._reg <= self._reg_cap
            cons.append(self._reg_cap_constraint)
            terms = terms + self._reg_value * cp.sum(self._reg)
        return terms

    def _dispatch_terms(self, cons: list[cp.Constraint]) -> cp.Expression:
        """Penalties for missing the award and the awarded regulation."""
        T, dt = self.b.T, self.b.dt_h
        self._target = cp.Parameter(T, name="award_mw")
        dev_pos = cp.Variable(T, nonneg=True, name="deviation_up")
        dev_neg = cp.Variable(T, nonneg=True, name="deviation_down")
        cons.append(self._G[0] - self._target == dev_pos - dev_neg)
        terms = DEVIATION_PENALTY_CNY_PER_MWH * dt * cp.sum(dev_pos + dev_neg)
        if self._reg is not None:
            self._reg_min = cp.Parameter(T, nonneg=True, name="regulation_award_mw")
            self._reg_short = cp.Variable(T, nonneg=True, name="regulation_short")
            cons += [self._reg + self._reg_short >= self._reg_min, self._reg <= self._reg_min]
            terms = terms + RESERVE_PENALTY_CNY_PER_MWH * dt * cp.sum(self._reg_short)
        return terms

    # --- structure ----------------------------------------------------------------------------

    def _per_scenario(self, p: Part) -> sp.csr_matrix:
        """(K, K*n) matrix summing a fleet's rows per scenario."""
        return per_scenario(self.b.K, p.fleet.n)

    def _grid_constraints(self) -> list[cp.Constraint]:
        grid, b = self.portfolio.grid, self.b
        cons = []
        if grid.nodes:
            N = len(grid.nodes)
            node_power = sum(per_node(self.b.K, p.fleet, grid.nodes) @ p.power for p in self._parts)
            imp = cp.Variable((b.K * N, b.T), nonneg=True, name="node_import_slack")
            exp = cp.Variable((b.K * N, b.T), nonneg=True, name="node_export_slack")
            cons += [
                node_power + imp >= -b.column(grid.import_mw),
                node_power - exp <= b.column(grid.export_mw),
            ]
            self._grid_slacks += [("node", "import limit", imp, N), ("node", "export limit", exp, N)]
        if grid.connection is not None:
            j = grid.nodes.index(grid.connection)
            imp = cp.Variable((b.K, b.T), nonneg=True, name="connection_import_slack")
            exp = cp.Variable((b.K, b.T), nonneg=True, name="connection_export_slack")
            cons += [self._G + imp >= -grid.import_mw[j], self._G - exp <= grid.export_mw[j]]
            self._grid_slacks += [
                ("connection", "park import limit", imp, 1),
                ("connection", "park export limit", exp, 1),
            ]
        return cons

    def _soft_total(self, target: bool) -> cp.Expression:
        total = 0.0
        for p in self._parts:
            w = np.repeat(self._weights, p.fleet.n)
            for soft in p.softs:
                if soft.target != target:
                    continue
                scaled = soft.slack * soft.scale
                if len(soft.slack.shape) == 2:
                    total = total + cp.sum(cp.multiply(w[:, None], scaled))
                else:
                    total = total + cp.sum(cp.multiply(w, scaled))
        for _, _, slack, per in self._grid_slacks if not target else []:
            w = np.repeat(self._weights, per)
            total = total + self.b.dt_h * cp.sum(cp.multiply(w[:, None], slack))
        return total

    # --- data ---------------------------------------------------------------------------------

    def _load(self, day: DayData) -> None:
        K, T = self.b.K, self.b.T
        for p in self._parts:
            p.fleet.load(p, day.profiles)
        self._green.value = np.tile(day.green_mw, (K, 1))
        need_up = np.tile(np.maximum(day.need_up, 0.0), (K, 1))
        need_down = np.tile(np.maximum(day.need_down, 0.0), (K, 1))
        self._carbon_price.value = float(day.carbon_price)
        if self.mode == "offer":
            if day.prices is None or day.prices.shape != (K, T):
                raise InputError(f"the offer model needs prices for {K} scenarios x {T} intervals")
            self._weighted_price.value = day.prices * self._weights[:, None]
            if self._reg is not None:
                self._reg_value.value = float(day.regulation_value)
                cap = day.regulation_cap_mw
                self._reg_cap.value = np.zeros(T) if cap is None else np.asarray(cap, dtype=float)
        else:
            if day.award_mw is None:
                raise InputError("the dispatch model needs the award")
            self._target.value = np.asarray(day.award_mw, dtype=float)
            if self._reg is not None:
                reg = day.regulation_award_mw
                self._reg_min.value = np.zeros(T) if reg is None else np.asarray(reg, dtype=float)
        intraday = day.intraday
        if intraday is not None:
            # The past needs no reserve or regulation headroom.
            need_up[:, intraday.frozen] = 0.0
            need_down[:, intraday.frozen] = 0.0
            if self.mode == "dispatch" and self._reg is not None:
                reg_min = self._reg_min.value.copy()
                reg_min[intraday.frozen] = 0.0
                self._reg_min.value = reg_min
            for p in self._parts:
                previous = np.stack([np.asarray(intraday.previous[a], dtype=float) for a in p.fleet.ids])
                p.fleet.restore(p, intraday.state)
                p.fleet.freeze(p, previous, intraday.frozen)
                p.fleet.freeze_notice(p, previous, intraday.now_index)
        self._need_up.value = need_up
        self._need_down.value = need_down
        if self._energy is not None:
            for param, need in (
                (self._energy.need_up, day.energy_need_up),
                (self._energy.need_down, day.energy_need_down),
            ):
                rows = np.zeros(param.shape) if need is None else np.repeat(np.maximum(need, 0.0), K, axis=0)
                if intraday is not None:
                    rows[:, intraday.frozen] = 0.0  # windows ending in the past need nothing
                param.value = rows

    # --- solving ------------------------------------------------------------------------------

    def solve(
        self, day: DayData, solver: str = "ECOS", warm_start: bool = False, once: bool = False
    ) -> Solution:
        """Load ``day``, solve and return the answer. ``once=True`` skips cvxpy's parametrised
        compilation (faster for a model solved a single time, and the only way for millions of
        parameters)."""
        solver = solver.upper()
        if solver not in SOLVERS:
            raise InputError(f"solver={solver!r}: choose one of {', '.join(SOLVERS)}")
        starts_h = np.arange(self.b.T) * self.b.dt_h
        with self._lock:
            self._load(day)
            check_bounds(self._parts, starts_h)
            started = time.perf_counter()
            solve_once = partial(self._solve_once, solver, warm_start, once)
            solve_once()
            solves = 1
            if any([p.fleet.commit(p) for p in self._parts]):  # on/off decisions fixed: solve again
                solve_once()
                solves += 1
            solves += self._holds.cover(partial(self._shortfalls, day), solve_once)
            seconds = time.perf_counter() - started
            violations = slack_left(
                self._parts, self._grid_slacks, self.portfolio.grid, self.b.K, starts_h, targets=False
            )
            status, objective = self._problem.status, float(self._problem.value)
            info = SolveInfo(solver, status, seconds, solves, objective, violations)
            return self._read(info, day, starts_h)

    def _solve_once(self, solver: str, warm_start: bool, once: bool) -> None:
        try:
            self._problem.solve(
                solver=solver, warm_start=warm_start, ignore_dpp=once, **SOLVER_OPTIONS[solver]
            )
        except cp.error.SolverError as exc:
            raise SolverFailed(
                f"{solver} failed on the {self.mode} model: {exc}; try another --solver"
            ) from exc
        if self._problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise SolverFailed(
                f"{solver} returned status {self._problem.status!r} on the {self.mode} model (every hard "
                "constraint has a penalised slack, so this is numerical trouble); try another --solver"
            )
        if self._problem.status == cp.OPTIMAL_INACCURATE:
            log.warning("%s: %s model solved inaccurately", solver, self.mode)

    def _shortfalls(self, day: DayData) -> dict[str, np.ndarray | None]:
        """Headroom and window energy short: the cover rows' slacks, or what a schedule solved
        without them (``reserves=False``) leaves uncovered."""
        if not self._reserves:
            needs = (self._need_up.value, self._need_down.value, day.energy_need_up, day.energy_need_down)
            return uncovered(self._parts, self._per_scenario, *needs, self.b.dt_h)
        cover = (None, None) if self._energy is None else (self._energy.short_up, self._energy.short_down)
        return shortfalls(*(v if v is None else v.value for v in (self._short_up, self._short_down, *cover)))

    def _read(self, info: SolveInfo, day: DayData, starts_h: np.ndarray) -> Solution:
        fleets = tuple(p.solution() for p in self._parts)
        G = np.asarray(self._G.value, dtype=float)
        dt, portfolio = self.b.dt_h, self.portfolio
        # Emissions are read from the schedule, not from the import variable, which is only
        # tight when the carbon price is positive.
        imports = np.maximum(-G - self._green.value, 0.0)
        emissions = portfolio.grid_ef_tco2_per_mwh * dt * imports.sum(axis=1)
        costs = portfolio.import_tariff_cny_per_mwh * dt * np.maximum(-G, 0.0).sum(axis=1)
        for fs in fleets:
            emissions = emissions + fs.emissions.sum(axis=(1, 2))
            costs = costs + fs.cost.sum(axis=(1, 2))
        regulation = None
        if self._reg is not None:
            T = self.b.T
            offer = self.mode == "offer"
            regulation = Regulation(
                capacity_mw=frozen(np.maximum(np.asarray(self._reg.value, dtype=float), 0.0)),
                value_cny_per_mw_interval=float(day.regulation_value) if offer else 0.0,
                cap_shadow=frozen(
                    np.maximum(np.asarray(self._reg_cap_constraint.dual_value, dtype=float), 0.0)
                    if offer
                    else np.zeros(T)
                ),
                short_mw=frozen(np.zeros(T) if offer else np.asarray(self._reg_short.value, dtype=float)),
            )
        state = {k: v for fs in fleets for k, v in fs.fleet.state(fs).items()}
        return Solution(
            info=info,
            mode=self.mode,
            dt_h=dt,
            weights=frozen(self._weights),
            carbon_price=float(day.carbon_price),
            fleets=fleets,
            injection=frozen(G),
            costs_cny=frozen(costs),
            emissions_tco2=frozen(emissions),
            **self._shortfalls(day),
            regulation=regulation,
            violations=tuple(info.violations),
            targets_missed=tuple(
                slack_left(
                    self._parts, self._grid_slacks, self.portfolio.grid, self.b.K, starts_h, targets=True
                )
            ),
            state=dict(state),
        )
