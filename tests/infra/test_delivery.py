"""The delivery simulator: uncontrolled assets follow the truth, caps hold, meters have gaps."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from infra.contracts import AssetSetpoints, Dispatch
from infra.scenario import load_scenario
from infra.timeutil import day_intervals
from sim.delivery import deliver
from sim.history import load_history

DAY = date(2026, 7, 15)


def test_delivery_follows_truth_caps_and_setpoints() -> None:
    s = load_scenario("datong")
    n = 96
    cap = [None] * 40 + [100.0] * 16 + [None] * 40
    assets = [
        AssetSetpoints(asset_id="pv_central", enterprise_id="park_energy", power_mw=[0.0] * n, cap_mw=cap),
        AssetSetpoints(asset_id="cell_plant_load", enterprise_id="cell_plant", power_mw=[-150.0] * n),
        AssetSetpoints(
            asset_id="bess_grid", enterprise_id="park_energy", power_mw=[20.0] * 48 + [-20.0] * 48
        ),
    ]
    dispatch = Dispatch(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        award_message_id="a",
        assets=assets,
        deviation_mw=[0.0] * n,
        regulation_mw=[10.0] * n,
    )
    metering = deliver(dispatch, s, DAY)
    truth = load_history(s, DAY, DAY + timedelta(days=1), view="truth")
    by_id = {m.asset_id: m for m in metering.assets}

    def mw(asset_id: str) -> np.ndarray:
        return np.array([np.nan if e is None else e / 0.25 for e in by_id[asset_id].energy_mwh])

    pv, available = mw("pv_central"), truth["pv_central.pv_mw"].to_numpy()
    ok = ~np.isnan(pv)
    assert np.allclose(pv[ok][:40], np.minimum(available, 1e9)[ok][:40], atol=1e-3)
    assert np.nanmax(pv[40:56]) <= 100.0 + 1e-6, "curtailment cap holds"
    load = mw("cell_plant_load")
    assert np.allclose(
        load[~np.isnan(load)], -truth["cell_plant_load.load_mw"].to_numpy()[~np.isnan(load)], atol=1e-3
    )
    battery = mw("bess_grid")
    assert np.nanmean(np.abs(battery - np.array([20.0] * 48 + [-20.0] * 48))) < 3.0, "tracks its set-point"
    assert metering.regulation is not None and min(metering.regulation.k2_delay) > 0
    assert len(metering.grid_energy_mwh) == n and all(e is not None for e in metering.grid_energy_mwh)
    again = deliver(dispatch, s, DAY)
    assert again == metering, "deterministic for the same day"


def test_worker_plays_out_the_day_ahead_dispatch_only(sqlite_url: str) -> None:
    from sqlalchemy import select

    from infra.contracts import Topic
    from infra.db import make_engine, migrate
    from infra.db.tables import outbox
    from sim.delivery import DeliveryWorker

    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    worker = DeliveryWorker(engine, "unused:9092")
    assets = [AssetSetpoints(asset_id="cell_plant_load", enterprise_id="cell_plant", power_mw=[-150.0] * 96)]
    dispatch = Dispatch(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        award_message_id="a",
        assets=assets,
        deviation_mw=[0.0] * 96,
    )
    assert worker.apply(
        Topic.DISPATCH, dispatch.envelope("datong", DAY, "intraday", "2026-07-15T10:00+08:00")
    )
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.schema_name)).scalars().all() == []
    assert worker.apply(Topic.DISPATCH, dispatch.envelope("datong", DAY, "day_ahead"))
    with engine.connect() as conn:
        assert conn.execute(select(outbox.c.schema_name)).scalars().all() == ["metering"]
