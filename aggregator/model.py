"""The park model: device fleets summed per scenario and grid node, with one objective.

Two modes share the fleets:

* ``offer``: K price scenarios (forecast quantile paths); each scenario schedules every
  device, and the park's net injection must rise with the price at every interval (so the
  K points form a monotone offer curve). Objective: expected market revenue plus regulation revenue, minus fuel,
  wear and curtailment costs, minus the internal carbon price times expected emissions.
* ``dispatch``: one scenario that must deliver a cleared award; deviation from it is
  allowed only at a penalty above any price the market can clear at.

Every constraint family that data can make impossible (heat demand, energy by departure,
terminal charge, grid node limits, ...) has a slack priced at :data:`RELAXATION_PENALTY`,
so the model always solves; any slack left in the answer is reported as a
:class:`~aggregator.errors.Violation` naming the device and the family (the relaxed fallback).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from aggregator.devices import Build, Fleet, Profiles, fleets_for
from aggregator.errors import InputError, SolverFailed, Violation
from infra.scenario import Scenario

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
# Slack below this is solver noise, not a violation.
VIOLATION_TOLERANCE = 1e-3
SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "ECOS": {"max_iters": 500},
    "CLARABEL": {},
    "HIGHS": {},
}


@dataclass(frozen=True)
class Grid:
    """Grid nodes (import/export limits of the assets connected there) and the park's connection."""

    nodes: tuple[str, ...]
    import_mw: np.ndarray
    export_mw: np.ndarray
    connection: str | None = None  # node whose limits also bound the park total

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Grid:
        park = scenario.park
        return cls(
            nodes=tuple(g.id for g in park.grid),
            import_mw=np.array([g.import_limit_mw for g in park.grid], dtype=float),
            export_mw=np.array([g.export_limit_mw for g in park.grid], dtype=float),
            connection=park.grid_connection,
        )


@dataclass
class Portfolio:
    """Fleets, grid and carbon factor: everything the model needs that is not the day's data."""

    name: str
    fleets: list[Fleet]
    grid: Grid
    grid_ef_tco2_per_mwh: float
    import_tariff_cny_per_mwh: float = 0.0  # transmission and distribution charge on grid imports

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Portfolio:
        return cls(
            name=scenario.version,
            fleets=fleets_for(scenario),
            grid=Grid.from_scenario(scenario),
            grid_ef_tco2_per_mwh=scenario.park.carbon.grid_ef_tco2_per_mwh,
            import_tariff_cny_per_mwh=scenario.market.grid_import_tariff_cny_per_mwh,
        )

    def fleet(self, kind: str) -> Fleet | None:
        return next((f for f in self.fleets if f.kind == kind), None)

    def assets(self) -> list[tuple[Fleet, int]]:
        return [(f, i) for f in self.fleets for i in range(f.n)]


@dataclass
class SolveInfo:
    solver: str
    status: str
    seconds: float
    solves: int
    objective: float
    violations: list[Violation] = field(default_factory=list)


