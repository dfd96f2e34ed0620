"""DELIVERY SIMULATOR: what the park's assets actually did, as their meters recorded it.

Uncontrolled assets follow the physical truth of the day (inflexible loads; PV and wind at
their available output, capped where the dispatch curtailed them). Controlled assets follow
their set-points with autocorrelated tracking error and an occasional partial failure to
follow. Meters have gaps (None). Regulation performance (mileage and the k1-k3 factors) is
measured where the park held regulation capacity. All seeded by park, day and asset.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np

from infra.contracts import AssetMetering, Dispatch, Metering, RegulationPerformance, Topic, message_id
from infra.db.outbox import enqueue_message
from infra.registry import portfolio
from infra.scenario.model import Scenario
from infra.worker import MessageContext, Worker
from sim import agc
from sim.backfill import backfill
from sim.history import load_history
from sim.noise import ar1, rng

log = logging.getLogger(__name__)

SOURCE = "parkvpp-delivery-simulator"
UNCONTROLLED = {"inflexible_load": "load_mw"}
GENERATION = {"pv": "pv_mw", "wind": "wind_mw"}
FOLLOW_FAILURE_PROBABILITY = 0.05


def _controlled_mw(setpoint: np.ndarray, deviation: float, gen: np.random.Generator) -> np.ndarray:
    """Set-point tracking with AR(1) error and, rarely, a few hours at 60-90 % of the set-point."""
    actual = setpoint * (1.0 + ar1(gen, len(setpoint), deviation, 0.8))
    if gen.random() < FOLLOW_FAILURE_PROBABILITY * 24:
        start = int(gen.integers(0, len(setpoint)))
        length = int(gen.integers(4, 16))
        actual[start : start + length] *= gen.uniform(0.6, 0.9)
    return actual


def _regulation(
    held_mw: list[float], scenario: Scenario, hours: float, gen: np.random.Generator
) -> RegulationPerformance:
    """Per interval holding regulation: mileage about the market file's expectation, and k1-k3
    measured from a simulated AGC signal and the battery pool following it (:mod:`sim.agc`), the
    same simulation the exchange ranks the park's regulation offers with."""
    held = np.asarray(held_mw, dtype=float)
    active = held > 0
    mileage = held * scenario.market.regulation.mileage_per_mw_h * hours * gen.uniform(0.7, 1.3, len(held))
    k = np.zeros((3, len(held)))
    seconds = max(round(hours * 3600), 2)
    for t in np.flatnonzero(active):
        signal = agc.agc_signal(held[t], seconds, gen)
        response = agc.follow(signal, agc.battery_pool(held[t]), gen)
        perf = agc.performance(signal, response, held[t], scenario.market.exchange_simulator)
        k[:, t] = perf.k1, perf.k2, perf.k3
    return RegulationPerformance(
        mileage_mw=np.round(np.where(active, mileage, 0.0), 3).tolist(),
        k1_ramp=np.round(k[0], 3).tolist(),
        k2_delay=np.round(k[1], 3).tolist(),
        k3_error=np.round(k[2], 3).tolist(),
    )


def deliver(dispatch: Dispatch, scenario: Scenario, day: date) -> Metering:
    """Simulate one day's delivery of a dispatch and its metering."""
    truth = load_history(scenario, day, day + timedelta(days=1), view="truth")
    sim = scenario.park.simulation
    hours = dispatch.interval_minutes / 60.0
    n = len(dispatch.interval_starts)
    if n != len(truth):
        raise ValueError(f"interval_starts: dispatch has {n} intervals, the day has {len(truth)}")
    metered: list[AssetMetering] = []
    grid_mw = np.zeros(n)
    for sp in dispatch.assets:
        asset = scenario.asset(sp.asset_id)
        gen = rng(sim.seed, "delivery", day.isoformat(), asset.id)
        setpoint = np.asarray(sp.power_mw, dtype=float)
        if asset.type in UNCONTROLLED:
            actual = -truth[f"{asset.id}.{UNCONTROLLED[asset.type]}"].to_numpy()
        elif asset.type in GENERATION:
            available = truth[f"{asset.id}.{GENERATION[asset.type]}"].to_numpy()
            caps = np.array([np.inf if c is None else c for c in sp.cap_mw] if sp.cap_mw else [np.inf] * n)
            actual = np.minimum(available, caps)
        else:
            actual = _controlled_mw(setpoint, sim.delivery_deviation_fraction, gen)
        grid_mw += actual
        energy = np.round(actual * hours, 4)
        gaps = np.zeros(n, dtype=bool)
        if gen.random() < sim.meter_gap_probability_per_day:
            start = int(gen.integers(0, n))
            gaps[start : start + int(gen.integers(2, 12))] = True
        metered.append(
            AssetMetering(
                asset_id=asset.id,
                enterprise_id=sp.enterprise_id,
                energy_mwh=[None if g else float(e) for e, g in zip(energy, gaps, strict=True)],
            )
        )
    regulation = None
    if dispatch.regulation_mw and any(m > 0 for m in dispatch.regulation_mw):
        regulation = _regulation(
            dispatch.regulation_mw, scenario, hours, rng(sim.seed, "regulation", day.isoformat())
        )
    return Metering(
        interval_minutes=dispatch.interval_minutes,
        interval_starts=dispatch.interval_starts,
        source=SOURCE,
        grid_energy_mwh=np.round(grid_mw * hours, 4).tolist(),
        assets=metered,
        regulation=regulation,
    )


class DeliveryWorker(Worker):
    """Consumes the day-ahead dispatch and publishes the day's metering.

    Intraday re-dispatches (other keys) are not played out: the simulator delivers one
    schedule per day, so it recognises the day-ahead dispatch by its deterministic id.
    """

    group = "delivery-simulator"
    topics = (Topic.DISPATCH,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        if env.message_id != message_id(Dispatch.SCHEMA, env.park_id, env.market_day, "day_ahead"):
            log.info("delivery simulator: %s is not the day-ahead dispatch; not played out", env.message_id)
            with ctx.transaction():
                return
        dispatch = Dispatch.from_envelope(env)
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        metering = deliver(dispatch, scenario, env.market_day)
        with ctx.transaction() as conn:
            enqueue_message(conn, Topic.METERING, metering, env.park_id, env.market_day, "day")
        # The day's telemetry (weather, available PV and wind, loads, prices) reaches the store as a
        # SCADA historian would deliver it; the meter readings travel on vpp.metering.
        backfill(self.engine, scenario, env.market_day, env.market_day + timedelta(days=1), log.info)
        log.info(
            "metered %s %s: %.0f MWh at the grid connection",
            env.park_id,
            env.market_day,
            sum(metering.grid_energy_mwh),
        )
