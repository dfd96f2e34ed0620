"""Multi-hour uncertainty: a battery is not counted for energy it will not have."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.offer import build_offer
from aggregator.uncertainty import ENERGY_WINDOWS_H, window_energy
from tests.aggregator.aggregator_tools import battery, forecast, small_park

LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 12,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}


def test_window_energy_adds_correlated_errors_and_less_when_they_decorrelate():
    half = np.full((1, 96), 2.0)  # P50-P90 half range of 2 MW all day
    fully = window_energy(half, 0.25, 4.0, memory_h=1e9)
    assert fully[-1] == pytest.approx(2.0 * 4.0)  # 2 MW for 4 h: the ranges simply add up
    assert fully[0] == pytest.approx(2.0 * 0.25)  # the first window holds one interval
    partly = window_energy(half, 0.25, 4.0, memory_h=3.0)
    assert 2.0 * 0.25 * 4 < partly[-1] < fully[-1]  # between independent (sqrt) and comonotone
    # Two series' ranges add before the window is summed (comonotone across series).
    assert window_energy(np.full((2, 96), 1.0), 0.25, 2.0)[-1] == pytest.approx(
        window_energy(half, 0.25, 2.0)[-1]
    )


def test_a_small_battery_covers_each_interval_but_not_hours_of_error_and_says_so():
    fc = forecast({"base.load_mw": 10.0, "market.price_da_cny_per_mwh": 300.0}, spread=0.2)
    # 10 MW of power covers the 2 MW range in every interval; 2 MWh cannot cover 4 h of it.
    small = build_offer(
        small_park([LOAD, battery("b1", power_mw=10, energy_mwh=2.0, degradation_cny_per_mwh=40)]),
        fc,
        forecast_message_id="fc",
    )
    assert small.at_risk == []
    up = [r for r in small.energy_at_risk if r.direction == "up" and r.window_h == max(ENERGY_WINDOWS_H)]
    assert up, "the 4 h upward error energy exceeds what 2 MWh can give"
    needed = window_energy(np.full((1, 96), 2.0), 0.25, max(ENERGY_WINDOWS_H))[-1]
    stored = 0.95 * (0.9 - 0.1) * 2.0  # at best the whole usable charge
    assert max(r.shortfall_mwh for r in up) >= needed - stored - 1e-3
    # A battery with the energy keeps it in store: nothing at risk over any window.
    large = build_offer(
        small_park([LOAD, battery("b1", power_mw=10, energy_mwh=40.0, degradation_cny_per_mwh=40)]),
        fc,
        forecast_message_id="fc",
    )
    assert large.energy_at_risk == [] and large.at_risk == []
    soc = large.solution.fleet("battery").values["soc"]
    assert np.all(0.95 * (soc[:, 16:] - 4.0) >= needed - 1e-3)  # energy above the floor for 4 h of error


def test_without_forecast_spread_nothing_is_held_for_energy():
    fc = forecast({"base.load_mw": 10.0, "market.price_da_cny_per_mwh": 300.0})
    result = build_offer(
        small_park([LOAD, battery("b1", power_mw=10, energy_mwh=2.0, degradation_cny_per_mwh=40)]),
        fc,
        forecast_message_id="fc",
    )
    assert result.energy_at_risk == []
    assert np.max(result.solution.energy_short_up) < 1e-6
