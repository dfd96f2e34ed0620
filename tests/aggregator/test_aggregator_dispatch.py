"""Awards back into set-points: complete, feasible, exact where possible, explained where not."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from aggregator.dispatch import check_setpoints, disaggregate, reoptimise
from aggregator.errors import InputError
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer
from infra.timeutil import MARKET_TZ
from tests.aggregator.aggregator_tools import award_at_median, forecast, small_park


@pytest.fixture(scope="module")
def datong_offer(datong, datong_forecast):
    return build_offer(datong, datong_forecast, forecast_message_id="fc").offer


def test_every_asset_gets_feasible_setpoints_that_sum_to_the_award(datong, datong_forecast, datong_offer):
    award = award_at_median(
        datong_offer,
        datong_forecast,
        regulation_mw=[r.capacity_mw for r in datong_offer.regulation],
        regulation_mileage_price_cny_per_mw=[6.0] * 96,
    )
    result = disaggregate(datong, datong_forecast, award, award_message_id="aw-1")
    dispatch = result.dispatch
    assert {a.asset_id for a in dispatch.assets} == {a.id for a in datong.park.assets}
    assert all(a.enterprise_id == datong.asset(a.asset_id).enterprise for a in dispatch.assets)
    total = np.sum([a.power_mw for a in dispatch.assets], axis=0)
    assert np.allclose(total - np.asarray(award.cleared_mw), dispatch.deviation_mw, atol=1e-5)
    assert np.max(np.abs(dispatch.deviation_mw)) < 1e-3
    inputs = inputs_from_forecast(datong, datong_forecast, datong_forecast.interval_starts[0].date())
    assert check_setpoints(datong, inputs, result.setpoints()) == []
    # Inflexible loads are sent their expected consumption (negative: they take power).
    load = next(a for a in dispatch.assets if a.asset_id == "cell_plant_load")
    assert max(load.power_mw) < 0


def test_an_award_beyond_the_park_gets_the_smallest_deviation_and_the_reason(
    datong, datong_forecast, datong_offer
):
    award = award_at_median(datong_offer, datong_forecast)
    evening = slice(72, 76)  # 18:00-19:00
    cleared = np.asarray(award.cleared_mw)
    cleared[evening] += 2000.0
    award = award.model_copy(update={"cleared_mw": cleared.tolist()})
    result = disaggregate(datong, datong_forecast, award, award_message_id="aw-2")
    deviation = np.asarray(result.dispatch.deviation_mw)
    assert np.all(deviation[evening] < -1000)  # far short: no park can export 2 GW more
    # Batteries may spend the evening's energy an hour early (the total shortfall is the same),
    # but outside the evening the award is delivered exactly and the shortfall never exceeds the excess.
    assert np.max(np.abs(np.delete(deviation, np.arange(72, 80)))) < 1e-3
    assert np.all(deviation < 1e-3) and -deviation.sum() * 0.25 < 2000 * 1.0
    # The note says why: 2 GW is beyond all the headroom the park's flexible assets have left.
    evening_note = next(
        n for n in result.dispatch.notes if n.startswith("18:00-") and "short of the award" in n
    )
    assert "the award is beyond the park's reach" in evening_note
    inputs = inputs_from_forecast(datong, datong_forecast, datong_forecast.interval_starts[0].date())
    assert check_setpoints(datong, inputs, result.setpoints()) == []
    # Smallest deviation: the gas engine burns its whole daily share of the annual fuel budget.
    gas = datong.asset("gas_engine")
    fuel = datong.park.carbon.fuels[gas.fuel]
    budget_mwh = gas.annual_fuel_budget_units / 365 * gas.electric_efficiency * fuel.ncv_mj_per_unit / 3600
    assert abs(result.setpoints()["gas_engine"].sum() * 0.25 - budget_mwh) < 1e-2


def test_intraday_freezes_the_past_and_covers_lost_wind_with_curtailment_after_notice():
    wind = {
        "id": "wt",
        "type": "wind",
        "name": "wind",
        "capacity_mw": 20,
        "turbines": 4,
        "turbine_type": "S126/6150",
        "hub_height_m": 100,
        "full_load_hours": 2000,
    }
    load = {
        "id": "base",
        "type": "inflexible_load",
        "name": "base load",
        "peak_mw": 12,
        "load_factor": 1.0,
        "profile": "flat",
        "weekend_factor": 1.0,
        "holiday_factor": 1.0,
    }
    plant = {
        "id": "il",
        "type": "interruptible_load",
        "name": "compressors",
        "baseline_mw": 6,
        "max_curtail_mw": 5,
        "max_duration_h": 4,
        "max_energy_mwh_per_day": 20,
        "cost_cny_per_mwh": 300,
        "notice_minutes": 30,
    }
    park = small_park([wind, load, plant])
    series = {
        "wt.wind_mw": 10.0,
        "base.load_mw": 10.0,
        "il.load_mw": 6.0,
        "market.price_da_cny_per_mwh": 100.0,
    }
    day_ahead = forecast(series)
    offer = build_offer(park, day_ahead, forecast_message_id="fc").offer
    award = award_at_median(offer, day_ahead)
    first = disaggregate(park, day_ahead, award, award_message_id="aw")
    # At 100 CNY/MWh, plus the import tariff and carbon, curtailing at 300 CNY/MWh does not pay.
    assert np.allclose(first.setpoints()["il"], -6.0, atol=1e-3)

    noon = 48
    lull = (np.arange(96) >= noon) & (np.arange(96) < noon + 16)
    drop = np.where(lull, 8.0, 10.0)  # 2 MW less wind 12:00-16:00
    latest = forecast({**series, "wt.wind_mw": drop}).model_copy(update={"horizon": "intraday"})
    result = reoptimise(
        park,
        day_ahead,
        latest,
        award,
        first.dispatch,
        award_message_id="aw",
        state=first.state,
        from_time=datetime(2026, 7, 15, 12, 0, tzinfo=MARKET_TZ),
    )
    points = result.setpoints()
    for asset, before in first.setpoints().items():
        assert np.allclose(points[asset][:noon], before[:noon], atol=1e-4)  # the morning is history
    # The compressors need 30 minutes' notice: 12:00-12:30 stays 2 MW short, the rest is delivered
    # exactly by curtailing 2 MW for the remaining 3.5 hours of the lull.
    deviation = np.asarray(result.dispatch.deviation_mw)
    assert np.allclose(deviation[noon : noon + 2], -2.0, atol=1e-3)
    assert np.max(np.abs(np.delete(deviation, [noon, noon + 1]))) < 1e-3
    curtailed_mwh = (points["il"] + 6.0).sum() * 0.25
    assert curtailed_mwh == pytest.approx(2.0 * 3.5, abs=1e-2)
    assert any(
        n.startswith("12:00-12:30: set-points are short of the award by up to 2.000 MW")
        for n in result.dispatch.notes
    )
    assert result.problems == []
    assert result.dispatch.notes[0].startswith("intraday re-optimisation from 12:00")


def test_an_award_on_another_interval_grid_is_rejected_by_name(datong, datong_forecast, datong_offer):
    award = award_at_median(datong_offer, datong_forecast)
    half = award.model_copy(
        update={
            "interval_starts": award.interval_starts[:48],
            "cleared_mw": award.cleared_mw[:48],
            "clearing_price_cny_per_mwh": award.clearing_price_cny_per_mwh[:48],
        }
    )
    with pytest.raises(InputError, match="award interval_starts"):
        disaggregate(datong, datong_forecast, half, award_message_id="aw-4")
