"""Loads around a baseline: inflexible load and interruptible load.

All power here is net injection, so consumption is negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    FleetSolution,
    Part,
    Profiles,
    hour_of_day,
    param,
    problem,
    series,
)
from aggregator.devices.calls import Budgets
from aggregator.devices.cluster import (
    DEFAULT_RESOLUTION,
    Cluster,
    Resolution,
    Virtual,
    bins,
    first,
    group,
    identity,
    total,
)


@dataclass(frozen=True, eq=False, kw_only=True)
class FixedLoadFleet(Fleet):
    """Inflexible load: the dispatch sends its expected power so the set-points add up."""

    kind = "inflexible_load"
    asset_types = ("inflexible_load",)
    flexible = False
    uncertainty = 1

    series: tuple[str, ...] = field(metadata=series("{id}.load_mw"))

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        load = part.parameter("load", (part.rows, b.T))
        # A variable pinned to the forecast keeps park power parameter-free (DPP: price x power).
        part.power = cp.Variable((part.rows, b.T), name="fixed_load_power")
        part.constraints = [part.power == -load]
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        part.set("load", part.b.rows(self.profile(profiles)))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("load",), part.b.rows(-previous), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        gap = np.abs(setpoints + self.profile(profiles))
        hours = hour_of_day(setpoints.shape[1], dt_h)
        label = "set-point differs from the expected load"
        return [
            f"{a}: " + problem(label, gap[i] > CHECK_TOLERANCE, hours, gap[i].max(), "MW")
            for i, a in enumerate(self.ids)
            if np.any(gap[i] > CHECK_TOLERANCE)
        ]

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        return -self.profile(profiles)


@dataclass(frozen=True, eq=False, kw_only=True)
class InterruptibleFleet(Fleet):
    """Load that can be curtailed below its baseline, within depth, daily energy and duration, at a price.

    Maximum duration is kept convex as a rolling limit: over any window one interval longer
    than ``max_duration_h``, curtailed energy stays below ``max_curtail_mw * max_duration_h``,
    so full-depth curtailment never lasts longer than allowed.
    """

    kind = "interruptible_load"
    asset_types = ("interruptible_load",)
    uncertainty = 1

    series: tuple[str, ...] = field(metadata=series("{id}.load_mw"))
    max_curtail_mw: np.ndarray = field(metadata=param())
    max_duration_h: np.ndarray = field(metadata=param())
    max_energy_mwh_per_day: np.ndarray = field(metadata=param())
    cost_cny_per_mwh: np.ndarray = field(metadata=param())
    notice_minutes: np.ndarray = field(metadata=param())
    # Series of each device's curtailment cap below its baseline (virtual devices: the bound that
    # keeps every member's share feasible); empty: the cap is the baseline itself.
    cap_series: tuple[str, ...] = ()

    def cap(self, profiles: Profiles) -> np.ndarray:
        """The most each device can curtail per interval (n, T): depth, baseline and cap series."""
        base = self.profile(profiles)
        if self.cap_series:
            base = np.minimum(base, np.stack([np.asarray(profiles[s], dtype=float) for s in self.cap_series]))
        return np.minimum(self.max_curtail_mw[:, None], base)

    def _window_lengths(self, dt_h: float) -> np.ndarray:
        """Each asset's rolling-window length (intervals): one interval longer than its maximum duration."""
        return np.round(self.max_duration_h / dt_h).astype(int) + 1

    def _windows(self, T: int, dt_h: float) -> dict[int, np.ndarray]:
        """Asset indices by rolling-window length (intervals), for windows shorter than the day."""
        lengths = self._window_lengths(dt_h)
        return {int(L): np.flatnonzero(lengths == L) for L in np.unique(lengths) if L <= T}

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        n, dt = self.n, b.dt_h
        u = part.bounded("curtail", "curtailment limits")
        baseline = part.parameter("baseline", (part.rows, b.T))
        cons = part.constraints
        cons.append(cp.sum(u, axis=1) * dt <= b.rows(self.max_energy_mwh_per_day))
        for L, assets in self._windows(b.T, dt).items():
            rows = (np.arange(b.K)[:, None] * n + assets[None, :]).ravel()
            window = np.array(
                [[1.0 if 0 <= t - s < L else 0.0 for s in range(b.T - L + 1)] for t in range(b.T)]
            )
            limit = b.column(self.max_curtail_mw * self.max_duration_h)[rows]
            cons.append((u[rows, :] @ window) * dt <= limit)
        part.power = cp.Variable((part.rows, b.T), name="interruptible_power")
        cons.append(part.power == u - baseline)
        part.cost = cp.multiply(b.column(self.cost_cny_per_mwh) * dt, u)
        part.up = part.params["curtail_hi"] - u
        part.down = u - part.params["curtail_lo"]
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        base = b.rows(self.profile(profiles))
        part.set("baseline", base)
        part.set("curtail_lo", 0.0)
        part.set("curtail_hi", b.rows(self.cap(profiles)))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        curtail = part.b.rows(previous) + part.params["baseline"].value
        part.pin(("curtail_lo", "curtail_hi"), np.maximum(curtail, 0.0), mask)

    def freeze_notice(self, part: Part, previous: np.ndarray, now_index: int) -> None:
        """Curtailment needs notice: keep the already-ordered intervals inside each asset's notice time."""
        b = part.b
        baseline = part.params["baseline"].value
        for i in range(self.n):
            k = int(np.ceil(self.notice_minutes[i] / (b.dt_h * 60)))
            if k == 0:
                continue
            mask = np.zeros(b.T, dtype=bool)
            mask[now_index : now_index + k] = True
            rows = np.arange(b.K) * self.n + i
            curtail = np.maximum(previous[i] + baseline[rows[0]], 0.0)
            for name in ("curtail_lo", "curtail_hi"):
                v = part.params[name].value.copy()
                v[np.ix_(rows, np.flatnonzero(mask))] = curtail[mask]
                part.params[name].value = v

    def peak_cut(
        self,
        solution: FleetSolution,
        scenario: int,
        hours: float,
        reference_price: float,
        carbon_price: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        u = solution.rows("curtail", scenario)
        hi = solution.up[scenario] + u  # the curtailment limit of the solve
        remaining = np.maximum(self.max_energy_mwh_per_day - u.sum(axis=1) * solution.dt_h, 0.0)
        capacity = np.minimum(hi - u, remaining[:, None] / hours)
        return np.maximum(capacity, 0.0), self.cost_cny_per_mwh

    def call_budgets(self, solution: FleetSolution, scenario: int, direction: str) -> Budgets:
        """The day's curtailment energy and every rolling duration window, after the schedule's own."""
        used = solution.rows("curtail", scenario) * solution.dt_h
        daily = Budgets.daily(self.max_energy_mwh_per_day - used.sum(axis=1), used.shape[1])
        limit = self.max_curtail_mw * self.max_duration_h
        return daily + Budgets.rolling(limit, used, self._window_lengths(solution.dt_h))

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        base = self.profile(profiles)
        curtail = setpoints + base
        hours = hour_of_day(setpoints.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        windows = self._windows(setpoints.shape[1], dt_h)
        cap = self.cap(profiles)
        for i, a in enumerate(self.ids):
            deep = curtail[i] - cap[i]
            if np.any(deep > tol):
                out.append(
                    f"{a}: " + problem("curtailed beyond its limit", deep > tol, hours, deep.max(), "MW")
                )
            if np.any(curtail[i] < -tol):
                above = curtail[i] < -tol
                out.append(
                    f"{a}: " + problem("consumes above its baseline", above, hours, -curtail[i].min(), "MW")
                )
            energy = curtail[i].sum() * dt_h
            if energy > self.max_energy_mwh_per_day[i] + tol:
                out.append(
                    f"{a}: curtailed {energy:.3g} MWh, above the daily limit {self.max_energy_mwh_per_day[i]:g} MWh"
                )
            for L, members in windows.items():
                if i in members:
                    rolling = np.convolve(curtail[i], np.ones(L), "valid") * dt_h
                    if rolling.max() > self.max_curtail_mw[i] * self.max_duration_h[i] + tol:
                        out.append(
                            f"{a}: curtailment lasts longer than {self.max_duration_h[i]:g} h at full depth"
                        )
        return out

    def numpy_cost(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        curtailed = setpoints + self.profile(profiles)[None]
        return (curtailed * self.cost_cny_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        return -self.profile(profiles)

    def virtualise(
        self, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
    ) -> Virtual:
        """Same node, cost and duration, and the same bin of daily energy per MW of depth and of
        baseline per MW of depth; members share in proportion to depth.

        An inner approximation: the virtual daily energy is the tightest member's (per share),
        and the virtual cap per interval is total depth x the lowest member baseline per MW of
        depth, so every member's share stays within its own baseline. The virtual baseline is
        the members' sum; each member's difference from its share of it is the split's offset.
        Members with proportional baselines (catalogue devices) split exactly, as before.
        """
        res = resolution or DEFAULT_RESOLUTION
        depth = self.max_curtail_mw
        base = self.profile(profiles)
        per_mw = base / depth[:, None]
        energy_bin = bins(self.max_energy_mwh_per_day / depth, res.ratio_bins)
        level_bin = bins(per_mw.mean(axis=1), res.ratio_bins)
        keys = [
            (self.nodes[i], self.cost_cny_per_mwh[i], self.max_duration_h[i], energy_bin[i], level_bin[i])
            for i in range(self.n)
        ]
        shares = group(keys, depth)
        clusters = tuple(
            Cluster(c.members, c.shares, c.shares[:, None] * base[c.members].sum(axis=0) - base[c.members])
            for c in shares
        )
        names = identity("vil", self, clusters)
        series_ids = [f"{i}.load_mw" for i in names["ids"]]
        cap_ids = [f"{i}.curtail_cap_mw" for i in names["ids"]]
        virtual = InterruptibleFleet(
            **names,
            series=series_ids,
            cap_series=tuple(cap_ids),
            max_curtail_mw=total(depth, clusters),
            max_duration_h=first(self.max_duration_h, clusters),
            max_energy_mwh_per_day=[
                (self.max_energy_mwh_per_day[c.members] / c.shares).min() for c in clusters
            ],
            cost_cny_per_mwh=first(self.cost_cny_per_mwh, clusters),
            notice_minutes=np.zeros(len(clusters)),
        )
        virtual_profiles = dict(profiles)
        for sid, cap_id, c in zip(series_ids, cap_ids, clusters, strict=True):
            virtual_profiles[sid] = base[c.members].sum(axis=0)
            virtual_profiles[cap_id] = depth[c.members].sum() * per_mw[c.members].min(axis=0)
        return Virtual(virtual, clusters, virtual_profiles)
