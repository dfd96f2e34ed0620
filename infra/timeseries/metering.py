"""Meter readings arriving as messages on ``vpp.metering`` go into the time-series store.

Each asset's metered energy becomes series ``<asset>.energy_mwh`` and the grid connection's
``park.grid_energy_mwh``, on the message's interval grid (net injection, the contracts' sign
convention). Readings are checked by the same rules as a meter file; a message with an
implausible reading is refused whole (dead-lettered with the reason) and nothing is stored.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from infra.contracts import Metering, Topic
from infra.registry import portfolio
from infra.timeseries.checks import bounds
from infra.timeseries.store import write
from infra.worker import MessageContext, Worker

log = logging.getLogger(__name__)


def metering_series(metering: Metering) -> dict[str, pd.Series]:
    index = pd.DatetimeIndex(metering.interval_starts)
    out = {"park.grid_energy_mwh": pd.Series(metering.grid_energy_mwh, index=index, dtype=float)}
    for a in metering.assets:
        values = [np.nan if v is None else v for v in a.energy_mwh]
        out[f"{a.asset_id}.energy_mwh"] = pd.Series(values, index=index, dtype=float)
    return out


class MeteringIngestWorker(Worker):
    """Stores every metering message's readings (idempotent: a replay stores nothing new)."""

    group = "telemetry"
    topics = (Topic.METERING,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        metering = Metering.from_envelope(env)
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        readings = metering_series(metering)
        problems = []
        for name, series in readings.items():
            rule = bounds(name, scenario, metering.interval_minutes)
            for ts, value in series.dropna().items():
                problem = rule.problem(float(value))
                if problem:
                    problems.append(f"{name} at {ts.isoformat()}: {problem}")
        if problems:
            raise ValueError(
                f"metering {env.message_id}: {len(problems)} implausible readings: "
                + "; ".join(problems[:10])
            )
        with ctx.transaction() as conn:
            report = write(
                conn,
                env.park_id,
                readings,
                f"{metering.source} {env.message_id[:12]}",
                metering.interval_minutes,
            )
        log.info("telemetry: %s %s metering: %s", env.park_id, env.market_day, report.describe())
