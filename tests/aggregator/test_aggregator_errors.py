"""Bad inputs and impossible days: a clear error naming the field, the device and the rule."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.errors import InfeasibleError, InputError
from aggregator.offer import build_offer
from tests.aggregator.aggregator_tools import forecast, small_park

LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 10,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}
PV = {
    "id": "roof",
    "type": "pv",
    "name": "roof",
    "capacity_mw": 10,
    "kind": "rooftop",
    "tilt_deg": 10,
    "azimuth_deg": 180,
    "system_loss_fraction": 0.1,
}
PRICE = {"market.price_da_cny_per_mwh": 300.0}


def test_a_missing_series_is_named():
    with pytest.raises(InputError, match=r"lacks series base\.load_mw"):
        build_offer(small_park([LOAD]), forecast(PRICE), forecast_message_id="fc")


def test_a_non_finite_value_is_named_with_quantile_and_interval():
    fc = forecast({"base.load_mw": 5.0, **PRICE})
    fc.series[0].quantiles["0.9"][40] = float("nan")
    with pytest.raises(
        InputError, match=r"base\.load_mw, quantile 0\.9: value at 2026-07-15T10:00:00\+08:00 is not a finite"
    ):
        build_offer(small_park([LOAD]), fc, forecast_message_id="fc")


def test_impossible_generation_is_rejected():
    with pytest.raises(InputError, match=r"roof\.pv_mw, quantile 0\.\d: -3\.000 MW .* must be >= 0"):
        build_offer(
            small_park([LOAD, PV]),
            forecast({"base.load_mw": 5.0, "roof.pv_mw": -3.0, **PRICE}),
            forecast_message_id="fc",
        )
    with pytest.raises(
        InputError, match=r"roof\.pv_mw, quantile 0\.\d: 30\.0 MW .* exceeds the asset's capacity \(10 MW"
    ):
        build_offer(
            small_park([LOAD, PV]),
            forecast({"base.load_mw": 5.0, "roof.pv_mw": 30.0, **PRICE}),
            forecast_message_id="fc",
        )


def test_unmeetable_heat_demand_names_the_heat_pump_and_the_family():
    heat_pump = {
        "id": "hp",
        "type": "heat_pump",
        "name": "heat pump",
        "electric_mw": 10,
        "cop": 3.0,
        "heat_peak_mw_th": 30,
        "tank_mwh_th": 10,
        "tank_loss_fraction_per_h": 0.0,
        "heating_months": [1],
    }
    park = small_park([LOAD, heat_pump])
    demand = np.where(
        (np.arange(96) >= 72) & (np.arange(96) < 80), 40.0, 10.0
    )  # 40 MW_th for 2 h > 30 + tank
    fc = forecast({"base.load_mw": 5.0, "hp.heat_mw_th": demand, **PRICE})
    with pytest.raises(InfeasibleError, match=r"hp: heat demand not met short by .* MWh_th \(from 18:"):
        build_offer(park, fc, forecast_message_id="fc")
    relaxed = build_offer(park, fc, forecast_message_id="fc", allow_relaxed=True)
    (violation,) = relaxed.violations
    # 2 h at 10 MW_th above the pump's 30 MW_th, less the 10 MWh_th a full tank can give.
    assert violation.asset_id == "hp" and violation.amount == pytest.approx(10.0, abs=1e-2)
    assert len(relaxed.offer.energy) == 96


def test_a_grid_node_too_small_for_its_load_is_named():
    grid = [
        {
            "id": "substation_220kv",
            "voltage_kv": 220,
            "import_limit_mw": 4,
            "export_limit_mw": 4,
            "source": "[assumption] test",
        }
    ]
    park = small_park([LOAD], grid=grid)
    with pytest.raises(InfeasibleError, match=r"substation_220kv: import limit short by 1 MW"):
        build_offer(park, forecast({"base.load_mw": 5.0, **PRICE}), forecast_message_id="fc")


def test_compute_that_cannot_be_deferred_beyond_site_power_is_named():
    centre = {
        "id": "dc",
        "type": "data_centre",
        "name": "compute",
        "it_load_mw": 50,
        "pue": 1.2,
        "deferrable_fraction": 0.2,
        "max_deferral_h": 4,
        "max_power_mw": 66,
    }
    park = small_park([LOAD, centre])
    fc = forecast({"base.load_mw": 5.0, "dc.it_load_mw": 80.0, **PRICE})  # 80 % of 80 MW = 64 > 66 / 1.2 = 55
    with pytest.raises(InfeasibleError, match=r"dc: non-deferrable work within site power"):
        build_offer(park, fc, forecast_message_id="fc")


def test_an_unknown_solver_is_named():
    with pytest.raises(InputError, match=r"solver='GUROBI': choose one of ECOS, CLARABEL, HIGHS"):
        build_offer(
            small_park([LOAD]),
            forecast({"base.load_mw": 5.0, **PRICE}),
            forecast_message_id="fc",
            solver="gurobi",
        )


@pytest.mark.parametrize("solver", ["CLARABEL", "HIGHS"])
def test_other_solvers_give_the_same_offer(solver):
    battery = {
        "id": "b1",
        "type": "battery",
        "name": "battery",
        "power_mw": 10,
        "energy_mwh": 20,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.9,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 40,
    }
    park = small_park([LOAD, battery])
    fc = forecast(
        {"base.load_mw": 5.0, "market.price_da_cny_per_mwh": np.where(np.arange(96) < 48, 200.0, 600.0)}
    )
    ecos = build_offer(park, fc, forecast_message_id="fc")
    other = build_offer(park, fc, forecast_message_id="fc", solver=solver)
    assert other.info.solver == solver
    assert other.offer.expected_revenue_cny == pytest.approx(ecos.offer.expected_revenue_cny, rel=1e-4)
