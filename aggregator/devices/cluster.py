"""Clusters of devices that become one virtual device, and the proportional split back.

A fleet's :meth:`~aggregator.devices.base.Fleet.virtualise` groups devices of one shape
(at one grid node) in the same bin of their state; the virtual device's limits are an inner
approximation of the members' sum, so any virtual schedule split in proportion to each
member's share is feasible for every member.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from aggregator.devices.base import Fleet


@dataclass(frozen=True)
class Resolution:
    """Clustering resolution: bins of initial state (state of charge) and of power-to-energy ratio.

    More bins give more, tighter virtual devices (a smaller gap to the full optimum, a slower solve).
    """

    state_bins: int = 40
    ratio_bins: int = 24

    def scaled(self, factor: float) -> Resolution:
        return Resolution(max(1, round(self.state_bins * factor)), max(1, round(self.ratio_bins * factor)))


DEFAULT_RESOLUTION = Resolution()


@dataclass(frozen=True)
class Cluster:
    members: np.ndarray  # indices into the real fleet
    shares: np.ndarray  # each member's share of the virtual device (sums to 1)


@dataclass(frozen=True)
class Virtual:
    """A fleet's virtual devices, one per cluster, and the profiles they read."""

    fleet: Fleet
    clusters: tuple[Cluster, ...]
    profiles: dict[str, np.ndarray]

    def split(self, virtual_setpoints: np.ndarray, n: int) -> np.ndarray:
        """Member set-points (n, T): each member takes its share of its virtual device."""
        return split(self.clusters, virtual_setpoints, n)


def singletons(n: int) -> tuple[Cluster, ...]:
    return tuple(Cluster(np.array([i]), np.ones(1)) for i in range(n))


def bins(values: np.ndarray, count: int) -> np.ndarray:
    """Equal-width bins of ``values`` over their range (all in bin 0 when they are equal)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.zeros(len(values), dtype=int)
    return np.minimum(((values - lo) / (hi - lo) * count).astype(int), count - 1)


def group(keys: Sequence[Hashable], weights: np.ndarray) -> tuple[Cluster, ...]:
    """Devices with equal keys form a cluster; shares in proportion to ``weights``."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    out = []
    for members in groups.values():
        idx = np.array(members)
        out.append(Cluster(idx, weights[idx] / weights[idx].sum()))
    return tuple(out)


def identity(prefix: str, fleet: Fleet, clusters: Sequence[Cluster]) -> dict[str, Any]:
    """Ids of the virtual devices; each keeps its members' grid node (clusters never span nodes)."""
    return {
        "ids": [f"{prefix}{k}" for k in range(len(clusters))],
        "enterprises": ["virtual"] * len(clusters),
        "nodes": [fleet.nodes[c.members[0]] for c in clusters],
    }


def first(values: np.ndarray, clusters: Sequence[Cluster]) -> np.ndarray:
    """The first member's value per cluster (for parameters every member shares)."""
    return np.array([values[c.members[0]] for c in clusters])


def total(values: np.ndarray, clusters: Sequence[Cluster]) -> np.ndarray:
    return np.array([values[c.members].sum() for c in clusters])


def split(clusters: Sequence[Cluster], virtual_setpoints: np.ndarray, n: int) -> np.ndarray:
    """Member set-points (n, T): each member takes its share of its virtual device."""
    out = np.zeros((n, virtual_setpoints.shape[1]))
    for k, c in enumerate(clusters):
        out[c.members] = c.shares[:, None] * virtual_setpoints[k][None, :]
    return out
