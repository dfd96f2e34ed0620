"""A park's baselines computed in blocks of assets equal the baselines computed at once."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from infra.db import make_engine, migrate
from infra.scenario import load_scenario
from infra.timeseries.store import read, write
from settlement.park_baseline import asset_blocks, park_baseline
from sim.backfill import backfill

TARGET = date(2026, 7, 15)  # a Wednesday


def test_blocks_give_the_baselines_of_the_whole_park(sqlite_url: str) -> None:
    scenario = load_scenario("datong")
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    backfill(engine, scenario, TARGET - timedelta(days=12), TARGET, lambda _m: None)
    # One meter reads nonsense on the last workday: only that meter must choose another day.
    broken = next(a for a in scenario.park.assets if a.type == "interruptible_load")
    name = f"{broken.id}.load_mw"
    with engine.begin() as conn:
        day = read(conn, scenario.id, [name], TARGET - timedelta(days=1), TARGET)[name]
        write(conn, scenario.id, {name: pd.Series(1e6, index=day.index[:1])}, "test-fault")
    with engine.connect() as conn:
        whole = park_baseline(conn, scenario, TARGET, 15, 96, block_assets=10_000)
        blocks = asset_blocks(scenario, 3)
        every_asset = list(range(len(scenario.park.assets)))
        assert len(blocks) > 3 and sorted(i for b in blocks for i in b) == every_asset
        split = park_baseline(conn, scenario, TARGET, 15, 96, block_assets=3)
        replay = park_baseline(conn, scenario, TARGET, 15, 96, whole.provenance, block_assets=3)
    engine.dispose()

    meters = whole.provenance["meters"]
    mine = meters[1 + [a.id for a in scenario.park.assets].index(broken.id)]
    assert str(TARGET - timedelta(days=1)) not in mine and str(TARGET - timedelta(days=1)) in meters[0]
    for other in (split, replay):
        np.testing.assert_array_equal(other.assets_mwh, whole.assets_mwh)
        np.testing.assert_array_equal(other.grid_mwh, whole.grid_mwh)
        assert other.provenance == whole.provenance
        assert other.notes == whole.notes
    assert np.isfinite(whole.assets_mwh).all(axis=1).sum() >= len(scenario.park.assets) - 1
