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


# Finest window bins a cluster that does not fit is refined to before its members stand alone.
MAX_WINDOW_BINS = 96


def _window_groups(
    f: BatchFleet | EVFleetModel, start: np.ndarray, end: np.ndarray, count: int, members: np.ndarray
) -> list[np.ndarray]:
    """``members`` grouped by node, midnight wrap and bins of start and end (over the fleet's range)."""
    s, e = bins(start, count), bins(end, count)
    keys = [(f.nodes[i], bool(start[i] > end[i]), int(s[i]), int(e[i])) for i in members]
    return [members[g] for g in groups(keys)]


def _pending(
    f: BatchFleet | EVFleetModel, start: np.ndarray, end: np.ndarray, r: Resolution, members: np.ndarray
) -> list[tuple[np.ndarray, int]]:
    return [(g, r.window_bins) for g in _window_groups(f, start, end, r.window_bins, members)]


def _refine(
    f: BatchFleet | EVFleetModel, start: np.ndarray, end: np.ndarray, misfits: np.ndarray, count: int
) -> list[tuple[np.ndarray, int]]:
    """Members that do not fit their cluster's common window: finer window bins, then alone."""
    if len(misfits) == 0:
        return []
    if len(misfits) == 1 or count >= MAX_WINDOW_BINS:
        return [(np.array([i]), MAX_WINDOW_BINS) for i in misfits]
    finer = 2 * count
    return [(g, finer) for g in _window_groups(f, start, end, finer, misfits)]


