"""What every device fleet contributes to the park model, in the spirit of cvxpower's devices.

A *fleet* is every asset of one type, vectorised: its variables have one row per (scenario,
asset) pair, ``row = scenario * n + asset``, and one column per interval. A fleet adds its
own variables, constraints, costs, emissions and headroom; the park model only sums fleet
power per scenario and grid node. Data that changes from day to day (forecasts, bounds,
initial states) lives in ``cp.Parameter``s so a model is compiled once and re-solved.

Bounds on the decision variables are parameters too: that is how intraday re-optimisation
freezes intervals already dispatched without changing the problem's structure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import cvxpy as cp
import numpy as np

Profiles = Mapping[str, np.ndarray]
# Set-points this far outside a limit (MW, MWh) still count as feasible (solver tolerance).
CHECK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Build:
    """Shape of the model being built: K scenarios of T intervals of dt_h hours."""

    K: int
    T: int
    dt_h: float

    def rows(self, values: np.ndarray) -> np.ndarray:
        """Repeat per-asset values (n,) or (n, T) for every scenario: (K*n,) or (K*n, T)."""
        return np.tile(values, (self.K,) + (1,) * (values.ndim - 1))

    def column(self, values: np.ndarray) -> np.ndarray:
        """Per-asset constants as a (K*n, 1) column that broadcasts over intervals."""
        return self.rows(np.asarray(values, dtype=float))[:, None]


@dataclass
class Soft:
    """A constraint family kept feasible by a slack priced at the relaxation penalty.

    A *target* (``target=True``) is a planning goal rather than a physical limit: missing it
    costs ``target_penalty_cny`` per unit and is reported as a note, not as infeasibility.
    """

    family: str
    slack: cp.Variable  # (K*n,) or (K*n, T), >= 0
    unit: str
    scale: float = 1.0  # slack * scale is in ``unit`` (e.g. MW * dt -> MWh)
    target: bool = False


def column(assets: Sequence, name: str) -> np.ndarray:
    """One scenario field of every asset of a fleet, as floats."""
    return np.array([getattr(a, name) for a in assets], dtype=float)


def identity(assets: Sequence) -> tuple[list[str], list[str], list[str]]:
    """Ids, owning enterprises and grid nodes of a fleet's assets, the first three Fleet arguments."""
    return [a.id for a in assets], [a.enterprise for a in assets], [a.connection for a in assets]


def freeze_parameters(params: Sequence[cp.Parameter], rows: np.ndarray, mask: np.ndarray) -> None:
    """Pin the bound parameters to ``rows`` in the masked intervals (intervals already delivered)."""
    for param in params:
        value = param.value.copy()
        value[:, mask] = rows[:, mask]
        param.value = value


class Fleet(ABC):
    """All assets of one type. Subclasses set the attributes below in :meth:`build`."""

    kind: ClassVar[str]

    def __init__(self, ids: Sequence[str], enterprises: Sequence[str], nodes: Sequence[str]) -> None:
        self.ids = list(ids)
        self.enterprises = list(enterprises)
        self.nodes = list(nodes)
        self.b: Build | None = None
        self.power: cp.Expression  # (K*n, T) net injection, MW
        self.cost: cp.Expression | None = None  # (K*n, T) CNY
        self.emissions: cp.Expression | None = None  # (K*n, T) tCO2
        self.up: cp.Expression | None = None  # (K*n, T) MW more injection possible for one interval
        self.down: cp.Expression | None = None  # (K*n, T) MW less injection possible
        self.constraints: list[cp.Constraint] = []
        self.softs: list[Soft] = []
        self.bounds: list[tuple[str, cp.Parameter, cp.Parameter]] = []

    @property
    def n(self) -> int:
        return len(self.ids)

    @abstractmethod
    def build(self, b: Build) -> None:
        """Create variables, parameters, constraints and the expressions above."""

    def set_profiles(self, profiles: Profiles) -> None:  # noqa: B027 - optional hook
        """Load the day's forecasts (medians) and reset bounds to the physical limits."""

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Fix the intervals in ``mask`` to ``previous`` set-points (n, T); scenario rows all alike."""

    def state(self) -> dict[str, float]:
        """Initial storage levels the solver chose (tanks, hydrogen), needed to resume intraday."""
        return {}

    def restore_state(self, state: Mapping[str, float]) -> None:  # noqa: B027 - optional hook
        """Pin initial storage levels to those of an earlier solve."""

    def setpoints(self, scenario: int = 0) -> np.ndarray:
        """Net injection (n, T) of one scenario after a solve."""
        value = self.power.value
        rows = slice(scenario * self.n, (scenario + 1) * self.n)
        return np.asarray(value, dtype=float)[rows]

    @abstractmethod
    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        """Independent numpy check that set-points (n, T) are feasible for each device."""

    def peak_cut(
        self, scenario: int, hours: float, reference_price: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Demand-response capacity (n, T) sustainable for ``hours`` and its cost (n,) CNY/MWh.

        ``reference_price`` (CNY/MWh, the day's mean expected price) values energy that has to
        be bought back later.
        """
        return None

    def valley_fill(
        self, scenario: int, hours: float, reference_price: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def commitment_changed(self) -> bool:
        """After a relaxed solve: fix on/off decisions; True if a re-solve is needed."""
        return False

    # helpers ---------------------------------------------------------------------------------

    def bounded(self, b: Build, name: str, family: str) -> tuple[cp.Variable, cp.Parameter, cp.Parameter]:
        """A (K*n, T) variable between two parameter bounds; ``family`` names the bounds in errors."""
        var = cp.Variable((b.K * self.n, b.T), name=name)
        lo = cp.Parameter((b.K * self.n, b.T), name=f"{name}_lo")
        hi = cp.Parameter((b.K * self.n, b.T), name=f"{name}_hi")
        lo.value = np.zeros((b.K * self.n, b.T))
        hi.value = np.zeros((b.K * self.n, b.T))
        self.constraints += [var >= lo, var <= hi]
        self.bounds.append((family, lo, hi))
        return var, lo, hi

    def scenario_rows(self, values: np.ndarray, scenario: int) -> np.ndarray:
        return np.asarray(values)[scenario * self.n : (scenario + 1) * self.n]


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
