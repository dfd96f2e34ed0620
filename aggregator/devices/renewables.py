"""PV and wind: produce up to the forecast, curtailable at the cost of the lost green certificates."""

from __future__ import annotations

from collections.abc import Sequence

import cvxpy as cp
import numpy as np

from aggregator.devices.base import CHECK_TOLERANCE, Build, Fleet, Profiles, identity, problem


class RenewableFleet(Fleet):
    kind = "renewable"

    def __init__(
        self,
        ids: Sequence[str],
        enterprises: Sequence[str],
        nodes: Sequence[str],
        *,
        series: Sequence[str],
        curtailable: np.ndarray,
        curtailment_cost_cny_per_mwh: float,
    ) -> None:
        super().__init__(ids, enterprises, nodes)
        self.series = list(series)
        self.curtailable = np.asarray(curtailable, dtype=bool)
        self.curtailment_cost = curtailment_cost_cny_per_mwh

    @classmethod
    def from_assets(cls, assets: Sequence, curtailment_cost_cny_per_mwh: float) -> RenewableFleet:
        return cls(
            *identity(assets),
            series=[f"{a.id}.{a.type}_mw" for a in assets],
            curtailable=np.array([a.curtailable for a in assets]),
            curtailment_cost_cny_per_mwh=curtailment_cost_cny_per_mwh,
        )

    def build(self, b: Build) -> None:
        self.b = b
        self.p, self.lo, self.hi = self.bounded(b, "renewable", "output within the forecast")
        self.available = cp.Parameter((b.K * self.n, b.T), nonneg=True, name="renewable_available")
        self.power = self.p
        # Curtailed energy loses its green certificates (1 certificate per MWh).
        self.cost = self.curtailment_cost * b.dt_h * (self.available - self.p)
        self.up = self.hi - self.p
        self.down = self.p - self.lo
        self.set_profiles({s: np.zeros(b.T) for s in self.series})

    def _available(self, profiles: Profiles) -> np.ndarray:
        return np.stack([np.asarray(profiles[s], dtype=float) for s in self.series])

    def set_profiles(self, profiles: Profiles) -> None:
        b = self.b
        avail = b.rows(self._available(profiles))
        fixed = b.rows(~self.curtailable)
        self.available.value = avail
        self.hi.value = avail
        self.lo.value = np.where(fixed[:, None], avail, 0.0)

    def freeze(self, previous: np.ndarray, mask: np.ndarray) -> None:
        rows = self.b.rows(previous)
        for param in (self.lo, self.hi, self.available):
            v = param.value.copy()
            v[:, mask] = np.maximum(rows[:, mask], 0.0)
            param.value = v

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        avail = self._available(profiles)
        hours = np.arange(setpoints.shape[1]) * dt_h
        out = []
        for i, asset in enumerate(self.ids):
            over = setpoints[i] - avail[i]
            under = -setpoints[i] if self.curtailable[i] else avail[i] - setpoints[i]
            if np.any(over > CHECK_TOLERANCE):
                out.append(
                    f"{asset}: "
                    + problem("output above the forecast", over > CHECK_TOLERANCE, hours, over.max(), "MW")
                )
            if np.any(under > CHECK_TOLERANCE):
                label = "negative output" if self.curtailable[i] else "curtailed although not curtailable"
                out.append(f"{asset}: " + problem(label, under > CHECK_TOLERANCE, hours, under.max(), "MW"))
        return out
