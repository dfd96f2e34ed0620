"""Consumers: inflexible load, interruptible load, shiftable batches, EV fleets, deferrable compute.

All power here is net injection, so consumption is negative.
"""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import (
    CHECK_TOLERANCE,
    Build,
    Fleet,
    Profiles,
    Soft,
    column,
    freeze_parameters,
    hour_of_day,
    identity,
    in_window,
    problem,
    upper_triangular,
)


def _stack(profiles: Profiles, series: Sequence[str]) -> np.ndarray:
    return np.stack([np.asarray(profiles[s], dtype=float) for s in series])


class FixedLoadFleet(Fleet):
    """Inflexible load: the dispatch sends its expected power so the set-points add up."""

    kind = "inflexible_load"

    def __init__(
        self, ids: Sequence[str], enterprises: Sequence[str], nodes: Sequence[str], *, series: Sequence[str]
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.series = list(series)

    @classmethod
    def from_assets(cls, assets: Sequence) -> FixedLoadFleet:
        return cls(
            *identity(assets),
            series=[f"{a.id}.load_mw" for a in assets],
        )

    def build(self, b: Build) -> None:
        self.b = b
        self.load = cp.Parameter((b.K * self.n, b.T), name="fixed_load")
        self.load.value = np.zeros((b.K * self.n, b.T))
        # A variable pinned to the forecast keeps park power parameter-free (DPP: price x power).
        self.power = cp.Variable((b.K * self.n, b.T), name="fixed_load_power")
        self.constraints = [self.power == -self.load]

    def set_profiles(self, profiles: Profiles) -> None:
        self.load.value = self.b.rows(_stack(profiles, self.series))

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.load], self.b.rows(-previous), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        gap = np.abs(setpoints + _stack(profiles, self.series))
        hours = hour_of_day(setpoints.shape[1], dt_h)
        return [
            f"{a}: "
            + problem(
                "set-point differs from the expected load",
                gap[i] > CHECK_TOLERANCE,
                hours,
                gap[i].max(),
                "MW",
            )
            for i, a in enumerate(self.ids)
            if np.any(gap[i] > CHECK_TOLERANCE)
        ]


