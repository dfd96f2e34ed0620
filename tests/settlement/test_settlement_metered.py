"""Heat and fuel meters in the time-series store reach the ledger without manual posts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infra.db import make_engine, migrate
from infra.timeseries import write
from infra.timeutil import day_intervals
from settlement import store
from settlement.carbon.indicators import indicators
from settlement.carbon.ledger import entries, verify
from settlement.settle import replay_day
from tests.settlement.settlement_factory import DAY, consume


def test_heat_and_gas_meters_are_settled_per_interval_into_the_ledger(
    sqlite_url: str, messages, datong
) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    index = day_intervals(DAY, 60)  # hourly meters, settled on the 15-minute grid
    heat = pd.Series(np.full(24, 10.0), index=index)  # 10 GJ of fossil heat every hour
    clean = pd.Series(np.full(24, 5.0), index=index)
    gas = pd.Series(np.r_[np.full(12, 100.0), np.full(12, np.nan)], index=index)  # 12 h of readings
    with engine.begin() as conn:
        write(
            conn,
            "datong",
            {
                "cathode_plant.heat_fossil_gj": heat,
                "cathode_plant.heat_non_fossil_gj": clean,
                "cell_plant.natural_gas_m3": gas,
            },
            "test meters",
            interval_minutes=60,
        )
    consume(engine, [messages[DAY]])
    with engine.connect() as conn:
        rows = [r for r in entries(conn, "datong", DAY) if r["entry_key"].startswith("metered:")]
        sts = {s.account_id: s for _, s in store.statements(conn, "datong", DAY)}
        record = store.day_record(conn, "datong", DAY)["record"]
        ind = indicators(conn, datong, DAY, DAY.replace(day=16), "cathode_plant")
        assert verify(conn, "datong")[1] == []
    by_key = {(r["account_id"], r["entry_key"]): r for r in rows}
    heat_entry = by_key[("cathode_plant", "metered:heat_fossil_gj")]
    co2 = {
        p.book: p.quantity
        for p in heat_entry["postings"]
        if p.unit == "tCO2" and p.account == "cathode_plant"
    }
    assert co2["emissions.scope2.heat"] == pytest.approx(240 * 0.11)  # 240 GJ x 0.11 t/GJ
    gas_entry = by_key[("cell_plant", "metered:natural_gas_m3")]
    gas_t = next(p.quantity for p in gas_entry["postings"] if p.account == "cell_plant")
    f = gas_entry["factors"]  # the factors of the day's portfolio, cited by the entry
    assert gas_entry["activity"]["quantity"] == 1200.0  # 12 h x 100 m3
    assert gas_t == pytest.approx(
        1200 * f["ncv_mj_per_unit"] * 1e-6 * f["ef_tco2_per_tj"] * f["oxidation_fraction"], abs=1e-6
    )
    assert ("cathode_plant", "metered:heat_non_fossil_gj") in by_key
    assert any("cell_plant.natural_gas_m3: 12 interval(s) without a reading" in n for n in record["notes"])
    per_t = record["carbon"]["by_interval"]["heat_fuel_emissions_tco2"]
    assert len(per_t) == 96 and sum(per_t) == pytest.approx(240 * 0.11 + gas_t, abs=1e-5)
    assert per_t[0] > per_t[95]  # gas in the morning only
    # statements and indicators carry the metered emissions and heat energy
    assert ind.emissions_by_source_tco2["scope2.heat"] == pytest.approx(26.4)
    assert ind.heat_gj["non_fossil"] == pytest.approx(120.0)
    assert sts["park"].emissions_tco2 == pytest.approx(
        record["carbon"]["metered_heat_fuel_tco2"]
        + sum(record["carbon"]["by_interval"]["grid_emissions_tco2"])
        - 0.0,
        abs=50,
    )
    assert replay_day(engine, datong, DAY).differences == []
    # a meter correction after settlement does not change the replay (the day recorded what it read)
    with engine.begin() as conn:
        write(
            conn, "datong", {"cathode_plant.heat_fossil_gj": heat * 2}, "late correction", interval_minutes=60
        )
    assert replay_day(engine, datong, DAY).differences == []
