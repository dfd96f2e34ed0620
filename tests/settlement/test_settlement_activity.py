"""``parkvpp carbon account``: a worked example computed by hand, verdicts, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app

WORKED = """
park: Worked example park
year: 2025
electricity_tce_basis: calorific
fuels:
  - {fuel: natural_gas, activity: process heat, quantity: 100, unit: "10^4 m3"}
  - {fuel: diesel, activity: emergency generation, quantity: 100, unit: t}
  - {fuel: coke_oven_gas, quantity: 200000, unit: m3, ncv_mj_per_unit: 17.354, ef_tco2_per_tj: 37.3,
     kgce_per_unit: 0.5929, oxidation_fraction: 0.99}
conversion:
  inputs: [{fuel: raw_coal, quantity: 1000, unit: t, ncv_mj_per_unit: 20908, ef_tco2_per_tj: 95.0, kgce_per_unit: 714.3}]
  outputs: [{fuel: coke_oven_gas, quantity: 300000, unit: m3, ncv_mj_per_unit: 17.354, ef_tco2_per_tj: 37.3, kgce_per_unit: 0.5929}]
electricity:
  in: {grid: 100000, direct_green: 50000, green_traded: 20000, certificate_covered: 10000}
  out: {grid: 1000, green: 2000}
heat:
  in: {fossil_gj: 10000, non_fossil_gj: 5000}
  out: {fossil_gj: 1000}
process:
  - {product: lime, quantity_t: 1000, ef_tco2_per_t: 0.683}
  - {product: LFP battery cells, quantity_t: 500, ef_tco2_per_t: 0.1, report_separately: true}
"""


def run(tmp_path: Path, text: str, *args: str):
    path = tmp_path / "activity.yaml"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(app, ["carbon", "account", "--activity", str(path), *args])


def test_worked_example_by_hand(tmp_path: Path) -> None:
    result = run(tmp_path, WORKED, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    e = out["emissions_tco2"]
    # Datong factors: natural gas 35.544 MJ/m3, 56.1 t/TJ -> 1e6 m3 = 35.544 TJ = 1,994.0184 t;
    # diesel 42.652 MJ/kg, 74.1 t/TJ -> 100 t = 4.2652 TJ = 316.05132 t;
    # coke-oven gas (file factors) 200,000 m3 x 17.354 MJ = 3.4708 TJ x 37.3 x 0.99 = 128.1662316 t.
    assert e["E_fuel"] == pytest.approx(1994.0184 + 316.05132 + 128.1662316, abs=1e-6)
    # raw coal 20.908 TJ x 95 = 1,986.26 t in; coke-oven gas 5.2062 TJ x 37.3 = 194.19126 t out.
    assert e["E_conversion"] == pytest.approx(1986.26 - 194.19126, abs=1e-6)
    assert e["E_elec"] == pytest.approx((100000 - 1000) * 0.8325)  # green in and green out have Ef = 0
    assert e["E_heat"] == pytest.approx((10000 - 1000) * 0.11)
    assert e["E_process"] == pytest.approx(683.0)  # battery cells reported separately
    assert out["reported_separately_tco2"] == {"LFP battery cells": pytest.approx(50.0)}
    total = 2438.2359516 + 1792.06874 + 82417.5 + 990 + 683
    assert e["E_park"] == pytest.approx(total, abs=1e-6)
    assert out["emissions_1e4_tco2"]["E_park"] == pytest.approx(total / 1e4)
    tce = out["energy_tce"]
    assert tce["fuels"] == pytest.approx(1214.3 + 145.71 + 118.58)
    assert tce["conversion"] == pytest.approx(714.3 - 177.87)
    assert tce["electricity"] == pytest.approx((180000 - 3000) * 0.1229)
    assert tce["heat"] == pytest.approx((15000 - 1000) * 0.03412)
    assert tce["total"] == pytest.approx(24246.0)
    assert out["indicator_tco2_per_tce"] == pytest.approx(total / 24246.0)
    assert out["verdict"].startswith("not assessed")  # 24,246 tce/yr is below every band
    assert out["clean_energy_share"] == pytest.approx((80000 * 0.1229 + 5000 * 0.03412) / 24246.0)
    assert out["direct_green_share"] == pytest.approx(50000 / 180000)
    table = run(tmp_path, WORKED)
    assert table.exit_code == 0
    assert (
        "E_park" in table.output
        and "8.832080" in table.output
        and "calorific (0.1229 kgce/kWh)" in table.output
    )
    assert "reported separately (not in E_park): LFP battery cells 50.000 tCO2" in table.output


@pytest.mark.parametrize(
    ("electricity", "basis", "verdict", "indicator", "band"),
    [
        # 1.6 TWh at 0.1229 + 1e8 m3 gas (121,430 tce): 318,070 tce; 199,401.84 + 83,250 t -> fail at <= 0.20.
        ("{grid: 100000, direct_green: 1500000}", "calorific", "fail", (199401.84 + 83250) / 318070, 0.2),
        # the same on the equal-value basis (0.30 kgce/kWh): 601,430 tce.
        ("{grid: 100000, direct_green: 1500000}", "equal_value", "fail", (199401.84 + 83250) / 601430, 0.2),
        # mostly direct green: 10.01 TWh -> 1,230,229 + 121,430 tce (the >= 1 million band, <= 0.30);
        # 8,325 + 199,401.84 t -> 0.154: pass.
        ("{grid: 10000, direct_green: 10000000}", "calorific", "pass", (199401.84 + 8325) / 1351659, 0.3),
    ],
)
def test_band_and_verdict(
    tmp_path: Path, electricity: str, basis: str, verdict: str, indicator: float, band: float
) -> None:
    text = f"""
