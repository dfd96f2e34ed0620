"""Realistic award and metering messages for a park-day, built from the simulator's truth.

Assets follow the recorded history (business as usual for assets it does not record), the
batteries charge at midday and discharge in the evening, the grid meter sees the sum less
0.5 % losses. Options add a demand-response award (delivered by the interruptible load), a
regulation award with measured performance, meter gaps and 5-minute real-time prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import Engine

from infra.contracts import AssetMetering, Award, Bid, EnergyCurve, Envelope, Metering, RegulationPerformance
from infra.scenario.model import Scenario
from infra.timeutil import day_intervals
from settlement.baseline import _business_as_usual_mw, _recorded_mw
from settlement.worker import SettlementWorker
from sim.history import load_history

LOSS_FRACTION = 0.005
DAY = date(2026, 7, 15)
DAY_BEFORE = date(2026, 7, 14)


@dataclass
class DayMessages:
    day_ahead: Envelope
    real_time: Envelope
    metering: Envelope
    bid: Envelope  # the bid both awards name; consumers over Kafka admit awards of stored bids only

    def all(self) -> list[Envelope]:
        return [self.day_ahead, self.real_time, self.metering]


def asset_energy(scenario: Scenario, day: date) -> np.ndarray:
    """Truth net injection per asset (MWh per 15 min) with a simple battery and gas schedule."""
    frame = load_history(scenario, day, day + timedelta(days=1), view="truth")
    hours = frame.index.hour.to_numpy() + frame.index.minute.to_numpy() / 60.0
    rows = []
    for a in scenario.park.assets:
        mw = _recorded_mw(a, frame)
        if mw is None:
            mw = _business_as_usual_mw(a, hours.astype(float))
        if a.type == "battery":
            mw = np.where((hours >= 11) & (hours < 14), -0.5 * a.power_mw, 0.0)
            mw = np.where((hours >= 18) & (hours < 21), 0.5 * a.power_mw * 0.9, mw)
        if a.type == "gas_generator":
            mw = np.where((hours >= 19) & (hours < 21), 0.5 * a.capacity_mw, 0.0)
        rows.append(np.asarray(mw, dtype=float) * 0.25)
    return np.vstack(rows)


def make_day(
    scenario: Scenario,
    day: date,
    *,
    dr_mw: float = 0.0,
    dr_price: float = 600.0,
    regulation_mw: float = 0.0,
    gaps: dict[str, tuple[int, int]] | None = None,
    rt_minutes: int | None = None,
    seed: int = 7,
) -> DayMessages:
    gen = np.random.default_rng(seed)
    energy = asset_energy(scenario, day)
    frame = load_history(scenario, day, day + timedelta(days=1), view="truth")
    starts = list(day_intervals(day, 15).to_pydatetime())
    hours = np.array([s.hour + s.minute / 60 for s in starts])
    dr = np.where((hours >= 18) & (hours < 20), dr_mw, 0.0)
    ids = [a.id for a in scenario.park.assets]
    if dr_mw:
        load = next(a for a in scenario.park.assets if a.type == "interruptible_load")
        energy[ids.index(load.id)] += dr * 0.25  # less consumption = more net injection
    consumption = np.maximum(-energy, 0).sum(axis=0)
    grid = energy.sum(axis=0) - LOSS_FRACTION * consumption
    q_da = grid / 0.25 * (1 + gen.normal(0, 0.03, len(grid)))
    p_da = frame["market.price_da_cny_per_mwh"].to_numpy()
    p_rt = frame["market.price_rt_cny_per_mwh"].to_numpy()
    reg = np.full(len(grid), regulation_mw)
    bid = Bid(
        interval_minutes=15,
        interval_starts=starts,
        market="day_ahead",
        scenario_version=scenario.version,
        forecast_message_id="factory",
        energy=[EnergyCurve(base_mw=float(q), segments=[]) for q in q_da],
        expected_revenue_cny=0.0,
        expected_emissions_tco2=0.0,
        offer_message_id="factory",
        rules_version="factory",
    )
    bid_env = bid.envelope(scenario.id, day, "day_ahead")
    da = Award(
        interval_minutes=15,
        interval_starts=starts,
        market="day_ahead",
        bid_message_id=bid_env.message_id,
        exchange="sim",
        cleared_mw=q_da.tolist(),
        clearing_price_cny_per_mwh=p_da.tolist(),
        regulation_mw=reg.tolist() if regulation_mw else [],
        regulation_mileage_price_cny_per_mw=[6.0] * len(grid) if regulation_mw else [],
        demand_response_mw=dr.tolist() if dr_mw else [],
        demand_response_price_cny_per_mwh=[dr_price] * len(grid) if dr_mw else [],
    )
    rt_min = rt_minutes or 15
    k = 15 // rt_min
    rt = Award(
        interval_minutes=rt_min,
        interval_starts=list(day_intervals(day, rt_min).to_pydatetime()),
        market="real_time",
        bid_message_id=bid_env.message_id,
        exchange="sim",
        cleared_mw=np.repeat(q_da, k).tolist(),
        clearing_price_cny_per_mwh=(np.repeat(p_rt, k) + gen.normal(0, 5, len(p_rt) * k)).tolist(),
    )
    assets = []
    for i, a in enumerate(scenario.park.assets):
        values: list[float | None] = energy[i].tolist()
        if gaps and a.id in gaps:
            lo, hi = gaps[a.id]
            values[lo:hi] = [None] * (hi - lo)
        assets.append(AssetMetering(asset_id=a.id, enterprise_id=a.enterprise, energy_mwh=values))
    regulation = None
    if regulation_mw:
        n = len(grid)
        regulation = RegulationPerformance(
            mileage_mw=[regulation_mw * scenario.market.regulation.mileage_per_mw_h * 0.25] * n,
            k1_ramp=[0.9] * n,
            k2_delay=[0.8] * n,
            k3_error=[0.85] * n,
        )
    m = Metering(
        interval_minutes=15,
        interval_starts=starts,
        source="factory",
        grid_energy_mwh=grid.tolist(),
        assets=assets,
        regulation=regulation,
    )
    park = scenario.id
    return DayMessages(
        da.envelope(park, day, "day_ahead"),
        rt.envelope(park, day, "real_time"),
        m.envelope(park, day),
        bid_env,
    )


def store_history(
    engine: Engine, scenario: Scenario | None = None, days: tuple[date, ...] = (DAY_BEFORE, DAY)
) -> None:
    """The park's telemetry before the test days in the store, as the simulator backfills it for run-day:
    demand-response baselines read the days before the first metered one from there."""
    from infra.scenario import load_scenario
    from sim.backfill import backfill

    scenario = scenario or load_scenario("datong")
    backfill(engine, scenario, min(days) - timedelta(days=60), max(days) + timedelta(days=1), lambda _m: None)


def consume(engine: Engine, msgs: list[DayMessages]) -> SettlementWorker:
    store_history(engine)
    worker = SettlementWorker(engine, "unused:9092")
    for m in msgs:
        for env in (m.metering, m.real_time, m.day_ahead):
            worker.apply("vpp.metering" if env.schema_.name == "metering" else "vpp.awards", env)
    return worker
