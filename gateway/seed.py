"""A synthetic market day of stored facts for the gateway's benchmark and its fast tests.

Each stage's fact is written to the outbox as its service would (signed as that service):

* ``forecast``: a day-ahead ``ForecastSet`` with every series the forecast service publishes
  for the day's portfolio (``forecast.series.scenario_series``), P10/P50/P90 from simple
  shapes of each asset's size (PV bell, steady wind, shift loads), not from models;
* ``offer``: curves around the forecast's median net injection;
* ``bid``: the offer as a bid, stamped at the market clock's bid time;
* ``award``: day-ahead and real-time awards (with a demand-response event);
* ``dispatch``: set-points for every asset;
* ``metering``: each asset near its median forecast, the grid meter their sum;
* ``settlement``: the day settled by the **real** settlement code (``settlement.settle``:
  statements, ledger entries, the settled-day record), as the settlement worker does.

Numbers before settlement are plausible shapes, not a market: the real thing is
``parkvpp run-day``. A stage whose fact the day already has is not written again and later
stages build on the stored one (so a day whose offer came from the aggregator gets a bid of
that offer). ``through`` stops after a stage: ``through="forecast"`` leaves the offer to the
aggregator, ``through="bid"`` a bid the market has not answered yet.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from sqlalchemy import Engine

from infra.contracts import (
    AssetContribution,
    AssetMetering,
    AssetSetpoints,
    Award,
    Bid,
    Dispatch,
    EnergyCurve,
    Envelope,
    ForecastSet,
    Metering,
    Offer,
    Segment,
    SeriesForecast,
    Topic,
)
from infra.db.outbox import enqueue, stored_envelopes
from infra.registry import portfolio
from infra.scenario import Scenario
from infra.timeutil import day_intervals

STAGES = ("forecast", "offer", "bid", "award", "dispatch", "metering", "settlement")
SCHEMAS = {
    "forecast": "forecast_set",
    "offer": "offer",
    "bid": "bid",
    "award": "award",
    "dispatch": "dispatch",
    "metering": "metering",
    "settlement": "settlement",
}
BAND = {"0.1": 0.85, "0.5": 1.0, "0.9": 1.12}  # quantile / median of loads and prices
RENEWABLE_BAND = {"0.1": 0.7, "0.5": 1.0, "0.9": 1.1}


def _hours(n: int) -> np.ndarray:
    return np.arange(n) * 24.0 / n


def asset_mw(asset: object, day: date, n: int) -> np.ndarray:
    """A plausible median net injection (MW, + generation) of one asset over the day."""
    h = _hours(n) + 12.0 / n  # interval middles
    kind = getattr(asset, "type", "")
    summer = day.month in (5, 6, 7, 8)
    if kind == "pv":
        sun = np.clip(np.sin(np.pi * (h - 6.0) / (13.0 if summer else 10.0)), 0.0, None)
        if not summer:
            sun = np.where(h > 17.0, 0.0, sun)
        return asset.capacity_mw * 0.75 * sun  # type: ignore[attr-defined]
    if kind == "wind":
        return asset.capacity_mw * (0.3 + 0.12 * np.cos(2 * np.pi * (h - 3.0) / 24.0))  # type: ignore[attr-defined]
    if kind == "inflexible_load":
        shift = 1.0 + 0.08 * np.sin(2 * np.pi * (h - 9.0) / 24.0)
        return -asset.peak_mw * asset.load_factor * shift  # type: ignore[attr-defined]
    if kind == "interruptible_load":
        return -np.full(n, asset.baseline_mw)  # type: ignore[attr-defined]
    if kind == "shiftable_batch":
        return -np.full(n, min(asset.power_max_mw, asset.energy_per_day_mwh / 24.0))  # type: ignore[attr-defined]
    if kind == "heat_pump":
        return -heat_mw_th(asset, day, n) / asset.cop  # type: ignore[attr-defined]
    if kind == "ev_fleet":
        home = (h >= asset.arrival_hour) | (h < asset.departure_hour)  # type: ignore[attr-defined]
        hours_home = max(float(home.sum()) * 24.0 / n, 1.0)
        rate = min(asset.charge_mw, asset.energy_per_day_mwh / hours_home)  # type: ignore[attr-defined]
        return -np.where(home, rate, 0.0)
    if kind == "data_centre":
        return -np.full(n, asset.it_load_mw * asset.pue)  # type: ignore[attr-defined]
    if kind == "electrolyser":
        return -np.full(n, asset.capacity_mw * 0.5)  # type: ignore[attr-defined]
    return np.zeros(n)  # storage and generators: what the optimiser decides


def heat_mw_th(asset: object, day: date, n: int) -> np.ndarray:
    h = _hours(n)
    heating = day.month in getattr(asset, "heating_months", ())
    peak = asset.heat_peak_mw_th if heating else getattr(asset, "cooling_peak_mw_th", 0.0)  # type: ignore[attr-defined]
    phase = 5.0 if heating else 15.0  # coldest before dawn, hottest mid-afternoon
    return peak * (0.35 + 0.1 * np.cos(2 * np.pi * (h - phase) / 24.0))


def _price(scenario: Scenario, n: int, real_time: bool = False) -> np.ndarray:
    h = _hours(n)
    shape = 330 + 120 * np.sin(2 * np.pi * (h - 12.0) / 24.0) - 90 * np.exp(-(((h - 12.5) / 2.5) ** 2))
    shape = shape * (1.05 if real_time else 1.0)
    m = scenario.market
    return np.clip(shape, m.clearing_price_floor_cny_per_mwh, m.clearing_price_cap_cny_per_mwh)


def forecast_set(scenario: Scenario, day: date) -> ForecastSet:
    """The day-ahead forecast set, with the series ids the forecast service publishes."""
    from bidding.clock import trading_timeline
    from forecast.series import scenario_series

    minutes = scenario.market.day_ahead_interval_minutes
    starts = [ts.to_pydatetime() for ts in day_intervals(day, minutes)]
    n = len(starts)
    assets = {a.id: a for a in scenario.park.assets}
    by_id: dict[str, np.ndarray] = {}
    for spec in scenario_series(scenario):
        sid = spec.series_id
        if spec.asset_id is not None:
            a = assets[spec.asset_id]
            by_id[sid] = (
                heat_mw_th(a, day, n) if spec.quantity == "heat_mw_th" else np.abs(asset_mw(a, day, n))
            )
            if spec.quantity == "it_load_mw":
                by_id[sid] = np.full(n, a.it_load_mw)  # type: ignore[attr-defined]
        elif sid == "park.load_mw":
            by_id[sid] = -sum(
                (asset_mw(a, day, n) for a in scenario.park.assets if a.type not in ("pv", "wind")),
                np.zeros(n),
            )
        elif sid in ("park.pv_mw", "park.wind_mw"):
            kind = sid.split(".")[1][:-3]
            by_id[sid] = sum(
                (asset_mw(a, day, n) for a in scenario.park.assets if a.type == kind), np.zeros(n)
            )
        elif sid.startswith("market.price_"):
            by_id[sid] = _price(scenario, n, real_time="_rt_" in sid)
    series = []
    for spec in scenario_series(scenario):
        median = by_id.get(spec.series_id)
        if median is None:
            continue
        band = RENEWABLE_BAND if spec.is_generation else BAND
        quantiles = {}
        for q, f in band.items():
            values = median * f
            if spec.upper is not None and spec.is_generation:
                values = np.minimum(values, spec.upper)
            quantiles[q] = [round(float(v), 3) for v in values]
        series.append(
            SeriesForecast(
                series_id=spec.series_id,
                asset_id=spec.asset_id,
                quantity=spec.quantity,
                model="seed",
                model_version="seed-shapes-1",
                quantiles=quantiles,
            )
        )
    issued = trading_timeline(scenario.market, day)["forecast"]
    return ForecastSet(
        interval_minutes=minutes,
        interval_starts=starts,
        horizon="day_ahead",
        issued_at=issued,
        data_cutoff=issued,
        series=series,
    )


def _contributions(scenario: Scenario, day: date, n: int, hours: float) -> list[AssetContribution]:
    """The seeded offer names its assets: each one's seeded schedule; the 30 MW of segments are the
    batteries', shared by power."""
    storage = [a for a in scenario.park.assets if a.type == "battery"]
    power = sum(a.power_mw for a in storage) or 1.0  # type: ignore[attr-defined]
    out = []
    for a in scenario.park.assets:
        mw = asset_mw(a, day, n)
        out.append(
            AssetContribution(
                asset_id=a.id,
                enterprise_id=a.enterprise,
                expected_mwh=round(float(mw.sum() * hours), 3) + 0.0,
                min_mw=round(float(mw.min()), 3) + 0.0,
                max_mw=round(float(mw.max()), 3) + 0.0,
                flexible_mw=round(30.0 * a.power_mw / power, 3) if a in storage else 0.0,  # type: ignore[attr-defined]
            )
        )
    return sorted(out, key=lambda c: (c.enterprise_id, c.asset_id))