park: Banded
year: 2025
electricity_tce_basis: {basis}
fuels: [{{fuel: natural_gas, quantity: 10000, unit: "10^4 m3"}}]
electricity: {{in: {electricity}}}
"""
    out = json.loads(run(tmp_path, text, "--json").output)
    assert out["verdict"] == verdict
    assert out["indicator_tco2_per_tce"] == pytest.approx(indicator)
    assert out["band"]["max_tco2_per_tce"] == band


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("park: [unclosed", "not valid YAML"),
        ("- a\n- b", "the file must hold a mapping at the top level"),
        ("year: 2025\nfuels: [{fuel: natural_gas, quantity: 1, unit: m3}]", "park: Field required"),
        (
            "park: x\nyear: 2025\nfuels: [{fuel: peat, quantity: 5, unit: t}]",
            "fuels[0] (peat): not a fuel of the factor set (diesel, natural_gas); give ncv_mj_per_unit, ef_tco2_per_tj, kgce_per_unit per t",
        ),
        (
            "park: x\nyear: 2025\nfuels: [{fuel: natural_gas, quantity: 5, unit: t}]",
            "fuels[0] (natural_gas).unit: 't' is a mass, but natural_gas is measured per m3 (volume)",
        ),
        (
            "park: x\nyear: 2025\nfuels: [{fuel: natural_gas, quantity: -5, unit: m3}]",
            "fuels[0].quantity: Input should be greater than or equal to 0",
        ),
        (
            "park: x\nyear: 2025\nfuels: [{fuel: natural_gas, quantity: 5, unit: litre}]",
            "fuels[0].unit: Input should be",
        ),
        ("park: x\nyear: 2025\nelectricty: {in: {grid: 5}}", "electricty: Extra inputs are not permitted"),
        (
            "park: x\nyear: 2025\nelectricity: {in: {solar: 5}}",
            "electricity.in.solar: Extra inputs are not permitted",
        ),
        ("park: x\nyear: 2025", "the file has no activity data"),
    ],
)
def test_malformed_files_get_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    result = run(tmp_path, text)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["carbon", "account", "--activity", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no such file" in result.output  # infra.validation wording


def test_readme_example_runs() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- activity-example -->\s*```yaml\n(.*?)```", readme, re.S)
    assert block, "README.md must carry the activity-file example"
    import yaml

    from infra.scenario import load_scenario
    from settlement.carbon.activity import park_account, parse_activity

    account = park_account(
        parse_activity(yaml.safe_load(block.group(1))), load_scenario("datong").park.carbon
    )
    assert account.total_tco2 > 0 and account.verdict in ("pass", "fail")
