"""The market clock of a trading day: when each stage happens in market (simulated) time.

``run-day`` and the backtest run on this clock, so the stages happen in the order a trader
lives them: the D-1 forecast and offer, the bid before gate closure, results at the market's
publication time, real time on day D, settlement on D+1. Offsets are ours (a trader's habit,
not a rule); gate and results times come from the market file.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from infra.scenario.model import MarketRules
from infra.timeutil import MARKET_TZ

BID_LEAD = timedelta(minutes=30)  # the bid goes out this long before gate closure


def trading_timeline(rules: MarketRules, day: date) -> dict[str, datetime]:
    """Market time of each run-day stage (keys are the stage labels of ``gateway.run_day``)."""
    _, da = rules.market_for("day_ahead_energy")
    gate = da.gate_closure(day)
    results = datetime.combine(gate.date(), da.results_local_time or time(17, 30), tzinfo=MARKET_TZ)
    start = datetime.combine(day, time(0), tzinfo=MARKET_TZ)
    return {
        "forecast": gate - timedelta(hours=2),
        "offer": gate - timedelta(hours=1),
        "bids": gate - BID_LEAD,
        "awards": results,
        "dispatch": results + timedelta(minutes=30),
        "delivery": start,
        "settlement": start + timedelta(days=1, hours=10),
    }


def bid_time(rules: MarketRules, day: date) -> datetime:
    return trading_timeline(rules, day)["bids"]
