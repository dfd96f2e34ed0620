"""Awards back into set-points: complete, feasible, exact where possible, explained where not."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from aggregator.dispatch import check_setpoints, disaggregate, reoptimise
from aggregator.errors import InputError
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer
from aggregator.synthetic import forecast_from_history
from infra.timeutil import MARKET_TZ
from tests.aggregator.aggregator_tools import award_at_median


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
    assert any(n.startswith("18:00-") and "short of the award" in n for n in result.dispatch.notes)
    inputs = inputs_from_forecast(datong, datong_forecast, datong_forecast.interval_starts[0].date())
    assert check_setpoints(datong, inputs, result.setpoints()) == []
    # Smallest deviation: the gas engine burns its whole daily share of the annual fuel budget.
    gas = datong.asset("gas_engine")
    fuel = datong.park.carbon.fuels[gas.fuel]
    budget_mwh = gas.annual_fuel_budget_units / 365 * gas.electric_efficiency * fuel.ncv_mj_per_unit / 3600
    assert abs(result.setpoints()["gas_engine"].sum() * 0.25 - budget_mwh) < 1e-2


def test_intraday_freezes_the_past_and_absorbs_a_forecast_change(datong, datong_forecast, datong_offer):
    award = award_at_median(datong_offer, datong_forecast)
    first = disaggregate(datong, datong_forecast, award, award_message_id="aw-3")
    latest = forecast_from_history(
        datong, datong_forecast.interval_starts[0].date(), spread_fraction=0.05, horizon="intraday"
    )
    for s in latest.series:
        if s.series_id == "wind_farm.wind_mw":
            s.quantiles = {q: [0.7 * v for v in values] for q, values in s.quantiles.items()}
    noon = datetime(2026, 7, 15, 12, 0, tzinfo=MARKET_TZ)
    result = reoptimise(
        datong,
        datong_forecast,
        latest,
        award,
        first.dispatch,
        award_message_id="aw-3",
        state=first.state,
        from_time=noon,
    )
    before = {a.asset_id: np.asarray(a.power_mw) for a in first.dispatch.assets}
    for a in result.dispatch.assets:
        assert np.allclose(a.power_mw[:48], before[a.asset_id][:48], atol=1e-4)
    wind = np.asarray(next(a for a in result.dispatch.assets if a.asset_id == "wind_farm").power_mw)
    assert np.all(wind[48:] <= 0.7 * before["wind_farm"][48:] + 1e-3)
    lost_mwh = (before["wind_farm"][48:] - wind[48:]).sum() * 0.25
    assert lost_mwh > 50
    # The other assets make up for (nearly all of) the lost wind.
    assert np.abs(result.dispatch.deviation_mw).sum() * 0.25 < 0.1 * lost_mwh
    assert result.problems == []
    assert any(n.startswith("intraday re-optimisation from 12:00") for n in result.dispatch.notes)


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
