"""A synthetic market day of stored facts for the gateway's benchmark and its fast tests.

Offer, bid, day-ahead and real-time awards (with a demand-response event), dispatch,
metering and one statement per account (the park and every enterprise), written to the
outbox as the services would. Numbers are plausible shapes, not a settlement: the real
thing is ``parkvpp run-day``.
"""

from __future__ import annotations

import math
from datetime import date

from sqlalchemy import Engine

from infra.contracts import (
    AssetMetering,
    AssetSetpoints,
    Award,
    Bid,
    Dispatch,
    EnergyCurve,
    Metering,
    Offer,
    Segment,
    Settlement,
    StatementLine,
    Topic,
)
from infra.db.outbox import enqueue
from infra.registry import portfolio
from infra.timeutil import day_intervals


def seed_day(engine: Engine, park_id: str, day: date, copies: int = 1) -> dict[str, str]:
    """Store a synthetic day; returns the message ids by kind."""
    scenario = portfolio(engine, park_id, day)
    starts = list(day_intervals(day, 15))
    n = len(starts)
    shape = [math.sin(math.pi * i / n) for i in range(n)]
    price = [300 + 200 * s for s in shape]
    position = [-200 + 80 * s for s in shape]
    curves = [
        EnergyCurve(
            base_mw=p,
            segments=[
                Segment(price_cny_per_mwh=200, quantity_mw=10),
                Segment(price_cny_per_mwh=600, quantity_mw=20),
            ],
        )
        for p in position
    ]
    offer = Offer(
        interval_minutes=15,
        interval_starts=starts,
        market="day_ahead",
        scenario_version=scenario.version,
        forecast_message_id="seed",
        energy=curves,
        expected_revenue_cny=-1.0e6,
        expected_emissions_tco2=1000.0,
    )
    ids: dict[str, str] = {}
    with engine.begin() as conn:
        env = offer.envelope(park_id, day, "seed")
        enqueue(conn, Topic.OFFERS, env)
        ids["offer"] = env.message_id
        bid = Bid(**offer.model_dump(), offer_message_id=env.message_id, rules_version="seed", adjustments=[])
        benv = bid.envelope(park_id, day, "seed")
        enqueue(conn, Topic.BIDS, benv)
        ids["bid"] = benv.message_id
        dr = [20.0 if 72 <= i < 80 else 0.0 for i in range(n)]
        for market, prices in (("day_ahead", price), ("real_time", [p * 1.05 for p in price])):
            award = Award(
                interval_minutes=15,
                interval_starts=starts,
                market=market,
                bid_message_id=benv.message_id,
                exchange="seed",
                cleared_mw=position,
                clearing_price_cny_per_mwh=prices,
                demand_response_mw=dr,
                demand_response_price_cny_per_mwh=[500.0 if x else 0.0 for x in dr],
            )
            aenv = award.envelope(park_id, day, "seed", market)
            enqueue(conn, Topic.AWARDS, aenv)
            ids[f"award_{market}"] = aenv.message_id
        for k in range(copies):
            dispatch = Dispatch(
                interval_minutes=15,
                interval_starts=starts,
                award_message_id=ids["award_day_ahead"],
                assets=[
                    AssetSetpoints(
                        asset_id=a.id,
                        enterprise_id=a.enterprise,
                        power_mw=[float(i % 7 + k) for i in range(n)],
                    )
                    for a in scenario.park.assets
                ],
                deviation_mw=[0.0] * n,
            )
            enqueue(conn, Topic.DISPATCH, dispatch.envelope(park_id, day, "seed", k))
        metering = Metering(
            interval_minutes=15,
            interval_starts=starts,
            source="seed",
            grid_energy_mwh=[p * 0.25 for p in position],
            assets=[
                AssetMetering(asset_id=a.id, enterprise_id=a.enterprise, energy_mwh=[0.5] * n)
                for a in scenario.park.assets
            ],
        )
        enqueue(conn, Topic.METERING, metering.envelope(park_id, day, "seed"))
        accounts = ["park", *(e.id for e in scenario.park.enterprises)]
        for j, account in enumerate(accounts):
            per = [round(-10.0 - j - (i % 4), 2) for i in range(n)]
            total = round(sum(per), 2)
            st = Settlement(
                interval_minutes=15,
                interval_starts=starts,
                account_id=account,
                rules_version="seed",
                source_message_ids=[ids["award_day_ahead"]],
                lines=[
                    StatementLine(
                        item="energy_supply" if account != "park" else "day_ahead_energy",
                        amount_cny=total,
                        interval_amount_cny=per,
                    )
                ],
                interval_total_cny=per,
                total_cny=total,
                emissions_tco2=1.5 + j,
                carbon_adjusted_revenue_cny=round(total - 70 * (1.5 + j), 2),
            )
            enqueue(conn, Topic.SETTLEMENTS, st.envelope(park_id, day, account))
    return ids
