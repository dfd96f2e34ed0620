"""What a park model is built from (fleets, grid, carbon factor), and a caller-owned store of compiled models."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aggregator.devices import Fleet, fleets_for
from infra.scenario import Scenario


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

    @classmethod
    def unconstrained(cls) -> Grid:
        return cls(nodes=(), import_mw=np.zeros(0), export_mw=np.zeros(0))


@dataclass(frozen=True)
class Portfolio:
    """Fleets, grid and carbon factor: everything the model needs that is not the day's data."""

    name: str
    fleets: tuple[Fleet, ...]
    grid: Grid
    grid_ef_tco2_per_mwh: float
    import_tariff_cny_per_mwh: float = 0.0  # transmission and distribution charge on grid imports

    def __post_init__(self) -> None:
        object.__setattr__(self, "fleets", tuple(self.fleets))

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Portfolio:
        return cls(
            name=scenario.version,
            fleets=tuple(fleets_for(scenario)),
            grid=Grid.from_scenario(scenario),
            grid_ef_tco2_per_mwh=scenario.park.carbon.grid_ef_tco2_per_mwh,
            import_tariff_cny_per_mwh=scenario.market.grid_import_tariff_cny_per_mwh,
        )

    def fleet(self, kind: str) -> Fleet | None:
        return next((f for f in self.fleets if f.kind == kind), None)

    def with_fleets(self, fleets: tuple[Fleet, ...] | list[Fleet], name: str) -> Portfolio:
        return Portfolio(
            name, tuple(fleets), self.grid, self.grid_ef_tco2_per_mwh, self.import_tariff_cny_per_mwh
        )

    def regulation_capacity_mw(self) -> float:
        return sum(f.regulation_capacity_mw() for f in self.fleets)

    def flexible_count(self) -> int:
        return sum(f.n for f in self.fleets if f.flexible)


def fingerprint(scenario: Scenario) -> str:
    """Identifies a scenario's content: models are compiled with its numbers as constants."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()[:20]


class ModelStore:
    """Compiled models kept by the caller that owns this store (a worker, a command), keyed by structure.

    Re-solving a stored model skips cvxpy's compilation. A model holds no answer between
    solves that anyone can read: every solve loads all of its data and returns an immutable
    :class:`~aggregator.solution.Solution`. Without a store each call compiles its own model.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._models: dict[Hashable, object] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], object]) -> object:
        with self._lock:
            model = self._models.get(key)
            if model is None:
                if len(self._models) >= self.capacity:
                    self._models.pop(next(iter(self._models)))
                model = self._models[key] = make()
            return model


def per_scenario(K: int, n: int) -> sp.csr_matrix:
    """(K, K*n) matrix summing a fleet's rows (scenario * n + asset) per scenario."""
    rows = np.repeat(np.arange(K), n)
    return sp.csr_matrix((np.ones(K * n), (rows, np.arange(K * n))), shape=(K, K * n))


def per_node(K: int, fleet: Fleet, nodes: Sequence[str]) -> sp.csr_matrix:
    """(K*N, K*n) matrix summing a fleet's rows per scenario and grid node."""
    n, N = fleet.n, len(nodes)
    index = {node: j for j, node in enumerate(nodes)}
    rows, cols = [], []
    for s in range(K):
        for i, node in enumerate(fleet.nodes):
            if node in index:
                rows.append(s * N + index[node])
                cols.append(s * n + i)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(K * N, K * n))
