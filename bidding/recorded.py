"""Recorded-results adapter: replays published prices from the time-series store.

Prices come in with ``parkvpp ingest prices FILE`` (``market.price_da_cny_per_mwh``,
``market.price_rt_cny_per_mwh``, ``market.price_reg_cny_per_mw``) and are read back through
:func:`infra.timeseries.read`. A closed bid's award is its curve evaluated at the recorded
price (the published result for a price-taker); regulation is accepted where the recorded
mileage price reaches the offer. Same gate rules as every adapter (:mod:`bidding.exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from infra.contracts import Award, Bid, ExchangeRefusal, ExchangeStatus
from infra.scenario.model import MarketConfig, MarketRules
from infra.timeseries import read

NAME = "recorded-results"
SERIES = {
    "day_ahead": "market.price_da_cny_per_mwh",
    "real_time": "market.price_rt_cny_per_mwh",
    "regulation": "market.price_reg_cny_per_mw",
}


@dataclass
class _Held:
    bid: Bid
    market_id: str
    day: date
    gate: datetime
    status: ExchangeStatus = "open"
    awards: list[Award] = field(default_factory=list)


def market_of(bid: Bid, rules: MarketRules) -> tuple[str, MarketConfig]:
    registry = rules.registry()
    if bid.market_id:
        if bid.market_id not in registry:
            raise ExchangeRefusal(
                "invalid", f"market_id {bid.market_id!r} is not one of {', '.join(registry)}"
            )
        return bid.market_id, registry[bid.market_id]
    return rules.market_for("day_ahead_energy" if bid.market == "day_ahead" else "real_time_energy")


class RecordedResultsAdapter:
    name = NAME

    def __init__(self, engine: Engine, park_id: str, rules: MarketRules) -> None:
        self.engine, self.park_id, self.rules = engine, park_id, rules
        self._bids: dict[str, _Held] = {}

    def _held(self, bid_id: str) -> _Held:
        if bid_id not in self._bids:
            raise ExchangeRefusal("unknown_bid", f"bid {bid_id}: not known to {self.name}")
        held = self._bids[bid_id]
        return held

    @staticmethod
    def _tick(held: _Held, at: datetime) -> None:
        if held.status == "open" and at >= held.gate:
            held.status = "closed"

    def _refuse_late(self, what: str, bid_id: str, at: datetime, gate: datetime) -> None:
        if at >= gate:
            raise ExchangeRefusal(
                "gate_closed", f"bid {bid_id}: {what} at {at.isoformat()}, gate closed at {gate.isoformat()}"
            )

    def submit(self, bid: Bid, bid_id: str, at: datetime) -> ExchangeStatus:
        market_id, market = market_of(bid, self.rules)
        day = bid.interval_starts[0].date()
        gate = market.gate_closure(day, bid.interval_starts[0])
        self._refuse_late("submitted", bid_id, at, gate)
        if bid_id in self._bids:
            raise ExchangeRefusal("invalid", f"bid {bid_id}: already submitted (amend it instead)")
        self._bids[bid_id] = _Held(bid, market_id, day, gate)
        return "open"

    def amend(self, bid_id: str, bid: Bid, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._tick(held, at)
        self._refuse_late("amended", bid_id, at, held.gate)
        if held.status != "open":
            raise ExchangeRefusal("not_open", f"bid {bid_id}: is {held.status}, cannot be amended")
        if market_of(bid, self.rules)[0] != held.market_id or bid.interval_starts[0].date() != held.day:
            raise ExchangeRefusal(
                "invalid", f"bid {bid_id}: an amendment must keep market {held.market_id} and day {held.day}"
            )
        held.bid = bid
        return "open"

    def withdraw(self, bid_id: str, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._tick(held, at)
        self._refuse_late("withdrawn", bid_id, at, held.gate)
        if held.status != "open":
            raise ExchangeRefusal("not_open", f"bid {bid_id}: is {held.status}, cannot be withdrawn")
        held.status = "withdrawn"
        return "withdrawn"

    def status(self, bid_id: str, at: datetime) -> ExchangeStatus:
        held = self._held(bid_id)
        self._tick(held, at)
        return held.status

    def _prices(self, name: str, day: date, minutes: int) -> np.ndarray:
        frame = read(
            self.engine,
            self.park_id,
            [name],
            day,
            day + timedelta(days=1),
            interval_minutes=minutes,
            missing="nan",
        )
        return frame[name].to_numpy()

    def results(self, bid_id: str, at: datetime) -> list[Award]:
        held = self._held(bid_id)
        self._tick(held, at)
        if held.status == "withdrawn":
            return []
        if held.status == "open":
            raise ExchangeRefusal(
                "not_closed",
                f"bid {bid_id}: results asked at {at.isoformat()}, before gate closure {held.gate.isoformat()}",
            )
        if held.status == "closed":
            held.awards = self._replay(bid_id, held)
            held.status = "cleared"
        return list(held.awards)

    def _replay(self, bid_id: str, held: _Held) -> list[Award]:
        bid, minutes = held.bid, held.bid.interval_minutes
        price = self._prices(SERIES[bid.market], held.day, minutes)
        if np.isnan(price).any():
            raise ExchangeRefusal(
                "no_results", f"bid {bid_id}: no recorded {bid.market} prices for {held.day}"
            )
        award = Award(
            interval_minutes=minutes,
            interval_starts=bid.interval_starts,
            market=bid.market,
            market_id=held.market_id,
            bid_message_id=bid_id,
            exchange=self.name,
            cleared_mw=[round(c.quantity_at(float(p)), 3) for c, p in zip(bid.energy, price, strict=True)],
            clearing_price_cny_per_mwh=[float(p) for p in price],
        )
        if bid.regulation:
            reg = self._prices(SERIES["regulation"], held.day, minutes)
            if not np.isnan(reg).any():
                award.regulation_mw = [
                    r.capacity_mw if r.mileage_price_cny_per_mw <= p else 0.0
                    for r, p in zip(bid.regulation, reg, strict=True)
                ]
                award.regulation_mileage_price_cny_per_mw = [float(p) for p in reg]
                award.regulation_market_id = self.rules.market_for("regulation")[0]
        awards = [award]
        if bid.market == "day_ahead":
            rt = self._prices(SERIES["real_time"], held.day, minutes)
            if not np.isnan(rt).any():
                awards.append(
                    Award(
                        interval_minutes=minutes,
                        interval_starts=bid.interval_starts,
                        market="real_time",
                        market_id=self.rules.market_for("real_time_energy")[0],
                        bid_message_id=bid_id,
                        exchange=self.name,
                        cleared_mw=award.cleared_mw,
                        clearing_price_cny_per_mwh=[float(p) for p in rt],
                    )
                )
        return awards