class ParkModel:
    """A compiled park model; set parameters, :meth:`solve`, read results; repeat."""

    def __init__(
        self,
        portfolio: Portfolio,
        K: int,
        T: int,
        dt_h: float,
        mode: Mode,
        reserves: bool = True,
    ) -> None:
        """Offer scenarios are ordered by price (scenario k+1 dearer than k in every interval); the
        offer model adds battery flexibility bands on the median scenario. ``reserves=False``
        leaves out regulation, reserve headroom and bands (the scale benchmark's energy offer)."""
        self.portfolio = portfolio
        self.mode = mode
        self.b = b = Build(K, T, dt_h)
        self.lock = threading.RLock()  # held while parameters are set, solved and read
        fleets = portfolio.fleets
        battery = portfolio.fleet("battery")
        self.band_fleet = battery if (battery is not None and mode == "offer" and reserves) else None
        if self.band_fleet is not None:
            self.band_fleet.band_scenario = K // 2
        for f in fleets:
            f.build(b)
        self.fleets = fleets
        self.G = sum(self._per_scenario(f) @ f.power for f in fleets)  # (K, T) park net injection
        self.weights = np.full(K, 1.0 / K)

        self.carbon_price = cp.Parameter(nonneg=True, name="carbon_price")
        self.green = cp.Parameter((K, T), nonneg=True, name="green_contract_mw")
        self.need_up = cp.Parameter((K, T), nonneg=True, name="need_up")
        self.need_down = cp.Parameter((K, T), nonneg=True, name="need_down")
        self.imports = cp.Variable((K, T), nonneg=True, name="non_green_import")
        self.short_up = cp.Variable((K, T), nonneg=True, name="headroom_short_up")
        self.short_down = cp.Variable((K, T), nonneg=True, name="headroom_short_down")
        self.grid_imports: cp.Variable | None = None
        cons: list[cp.Constraint] = [c for f in fleets for c in f.constraints]
        cons.append(self.imports >= -self.G - self.green)
        if portfolio.import_tariff_cny_per_mwh > 0:
            self.grid_imports = cp.Variable((K, T), nonneg=True, name="grid_import")
            cons.append(self.grid_imports >= -self.G)
        cons += self._headroom_constraints(battery if reserves else None, reserves)
        cons += self._grid_constraints()
        objective = self._value() - self._penalties()
        if mode == "offer":
            objective = objective + self._offer_terms(cons)
        else:
            objective = objective - self._dispatch_terms(cons)
        self.problem = cp.Problem(cp.Maximize(objective), cons)
        self._defaults()

    def _headroom_constraints(self, battery: Fleet | None, reserves: bool) -> list[cp.Constraint]:
        """Regulation is held by the batteries (both directions); every other reserve by anyone."""
        K, T = self.b.K, self.b.T
        self.reg_total = cp.Variable(T, nonneg=True, name="regulation_mw") if battery is not None else None
        reg = cp.vstack([self.reg_total] * K) if self.reg_total is not None else 0.0
        cons = []
        if battery is not None:
            cons.append(self._per_scenario(battery) @ battery.up >= reg)
            cons.append(self._per_scenario(battery) @ battery.down >= reg)
        if reserves:
            ups = [self._per_scenario(f) @ f.up for f in self.fleets if f.up is not None]
            downs = [self._per_scenario(f) @ f.down for f in self.fleets if f.down is not None]
            cons.append(sum(ups) + self.short_up >= self.need_up + reg)
            cons.append(sum(downs) + self.short_down >= self.need_down + reg)
        return cons

    def _value(self) -> cp.Expression:
        """Minus expected costs (fuel, wear, curtailment, import charges) and carbon cost."""
        dt, w_col, portfolio = self.b.dt_h, self.weights[:, None], self.portfolio
        emissions = portfolio.grid_ef_tco2_per_mwh * dt * cp.sum(cp.multiply(w_col, self.imports))
        costs = 0.0
        if self.grid_imports is not None:
            costs = portfolio.import_tariff_cny_per_mwh * dt * cp.sum(cp.multiply(w_col, self.grid_imports))
        for f in self.fleets:
            rows_w = np.repeat(self.weights, f.n)[:, None]
            if f.cost is not None:
                costs = costs + cp.sum(cp.multiply(rows_w, f.cost))
            if f.emissions is not None:
                emissions = emissions + cp.sum(cp.multiply(rows_w, f.emissions))
        return -costs - self.carbon_price * emissions

    def _penalties(self) -> cp.Expression:
        short = cp.multiply(self.weights[:, None], self.short_up + self.short_down)
        return (
            RESERVE_PENALTY_CNY_PER_MWH * self.b.dt_h * cp.sum(short)
            + RELAXATION_PENALTY * self._soft_total(self.weights, target=False)
            + TARGET_PENALTY_CNY_PER_UNIT * self._soft_total(self.weights, target=True)
        )

    def _offer_terms(self, cons: list[cp.Constraint]) -> cp.Expression:
        """Expected market revenue, regulation revenue, band value; monotone curves."""
        K, T, dt = self.b.K, self.b.T, self.b.dt_h
        self.weighted_price = cp.Parameter((K, T), name="weighted_price")
        terms = cp.sum(cp.multiply(self.weighted_price, self.G)) * dt
        if self.band_fleet is not None:
            bands = self.band_fleet.up_band + self.band_fleet.down_band
            terms = terms + BAND_VALUE_CNY_PER_MWH * dt * cp.sum(bands)
        if K > 1:  # the offer curve: more injection at every dearer point
            cons.append(self.G[1:] >= self.G[:-1])
        if self.reg_total is not None:
            self.reg_value = cp.Parameter(nonneg=True, name="regulation_value_cny_per_mw_interval")
            self.reg_cap = cp.Parameter(T, nonneg=True, name="regulation_cap_mw")
            self.reg_cap_constraint = self.reg_total <= self.reg_cap
            cons.append(self.reg_cap_constraint)
            terms = terms + self.reg_value * cp.sum(self.reg_total)
        return terms

    def _dispatch_terms(self, cons: list[cp.Constraint]) -> cp.Expression:
        """Penalties for missing the award and the awarded regulation."""
        T, dt = self.b.T, self.b.dt_h
        self.target = cp.Parameter(T, name="award_mw")
        self.dev_pos = cp.Variable(T, nonneg=True, name="deviation_up")
        self.dev_neg = cp.Variable(T, nonneg=True, name="deviation_down")
        cons.append(self.G[0] - self.target == self.dev_pos - self.dev_neg)
        terms = DEVIATION_PENALTY_CNY_PER_MWH * dt * cp.sum(self.dev_pos + self.dev_neg)
        if self.reg_total is not None:
            self.reg_min = cp.Parameter(T, nonneg=True, name="regulation_award_mw")
            self.reg_short = cp.Variable(T, nonneg=True, name="regulation_short")
            cons += [self.reg_total + self.reg_short >= self.reg_min, self.reg_total <= self.reg_min]
            terms = terms + RESERVE_PENALTY_CNY_PER_MWH * dt * cp.sum(self.reg_short)
        return terms

    # --- structure ----------------------------------------------------------------------------

    def _per_scenario(self, f: Fleet) -> sp.csr_matrix:
        """(K, K*n) matrix summing a fleet's rows per scenario."""
        K, n = self.b.K, f.n
        rows = np.repeat(np.arange(K), n)
        return sp.csr_matrix((np.ones(K * n), (rows, np.arange(K * n))), shape=(K, K * n))

    def _per_node(self, f: Fleet, nodes: Sequence[str]) -> sp.csr_matrix:
        """(K*N, K*n) matrix summing a fleet's rows per scenario and grid node."""
        K, n, N = self.b.K, f.n, len(nodes)
        index = {node: j for j, node in enumerate(nodes)}
        rows, cols = [], []
        for s in range(K):
            for i, node in enumerate(f.nodes):
                if node in index:
                    rows.append(s * N + index[node])
                    cols.append(s * n + i)
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(K * N, K * n))

    def _grid_constraints(self) -> list[cp.Constraint]:
        grid, b = self.portfolio.grid, self.b
        cons = []
        if grid.nodes:
            node_power = sum(self._per_node(f, grid.nodes) @ f.power for f in self.fleets)
            self.node_import_slack = cp.Variable(
                (b.K * len(grid.nodes), b.T), nonneg=True, name="node_import_slack"
            )
            self.node_export_slack = cp.Variable(
                (b.K * len(grid.nodes), b.T), nonneg=True, name="node_export_slack"
            )
            imp = b.column(grid.import_mw)
            exp = b.column(grid.export_mw)
            cons += [node_power + self.node_import_slack >= -imp, node_power - self.node_export_slack <= exp]
        if grid.connection is not None:
            j = grid.nodes.index(grid.connection)
            self.conn_import_slack = cp.Variable((b.K, b.T), nonneg=True, name="connection_import_slack")
            self.conn_export_slack = cp.Variable((b.K, b.T), nonneg=True, name="connection_export_slack")
            cons += [
                self.G + self.conn_import_slack >= -grid.import_mw[j],
                self.G - self.conn_export_slack <= grid.export_mw[j],
            ]
        return cons

    def _grid_slacks(self) -> list[tuple[str, str, cp.Variable, int]]:
        """(node, family, slack, nodes per scenario) for every grid slack in the model."""
        grid = self.portfolio.grid
        out = []
        if grid.nodes:
            out.append(("node", "import limit", self.node_import_slack, len(grid.nodes)))
            out.append(("node", "export limit", self.node_export_slack, len(grid.nodes)))
        if grid.connection is not None:
            out.append(("connection", "park import limit", self.conn_import_slack, 1))
            out.append(("connection", "park export limit", self.conn_export_slack, 1))
        return out

    def _soft_total(self, weights: np.ndarray, target: bool) -> cp.Expression:
        total = 0.0
        for f in self.fleets:
            w = np.repeat(weights, f.n)
            for soft in f.softs:
                if soft.target != target:
                    continue
                scaled = soft.slack * soft.scale
                if len(soft.slack.shape) == 2:
                    total = total + cp.sum(cp.multiply(w[:, None], scaled))
                else:
                    total = total + cp.sum(cp.multiply(w, scaled))
        for _, _, slack, per in self._grid_slacks() if not target else []:
            w = np.repeat(weights, per)
            total = total + self.b.dt_h * cp.sum(cp.multiply(w[:, None], slack))
        return total

    def _defaults(self) -> None:
        K, T = self.b.K, self.b.T
        self.carbon_price.value = 0.0
        self.green.value = np.zeros((K, T))
        self.need_up.value = np.zeros((K, T))
        self.need_down.value = np.zeros((K, T))
        if self.mode == "offer":
            self.weighted_price.value = np.zeros((K, T))
            if self.reg_total is not None:
                self.reg_value.value = 0.0
                self.reg_cap.value = np.zeros(T)
        else:
            self.target.value = np.zeros(T)
            if self.reg_total is not None:
                self.reg_min.value = np.zeros(T)

    # --- data ---------------------------------------------------------------------------------

    def set_day(
        self, profiles: Profiles, green_mw: np.ndarray, need_up: np.ndarray, need_down: np.ndarray
    ) -> None:
        for f in self.fleets:
            f.set_profiles(profiles)
        K = self.b.K
        self.green.value = np.tile(green_mw, (K, 1))
        self.need_up.value = np.tile(np.maximum(need_up, 0.0), (K, 1))
        self.need_down.value = np.tile(np.maximum(need_down, 0.0), (K, 1))

    def release_headroom(self, mask: np.ndarray) -> None:
        """No reserve or regulation headroom is required in the masked (already delivered) intervals."""
        for param in (self.need_up, self.need_down):
            v = param.value.copy()
            v[:, mask] = 0.0
            param.value = v
        if self.mode == "dispatch" and self.reg_total is not None:
            v = self.reg_min.value.copy()
            v[mask] = 0.0
            self.reg_min.value = v

    def set_carbon_price(self, cny_per_tco2: float) -> None:
        self.carbon_price.value = float(cny_per_tco2)
        gas = self.portfolio.fleet("gas_generator")
        if gas is not None:
            gas.carbon_price = float(cny_per_tco2)

    # --- solving ------------------------------------------------------------------------------

    def check_bounds(self, starts_h: np.ndarray) -> None:
        """Lower bounds above upper bounds make the model infeasible before any solve: name them."""
        violations = []
        for f in self.fleets:
            for family, lo, hi in f.bounds:
                gap = lo.value - hi.value
                bad = gap > VIOLATION_TOLERANCE
                if np.any(bad):
                    row, t = np.argwhere(bad)[0]
                    asset = f.ids[row % f.n]
                    violations.append(Violation(asset, family, float(gap.max()), "MW", _hhmm(starts_h[t])))
        if violations:
            from aggregator.errors import InfeasibleError

            raise InfeasibleError("the park model", violations)

    def solve(self, solver: str = "ECOS", warm_start: bool = False, once: bool = False) -> SolveInfo:
        """Solve with the current parameters. ``once=True`` skips cvxpy's parametrised compilation
        (faster for a model solved a single time, and the only way for millions of parameters)."""
        solver = solver.upper()
        if solver not in SOLVERS:
            raise InputError(f"solver={solver!r}: choose one of {', '.join(SOLVERS)}")
        starts_h = np.arange(self.b.T) * self.b.dt_h
        self.check_bounds(starts_h)
        started = time.perf_counter()
        solves = 0
        with self.lock:
            while True:
                self._solve_once(solver, warm_start, once)
                solves += 1
                changed = [f.commitment_changed() for f in self.fleets]
                if not any(changed) or solves >= 2:
                    break
        seconds = time.perf_counter() - started
        return SolveInfo(
            solver=solver,
            status=self.problem.status,
            seconds=seconds,
            solves=solves,
            objective=float(self.problem.value),
            violations=self.violations(starts_h),
        )

    def _solve_once(self, solver: str, warm_start: bool, once: bool) -> None:
        try:
            self.problem.solve(
                solver=solver, warm_start=warm_start, ignore_dpp=once, **SOLVER_OPTIONS[solver]
            )
        except cp.error.SolverError as exc:
            raise SolverFailed(
                f"{solver} failed on the {self.mode} model: {exc}; try another --solver"
            ) from exc
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise SolverFailed(
                f"{solver} returned status {self.problem.status!r} on the {self.mode} model (every hard "
                "constraint has a penalised slack, so this is numerical trouble); try another --solver"
            )
        if self.problem.status == cp.OPTIMAL_INACCURATE:
            log.warning("%s: %s model solved inaccurately", solver, self.mode)

    def violations(self, starts_h: np.ndarray, targets: bool = False) -> list[Violation]:
        """Slack left in the answer, per device (or grid node) and constraint family; with
        ``targets`` the missed planning targets instead."""
        out = []
        K = self.b.K
        for f in self.fleets:
            for soft in f.softs:
                if soft.target != targets:
                    continue
                value = np.maximum(np.asarray(soft.slack.value), 0.0) * soft.scale
                per_row = value.sum(axis=1) if value.ndim == 2 else value
                for i in range(f.n):
                    rows = np.arange(K) * f.n + i
                    amount = float(per_row[rows].max())
                    if amount > VIOLATION_TOLERANCE:
                        first = 0
                        if value.ndim == 2:
                            first = int(np.flatnonzero(value[rows].max(axis=0) > VIOLATION_TOLERANCE / 10)[0])
                        out.append(
                            Violation(f.ids[i], soft.family, amount, soft.unit, _hhmm(starts_h[first]))
                        )
        grid = self.portfolio.grid
        for kind, family, slack, per in self._grid_slacks() if not targets else []:
            value = np.maximum(np.asarray(slack.value), 0.0)
            for j in range(per):
                rows = np.arange(K) * per + j
                peak = value[rows].max(axis=0)
                if peak.max() > VIOLATION_TOLERANCE:
                    name = grid.nodes[j] if kind == "node" else f"grid connection {grid.connection}"
                    first = int(np.flatnonzero(peak > VIOLATION_TOLERANCE)[0])
                    out.append(Violation(name, family, float(peak.max()), "MW", _hhmm(starts_h[first])))
        return out

    def emissions_tco2(self) -> np.ndarray:
        """Emissions per scenario (K,) of the solved schedule: non-green imports and fuel.

        Read from the schedule, not from the import variable, which is only tight when the
        carbon price is positive.
        """
        G = np.asarray(self.G.value)
        imports = np.maximum(-G - self.green.value, 0.0)
        out = self.portfolio.grid_ef_tco2_per_mwh * self.b.dt_h * imports.sum(axis=1)
        for f in self.fleets:
            if f.emissions is not None:
                out = out + np.asarray(f.emissions.value).reshape(self.b.K, f.n, -1).sum(axis=(1, 2))
        return out

    def costs_cny(self) -> np.ndarray:
        """Fuel, wear, curtailment and grid import charges per scenario (K,)."""
        G = np.asarray(self.G.value)
        out = self.portfolio.import_tariff_cny_per_mwh * self.b.dt_h * np.maximum(-G, 0.0).sum(axis=1)
        for f in self.fleets:
            if f.cost is not None:
                out = out + np.asarray(f.cost.value).reshape(self.b.K, f.n, -1).sum(axis=(1, 2))
        return out

    def state(self) -> dict[str, float]:
        return {k: v for f in self.fleets for k, v in f.state().items()}


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- cache: one compiled model per structure ---------------------------------------------------

_MODELS: dict[Hashable, ParkModel] = {}
_MODELS_LOCK = threading.Lock()
MAX_CACHED_MODELS = 8


def fingerprint(scenario: Scenario) -> str:
    """Identifies a scenario's content: models are compiled with its numbers as constants."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()[:20]


def cached_model(key: Hashable, make: Callable[[], ParkModel]) -> ParkModel:
    """The model for ``key``, built on first use; re-solving it skips cvxpy's compilation."""
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            if len(_MODELS) >= MAX_CACHED_MODELS:
                _MODELS.pop(next(iter(_MODELS)))
            model = _MODELS[key] = make()
        return model
