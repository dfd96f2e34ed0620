"""Devices own their maths: one Fleet interface, immutable solves, no shared state between solves."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from aggregator.devices import FLEET_TYPES, Fleet, fleets_for
from aggregator.inputs import inputs_from_forecast
from aggregator.offer import build_offer, forecast_day
from aggregator.portfolio import ModelStore
from tests.aggregator.aggregator_tools import forecast, repo_root, small_park

PACKAGE = repo_root() / "aggregator"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_400_lines_and_no_device_type_switch_outside_the_fleets():
    for path in _modules():
        assert len(path.read_text().splitlines()) <= 400, path
    fleet_names = {t.__name__ for t in FLEET_TYPES}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                assert not names & fleet_names, f"{path.name}: isinstance on a fleet type"
            if isinstance(node, ast.Attribute) and node.attr == "type":
                # asset types are the fleets' business (asset_types), not the model's
                assert path.name not in ("model.py", "offer.py", "dispatch.py", "ancillary.py", "scale.py")


def test_no_aggregator_module_imports_the_simulator():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert not name.startswith(("sim", "infra.simulation")), f"{path.name} imports {name}"


def test_fleet_parameters_are_declared_once_and_read_from_the_scenario(datong):
    for fleet in fleets_for(datong):
        assert isinstance(fleet, Fleet)
        assets = datong.assets_of(*type(fleet).asset_types)
        assert list(fleet.ids) == [a.id for a in assets]
        declared = [f for f in dataclasses.fields(fleet) if "param" in f.metadata]
        for f in declared:
            values = getattr(fleet, f.name)
            assert values.shape == (fleet.n,) and not values.flags.writeable
            if f.metadata["param"] is None:  # the scenario field of the same name
                assert np.allclose(values, [float(getattr(a, f.name)) for a in assets])
        with pytest.raises(dataclasses.FrozenInstanceError):
            fleet.ids = ()


def test_every_fleet_type_implements_the_interface():
    for fleet_type in FLEET_TYPES:
        assert fleet_type.asset_types and fleet_type.kind
        for method in ("build", "load", "check"):
            assert getattr(fleet_type, method) is not getattr(Fleet, method), (fleet_type, method)


def test_unmanaged_schedules_pass_the_device_checks(datong, datong_forecast):
    inputs = inputs_from_forecast(datong, datong_forecast, forecast_day(datong_forecast))
    profiles = inputs.medians()
    for fleet in fleets_for(datong):
        points = fleet.unmanaged_setpoints(profiles, inputs.T, inputs.dt_h)
        assert points.shape == (fleet.n, inputs.T)
        if fleet.kind not in ("heat_pump",):  # a heat pump needs its tank at demand peaks
            assert fleet.check(points, profiles, inputs.dt_h) == [], fleet.kind


BATTERY = {
    "id": "b1",
    "type": "battery",
    "name": "battery",
    "power_mw": 10,
    "energy_mwh": 20,
    "charge_efficiency": 0.9,
    "discharge_efficiency": 0.9,
    "soc_min_fraction": 0.1,
    "soc_max_fraction": 0.9,
    "soc_initial_fraction": 0.5,
    "degradation_cny_per_mwh": 10,
}
LOAD = {
    "id": "base",
    "type": "inflexible_load",
    "name": "base load",
    "peak_mw": 5,
    "load_factor": 1.0,
    "profile": "flat",
    "weekend_factor": 1.0,
    "holiday_factor": 1.0,
}


def test_each_solve_returns_its_own_immutable_answer_and_a_reused_model_keeps_nothing():
    park = small_park([BATTERY, LOAD])
    hours = np.arange(96) * 0.25
    cheap_morning = forecast(
        {"base.load_mw": 5.0, "market.price_da_cny_per_mwh": np.where(hours < 12, 100.0, 500.0)}
    )
    cheap_evening = forecast(
        {"base.load_mw": 5.0, "market.price_da_cny_per_mwh": np.where(hours < 12, 500.0, 100.0)}
    )
    models = ModelStore()
    first = build_offer(park, cheap_morning, forecast_message_id="a", models=models)
    kept = first.solution.injection.copy()
    second = build_offer(park, cheap_evening, forecast_message_id="b", models=models)
    # The same compiled model answered both, and the first answer is untouched by the second.
    assert np.array_equal(first.solution.injection, kept)
    assert not np.allclose(first.solution.injection, second.solution.injection)
    with pytest.raises(ValueError):
        first.solution.injection[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.solution.carbon_price = 0.0
    # A fresh model gives the same answer as the reused one: no state carried between solves.
    fresh = build_offer(park, cheap_evening, forecast_message_id="b")
    assert fresh.offer.expected_revenue_cny == pytest.approx(second.offer.expected_revenue_cny, rel=1e-6)
    assert first.solution.fleet("battery").power.shape == (5, 1, 96)


def test_the_carbon_price_of_a_solve_prices_gas_peak_cuts_without_touching_the_fleet(datong, datong_forecast):
    low = build_offer(datong, datong_forecast, forecast_message_id="fc", carbon_price_cny_per_tco2=0)
    gas = low.solution.fleet("gas_generator")
    assert gas is not None and low.solution.carbon_price == 0
    _, cost0 = gas.fleet.peak_cut(gas, 0, 1.0, 300.0, low.solution.carbon_price)
    _, cost300 = gas.fleet.peak_cut(gas, 0, 1.0, 300.0, 300.0)
    assert np.allclose(cost300 - cost0, 300.0 * gas.fleet.tco2_per_mwh)
    assert not hasattr(gas.fleet, "carbon_price")
