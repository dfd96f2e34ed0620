"""What goes into one solve of the park model (:class:`DayData`) and what comes out (:class:`Solution`).

Both are immutable: the offer, the dispatch, the reports and the benchmark read a solve only
through its :class:`Solution` (arrays are read-only), never through the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from aggregator.devices import Bands, Fleet, FleetSolution, Profiles
from aggregator.errors import Violation


@dataclass(frozen=True)
class Intraday:
    """Intraday re-optimisation: intervals in ``frozen`` keep ``previous`` set-points (asset id ->
    (T,)), orders inside notice time from ``now_index`` are kept, storage starts at ``state``."""

    previous: Mapping[str, np.ndarray]
    frozen: np.ndarray
    now_index: int
    state: Mapping[str, float]


@dataclass(frozen=True)
class DayData:
    """Every day-dependent number of one solve.

    Offer models read ``prices`` (K, T) and the regulation value and cap; dispatch models read
    the award. Fields a model does not use are ignored.
    """

    profiles: Profiles  # series id -> median forecast (T,)
    green_mw: np.ndarray  # (T,) green contracts covering imports
    need_up: np.ndarray  # (T,) headroom for the forecast range
    need_down: np.ndarray
    carbon_price: float  # CNY/tCO2
    energy_need_up: np.ndarray | None = None  # (W, T) MWh per energy window ending at each interval
    energy_need_down: np.ndarray | None = None
    prices: np.ndarray | None = None  # (K, T) price scenarios, dearer with k
    regulation_value: float = 0.0  # CNY per MW and interval of regulation capacity held
    regulation_cap_mw: np.ndarray | None = None  # (T,)
    award_mw: np.ndarray | None = None  # (T,)
    regulation_award_mw: np.ndarray | None = None  # (T,)
    intraday: Intraday | None = None


@dataclass(frozen=True)
class SolveInfo:
    solver: str
    status: str
    seconds: float
    solves: int
    objective: float
    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True)
class Regulation:
    """Regulation capacity held by the regulating fleets, per interval."""

    capacity_mw: np.ndarray  # (T,)
    value_cny_per_mw_interval: float  # offer: what holding one MW for one interval earns
    cap_shadow: np.ndarray  # (T,) offer: marginal value of the capacity cap (dual)
    short_mw: np.ndarray  # (T,) dispatch: awarded regulation the batteries cannot hold


@dataclass(frozen=True)
class Solution:
    """One solve of the park model."""

    info: SolveInfo
    mode: str
    dt_h: float
    weights: np.ndarray  # (K,) scenario probabilities
    carbon_price: float
    fleets: tuple[FleetSolution, ...]
    injection: np.ndarray  # (K, T) park net injection
    costs_cny: np.ndarray  # (K,) fuel, wear, curtailment and import charges
    emissions_tco2: np.ndarray  # (K,) non-green imports and fuel
    short_up: np.ndarray  # (K, T) headroom missing for the forecast range (and awarded reserve)
    short_down: np.ndarray
    energy_short_up: np.ndarray | None  # (W, K, T) MWh missing over each energy window (None: no cover)
    energy_short_down: np.ndarray | None
    regulation: Regulation | None  # None: no fleet holds regulation in this model
    violations: tuple[Violation, ...]  # hard constraints broken (relaxed answer)
    targets_missed: tuple[Violation, ...]  # planning targets missed (notes)
    state: Mapping[str, float]  # storage levels at midnight

    @property
    def K(self) -> int:
        return self.injection.shape[0]

    @property
    def T(self) -> int:
        return self.injection.shape[1]

    def fleet(self, kind: str) -> FleetSolution | None:
        return next((fs for fs in self.fleets if fs.fleet.kind == kind), None)

    def setpoints(self, scenario: int = 0) -> dict[str, np.ndarray]:
        """Net injection (T,) of every asset in one scenario."""
        return {a: fs.power[scenario][i] for fs in self.fleets for i, a in enumerate(fs.fleet.ids)}

    def bands(self) -> Iterator[tuple[Fleet, Bands]]:
        """Every fleet's flexibility bands (offer model)."""
        for fs in self.fleets:
            bands = fs.fleet.flexibility_bands(fs)
            if bands is not None:
                yield fs.fleet, bands

    def expected(self, values: np.ndarray) -> float:
        """Probability-weighted mean of per-scenario values (K,)."""
        return float(self.weights @ values)


def frozen(values: np.ndarray | None) -> np.ndarray | None:
    """A read-only copy."""
    if values is None:
        return None
    out = np.array(values, dtype=float)
    out.setflags(write=False)
    return out