def pool_batches(f: BatchFleet, T: int, dt_h: float, r: Resolution) -> Virtual:
    """Batches grouped by window bins; inside a group, members of one window split by energy
    (bins of power per MWh), members of different windows share the intersection in bins of
    *fill* (their flexible energy over what their spare power could run in the intersection).
    Members whose energy does not fit the intersection are refined with finer window bins."""
    masks = f.masks(T, dt_h)
    energy, pmin, pmax = f.energy_per_day_mwh, f.power_min_mw, f.power_max_mw
    flex = np.maximum(energy - pmin * masks.sum(axis=1) * dt_h, 0.0)
    spare = pmax - pmin
    ratio = bins(pmax / energy, r.ratio_bins)  # power per MWh of the day's energy
    clusters: list[Cluster] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    total: list[float] = []

    def shared(m: np.ndarray) -> None:  # flexible energy in the common window of m
        common = masks[m].min(axis=0)
        must = (pmin[m][:, None] * masks[m]).sum(axis=0)
        pool = flex[m].sum()
        moving = flex[m] > 1e-9
        head = common * pool * (spare[m][moving] / flex[m][moving]).min() if pool > 1e-9 else np.zeros(T)
        shares = flex[m] / pool if pool > 1e-9 else np.full(len(m), 1 / len(m))
        clusters.append(Cluster(m, shares, shares[:, None] * must[None, :] - pmin[m][:, None] * masks[m]))
        lo.append(must)
        hi.append(must + head)
        total.append(energy[m].sum())

    pending = _pending(f, f.window_start_hour, f.window_end_hour, r, np.arange(f.n))
    while pending:
        m, count = pending.pop(0)
        if np.all(masks[m] == masks[m[0]]):  # one window: proportional split by energy
            for g in groups([(int(ratio[i]), bool(pmin[i] > 0)) for i in m]):
                sub = m[g]
                E = energy[sub].sum()
                clusters.append(Cluster(sub, energy[sub] / E))
                lo.append(masks[sub[0]] * E * (pmin[sub] / energy[sub]).max())
                hi.append(masks[sub[0]] * E * (pmax[sub] / energy[sub]).min())
                total.append(E)
            continue
        length = masks[m].min(axis=0).sum() * dt_h
        fill = flex[m] / np.maximum(spare[m] * length, 1e-12)
        fits = (flex[m] <= 1e-9) | (fill <= 1 - 1e-6)
        for g in groups(bins(fill[fits], r.ratio_bins).tolist()):
            shared(m[fits][g])
        pending += _refine(f, f.window_start_hour, f.window_end_hour, m[~fits], count)
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
    """EV fleets grouped by bins of arrival and departure (vehicle-to-grid fleets alone);
    inside a group, members of one plug-in pattern in bins of charging power per MWh, members
    of different patterns in bins of *fill* (the largest share of a common stretch they need
    at full power). Members that cannot charge their energy in the common stretches are
    refined with finer window bins."""
    masks, need = f.stretches(T, dt_h)  # (n, 2, T), (n, 2)
    ratio = bins(f.charge_mw / np.maximum(f.energy_per_day_mwh, 1e-9), r.ratio_bins)
    rows: list[tuple[float, float, float, float, float, float]] = []
    clusters: list[Cluster] = []

    def alone(i: int) -> None:
        clusters.append(Cluster(np.array([i]), np.ones(1)))
        rows.append((f.arrival_hour[i], f.departure_hour[i], f.charge_mw[i], f.v2g_mw[i], *need[i]))

    def common_stretches(m: np.ndarray) -> tuple[float, float, np.ndarray]:
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
        return arrival, departure, probe.stretches(T, dt_h)[0][0]  # (2, T)

    def pooled(m: np.ndarray) -> bool:  # one virtual fleet for m, if its common stretches hold m's energy
        arrival, departure, common = common_stretches(m)
        total = need[m].sum(axis=0)
        lengths = common.sum(axis=1) * dt_h
        inside = np.all(common[None] <= masks[m])  # every member plugged in the virtual stretches
        if not inside or np.any((total > 1e-9) & (lengths == 0)):
            return False
        shares = np.where(total > 1e-9, need[m] / np.where(total > 1e-9, total, 1.0), 0.0)  # (m, 2)
        limit = min(
            f.charge_mw[i] / shares[j, s] for j, i in enumerate(m) for s in range(2) if shares[j, s] > 0
        )
        if np.any(total > limit * lengths * (1 - 1e-9)):
            return False
        clusters.append(Cluster(m, shares @ common))
        rows.append((arrival, departure, limit, 0.0, *total))
        return True

    v2g = np.flatnonzero(f.v2g_mw > 0)  # vehicle-to-grid fleets stay on their own
    for i in v2g:
        alone(int(i))
    start, end = f.arrival_hour, f.departure_hour
    pending = _pending(f, start, end, r, np.flatnonzero(f.v2g_mw <= 0))
    while pending:
        m, count = pending.pop(0)
        if len(m) == 1:
            alone(int(m[0]))
            continue
        if np.all(masks[m] == masks[m[0]]):  # one plug-in pattern: bins of power per MWh
            for g in groups(ratio[m].tolist()):
                if len(g) == 1 or not pooled(m[g]):
                    for i in m[g]:
                        alone(int(i))
            continue
        _, _, common = common_stretches(m)
        lengths = common.sum(axis=1) * dt_h
        with np.errstate(divide="ignore", invalid="ignore"):
            fill = np.where(need[m] > 1e-9, need[m] / (f.charge_mw[m][:, None] * lengths[None, :]), 0.0)
        fill = fill.max(axis=1)
        inside = np.all(common[None] <= masks[m], axis=(1, 2))
        fits = inside & (fill <= 1 - 1e-6)
        for g in groups(bins(fill[fits], r.ratio_bins).tolist()) if np.any(fits) else []:
            sub = m[fits][g]
            if len(sub) == 1 or not pooled(sub):
                pending += _refine(f, start, end, sub, count)
        pending += _refine(f, start, end, m[~fits], count)
    arrival, departure, charge, v2g_mw, first, second = (np.array(col) for col in zip(*rows, strict=True))
    k = len(clusters)
    virtual = StretchEVFleet(
        ids=[f"vev{j}" for j in range(k)],
        enterprises=["virtual"] * k,
        nodes=[f.nodes[c.members[0]] for c in clusters],
        charge_mw=charge,
        v2g_mw=v2g_mw,
        energy_per_day_mwh=first + second,
        arrival_hour=arrival,
        departure_hour=departure,
        first_stretch_mwh=first,
        second_stretch_mwh=second,
    )
    return Virtual(virtual, tuple(clusters), {})