class InterruptibleFleet(Fleet):
    """Load that can be curtailed below its baseline, within depth, daily energy and duration, at a price.

    Maximum duration is kept convex as a rolling limit: over any window one interval longer
    than ``max_duration_h``, curtailed energy stays below ``max_curtail_mw * max_duration_h``,
    so full-depth curtailment never lasts longer than allowed.
    """

    kind = "interruptible_load"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        series: Sequence[str],
        max_curtail_mw: np.ndarray,
        max_duration_h: np.ndarray,
        max_energy_mwh: np.ndarray,
        cost_cny_per_mwh: np.ndarray,
        notice_minutes: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.series = list(series)
        self.max_curtail = np.asarray(max_curtail_mw, dtype=float)
        self.max_duration = np.asarray(max_duration_h, dtype=float)
        self.max_energy = np.asarray(max_energy_mwh, dtype=float)
        self.cost_per_mwh = np.asarray(cost_cny_per_mwh, dtype=float)
        self.notice_minutes = np.asarray(notice_minutes, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> InterruptibleFleet:
        return cls(
            *identity(assets),
            series=[f"{a.id}.load_mw" for a in assets],
            max_curtail_mw=column(assets, "max_curtail_mw"),
            max_duration_h=column(assets, "max_duration_h"),
            max_energy_mwh=column(assets, "max_energy_mwh_per_day"),
            cost_cny_per_mwh=column(assets, "cost_cny_per_mwh"),
            notice_minutes=column(assets, "notice_minutes"),
        )

    def _windows(self, T: int, dt_h: float) -> dict[int, np.ndarray]:
        """Asset indices by rolling-window length (intervals), for windows shorter than the day."""
        lengths = np.round(self.max_duration / dt_h).astype(int) + 1
        return {int(L): np.flatnonzero(lengths == L) for L in np.unique(lengths) if L <= T}

    def build(self, b: Build) -> None:
        self.b = b
        n, dt = self.n, b.dt_h
        self.u, self.lo, self.hi = self.bounded(b, "curtail", "curtailment limits")
        self.baseline = cp.Parameter((b.K * n, b.T), name="interruptible_baseline")
        cons = self.constraints
        cons.append(cp.sum(self.u, axis=1) * dt <= b.rows(self.max_energy))
        for L, assets in self._windows(b.T, dt).items():
            rows = (np.arange(b.K)[:, None] * n + assets[None, :]).ravel()
            window = np.array(
                [[1.0 if 0 <= t - s < L else 0.0 for s in range(b.T - L + 1)] for t in range(b.T)]
            )
            limit = b.column(self.max_curtail * self.max_duration)[rows]
            cons.append((self.u[rows, :] @ window) * dt <= limit)
        self.power = cp.Variable((b.K * n, b.T), name="interruptible_power")
        cons.append(self.power == self.u - self.baseline)
        self.cost = cp.multiply(b.column(self.cost_per_mwh) * dt, self.u)
        self.up = self.hi - self.u
        self.down = self.u - self.lo
        self.set_profiles({s: np.zeros(b.T) for s in self.series})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        base = b.rows(_stack(profiles, self.series))
        self.baseline.value = base
        self.lo.value = np.zeros_like(base)
        self.hi.value = np.minimum(b.column(self.max_curtail), base)

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        b = self.b
        base = self.baseline.value
        curtail = b.rows(previous) + base
        freeze_parameters([self.lo, self.hi], np.maximum(curtail, 0.0), mask)

    def freeze_notice(self, previous: np.ndarray, now_index: int) -> None:
        """Curtailment needs notice: keep the already-ordered intervals inside each asset's notice time."""
        b = self.b
        for i in range(self.n):
            k = int(np.ceil(self.notice_minutes[i] / (b.dt_h * 60)))
            if k == 0:
                continue
            mask = np.zeros(b.T, dtype=bool)
            mask[now_index : now_index + k] = True
            rows = np.arange(b.K) * self.n + i
            curtail = np.maximum(previous[i] + self.baseline.value[rows[0]], 0.0)
            for param in (self.lo, self.hi):
                v = param.value.copy()
                v[np.ix_(rows, np.flatnonzero(mask))] = curtail[mask]
                param.value = v

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        base = _stack(profiles, self.series)
        curtail = setpoints + base
        hours = hour_of_day(setpoints.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        windows = self._windows(setpoints.shape[1], dt_h)
        for i, a in enumerate(self.ids):
            deep = curtail[i] - np.minimum(self.max_curtail[i], base[i])
            if np.any(deep > tol):
                out.append(
                    f"{a}: " + problem("curtailed beyond its limit", deep > tol, hours, deep.max(), "MW")
                )
            if np.any(curtail[i] < -tol):
                out.append(
                    f"{a}: "
                    + problem(
                        "consumes above its baseline", curtail[i] < -tol, hours, -curtail[i].min(), "MW"
                    )
                )
            energy = curtail[i].sum() * dt_h
            if energy > self.max_energy[i] + tol:
                out.append(
                    f"{a}: curtailed {energy:.3g} MWh, above the daily limit {self.max_energy[i]:g} MWh"
                )
            for L, members in windows.items():
                if i in members:
                    rolling = np.convolve(curtail[i], np.ones(L), "valid") * dt_h
                    if rolling.max() > self.max_curtail[i] * self.max_duration[i] + tol:
                        out.append(
                            f"{a}: curtailment lasts longer than {self.max_duration[i]:g} h at full depth"
                        )
        return out

    def peak_cut(self, scenario: int, hours: float, reference_price: float) -> tuple[np.ndarray, np.ndarray]:
        u = self.scenario_rows(self.u.value, scenario)
        hi = self.scenario_rows(self.hi.value, scenario)
        remaining = np.maximum(self.max_energy - u.sum(axis=1) * self.b.dt_h, 0.0)
        capacity = np.minimum(hi - u, remaining[:, None] / hours)
        return np.maximum(capacity, 0.0), self.cost_per_mwh


class BatchFleet(Fleet):
    """Shiftable production batches: a day's energy within a daily window, between power bounds."""

    kind = "shiftable_batch"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        energy_mwh: np.ndarray,
        power_min_mw: np.ndarray,
        power_max_mw: np.ndarray,
        window_start_h: np.ndarray,
        window_end_h: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.energy = np.asarray(energy_mwh, dtype=float)
        self.pmin = np.asarray(power_min_mw, dtype=float)
        self.pmax = np.asarray(power_max_mw, dtype=float)
        self.window = (np.asarray(window_start_h, dtype=float), np.asarray(window_end_h, dtype=float))

    @classmethod
    def from_assets(cls, assets: Sequence) -> BatchFleet:
        return cls(
            *identity(assets),
            energy_mwh=column(assets, "energy_per_day_mwh"),
            power_min_mw=column(assets, "power_min_mw"),
            power_max_mw=column(assets, "power_max_mw"),
            window_start_h=column(assets, "window_start_hour"),
            window_end_h=column(assets, "window_end_hour"),
        )

    def masks(self, T: int, dt_h: float) -> np.ndarray:
        hours = hour_of_day(T, dt_h)
        return np.stack([in_window(hours, s, e) for s, e in zip(*self.window, strict=True)]).astype(float)

    def build(self, b: Build) -> None:
        self.b = b
        self.p, self.lo, self.hi = self.bounded(b, "batch", "batch power bounds")
        short = cp.Variable(b.K * self.n, nonneg=True, name="batch_short")
        excess = cp.Variable(b.K * self.n, nonneg=True, name="batch_excess")
        self.constraints.append(cp.sum(self.p, axis=1) * b.dt_h - b.rows(self.energy) == excess - short)
        self.softs = [
            Soft("batch energy not delivered", short, "MWh"),
            Soft("batch energy above the day's need", excess, "MWh"),
        ]
        self.power = -self.p
        self.up = self.p - self.lo
        self.down = self.hi - self.p
        self.set_profiles({})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        mask = self.masks(b.T, b.dt_h)
        self.lo.value = b.rows(mask * self.pmin[:, None])
        self.hi.value = b.rows(mask * self.pmax[:, None])

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.lo, self.hi], self.b.rows(-previous), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        p = -setpoints
        mask = self.masks(p.shape[1], dt_h)
        hours = hour_of_day(p.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            low = mask[i] * self.pmin[i] - p[i]
            high = p[i] - mask[i] * self.pmax[i]
            if np.any(low > tol):
                out.append(
                    f"{a}: "
                    + problem("below its minimum power in the window", low > tol, hours, low.max(), "MW")
                )
            if np.any(high > tol):
                out.append(
                    f"{a}: "
                    + problem(
                        "above its maximum power or outside its window", high > tol, hours, high.max(), "MW"
                    )
                )
            energy = p[i].sum() * dt_h
            if abs(energy - self.energy[i]) > tol * max(1.0, self.energy[i]):
                out.append(f"{a}: runs {energy:.4g} MWh instead of the day's {self.energy[i]:g} MWh")
        return out


class EVFleetModel(Fleet):
    """EV charging fleets: each plugged-in stretch of the day gets its share of the daily energy by departure.

    A fleet plugged in overnight (19:00-07:00) has two stretches in one market day; each must
    charge the share of the daily energy proportional to its hours. With vehicle-to-grid,
    discharge is limited so the fleet never gives back more than it charged in that stretch.
    """

    kind = "ev_fleet"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        charge_mw: np.ndarray,
        v2g_mw: np.ndarray,
        energy_mwh: np.ndarray,
        arrival_h: np.ndarray,
        departure_h: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.charge_mw = np.asarray(charge_mw, dtype=float)
        self.v2g_mw = np.asarray(v2g_mw, dtype=float)
        self.energy = np.asarray(energy_mwh, dtype=float)
        self.arrival = np.asarray(arrival_h, dtype=float)
        self.departure = np.asarray(departure_h, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> EVFleetModel:
        return cls(
            *identity(assets),
            charge_mw=column(assets, "charge_mw"),
            v2g_mw=column(assets, "v2g_mw"),
            energy_mwh=column(assets, "energy_per_day_mwh"),
            arrival_h=column(assets, "arrival_hour"),
            departure_h=column(assets, "departure_hour"),
        )

    def stretches(self, T: int, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Two stretch masks per fleet (n, 2, T) and the energy each must receive (n, 2)."""
        hours = hour_of_day(T, dt_h)
        masks = np.zeros((self.n, 2, T))
        shares = np.zeros((self.n, 2))
        for i in range(self.n):
            plugged = in_window(hours, self.arrival[i], self.departure[i])
            plugged_h = (self.departure[i] - self.arrival[i]) % 24 or 24
            edges = np.flatnonzero(np.diff(np.concatenate([[0], plugged.astype(int), [0]])))
            for j, (start, end) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
                masks[i, j, start:end] = 1.0
                shares[i, j] = self.energy[i] * (end - start) * dt_h / plugged_h
        return masks, shares

    def build(self, b: Build) -> None:
        self.b = b
        n = self.n
        self.e, self.e_lo, self.e_hi = self.bounded(b, "ev_charge", "charging limits")
        self.has_v2g = bool(np.any(self.v2g_mw > 0))
        if self.has_v2g:
            self.v, self.v_lo, self.v_hi = self.bounded(b, "ev_discharge", "vehicle-to-grid limits")
        else:
            self.v = self.v_lo = self.v_hi = 0.0
        cons = self.constraints
        masks, shares = self.stretches(b.T, b.dt_h)
        net = self.e - self.v
        softs = []
        upper = upper_triangular(b.T)
        for j in range(2):
            mask = b.rows(masks[:, j, :])
            short = cp.Variable(b.K * n, nonneg=True, name=f"ev_short_{j}")
            cons.append(cp.sum(cp.multiply(mask, net), axis=1) * b.dt_h + short == b.rows(shares[:, j]))
            softs.append(Soft("energy by departure", short, "MWh"))
            if self.has_v2g:
                cons.append(cp.multiply(mask, net) @ upper >= 0)
        self.softs = softs
        self.power = self.v - self.e
        self.up = (self.e - self.e_lo) + (self.v_hi - self.v)
        self.down = (self.e_hi - self.e) + (self.v - self.v_lo)
        self.set_profiles({})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        plugged = self.stretches(b.T, b.dt_h)[0].sum(axis=1)
        self.e_lo.value = np.zeros((b.K * self.n, b.T))
        self.e_hi.value = b.rows(plugged * self.charge_mw[:, None])
        if self.has_v2g:
            self.v_lo.value = np.zeros((b.K * self.n, b.T))
            self.v_hi.value = b.rows(plugged * self.v2g_mw[:, None])

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        rows = self.b.rows(previous)
        freeze_parameters([self.e_lo, self.e_hi], np.maximum(-rows, 0.0), mask)
        if self.has_v2g:
            freeze_parameters([self.v_lo, self.v_hi], np.maximum(rows, 0.0), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        masks, shares = self.stretches(setpoints.shape[1], dt_h)
        plugged = masks.sum(axis=1)
        hours = hour_of_day(setpoints.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            over = -setpoints[i] - plugged[i] * self.charge_mw[i]
            back = setpoints[i] - plugged[i] * self.v2g_mw[i]
            if np.any(over > tol):
                out.append(
                    f"{a}: "
                    + problem(
                        "charges above its limit or while unplugged", over > tol, hours, over.max(), "MW"
                    )
                )
            if np.any(back > tol):
                out.append(
                    f"{a}: "
                    + problem(
                        "discharges beyond its vehicle-to-grid limit", back > tol, hours, back.max(), "MW"
                    )
                )
            for j in range(2):
                got = float(np.sum(-setpoints[i] * masks[i, j])) * dt_h
                if abs(got - shares[i, j]) > tol * max(1.0, shares[i, j]):
                    out.append(
                        f"{a}: charges {got:.4g} MWh in a plugged-in stretch that needs {shares[i, j]:.4g} MWh"
                    )
        return out


class DataCentreFleet(Fleet):
    """Compute load: a share of the IT work may be deferred, but all of it is served within the service window.

    With cumulative work served ``S`` and arrived ``A``: ``S_t <= A_t`` (no work before it
    arrives), ``S_t >= A_{t-D}`` (nothing waits longer than ``max_deferral_h``) and the day's
    work is done by midnight. Electric power is IT power times PUE.
    """

    kind = "data_centre"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        series: Sequence[str],
        pue: np.ndarray,
        deferrable_fraction: np.ndarray,
        max_deferral_h: np.ndarray,
        max_power_mw: np.ndarray,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.series = list(series)
        self.pue = np.asarray(pue, dtype=float)
        self.deferrable = np.asarray(deferrable_fraction, dtype=float)
        self.max_deferral = np.asarray(max_deferral_h, dtype=float)
        self.max_power = np.asarray(max_power_mw, dtype=float)

    @classmethod
    def from_assets(cls, assets: Sequence) -> DataCentreFleet:
        return cls(
            *identity(assets),
            series=[f"{a.id}.it_load_mw" for a in assets],
            pue=column(assets, "pue"),
            deferrable_fraction=column(assets, "deferrable_fraction"),
            max_deferral_h=column(assets, "max_deferral_h"),
            max_power_mw=column(assets, "max_power_mw"),
        )

    def _due(self, it: np.ndarray, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        arrived = np.cumsum(it, axis=1)
        due = np.zeros_like(arrived)
        for i in range(self.n):
            lag = round(self.max_deferral[i] / dt_h)
            due[i, lag:] = arrived[i, : arrived.shape[1] - lag]
        due[:, -1] = arrived[:, -1]
        return arrived, due

    def build(self, b: Build) -> None:
        self.b = b
        R = b.K * self.n
        self.s, self.lo, self.hi = self.bounded(b, "compute", "non-deferrable work within site power")
        cons = self.constraints
        self.arrived = cp.Parameter((R, b.T), name="compute_arrived")
        self.due = cp.Parameter((R, b.T), name="compute_due")
        short = cp.Variable((R, b.T), nonneg=True, name="compute_late")
        served = self.s @ upper_triangular(b.T)
        cons += [served <= self.arrived, served + short >= self.due]
        self.softs = [Soft("compute served after its service window", short, "MWh", b.dt_h)]
        pue = b.column(self.pue)
        self.power = -cp.multiply(pue, self.s)
        self.up = cp.multiply(pue, self.s - self.lo)
        self.down = cp.multiply(pue, self.hi - self.s)
        self.set_profiles({s: np.zeros(b.T) for s in self.series})

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        it = _stack(profiles, self.series)
        arrived, due = self._due(it, b.dt_h)
        self.arrived.value = b.rows(arrived)
        self.due.value = b.rows(due)
        self.lo.value = b.rows(it * (1 - self.deferrable[:, None]))
        self.hi.value = b.rows(np.repeat((self.max_power / self.pue)[:, None], b.T, axis=1))

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        freeze_parameters([self.lo, self.hi], self.b.rows(-previous / self.pue[:, None]), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        it = _stack(profiles, self.series)
        s = -setpoints / self.pue[:, None]
        arrived, due = self._due(it, dt_h)
        served = np.cumsum(s, axis=1)
        hours = hour_of_day(s.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            checks = [
                ("serves less than the non-deferrable work", it[i] * (1 - self.deferrable[i]) - s[i], "MW"),
                ("exceeds its site power", (s[i] - self.max_power[i] / self.pue[i]) * self.pue[i], "MW"),
                ("serves work before it arrives", (served[i] - arrived[i]) * dt_h, "MWh"),
                ("serves work after its service window", (due[i] - served[i]) * dt_h, "MWh"),
            ]
            for label, excess, unit in checks:
                if np.any(excess > tol):
                    out.append(f"{a}: " + problem(label, excess > tol, hours, excess.max(), unit))
        return out
