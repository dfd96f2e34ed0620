"""The real-time market end to end over real Kafka and PostgreSQL: day-ahead dispatch -> intraday
forecast -> real-time offer -> real-time bid -> real-time award (5 minutes) -> a dispatch that
follows the award -> settlement on the real-time grid.

The day-ahead part is applied directly (each service's own ``apply``, as its worker would); from the
intraday forecast on, every step goes through the broker: four workers (aggregator, bidding,
exchange simulator, settlement) in threads, the outbox relay publishing what each stores.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import numpy as np
import pytest
from sqlalchemy import select

from aggregator.realtime import followed_award
from aggregator.worker import AggregatorWorker
from bidding.worker import BiddingWorker
from infra.contracts import (
    Award,
    Bid,
    Dispatch,
    Envelope,
    ForecastSet,
    Metering,
    Offer,
    Settlement,
    Topic,
    message_id,
)
from infra.db import make_engine, migrate
from infra.db.outbox import stored_envelopes
from infra.db.tables import dead_letters
from infra.kafka import ensure_topics, make_producer, publish
from infra.scenario import load_scenario
from infra.signing import sign
from infra.timeutil import MARKET_TZ
from infra.worker import WorkerThread, run_relay
from settlement.money import to_fen
from settlement.store import day_record
from settlement.worker import SettlementWorker
from sim.delivery import deliver
from sim.exchange_worker import ExchangeSimulatorWorker
from sim.forecasts import forecast_from_history

DAY = date(2026, 5, 19)  # a day no other test uses: the broker is shared by the whole session
PARK = "datong"
ISSUED = datetime(2026, 5, 19, 11, 0, tzinfo=MARKET_TZ)


def only_this_day(cls):  # type: ignore[no-untyped-def]
    """The worker, leaving other tests' messages on the shared broker alone."""

    class OnlyThisDay(cls):  # type: ignore[misc, valid-type]
        def handle(self, ctx) -> None:  # type: ignore[no-untyped-def]
            if ctx.envelope.park_id == PARK and ctx.envelope.market_day == DAY:
                super().handle(ctx)

    return OnlyThisDay


def stored(engine, schema: str) -> list[Envelope]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return stored_envelopes(conn, PARK, DAY, schema)


