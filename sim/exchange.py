"""EXCHANGE SIMULATOR: stands in for the power exchange until a real exchange adapter exists.

The park is a price-taker: the day-ahead clearing price of each interval is the synthetic
market price from the history simulator (``market.price_da_cny_per_mwh``), and the bid curve
evaluated at that price gives the cleared position. Real-time prices come from the same
history. Regulation mileage clears at a simulated uniform price; demand response is invited
in the day's dearest (peak cut) and cheapest (valley fill) intervals and paid as bid.
Parameters live in the market file's ``exchange_simulator`` section.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from infra.contracts import Award, Bid, Topic
from infra.db.outbox import enqueue
from infra.db.tables import outbox
from infra.registry import portfolio
from infra.scenario.model import Scenario
from infra.worker import MessageContext, Worker
from sim.history import load_history
from sim.noise import rng

EXCHANGE_NAME = "parkvpp-exchange-simulator"


def market_truth(scenario: Scenario, day: date) -> pd.DataFrame:
    return load_history(scenario, day, day + timedelta(days=1), view="truth")


def _mileage_prices(scenario: Scenario, day: date, starts: pd.DatetimeIndex) -> np.ndarray:
    sim = scenario.market.exchange_simulator
    reg = scenario.market.regulation
    gen = rng(scenario.park.simulation.seed, "regulation-price", day.isoformat())
    evening = ((starts.hour >= 17) & (starts.hour < 22)).astype(float)
    raw = (
        sim.regulation_mileage_price_mean_cny_per_mw
        + sim.regulation_evening_premium_cny_per_mw * evening
        + gen.normal(0.0, sim.regulation_mileage_price_sd_cny_per_mw, len(starts))
    )
    ticked = np.round(raw / reg.price_tick_cny_per_mw) * reg.price_tick_cny_per_mw
    return np.clip(ticked, reg.mileage_price_min_cny_per_mw, reg.mileage_price_max_cny_per_mw).round(1)


def _demand_response(bid: Bid, scenario: Scenario, da_price: np.ndarray) -> tuple[list[float], list[float]]:
    """Invite peak cut in the dearest intervals and valley fill in the cheapest; pay as bid."""
    sim = scenario.market.exchange_simulator
    peak = da_price >= np.percentile(da_price, sim.dr_peak_cut_price_percentile)
    valley = da_price <= np.percentile(da_price, sim.dr_valley_fill_price_percentile)
    mw, price = [0.0] * len(da_price), [0.0] * len(da_price)
    for i, offers in enumerate(bid.demand_response):
        for offer in offers:
            invited = peak[i] if offer.direction == "peak_cut" else valley[i]
            if invited and offer.capacity_mw > 0:
                mw[i] = offer.capacity_mw if offer.direction == "peak_cut" else -offer.capacity_mw
                price[i] = offer.price_cny_per_mwh
    return mw, price


def clear_day_ahead(bid: Bid, bid_message_id: str, scenario: Scenario, day: date) -> Award:
    """Clear a day-ahead bid against the simulated market."""
    truth = market_truth(scenario, day)
    starts = pd.DatetimeIndex(bid.interval_starts)
    if not starts.equals(truth.index):
        raise ValueError(
            f"interval_starts: the bid does not cover the market day {day} in {bid.interval_minutes}-minute intervals"
        )
    da_price = truth["market.price_da_cny_per_mwh"].to_numpy()
    cleared = [round(curve.quantity_at(p), 3) for curve, p in zip(bid.energy, da_price, strict=True)]
    award = Award(
        interval_minutes=bid.interval_minutes,
        interval_starts=bid.interval_starts,
        market="day_ahead",
        bid_message_id=bid_message_id,
        exchange=EXCHANGE_NAME,
        cleared_mw=cleared,
        clearing_price_cny_per_mwh=[float(p) for p in da_price],
    )
    if bid.regulation:
        mileage_price = _mileage_prices(scenario, day, starts)
        accepted = [
            r.capacity_mw if r.mileage_price_cny_per_mw <= p else 0.0
            for r, p in zip(bid.regulation, mileage_price, strict=True)
        ]
        award.regulation_mw = accepted
        award.regulation_mileage_price_cny_per_mw = [float(p) for p in mileage_price]
    if bid.demand_response:
        award.demand_response_mw, award.demand_response_price_cny_per_mwh = _demand_response(
            bid, scenario, da_price
        )
    return award


def real_time_results(day_ahead: Award, scenario: Scenario, day: date) -> Award:
    """Real-time prices for the day; with no real-time bid the schedule stays at Q_DA."""
    truth = market_truth(scenario, day)
    return Award(
        interval_minutes=day_ahead.interval_minutes,
        interval_starts=day_ahead.interval_starts,
        market="real_time",
        bid_message_id=day_ahead.bid_message_id,
        exchange=EXCHANGE_NAME,
        cleared_mw=day_ahead.cleared_mw,
        clearing_price_cny_per_mwh=[float(p) for p in truth["market.price_rt_cny_per_mwh"]],
    )


log = logging.getLogger(__name__)


class ExchangeSimulatorWorker(Worker):
    """The simulated exchange: clears day-ahead bids and reports real-time prices."""

    group = "exchange-simulator"
    topics = (Topic.BIDS,)

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        bid = Bid.from_envelope(env)
        with self.engine.connect() as conn:
            offer_stored = conn.execute(
                select(outbox.c.message_id).where(
                    outbox.c.message_id == bid.offer_message_id, outbox.c.schema_name == "offer"
                )
            ).first()
        if offer_stored is None:
            raise ValueError(
                f"bid {env.message_id}: offer_message_id {bid.offer_message_id} names no stored offer"
            )
        if bid.market != "day_ahead":
            raise ValueError(f"market={bid.market!r}: the exchange simulator clears day-ahead bids only")
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        day_ahead = clear_day_ahead(bid, env.message_id, scenario, env.market_day)
        real_time = real_time_results(day_ahead, scenario, env.market_day)
        with ctx.transaction() as conn:
            enqueue(conn, Topic.AWARDS, day_ahead.envelope(env.park_id, env.market_day, "day_ahead"))
            enqueue(conn, Topic.AWARDS, real_time.envelope(env.park_id, env.market_day, "real_time"))
        log.info(
            "cleared %s %s: %.0f MWh day-ahead",
            env.park_id,
            env.market_day,
            sum(day_ahead.cleared_mw) * bid.interval_minutes / 60,
        )
