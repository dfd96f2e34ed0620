"""Scenario files: both reference parks load, and inconsistent ones are rejected by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.scenario import ScenarioError, load_file, load_scenario
from infra.scenario.loader import PACKAGE_DIR, load_market, parse_scenario


def _raw(park: str) -> dict[str, Any]:
    return yaml.safe_load((PACKAGE_DIR / "parks" / f"{park}.yaml").read_text())


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw, load_market(raw["market"]), "test")
    return info.value.problems


def _asset(raw: dict[str, Any], asset_id: str) -> dict[str, Any]:
    return next(a for a in raw["assets"] if a["id"] == asset_id)


def test_reference_parks_load_with_every_asset_family_in_datong() -> None:
    datong = load_scenario("datong")
    families = {a.type for a in datong.park.assets}
    assert families >= {
        "pv",
        "wind",
        "battery",
        "heat_pump",
        "ev_fleet",
        "shiftable_batch",
        "interruptible_load",
        "gas_generator",
        "inflexible_load",
    }
    assert {a.kind for a in datong.assets_of("pv")} == {"central", "rooftop"}
    assert any(b.enterprise != "park_energy" for b in datong.assets_of("battery")), "user-side batteries"
    chifeng = load_scenario("chifeng")
    assert {"electrolyser", "data_centre"} <= {a.type for a in chifeng.park.assets}
    assert datong.park.choices and chifeng.park.choices


def test_negative_capacity_names_asset_and_field() -> None:
    raw = copy.deepcopy(_raw("datong"))
    _asset(raw, "pv_central")["capacity_mw"] = -5
    problems = _problems(raw)
    assert any(
        p.startswith("asset 'pv_central' (pv): capacity_mw") and "greater than 0" in p for p in problems
    )


def test_unknown_enterprise_and_connection_are_reported_together() -> None:
    raw = copy.deepcopy(_raw("datong"))
    _asset(raw, "bess_grid")["enterprise"] = "nobody"
    _asset(raw, "wind_farm")["connection"] = "nowhere_kv"
    problems = _problems(raw)
    assert "asset 'bess_grid' (battery): enterprise 'nobody' is not a park enterprise" in problems
    assert "asset 'wind_farm' (wind): connection 'nowhere_kv' is not a grid node" in problems


def test_energy_beyond_power_times_duration_is_rejected() -> None:
    raw = copy.deepcopy(_raw("datong"))
    _asset(raw, "cell_interruptible")["max_energy_mwh_per_day"] = 500
    _asset(raw, "bess_grid")["energy_mwh"] = 1000  # 50 MW x 8 h max = 400 MWh
    problems = _problems(raw)
    assert any(
        p.startswith("asset 'cell_interruptible' (interruptible_load): max_energy_mwh_per_day=500")
        for p in problems
    )
    assert any(p.startswith("asset 'bess_grid' (battery): energy_mwh=1000") for p in problems)


def test_soc_window_and_duplicate_ids() -> None:
    raw = copy.deepcopy(_raw("datong"))
    _asset(raw, "bess_grid")["soc_initial_fraction"] = 0.99
    raw["assets"].append(copy.deepcopy(_asset(raw, "ev_trucks")))
    problems = _problems(raw)
    assert any("bess_grid" in p and "soc_initial_fraction" in p for p in problems)
    assert "asset id 'ev_trucks' is used 2 times" in problems


def test_storage_policy_is_enforced_for_chifeng() -> None:
    raw = copy.deepcopy(_raw("chifeng"))
    _asset(raw, "bess_songshan")["power_mw"] = 5
    _asset(raw, "bess_songshan")["energy_mwh"] = 20
    problems = _problems(raw)
    assert any(p.startswith("storage_policy: operator storage 21.5 MW is below 39 MW") for p in problems)


def test_unknown_field_and_missing_source(tmp_path: Path) -> None:
    raw = copy.deepcopy(_raw("datong"))
    _asset(raw, "gas_engine")["colour"] = "blue"
    del _asset(raw, "ev_trucks")["source"]
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    text = str(info.value)
    assert "asset 'gas_engine' (gas_generator): colour: Extra inputs are not permitted" in text
    assert "asset 'ev_trucks' (ev_fleet): source: Field required" in text


def test_bad_yaml_and_unknown_market(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_file(bad)
    raw = copy.deepcopy(_raw("datong"))
    raw["market"] = "atlantis"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError, match=r"no market file atlantis\.yaml; available: mengxi, shanxi"):
        load_file(other)
