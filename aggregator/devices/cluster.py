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
    """Clustering resolution: bins of initial state (state of charge), of ratios (power to
    energy, efficiencies, state-of-charge limits) and of window hours (arrival, departure,
    batch windows) over each fleet's range.

    More bins give more, tighter virtual devices (a smaller gap to the full optimum, a slower solve).
    """

    state_bins: int = 40
    ratio_bins: int = 24
    window_bins: int = 24

    def scaled(self, factor: float) -> Resolution:
        def scale(bins: int) -> int:
            return max(1, round(bins * factor))

        return Resolution(scale(self.state_bins), scale(self.ratio_bins), scale(self.window_bins))


DEFAULT_RESOLUTION = Resolution()


@dataclass(frozen=True)
class Cluster:
    """Members of one virtual device: member set-point = share x virtual set-point + offset."""

    members: np.ndarray  # indices into the real fleet
    shares: np.ndarray  # (m,) or per interval (m, T): each member's share (sums to 1 where used)
    offset: np.ndarray | None = None  # (m, T) member set-points independent of the virtual one

    def member_setpoints(self, virtual: np.ndarray) -> np.ndarray:
        shares = self.shares[:, None] if self.shares.ndim == 1 else self.shares
        out = shares * virtual[None, :]
        return out if self.offset is None else out + self.offset


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
    """Equal-width bins of ``values`` over their range; values that take at most ``count``
    distinct values (catalogue models, fixed patterns) keep one bin each."""
    distinct, index = np.unique(np.round(values, 9), return_inverse=True)  # float noise is no model
    if len(distinct) <= count:
        return index.reshape(-1)
    lo, hi = float(values.min()), float(values.max())
    return np.minimum(((values - lo) / (hi - lo) * count).astype(int), count - 1)


def groups(keys: Sequence[Hashable]) -> list[np.ndarray]:
    """Member indices of each distinct key, in order of first appearance."""
    found: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        found.setdefault(key, []).append(i)
    return [np.array(members) for members in found.values()]


def group(keys: Sequence[Hashable], weights: np.ndarray) -> tuple[Cluster, ...]:
    """Devices with equal keys form a cluster; shares in proportion to ``weights``."""
    return tuple(Cluster(idx, weights[idx] / weights[idx].sum()) for idx in groups(keys))


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
    """Member set-points (n, T): each member takes its share of its virtual device (plus its offset)."""
    out = np.zeros((n, virtual_setpoints.shape[1]))
    for k, c in enumerate(clusters):
        out[c.members] = c.member_setpoints(virtual_setpoints[k])
    return out