def wait_until(what: str, check, engine, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    with engine.connect() as conn:
        letters = conn.execute(select(dead_letters.c.consumer, dead_letters.c.reason)).all()
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s; dead letters: {letters}")


def intraday_forecast(datong) -> ForecastSet:  # type: ignore[no-untyped-def]
    """Issued 11:00 on the day: the inflexible loads 15 % above the day-ahead view from then on."""
    forecast = forecast_from_history(datong, DAY, horizon="intraday", spread_fraction=0.05)
    later = np.array([ts >= ISSUED for ts in forecast.interval_starts])
    series = []
    for s in forecast.series:
        if s.series_id.endswith(".load_mw"):
            s = s.model_copy(
                update={
                    "quantiles": {
                        q: np.where(later, np.asarray(v) * 1.15, v).tolist() for q, v in s.quantiles.items()
                    }
                }
            )
        series.append(s)
    return forecast.model_copy(update={"issued_at": ISSUED, "series": series})


@pytest.mark.postgres
def test_intraday_reoptimisation_bids_real_time_and_settles_on_the_five_minute_grid(
    services, postgres_url
) -> None:
    datong = load_scenario(PARK)
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    bootstrap = services.kafka_bootstrap
    ensure_topics(bootstrap)
    aggregator = only_this_day(AggregatorWorker)(engine, bootstrap)
    bidding = only_this_day(BiddingWorker)(engine, bootstrap)
    exchange = only_this_day(ExchangeSimulatorWorker)(engine, bootstrap)
    settlement = only_this_day(SettlementWorker)(engine, bootstrap)

    # Day-ahead, applied directly: forecast -> offer -> bid -> awards -> dispatch.
    assert aggregator.apply(
        Topic.FORECASTS, forecast_from_history(datong, DAY).envelope(PARK, DAY, "day_ahead", "rt")
    )
    (offer_env,) = stored(engine, Offer.SCHEMA)
    assert bidding.apply(Topic.OFFERS, offer_env)
    (bid_env,) = stored(engine, Bid.SCHEMA)
    assert exchange.apply(Topic.BIDS, bid_env)
    day_ahead_env, whole_day_env = stored(engine, Award.SCHEMA)
    assert aggregator.apply(Topic.AWARDS, day_ahead_env)
    assert len(stored(engine, Dispatch.SCHEMA)) == 1

    threads = [WorkerThread(w) for w in (aggregator, bidding, exchange, settlement)]
    stop_relay = threading.Event()
    relay = threading.Thread(target=run_relay, args=(engine, bootstrap, stop_relay), daemon=True)
    producer = make_producer(bootstrap)
    for t in threads:
        t.start()
    relay.start()
    try:
        for t in threads:
            assert t.ready_event.wait(60), f"{t.worker.group} did not join its consumer group"
        intraday_env = intraday_forecast(datong).envelope(PARK, DAY, "intraday", ISSUED.isoformat())
        publish(producer, Topic.FORECASTS, sign(intraday_env))

        # aggregator: a re-optimised dispatch and, with it, the real-time offer of the open intervals
        rt_offer_id = message_id(Offer.SCHEMA, PARK, DAY, "real_time", ISSUED.isoformat())
        rt_offer = wait_until(
            "the real-time offer",
            lambda: next(
                (Offer.from_envelope(e) for e in stored(engine, Offer.SCHEMA) if e.message_id == rt_offer_id),
                None,
            ),
            engine,
        )
        assert rt_offer.market_id == "shanxi.real_time" and rt_offer.interval_minutes == 5
        assert rt_offer.interval_starts[0] == datetime(2026, 5, 19, 12, 5, tzinfo=MARKET_TZ)  # gate 60 min
        assert rt_offer.issued_at == ISSUED and rt_offer.forecast_message_id == intraday_env.message_id

        # bidding -> exchange simulator: the real-time award on the 5-minute grid names the bid
        rt_award_env = wait_until(
            "the real-time award",
            lambda: next((e for e in stored(engine, Award.SCHEMA) if e.payload.get("real_time_bid")), None),
            engine,
        )
        rt_award = Award.from_envelope(rt_award_env)
        rt_bid = next(
            Bid.from_envelope(e)
            for e in stored(engine, Bid.SCHEMA)
            if e.message_id == rt_award.bid_message_id
        )
        assert rt_bid.market == "real_time" and rt_bid.submitted_at == ISSUED
        assert rt_award.interval_minutes == 5 and rt_award.interval_starts == rt_offer.interval_starts

        # the aggregator re-plans to deliver the award; delivery follows that dispatch and its
        # metering (15 minutes) settles the day
        intraday_id = message_id(Dispatch.SCHEMA, PARK, DAY, "intraday", ISSUED.isoformat())
        by_id = {e.message_id: Dispatch.from_envelope(e) for e in stored(engine, Dispatch.SCHEMA)}
        intraday_dispatch = by_id[intraday_id]
        assert intraday_dispatch.notes[0].startswith("intraday re-optimisation from 11:00")
        following = wait_until(
            "the dispatch following the real-time award",
            lambda: next(
                (
                    Dispatch.from_envelope(e)
                    for e in stored(engine, Dispatch.SCHEMA)
                    if e.payload["award_message_id"] == rt_award_env.message_id
                ),
                None,
            ),
            engine,
        )
        metering = deliver(following, datong, DAY).envelope(PARK, DAY)
        publish(producer, Topic.METERING, sign(metering))
        record = wait_until("the settlement", lambda: _record(engine), engine, timeout_s=60.0)
    finally:
        producer.close()
        for t in threads:
            t.stop()
        stop_relay.set()
        relay.join(10)
    assert all(t.error is None for t in threads)

    # the loads came in 15 % higher: the re-optimised schedule (re-declared in real time) imports more
    da, whole = Award.from_envelope(day_ahead_env), Award.from_envelope(whole_day_env)
    # the following dispatch aims at Q_RT (each 15 minutes the mean of its 5-minute awards) from 12:00
    # on: its worst interval misses it by less than the intraday plan's did (the batteries' energy
    # is short after the loads rose, and the re-plan spreads the shortfall instead of leaving it in
    # the evening), its deviation_mw is measured against it, and every set-point before 12:00 stays
    position, first = followed_award(da, rt_award)
    assert first == 48 and following.notes[0].startswith("intraday re-optimisation from 12:00")
    target = np.asarray(position.cleared_mw)
    planned = {
        n: np.sum([a.power_mw for a in d.assets], axis=0)
        for n, d in (("rt", following), ("id", intraday_dispatch))
    }
    miss = {n: np.abs(p - target)[48:].max() for n, p in planned.items()}
    assert miss["rt"] < miss["id"]
    assert np.allclose(
        np.asarray(following.deviation_mw),
        planned["rt"] - target - np.asarray(da.demand_response_mw or 0.0),
        atol=1e-3,
    )
    changed = [  # (asset, largest change before 12:00)
        (a.asset_id, np.abs(np.asarray(a.power_mw)[:48] - np.asarray(b.power_mw)[:48]).max())
        for a, b in zip(following.assets, intraday_dispatch.assets, strict=True)
        if not np.allclose(np.asarray(a.power_mw)[:48], np.asarray(b.power_mw)[:48], rtol=0, atol=1e-3)
    ]
    assert not changed, changed
    q_da_rt = np.repeat(da.cleared_mw, 3)[3 * 48 + 1 :]
    assert np.max(q_da_rt - np.asarray(rt_award.cleared_mw)) > 1.0
    assert any(c.segments for c in rt_offer.energy)  # the day-ahead model's price response is kept
    # settlement read the real-time award: its intervals settled on the 5-minute grid
    assert record["real_time"]["bid_awards"] == [rt_award_env.message_id]
    assert record["real_time"]["bid_intervals"] == len(rt_award.cleared_mw) == len(rt_offer.energy)
    (park,) = [
        Settlement.from_envelope(e)
        for e in stored(engine, Settlement.SCHEMA)
        if e.payload["account_id"] == "park"
    ]
    assert park.source_message_ids[-1] == rt_award_env.message_id
    line = next(ln for ln in park.lines if ln.item == "real_time_energy")
    assert line.market_id == "shanxi.real_time"
    # recomputed here: sum over 5 minutes of (E/3 - Q_DA h) x P_RT, each to the fen (before the bid's
    # first interval, Q_RT = Q_DA at the whole-day price on the 15-minute grid)
    grid = np.asarray(Metering.from_envelope(metering).grid_energy_mwh)
    p_rt = np.repeat(whole.clearing_price_cny_per_mwh, 3)
    p_rt[3 * 48 + 1 :] = rt_award.clearing_price_cny_per_mwh  # 12:05 = interval 48's second 5 minutes
    q_da = np.repeat(da.cleared_mw, 3)
    fine = to_fen((np.repeat(grid / 3, 3) - q_da * 5 / 60) * p_rt).reshape(-1, 3).sum(axis=1)
    coarse = to_fen((grid - np.asarray(da.cleared_mw) * 0.25) * np.asarray(whole.clearing_price_cny_per_mwh))
    expected = np.where(np.arange(96) >= 48, fine, coarse)
    assert (to_fen(np.asarray(line.interval_amount_cny)) == expected).all()


def _record(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        row = day_record(conn, PARK, DAY)
    return None if row is None else row["record"]
