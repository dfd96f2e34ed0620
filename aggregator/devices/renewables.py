"""PV and wind: produce up to the forecast, curtailable at the cost of the lost green certificates."""

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
    param,
    problem,
    series,
)

# Generation forecasts may exceed nameplate by this factor (clear-sky edge effects) before we reject them.
CAPACITY_TOLERANCE = 1.1
# Curtailment below this (MW) is solver tolerance: the plant runs free.
CAP_TOLERANCE_MW = 1e-3
SETPOINT_DECIMALS = 6


@dataclass(frozen=True, eq=False, kw_only=True)
class RenewableFleet(Fleet):
    kind = "renewable"
    asset_types = ("pv", "wind")
    flexible = False
    uncertainty = -1

    series: tuple[str, ...] = field(metadata=series("{id}.{type}_mw"))
    capacity_mw: np.ndarray = field(metadata=param())
    curtailable: np.ndarray = field(metadata=param(dtype=bool))
    # Curtailed energy loses its green certificates (1 certificate per MWh).
    curtailment_cost_cny_per_mwh: np.ndarray = field(
        metadata=param(lambda a, park: park.carbon.green_certificate_price_cny)
    )

    def forecast_series(self) -> dict[str, float | None]:
        return {s: c * CAPACITY_TOLERANCE for s, c in zip(self.series, self.capacity_mw, strict=True)}

    def build(self, b: Build) -> Part:
        part = Part(self, b)
        p = part.bounded("p", "output within the forecast")
        available = part.parameter("available", (part.rows, b.T), nonneg=True)
        part.power = p
        part.cost = cp.multiply(b.column(self.curtailment_cost_cny_per_mwh) * b.dt_h, available - p)
        part.up = part.params["p_hi"] - p
        part.down = p - part.params["p_lo"]
        return part

    def load(self, part: Part, profiles: Profiles) -> None:
        b = part.b
        avail = b.rows(self.profile(profiles))
        part.set("available", avail)
        part.set("p_hi", avail)
        part.set("p_lo", np.where(b.rows(~self.curtailable)[:, None], avail, 0.0))

    def freeze(self, part: Part, previous: np.ndarray, mask: np.ndarray) -> None:
        part.pin(("p_lo", "p_hi", "available"), np.maximum(part.b.rows(previous), 0.0), mask)

    def dispatch_caps(self, setpoints: np.ndarray, profiles: Profiles) -> dict[str, list[float | None]]:
        """PV and wind run free (None) except where the dispatch curtails them: there the cap is the set-point."""
        available = self.profile(profiles)
        caps: dict[str, list[float | None]] = {}
        for i, asset in enumerate(self.ids):
            curtailed = setpoints[i] < available[i] - CAP_TOLERANCE_MW
            if np.any(curtailed):
                caps[asset] = [
                    round(float(p), SETPOINT_DECIMALS) if c else None
                    for p, c in zip(setpoints[i], curtailed, strict=True)
                ]
        return caps

    def check(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> list[str]:
        avail = self.profile(profiles)
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

    def numpy_cost(self, setpoints: np.ndarray, profiles: Profiles, dt_h: float) -> np.ndarray:
        curtailed = self.profile(profiles)[None] - setpoints
        return (curtailed * self.curtailment_cost_cny_per_mwh[None, :, None]).sum(axis=(1, 2)) * dt_h

    def unmanaged_setpoints(self, profiles: Profiles, T: int, dt_h: float) -> np.ndarray:
        return self.profile(profiles)
