"""Input checks: malformed awards and metering are refused naming the field and the rule."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from infra.contracts import Award, Envelope, Metering
from settlement.facts import GAP, IMPLAUSIBLE, NOT_METERED, FactError, assemble, check_fact, read_fact
from tests.settlement.settlement_factory import DAY


def checked(env: Envelope, scenario) -> None:
    check_fact(read_fact(env, scenario), scenario)


def test_unknown_schema_and_missing_fields_are_named(messages) -> None:
    env = messages[DAY].day_ahead
    other = env.model_copy(update={"schema_": env.schema_.model_copy(update={"name": "bid"})})
    with pytest.raises(FactError, match="schema: 'bid' is not settled here"):
        read_fact(other)
    payload = dict(env.payload)
    del payload["clearing_price_cny_per_mwh"]
    with pytest.raises(FactError, match="clearing_price_cny_per_mwh: Field required"):
        read_fact(env.model_copy(update={"payload": payload}))
    short = dict(env.payload, cleared_mw=env.payload["cleared_mw"][:-1])
    with pytest.raises(FactError, match="cleared_mw: has 95 values for 96 intervals"):
        read_fact(env.model_copy(update={"payload": short}))


def test_intervals_must_be_the_market_days_intervals(messages, datong) -> None:
    m = Metering.from_envelope(messages[DAY].metering)
    shifted = m.model_copy(update={"interval_starts": [s + timedelta(days=1) for s in m.interval_starts]})
    with pytest.raises(
        FactError, match=r"interval_starts\[0\]: 2026-07-16T00:00:00\+08:00 is not 2026-07-15T00:00:00\+08:00"
    ):
        checked(shifted.envelope("datong", DAY), datong)
    naive = m.model_copy(update={"interval_starts": [s.replace(tzinfo=None) for s in m.interval_starts]})
    with pytest.raises(FactError, match=r"interval_starts\[0\]: 2026-07-15T00:00:00 has no timezone offset"):
        checked(naive.envelope("datong", DAY), datong)
    da = Award.from_envelope(messages[DAY].day_ahead)
    coarse = da.model_copy(
        update={
            "interval_minutes": 30,
            "interval_starts": da.interval_starts[::2],
            "cleared_mw": da.cleared_mw[::2],
            "clearing_price_cny_per_mwh": da.clearing_price_cny_per_mwh[::2],
            "regulation_mw": da.regulation_mw[::2],
            "regulation_mileage_price_cny_per_mw": da.regulation_mileage_price_cny_per_mw[::2],
            "demand_response_mw": da.demand_response_mw[::2],
            "demand_response_price_cny_per_mwh": da.demand_response_price_cny_per_mwh[::2],
        }
    )
    with pytest.raises(
        FactError, match="interval_minutes: 30 is not the market's day-ahead interval \\(15 min\\)"
    ):
        checked(coarse.envelope("datong", DAY), datong)


def test_non_finite_values_wrong_park_and_unknown_assets_are_all_reported(messages, datong) -> None:
    m = Metering.from_envelope(messages[DAY].metering)
    grid = list(m.grid_energy_mwh)
    grid[5] = float("nan")
    bad = m.model_copy(update={"grid_energy_mwh": grid})
    env = bad.envelope("chifeng", DAY)
    with pytest.raises(FactError) as err:
        checked(env, datong)
    text = str(err.value)
    assert "park_id: 'chifeng' is not the scenario's park 'datong'" in text
    assert "grid_energy_mwh.5: Input should be a finite number" in text  # the contract refuses NaN


def test_gaps_implausible_readings_and_missing_meters_are_estimated_and_flagged(messages, datong) -> None:
    m = Metering.from_envelope(messages[DAY].metering)
    assets = list(m.assets)
    i = next(k for k, a in enumerate(assets) if a.asset_id == "wind_farm")
    spiky = list(assets[i].energy_mwh)
    spiky[3] = 500.0  # a 200 MW farm cannot make 500 MWh in 15 minutes
    assets[i] = assets[i].model_copy(update={"energy_mwh": spiky})
    assets = [a for a in assets if a.asset_id != "ev_trucks"]
    env = m.model_copy(update={"assets": assets}).envelope("datong", DAY, "x")
    facts = {
        f.kind: f for f in (read_fact(e) for e in (messages[DAY].day_ahead, messages[DAY].real_time, env))
    }
    day = assemble(datong, facts)
    ids = list(day.asset_ids)
    assert day.quality[ids.index("wind_farm"), 3] == IMPLAUSIBLE and np.isnan(
        day.metered_mwh[ids.index("wind_farm"), 3]
    )
    assert (day.quality[ids.index("ev_trucks")] == NOT_METERED).all()
    assert (day.quality[ids.index("pv_central"), 40:48] == GAP).all()


def test_five_minute_real_time_prices_are_averaged_onto_the_meter_grid(messages, datong) -> None:
    facts = {f.kind: f for f in (read_fact(e) for e in messages[DAY].all())}
    rt = Award.from_envelope(messages[DAY].real_time)
    assert rt.interval_minutes == 5
    day = assemble(datong, facts)
    assert day.p_rt_cny_per_mwh[10] == pytest.approx(np.mean(rt.clearing_price_cny_per_mwh[30:33]))
