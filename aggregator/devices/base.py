"""The ``Fleet`` interface: every device type owns its maths, in the spirit of cvxpower's devices.

A *fleet* is every asset of one type, vectorised. It is an immutable description (parameters
declared once, as dataclass fields that name the scenario field they come from) with
everything the rest of the aggregator needs from a device type:

* the optimisation: :meth:`Fleet.build` returns a :class:`Part` (its variables, parameters,
  constraints, costs, emissions and headroom in one compiled model; rows are
  ``scenario * n + asset``, columns intervals) and the hooks that fill a part with the day's
  data (:meth:`~Fleet.load`, :meth:`~Fleet.freeze`, :meth:`~Fleet.restore`, :meth:`~Fleet.commit`);
* reading a solve: a :class:`FleetSolution` (immutable values of one solve) and what the
  offer and the dispatch derive from it (:meth:`~Fleet.flexibility_bands`,
  :meth:`~Fleet.peak_cut`, :meth:`~Fleet.valley_fill`, :meth:`~Fleet.dispatch_caps`,
  :meth:`~Fleet.state`);
* plain numpy: :meth:`~Fleet.check` (independent feasibility check), :meth:`~Fleet.numpy_cost`,
  :meth:`~Fleet.numpy_emissions`, :meth:`~Fleet.unmanaged_setpoints`;
* scale: :meth:`~Fleet.virtualise` (equivalent virtual devices and how to split them back).

The park model only sums what the parts contribute, per scenario and grid node.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self

import cvxpy as cp
import numpy as np

from aggregator.devices.calls import Budgets
from aggregator.devices.cluster import Resolution, Virtual, singletons

Profiles = Mapping[str, np.ndarray]
# Set-points this far outside a limit (MW, MWh) still count as feasible (solver tolerance).
CHECK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Build:
    """Shape of the model being built: K scenarios of T intervals of dt_h hours.

    ``band_scenario`` (offer model with reserves): the scenario on which storage offers
    flexibility bands; None builds no bands. ``holds`` (a pooled offer model): storage keeps
    forecast-error cover in its own limits: window energy by parameters ``hold_up``/``hold_down``,
    headroom by its power limits (:mod:`aggregator.holds`).
    """

    K: int
    T: int
    dt_h: float
    band_scenario: int | None = None
    holds: bool = False

    def rows(self, values: np.ndarray) -> np.ndarray:
        """Repeat per-asset values (n,) or (n, T) for every scenario: (K*n,) or (K*n, T)."""
        values = np.asarray(values)
        return np.tile(values, (self.K,) + (1,) * (values.ndim - 1))

    def column(self, values: np.ndarray) -> np.ndarray:
        """Per-asset constants as a (K*n, 1) column that broadcasts over intervals."""
        return self.rows(np.asarray(values, dtype=float))[:, None]


@dataclass
class Soft:
    """A constraint family kept feasible by a slack priced at the relaxation penalty.

    A *target* (``target=True``) is a planning goal rather than a physical limit: missing it
    costs the target penalty per unit and is reported as a note, not as infeasibility.
    """

    family: str
    slack: cp.Variable  # (K*n,) or (K*n, T), >= 0
    unit: str
    scale: float = 1.0  # slack * scale is in ``unit`` (e.g. MW * dt -> MWh)
    target: bool = False


class Part:
    """One fleet inside one compiled model: what it adds to the problem and the handles to fill it.

    A part belongs to its model (never shared); the fleet it comes from stays immutable.
    """

    def __init__(self, fleet: Fleet, b: Build) -> None:
        self.fleet = fleet
        self.b = b
        self.power: cp.Expression  # (K*n, T) net injection, MW
        self.cost: cp.Expression | None = None  # (K*n, T) CNY
        self.emissions: cp.Expression | None = None  # (K*n, T) tCO2
        self.up: cp.Expression | None = None  # (K*n, T) MW more injection possible for one interval
        self.down: cp.Expression | None = None  # (K*n, T) MW less injection possible
        self.band_value: cp.Expression | None = None  # MWh of flexibility bands (valued at a token price)
        # Storage: energy (MWh) it could still deliver (take) by the end of each interval, (K*n, T).
        self.energy_up: cp.Expression | None = None
        self.energy_down: cp.Expression | None = None
        self.constraints: list[cp.Constraint] = []
        self.softs: list[Soft] = []
        self.bounds: list[tuple[str, cp.Parameter, cp.Parameter]] = []
        self.params: dict[str, cp.Parameter] = {}
        self.outputs: dict[str, cp.Expression] = {}  # values read into the solution
        self.duals: dict[str, cp.Constraint] = {}  # dual values read into the solution

    @property
    def rows(self) -> int:
        return self.b.K * self.fleet.n

    def parameter(self, name: str, shape: tuple[int, ...], **kwargs: Any) -> cp.Parameter:
        param = cp.Parameter(shape, name=f"{self.fleet.kind}_{name}", **kwargs)
        param.value = np.zeros(shape)
        self.params[name] = param
        return param

    def bounded(self, name: str, family: str, expr: cp.Expression | None = None) -> cp.Expression:
        """A (K*n, T) variable (or ``expr``, if the fleet derives it) between parameters
        ``<name>_lo`` and ``<name>_hi``; ``family`` names the bounds in errors."""
        x = cp.Variable((self.rows, self.b.T), name=f"{self.fleet.kind}_{name}") if expr is None else expr
        lo = self.parameter(f"{name}_lo", (self.rows, self.b.T))
        hi = self.parameter(f"{name}_hi", (self.rows, self.b.T))
        self.constraints += [x >= lo, x <= hi]
        self.bounds.append((family, lo, hi))
        self.outputs[name] = x
        return x

    def set(self, name: str, value: np.ndarray | float) -> None:
        param = self.params[name]
        param.value = np.broadcast_to(np.asarray(value, dtype=float), param.shape).copy()

    def pin(self, names: Sequence[str], rows: np.ndarray, mask: np.ndarray) -> None:
        """Pin parameters to ``rows`` (K*n, T) in the masked intervals (intervals already delivered)."""
        for name in names:
            value = self.params[name].value.copy()
            value[:, mask] = rows[:, mask]
            self.params[name].value = value

    def solution(self) -> FleetSolution:
        """The solved values of this part, as an immutable record."""
        K, n, T = self.b.K, self.fleet.n, self.b.T

        def per_scenario(expr: cp.Expression | None) -> np.ndarray | None:
            if expr is None:
                return None
            return _frozen(np.asarray(expr.value, dtype=float).reshape(K, n, -1))

        values = {name: _frozen(np.asarray(e.value, dtype=float)) for name, e in self.outputs.items()}
        values.update(
            {name: _frozen(np.asarray(c.dual_value, dtype=float)) for name, c in self.duals.items()}
        )
        zeros = np.zeros((K, n, T))
        return FleetSolution(
            fleet=self.fleet,
            K=K,
            dt_h=self.b.dt_h,
            power=per_scenario(self.power),
            cost=per_scenario(self.cost) if self.cost is not None else _frozen(zeros),
            emissions=per_scenario(self.emissions) if self.emissions is not None else _frozen(zeros),
            up=per_scenario(self.up),
            down=per_scenario(self.down),
            values=MappingProxyType(values),
        )


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.array(values, dtype=float)
    values.setflags(write=False)
    return values


@dataclass(frozen=True)
class FleetSolution:
    """One fleet's answer in one solve: arrays are (K, n, T) and read-only."""

    fleet: Fleet
    K: int
    dt_h: float
    power: np.ndarray
    cost: np.ndarray
    emissions: np.ndarray
    up: np.ndarray | None
    down: np.ndarray | None
    values: Mapping[str, np.ndarray]  # the part's named outputs and duals, rows scenario * n + asset

    def setpoints(self, scenario: int = 0) -> np.ndarray:
        """Net injection (n, T) of one scenario."""
        return self.power[scenario]

    def rows(self, name: str, scenario: int) -> np.ndarray:
        """One scenario's rows of a named output."""
        n = self.fleet.n
        return self.values[name][scenario * n : (scenario + 1) * n]


