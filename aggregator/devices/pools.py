"""Virtual devices for batches and EV fleets whose windows differ (heterogeneous portfolios).

Both are inner approximations checked before they are used: a cluster whose virtual device
could not deliver every member's energy falls back to one virtual device per member.

* **Batches**: members of similar windows share the *intersection* of their windows. Each
  member's minimum power runs across its own window as a fixed part (the split's offset),
  and the rest of its energy is a share of the virtual device's flexible energy, which may
  only run where every member's window is open, up to the tightest member's spare power.
* **EV fleets**: members of similar plug-in times share the intersection of their plugged
  stretches. Each stretch of the virtual device must deliver the sum of the members' shares
  of that stretch, and every member takes its own share of each stretch (shares vary by
  interval), so each member's stretch receives exactly its energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aggregator.devices.base import CHECK_TOLERANCE, Build, Part, Profiles, hour_of_day, param, problem
from aggregator.devices.cluster import Cluster, Resolution, Virtual, bins, groups
from aggregator.devices.flexible import BatchFleet, EVFleetModel


@dataclass(frozen=True, eq=False, kw_only=True)
class ProfileBatchFleet(BatchFleet):
    """Virtual batches with power bounds per interval (``lo_mw``/``hi_mw``, (n, T), consumption)."""

    lo_mw: np.ndarray
    hi_mw: np.ndarray

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        part.set("p_lo", b.rows(self.lo_mw))
        part.set("p_hi", b.rows(self.hi_mw))

    def build(self, b: Build) -> Part:
        if self.lo_mw.shape[1] != b.T:
            raise ValueError(f"virtual batches were pooled for {self.lo_mw.shape[1]} intervals, not {b.T}")
        return super().build(b)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        p = -setpoints
        hours = hour_of_day(p.shape[1], dt_h)
        out = []
        for i, a in enumerate(self.ids):
            outside = np.maximum(self.lo_mw[i] - p[i], p[i] - self.hi_mw[i])
            if np.any(outside > CHECK_TOLERANCE):
                out.append(
                    f"{a}: "
                    + problem("outside its bounds", outside > CHECK_TOLERANCE, hours, outside.max(), "MW")
                )
        return out


@dataclass(frozen=True, eq=False, kw_only=True)
class StretchEVFleet(EVFleetModel):
    """Virtual EV fleets whose two plugged stretches each need a stated energy."""

    first_stretch_mwh: np.ndarray = field(metadata=param())
    second_stretch_mwh: np.ndarray = field(metadata=param())

    def stretches(self, T: int, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        masks, _ = super().stretches(T, dt_h)
        return masks, np.column_stack([self.first_stretch_mwh, self.second_stretch_mwh])


def _window_keys(f: BatchFleet | EVFleetModel, start: np.ndarray, end: np.ndarray, r: Resolution) -> list:
    return list(zip(f.nodes, start > end, bins(start, r.window_bins), bins(end, r.window_bins), strict=True))


def pool_batches(f: BatchFleet, T: int, dt_h: float, r: Resolution) -> Virtual:
    masks = f.masks(T, dt_h)
    energy, pmin, pmax = f.energy_per_day_mwh, f.power_min_mw, f.power_max_mw
    flex = np.maximum(energy - pmin * masks.sum(axis=1) * dt_h, 0.0)
    spare = (pmax - pmin) / np.maximum(flex, 1e-9)
    keys = _window_keys(f, f.window_start_hour, f.window_end_hour, r)
    ratio = bins(pmax / energy, r.ratio_bins)  # power per MWh of the day's energy
    keys = [(*k, int(b), bool(m > 0)) for k, b, m in zip(keys, ratio, pmin, strict=True)]
    clusters: list[Cluster] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    total: list[float] = []
    for m in groups(keys):
        if np.all(masks[m] == masks[m[0]]):  # one window: proportional split by energy
            E = energy[m].sum()
            clusters.append(Cluster(m, energy[m] / E))
            lo.append(masks[m[0]] * E * (pmin[m] / energy[m]).max())
            hi.append(masks[m[0]] * E * (pmax[m] / energy[m]).min())
            total.append(E)
            continue
        common = masks[m].min(axis=0)
        must = (pmin[m][:, None] * masks[m]).sum(axis=0)
        pool = flex[m].sum()
        head = common * pool * spare[m][flex[m] > 1e-9].min() if pool > 1e-9 else np.zeros(T)
        if pool > 1e-9 and head.sum() * dt_h < pool * (1 + 1e-9):
            for i in m:  # the intersection cannot hold the pool: one virtual device each
                clusters.append(Cluster(np.array([i]), np.ones(1)))
                lo.append(masks[i] * pmin[i])
                hi.append(masks[i] * pmax[i])
                total.append(energy[i])
            continue
        shares = flex[m] / pool if pool > 1e-9 else np.full(len(m), 1 / len(m))
        offset = shares[:, None] * must[None, :] - pmin[m][:, None] * masks[m]
        clusters.append(Cluster(m, shares, offset))
        lo.append(must)
        hi.append(must + head)
        total.append(energy[m].sum())
    k = len(clusters)
    virtual = ProfileBatchFleet(
        ids=[f"vbatch{j}" for j in range(k)],
        enterprises=["virtual"] * k,
        nodes=[f.nodes[c.members[0]] for c in clusters],
        energy_per_day_mwh=total,
        power_min_mw=[x.min() for x in lo],
        power_max_mw=[x.max() for x in hi],
        window_start_hour=np.zeros(k),
        window_end_hour=np.full(k, 24.0),
        lo_mw=np.array(lo),
        hi_mw=np.array(hi),
    )
    return Virtual(virtual, tuple(clusters), {})


def pool_evs(f: EVFleetModel, T: int, dt_h: float, r: Resolution) -> Virtual:
    masks, need = f.stretches(T, dt_h)  # (n, 2, T), (n, 2)
    ratio = f.charge_mw / np.maximum(f.energy_per_day_mwh, 1e-9)
    keys = _window_keys(f, f.arrival_hour, f.departure_hour, r)
    keys = [
        (*k, int(b), i if v > 0 else -1)  # vehicle-to-grid fleets stay on their own
        for i, (k, b, v) in enumerate(zip(keys, bins(ratio, r.ratio_bins), f.v2g_mw, strict=True))
    ]
    rows: list[tuple[float, float, float, float, float, float]] = []
    clusters: list[Cluster] = []

    def alone(i: int) -> None:
        clusters.append(Cluster(np.array([i]), np.ones(1)))
        rows.append((f.arrival_hour[i], f.departure_hour[i], f.charge_mw[i], f.v2g_mw[i], *need[i]))

    for m in groups(keys):
        arrival, departure = f.arrival_hour[m].max(), f.departure_hour[m].min()
        probe = EVFleetModel(
            ids=["p"],
            enterprises=["p"],
            nodes=["p"],
            charge_mw=[1.0],
            v2g_mw=[0.0],
            energy_per_day_mwh=[1.0],
            arrival_hour=[arrival],
            departure_hour=[departure],
        )
        common = probe.stretches(T, dt_h)[0][0]  # (2, T)
        pooled = need[m].sum(axis=0)
        lengths = common.sum(axis=1) * dt_h
        inside = np.all(common[None] <= masks[m])  # every member plugged in the virtual stretches
        if len(m) == 1 or f.v2g_mw[m[0]] > 0 or not inside or np.any((pooled > 1e-9) & (lengths == 0)):
            for i in m:
                alone(i)
            continue
        shares = np.where(pooled > 1e-9, need[m] / np.where(pooled > 1e-9, pooled, 1.0), 0.0)  # (m, 2)
        limit = min(
            f.charge_mw[i] / shares[j, s] for j, i in enumerate(m) for s in range(2) if shares[j, s] > 0
        )
        if np.any(pooled > limit * lengths * (1 - 1e-9)):
            for i in m:
                alone(i)
            continue
        clusters.append(Cluster(m, shares @ common))
        rows.append((arrival, departure, limit, 0.0, *pooled))
    arrival, departure, charge, v2g, first, second = (np.array(col) for col in zip(*rows, strict=True))
    k = len(clusters)
    virtual = StretchEVFleet(
        ids=[f"vev{j}" for j in range(k)],
        enterprises=["virtual"] * k,
        nodes=[f.nodes[c.members[0]] for c in clusters],
        charge_mw=charge,
        v2g_mw=v2g,
        energy_per_day_mwh=first + second,
        arrival_hour=arrival,
        departure_hour=departure,
        first_stretch_mwh=first,
        second_stretch_mwh=second,
    )
    return Virtual(virtual, tuple(clusters), {})
