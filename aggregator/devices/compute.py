"""Deferrable compute: a data centre's IT work served within its service window.

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
    param,
    problem,
    series,
    upper_triangular,
)


@dataclass(frozen=True, eq=False, kw_only=True)
class DataCentreFleet(Fleet):
    """Compute load: a share of the IT work may be deferred, but all of it is served within the service window.

    With cumulative work served ``S`` and arrived ``A``: ``S_t <= A_t`` (no work before it
    arrives), ``S_t >= A_{t-D}`` (nothing waits longer than ``max_deferral_h``) and the day's
    work is done by midnight. Electric power is IT power times PUE.
    """

    kind = "data_centre"
    asset_types = ("data_centre",)

    series: tuple[str, ...] = field(metadata=series("{id}.it_load_mw"))
    pue: np.ndarray = field(metadata=param())
    deferrable_fraction: np.ndarray = field(metadata=param())
    max_deferral_h: np.ndarray = field(metadata=param())
    max_power_mw: np.ndarray = field(metadata=param())

    def _due(self, it: np.ndarray, dt_h: float) -> tuple[np.ndarray, np.ndarray]:
        arrived = np.cumsum(it, axis=1)
        due = np.zeros_like(arrived)
        for i in range(self.n):
            lag = round(self.max_deferral_h[i] / dt_h)
            due[i, lag:] = arrived[i, : arrived.shape[1] - lag]
        due[:, -1] = arrived[:, -1]
        return arrived, due

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        R = part.rows
        s = part.bounded("served", "non-deferrable work within site power")
        arrived = part.parameter("arrived", (R, b.T))
        due = part.parameter("due", (R, b.T))
        short = cp.Variable((R, b.T), nonneg=True, name="compute_late")
        served = s @ upper_triangular(b.T)
        part.constraints += [served <= arrived, served + short >= due]
        part.softs = [Soft("compute served after its service window", short, "MWh", b.dt_h)]
        pue = b.column(self.pue)
        part.power = -cp.multiply(pue, s)
        part.up = cp.multiply(pue, s - part.params["served_lo"])
        part.down = cp.multiply(pue, part.params["served_hi"] - s)
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        it = self.profile(profiles)
        arrived, due = self._due(it, b.dt_h)
        part.set("arrived", b.rows(arrived))
        part.set("due", b.rows(due))
        part.set("served_lo", b.rows(it * (1 - self.deferrable_fraction[:, None])))
        part.set("served_hi", b.rows(np.repeat((self.max_power_mw / self.pue)[:, None], b.T, axis=1)))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("served_lo", "served_hi"), part.b.rows(-previous / self.pue[:, None]), mask)

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        it = self.profile(profiles)
        s = -setpoints / self.pue[:, None]
        arrived, due = self._due(it, dt_h)
        served = np.cumsum(s, axis=1)
        hours = hour_of_day(s.shape[1], dt_h)
        tol = CHECK_TOLERANCE
        out = []
        for i, a in enumerate(self.ids):
            checks = [
                (
                    "serves less than the non-deferrable work",
                    it[i] * (1 - self.deferrable_fraction[i]) - s[i],
                    "MW",
                ),
                ("exceeds its site power", (s[i] - self.max_power_mw[i] / self.pue[i]) * self.pue[i], "MW"),
                ("serves work before it arrives", (served[i] - arrived[i]) * dt_h, "MWh"),
                ("serves work after its service window", (due[i] - served[i]) * dt_h, "MWh"),
            ]
            for label, excess, unit in checks:
                if np.any(excess > tol):
                    out.append(f"{a}: " + problem(label, excess > tol, hours, excess.max(), unit))
        return out

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        """Without a VPP work is served as it arrives."""
        return -self.profile(profiles) * self.pue[:, None]
