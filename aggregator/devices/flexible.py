"""Loads that need energy within a window: shiftable production batches and EV charging fleets.

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
    Part,
    Profiles,
    Soft,
    hour_of_day,
    in_window,
    param,
    problem,
    upper_triangular,
)
from aggregator.devices.cluster import (
    DEFAULT_RESOLUTION,
    Resolution,
    Virtual,
)


@dataclass(frozen=True, eq=False, kw_only=True)
class BatchFleet(Fleet):
    """Shiftable production batches: a day's energy within a daily window, between power bounds."""

    kind = "shiftable_batch"
    asset_types = ("shiftable_batch",)

    energy_per_day_mwh: np.ndarray = field(metadata=param())
    power_min_mw: np.ndarray = field(metadata=param())
    power_max_mw: np.ndarray = field(metadata=param())
    window_start_hour: np.ndarray = field(metadata=param())
    window_end_hour: np.ndarray = field(metadata=param())

    def masks(self, T: int, dt_h: float) -> np.ndarray:
        hours = hour_of_day(T, dt_h)
        windows = zip(self.window_start_hour, self.window_end_hour, strict=True)
        return np.stack([in_window(hours, s, e) for s, e in windows]).astype(float)

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        p = part.bounded("p", "batch power bounds")
        short = cp.Variable(part.rows, nonneg=True, name="batch_short")
        excess = cp.Variable(part.rows, nonneg=True, name="batch_excess")
        part.constraints.append(
            cp.sum(p, axis=1) * b.dt_h - b.rows(self.energy_per_day_mwh) == excess - short
        )
        part.softs = [
            Soft("batch energy not delivered", short, "MWh"),
            Soft("batch energy above the day's need", excess, "MWh"),
        ]
        part.power = -p
        part.up = p - part.params["p_lo"]
        part.down = part.params["p_hi"] - p
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        mask = self.masks(b.T, b.dt_h)
        part.set("p_lo", b.rows(mask * self.power_min_mw[:, None]))
        part.set("p_hi", b.rows(mask * self.power_max_mw[:, None]))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("p_lo", "p_hi"), part.b.rows(-previous), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        p = -setpoints
        mask = self.masks(p.shape[1], dt_h)
        hours = hour_of_day(p.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            low = mask[i] * self.power_min_mw[i] - p[i]
            high = p[i] - mask[i] * self.power_max_mw[i]
            if np.any(low > tol):
                label = "below its minimum power in the window"
                out.append(f"{a}: " + problem(label, low > tol, hours, low.max(), "MW"))
            if np.any(high > tol):
                label = "above its maximum power or outside its window"
                out.append(f"{a}: " + problem(label, high > tol, hours, high.max(), "MW"))
            energy = p[i].sum() * dt_h
            need = self.energy_per_day_mwh[i]
            if abs(energy - need) > tol * max(1.0, need):
                out.append(f"{a}: runs {energy:.4g} MWh instead of the day's {need:g} MWh")
        return out

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """Without a VPP a batch runs flat across its window."""
        mask = self.masks(T, dt_h)
        return -mask * (self.energy_per_day_mwh / (mask.sum(axis=1) * dt_h))[:, None]

    def virtualise(
        self, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
    ) -> Virtual:
        """Batches at one node with similar windows, spare power per MWh and minimum power
        (:func:`~aggregator.devices.pools.pool_batches`)."""
        from aggregator.devices.pools import pool_batches

        return pool_batches(self, T, dt_h, resolution or DEFAULT_RESOLUTION)


@dataclass(frozen=True, eq=False, kw_only=True)
class EVFleetModel(Fleet):
    """EV charging fleets: each plugged-in stretch of the day gets its share of the daily energy by departure.

    A fleet plugged in overnight (19:00-07:00) has two stretches in one market day; each must
    charge the share of the daily energy proportional to its hours. With vehicle-to-grid,
    discharge is limited so the fleet never gives back more than it charged in that stretch.
    """

    kind = "ev_fleet"
    asset_types = ("ev_fleet",)

    charge_mw: np.ndarray = field(metadata=param())
    v2g_mw: np.ndarray = field(metadata=param())
    energy_per_day_mwh: np.ndarray = field(metadata=param())
    arrival_hour: np.ndarray = field(metadata=param())
    departure_hour: np.ndarray = field(metadata=param())

    def stretches(self, T: int, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Two stretch masks per fleet (n, 2, T) and the energy each must receive (n, 2)."""
        hours = hour_of_day(T, dt_h)
        masks = np.zeros((self.n, 2, T))
        shares = np.zeros((self.n, 2))
        for i in range(self.n):
            arrival, departure = self.arrival_hour[i], self.departure_hour[i]
            plugged = in_window(hours, arrival, departure)
            plugged_h = (departure - arrival) % 24 or 24
            edges = np.flatnonzero(np.diff(np.concatenate([[0], plugged.astype(int), [0]])))
            for j, (start, end) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
                masks[i, j, start:end] = 1.0
                shares[i, j] = self.energy_per_day_mwh[i] * (end - start) * dt_h / plugged_h
        return masks, shares

    @property
    def has_v2g(self) -> bool:
        return bool(np.any(self.v2g_mw > 0))

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        e = part.bounded("charge", "charging limits")
        v = part.bounded("discharge", "vehicle-to-grid limits") if self.has_v2g else 0.0
        masks, shares = self.stretches(b.T, b.dt_h)
        net = e - v
        upper = upper_triangular(b.T)
        for j in range(2):
            mask = b.rows(masks[:, j, :])
            short = cp.Variable(part.rows, nonneg=True, name=f"ev_short_{j}")
            part.constraints.append(
                cp.sum(cp.multiply(mask, net), axis=1) * b.dt_h + short == b.rows(shares[:, j])
            )
            part.softs.append(Soft("energy by departure", short, "MWh"))
            if self.has_v2g:
                part.constraints.append(cp.multiply(mask, net) @ upper >= 0)
        part.power = v - e
        part.up = e - part.params["charge_lo"]
        part.down = part.params["charge_hi"] - e
        if self.has_v2g:
            part.up = part.up + (part.params["discharge_hi"] - v)
            part.down = part.down + (v - part.params["discharge_lo"])
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        plugged = self.stretches(b.T, b.dt_h)[0].sum(axis=1)
        part.set("charge_lo", 0.0)
        part.set("charge_hi", b.rows(plugged * self.charge_mw[:, None]))
        if self.has_v2g:
            part.set("discharge_lo", 0.0)
            part.set("discharge_hi", b.rows(plugged * self.v2g_mw[:, None]))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        rows = part.b.rows(previous)
        part.pin(("charge_lo", "charge_hi"), np.maximum(-rows, 0.0), mask)
        if self.has_v2g:
            part.pin(("discharge_lo", "discharge_hi"), np.maximum(rows, 0.0), mask)

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
                label = "charges above its limit or while unplugged"
                out.append(f"{a}: " + problem(label, over > tol, hours, over.max(), "MW"))
            if np.any(back > tol):
                label = "discharges beyond its vehicle-to-grid limit"
                out.append(f"{a}: " + problem(label, back > tol, hours, back.max(), "MW"))
            for j in range(2):
                got = float(np.sum(-setpoints[i] * masks[i, j])) * dt_h
                if abs(got - shares[i, j]) > tol * max(1.0, shares[i, j]):
                    out.append(
                        f"{a}: charges {got:.4g} MWh in a plugged-in stretch that needs {shares[i, j]:.4g} MWh"
                    )
        return out

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """Without a VPP every fleet charges at full power from arrival until its stretch has its share."""
        masks, shares = self.stretches(T, dt_h)
        p = np.zeros((self.n, T))
        for i in range(self.n):
            for j in range(2):
                left = shares[i, j]
                for t in np.flatnonzero(masks[i, j]):
                    take = min(self.charge_mw[i], left / dt_h)
                    p[i, t] = -take
                    left -= take * dt_h
        return p

    def virtualise(
        self, profiles: Profiles, T: int, dt_h: float, resolution: Resolution | None = None
    ) -> Virtual:
        """Fleets at one node with similar plug-in times and charging power per MWh
        (:func:`~aggregator.devices.pools.pool_evs`)."""
        from aggregator.devices.pools import pool_evs

        return pool_evs(self, T, dt_h, resolution or DEFAULT_RESOLUTION)