def _stored(engine: Engine, park_id: str, day: date, schema: str) -> list[Envelope]:
    with engine.connect() as conn:
        return stored_envelopes(conn, park_id, day, schema)


def seed_day(
    engine: Engine, park_id: str, day: date, copies: int = 1, *, through: str = "settlement"
) -> dict[str, str]:
    """Store a synthetic day up to and including stage ``through``; returns the message ids by kind."""
    if through not in STAGES:
        raise ValueError(f"through={through!r}: one of {', '.join(STAGES)}")
    stages = STAGES[: STAGES.index(through) + 1]
    scenario = portfolio(engine, park_id, day)
    ids: dict[str, str] = {}

    def have(stage: str) -> list[Envelope]:
        return _stored(engine, park_id, day, SCHEMAS[stage])

    # forecast
    stored = have("forecast")
    if stored:
        forecast_env = stored[-1]
    else:
        fs = forecast_set(scenario, day)
        forecast_env = fs.envelope(park_id, day, "day_ahead", fs.issued_at.isoformat())
        with engine.begin() as conn:
            enqueue(conn, Topic.FORECASTS, forecast_env)
    ids["forecast"] = forecast_env.message_id
    forecast = ForecastSet.from_envelope(forecast_env)
    if "offer" not in stages:
        return ids
    starts = list(forecast.interval_starts)
    n = len(starts)
    medians = {s.series_id: np.asarray(s.quantiles["0.5"]) for s in forecast.series}
    net = np.zeros(n)
    for a in scenario.park.assets:
        net += asset_mw(a, day, n)

    # offer: 10 MW more at 200 CNY/MWh (storage discharging), 20 MW at 600
    stored = have("offer")
    if stored:
        offer_env = stored[-1]
    else:
        offer = Offer(
            interval_minutes=forecast.interval_minutes,
            interval_starts=starts,
            market="day_ahead",
            scenario_version=scenario.version,
            forecast_message_id=forecast_env.message_id,
            energy=[
                EnergyCurve(
                    base_mw=round(float(p), 3),
                    segments=[
                        Segment(price_cny_per_mwh=200, quantity_mw=10),
                        Segment(price_cny_per_mwh=600, quantity_mw=20),
                    ],
                )
                for p in net
            ],
            expected_revenue_cny=round(float(np.sum(net * medians["market.price_da_cny_per_mwh"]) / 4), 2),
            expected_emissions_tco2=round(float(np.sum(np.clip(-net, 0, None)) / 4 * 0.8325), 3),
            assets=_contributions(scenario, day, n, forecast.interval_minutes / 60),
        )
        offer_env = offer.envelope(park_id, day, "day_ahead")
        with engine.begin() as conn:
            enqueue(conn, Topic.OFFERS, offer_env)
    ids["offer"] = offer_env.message_id
    if "bid" not in stages:
        return ids

    # bid: the offer as it is, at the market clock's bid time
    stored = [e for e in have("bid") if not e.payload.get("amends")]
    if stored:
        bid_env = stored[0]
    else:
        from bidding.clock import bid_time

        offer = Offer.from_envelope(offer_env)
        bid = Bid(
            **offer.model_dump(),
            offer_message_id=offer_env.message_id,
            rules_version="seed",
            adjustments=[],
            submitted_at=bid_time(scenario.market, day),
        )
        bid_env = bid.envelope(park_id, day, "day_ahead")
        with engine.begin() as conn:
            enqueue(conn, Topic.BIDS, bid_env)
    ids["bid"] = bid_env.message_id
    if "award" not in stages:
        return ids

    # awards: the base and the cheap segment clear; a two-hour peak-cut event in the evening
    bid = Bid.from_envelope(bid_env)
    da_price = np.asarray(medians["market.price_da_cny_per_mwh"])
    cleared = [
        c.base_mw + sum(s.quantity_mw for s in c.segments if s.price_cny_per_mwh <= p)
        for c, p in zip(bid.energy, da_price, strict=True)
    ]
    dr = [20.0 if 72 <= i < 80 else 0.0 for i in range(n)]
    if not have("award"):
        with engine.begin() as conn:
            for market, prices in (("day_ahead", da_price), ("real_time", _price(scenario, n, True))):
                award = Award(
                    interval_minutes=bid.interval_minutes,
                    interval_starts=starts,
                    market=market,
                    bid_message_id=bid_env.message_id,
                    exchange="seed",
                    cleared_mw=[round(float(x), 3) for x in cleared],
                    clearing_price_cny_per_mwh=[round(float(p), 2) for p in prices],
                    demand_response_mw=dr,
                    demand_response_price_cny_per_mwh=[500.0 if x else 0.0 for x in dr],
                )
                enqueue(conn, Topic.AWARDS, award.envelope(park_id, day, market))
    awards = {e.payload["market"]: e for e in have("award")}
    ids.update({f"award_{m}": e.message_id for m, e in awards.items()})
    if "dispatch" not in stages:
        return ids

    if not have("dispatch"):
        with engine.begin() as conn:
            for k in range(copies):
                dispatch = Dispatch(
                    interval_minutes=bid.interval_minutes,
                    interval_starts=starts,
                    award_message_id=awards["day_ahead"].message_id,
                    assets=[
                        AssetSetpoints(
                            asset_id=a.id,
                            enterprise_id=a.enterprise,
                            power_mw=[round(float(v) + k, 3) for v in asset_mw(a, day, n)],
                        )
                        for a in scenario.park.assets
                    ],
                    deviation_mw=[round(float(x - c), 3) for x, c in zip(net, cleared, strict=True)],
                )
                enqueue(conn, Topic.DISPATCH, dispatch.envelope(park_id, day, "seed", k))
    if "metering" not in stages:
        return ids

    if not have("metering"):
        hours = bid.interval_minutes / 60
        wiggle = 1.0 + 0.03 * np.sin(np.arange(n) * 1.7)
        per_asset = {a.id: asset_mw(a, day, n) * wiggle * hours for a in scenario.park.assets}
        metering = Metering(
            interval_minutes=bid.interval_minutes,
            interval_starts=starts,
            source="seed",
            grid_energy_mwh=[round(float(v), 4) for v in sum(per_asset.values(), np.zeros(n))],
            assets=[
                AssetMetering(
                    asset_id=a.id,
                    enterprise_id=a.enterprise,
                    energy_mwh=[round(float(v), 4) for v in per_asset[a.id]],
                )
                for a in scenario.park.assets
            ],
        )
        with engine.begin() as conn:
            enqueue(conn, Topic.METERING, metering.envelope(park_id, day, "seed"))
    ids["metering"] = have("metering")[-1].message_id
    if "settlement" in stages:
        settle(engine, scenario, day)
        ids["settlement"] = ",".join(e.message_id for e in have("settlement"))
    return ids


def settle(engine: Engine, scenario: Scenario, day: date) -> None:
    """Settle the stored day with the settlement service's own code, as its worker does."""
    from settlement import store
    from settlement.facts import check_fact, read_fact
    from settlement.settle import settle_facts

    with engine.connect() as conn:
        if store.is_settled(conn, scenario.id, day):
            return
        envelopes = stored_envelopes(conn, scenario.id, day, "award")
        envelopes += stored_envelopes(conn, scenario.id, day, "metering")[-1:]
    facts = {}
    for env in envelopes:
        fact = read_fact(env, scenario)
        check_fact(fact, scenario)
        facts[fact.kind] = fact
    with engine.begin() as conn:
        result = settle_facts(conn, scenario, facts)
        for fact in facts.values():
            store.store_fact(conn, fact)
        store.write_result(conn, result)


def seed_days(engine: Engine, park_id: str, first: date, last: date, **kwargs: object) -> list[date]:
    """Seed every day of ``[first, last]``; returns the days."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for d in days:
        seed_day(engine, park_id, d, **kwargs)  # type: ignore[arg-type]
    return days