@dataclass(frozen=True)
class Bands:
    """Flexibility bands on top of a schedule, each (n, T): MW and price per direction."""

    up_mw: np.ndarray
    up_price: np.ndarray
    down_mw: np.ndarray
    down_price: np.ndarray


# --- parameters declared once ------------------------------------------------------------------

Source = str | Callable[[Any, Any], float] | None


def param(source: Source = None, *, dtype: type = float) -> dict[str, Any]:
    """Field metadata of a per-asset parameter: the asset field ``source`` (default: the same
    name) or ``source(asset, park)``. Declared once (``x: np.ndarray = field(metadata=param())``),
    it serves the constructor and :meth:`Fleet.from_assets`."""
    return {"param": source, "dtype": dtype}


def series(template: str) -> dict[str, Any]:
    """Field metadata of per-asset forecast series ids, from a template like ``"{id}.heat_mw_th"``."""
    return {"series": template}


@dataclass(frozen=True, eq=False)
class Fleet(ABC):
    """All assets of one type. Subclasses declare their parameters with :func:`param`."""

    kind: ClassVar[str]
    asset_types: ClassVar[tuple[str, ...]]
    flexible: ClassVar[bool] = True  # counts as a flexible device (benchmarks, clustering)
    regulates: ClassVar[bool] = False  # holds frequency regulation (only storage follows the signal)
    # Forecast range needs headroom: +1 for consumption (up when above the median), -1 for generation.
    uncertainty: ClassVar[int] = 0

    ids: Sequence[str]
    enterprises: Sequence[str]
    nodes: Sequence[str]

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("ids", "enterprises", "nodes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.kind}: {name} has {len(getattr(self, name))} entries for {n} assets")
        for f in dataclasses.fields(self):
            if "param" in f.metadata:
                value = np.array(getattr(self, f.name), dtype=f.metadata["dtype"]).reshape(-1)
                if value.shape != (n,):
                    raise ValueError(f"{self.kind}: {f.name} has {value.size} values for {n} assets")
                value.setflags(write=False)
                object.__setattr__(self, f.name, value)
            elif "series" in f.metadata:
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    @classmethod
    def from_assets(cls, assets: Sequence[Any], park: Any) -> Self:
        """The fleet of these scenario assets; ``park`` supplies park-wide settings (carbon, fuels)."""
        kwargs: dict[str, Any] = {
            "ids": [a.id for a in assets],
            "enterprises": [a.enterprise for a in assets],
            "nodes": [a.connection for a in assets],
        }
        for f in dataclasses.fields(cls):
            if "param" in f.metadata:
                source = f.metadata["param"] or f.name
                kwargs[f.name] = [source(a, park) if callable(source) else getattr(a, source) for a in assets]
            elif "series" in f.metadata:
                kwargs[f.name] = [f.metadata["series"].format(id=a.id, type=a.type) for a in assets]
        return cls(**kwargs)

    @property
    def n(self) -> int:
        return len(self.ids)

    def forecast_series(self) -> dict[str, float | None]:
        """Forecast series the fleet reads, each with its physical upper limit (MW) if it has one."""
        return {s: None for s in getattr(self, "series", ())}

    def profile(self, profiles: Profiles) -> np.ndarray:
        """The fleet's forecast series stacked (n, T)."""
        return np.stack([np.asarray(profiles[s], dtype=float) for s in self.series])

    # --- the model -------------------------------------------------------------------------------

    @abstractmethod
    def build(self, b: Build) -> Part:
        """Variables, parameters, constraints and expressions of this fleet in one model."""

    @abstractmethod
    def load(self, part: Part, profiles: Profiles) -> None:
        """Fill the part with the day's forecasts (medians) and reset bounds to the physical limits."""

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:  # noqa: B027 - optional
        """Fix the intervals in ``mask`` to ``previous`` set-points (n, T); scenario rows all alike."""

    def freeze_notice(self, part: Part, previous: np.ndarray, now_index: int) -> None:  # noqa: B027
        """Keep orders that need notice (intraday, from interval ``now_index``)."""

    def restore(self, part: Part, state: Mapping[str, float]) -> None:  # noqa: B027 - optional
        """Pin initial storage levels to those of an earlier solve (:meth:`state`)."""

    def commit(self, part: Part) -> bool:
        """After a relaxed solve: fix on/off decisions; True if a re-solve is needed."""
        return False

    # --- reading a solve -------------------------------------------------------------------------

    def state(self, solution: FleetSolution) -> dict[str, float]:
        """Initial storage levels the solver chose (tanks, hydrogen), needed to resume intraday."""
        return {}

    def flexibility_bands(self, solution: FleetSolution) -> Bands | None:
        return None

    def peak_cut(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Demand-response capacity (n, T) sustainable for ``hours`` and its cost (n,) CNY/MWh.

        ``reference_price`` (CNY/MWh, the day's mean expected price plus the import charges the
        model puts on grid energy where the park imports) values energy that has to be bought
        back later; ``carbon_price`` (CNY/tCO2) prices the emissions it causes.
        """
        return None

    def valley_fill(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def call_budgets(self, solution: FleetSolution, scenario: int, direction: str) -> Budgets | None:
        """Energy that demand-response calls in ``direction`` draw from together
        (:mod:`aggregator.devices.calls`); None: only power limits them."""
        return None

    def dispatch_caps(self, setpoints: np.ndarray, profiles: Profiles) -> dict[str, list[float | None]]:
        """Per asset, a cap the dispatch sends besides the set-point (curtailed generation)."""
        return {}

    def regulation_capacity_mw(self) -> float:
        """The most regulation capacity the fleet could hold (power both ways)."""
        return 0.0

    # --- plain numpy -----------------------------------------------------------------------------

    @abstractmethod
    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        """Independent numpy check that set-points (n, T) are feasible for each device."""

    def numpy_cost(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        """Costs (K,) CNY of set-points (K, n, T): the same cost the model charges."""
        return np.zeros(setpoints.shape[0])

    def numpy_emissions(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        """Direct emissions (K,) tCO2 of set-points (K, n, T)."""
        return np.zeros(setpoints.shape[0])

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """What the devices do without a VPP (n, T): idle by default."""
        return np.zeros((self.n, T))

    def virtualise(
        self, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
    ) -> Virtual:
        """Equivalent virtual devices (an inner approximation) and how to split them back.

        By default every device is its own virtual device."""
        return Virtual(self, singletons(self.n), dict(profiles))


def upper_triangular(T: int) -> np.ndarray:
    """``x @ U`` is the running sum of x along intervals."""
    return np.triu(np.ones((T, T)))


def hour_of_day(T: int, dt_h: float) -> np.ndarray:
    return np.arange(T) * dt_h


def in_window(hours: np.ndarray, start: float, end: float) -> np.ndarray:
    """Mask of hours in the daily window [start, end), wrapping midnight; a 24 h window is all day."""
    length = (end - start) % 24 or 24
    return ((hours - start) % 24) < length - 1e-9


def problem(label: str, mask: np.ndarray, starts_h: np.ndarray, amount: float, unit: str) -> str:
    first = int(np.flatnonzero(mask)[0]) if np.any(mask) else 0
    hh = starts_h[first] if len(starts_h) else 0.0
    return f"{label} by {amount:.3g} {unit} (first at {int(hh):02d}:{round((hh % 1) * 60):02d})"
