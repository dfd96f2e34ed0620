"""A real measured series through the normal path: meter file in, the forecast service out.

GB national PV outturn (Sheffield Solar PV_Live, shipped in the sktime wheel as
``load_solar``: 30-minute values as a fraction of installed capacity, UTC timestamps) is
written as a meter file for the PV asset of a small park located in Sheffield, ingested with
``parkvpp ingest meters`` and forecast by ``forecast.service.issue_forecast`` exactly as a
park's own meters would be: read back through the time-series store on the market's
15-minute grid, with nothing from the simulator.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sktime.datasets import load_solar
from typer.testing import CliRunner

from gateway.cli import app
from infra.contracts import ForecastSet
from infra.db import make_engine, migrate
from infra.registry import portfolio
from infra.scenario.loader import find_park_file
from infra.timeseries import read
from infra.timeutil import MARKET_TZ

pytestmark = pytest.mark.slow

DELIVERY = date(2021, 5, 6)  # a Shanghai market day inside the series, with 4 days of history before it


def gb_park(folder: Path) -> None:
    """A one-plant park in Sheffield built on the Chifeng template's market and carbon settings."""
    raw = yaml.safe_load(find_park_file("chifeng").read_text(encoding="utf-8"))
    park = copy.deepcopy(raw)
    operator = next(e for e in raw["enterprises"] if e.get("contract") is None)
    park |= {
        "id": "gb_demo",
        "name": "GB national PV as one plant (real measured data)",
        "version": "test.1",
        "enterprises": [operator],
        "grid": [raw["grid"][0]],
        "contracts": [],
        "storage_policy": None,
        "assets": [
            {
                "id": "gb_pv",
                "name": "GB PV fleet, normalised to 1 MW",
                "type": "pv",
                "enterprise": operator["id"],
                "connection": raw["grid"][0]["id"],
                "capacity_mw": 1.0,
                "kind": "central",
                "tilt_deg": 35,
                "azimuth_deg": 180,
                "system_loss_fraction": 0.14,
                "source": "[est] Sheffield Solar PV_Live national outturn as a fraction of capacity",
            }
        ],
    }
    park["location"] = {**raw["location"], "latitude": 53.38, "longitude": -1.47, "altitude_m": 100}
    (folder / "parks").mkdir(parents=True)
    (folder / "parks" / "gb_demo.yaml").write_text(yaml.safe_dump(park, allow_unicode=True), encoding="utf-8")


def test_gb_pv_is_ingested_as_a_meter_file_and_forecast_by_the_service(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gb_park(tmp_path / "scenarios")
    monkeypatch.setenv("PARKVPP_SCENARIO_DIRS", str(tmp_path / "scenarios"))
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    measured = load_solar(api_version=None)
    meter_file = tmp_path / "gb_pv.csv"
    lines = ["timestamp,series_id,value"] + [
        f"{ts.isoformat()},gb_pv.pv_mw,{v:.5f}" for ts, v in measured.items()
    ]
    meter_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    ingested = CliRunner().invoke(app, ["ingest", "meters", str(meter_file), "--park", "gb_demo"])
    assert ingested.exit_code == 0, ingested.output
    assert f"{len(measured)} new" in ingested.output

    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    stored = read(
        engine, "gb_demo", ["gb_pv.pv_mw"], DELIVERY, DELIVERY + timedelta(days=1), interval_minutes=15
    )
    actual = stored["gb_pv.pv_mw"].to_numpy()
    assert np.isfinite(actual).all()  # the whole Shanghai day is covered by the UTC series

    from forecast.service import issue_forecast

    scenario = portfolio(engine, "gb_demo", DELIVERY)
    envelope = issue_forecast(engine, scenario, DELIVERY)
    forecast = ForecastSet.from_envelope(envelope)
    series = {s.series_id: s for s in forecast.series}
    assert "gb_pv.pv_mw" in series, [s.series_id for s in forecast.series]
    q = {k: np.asarray(v) for k, v in series["gb_pv.pv_mw"].quantiles.items()}
    assert len(q["0.5"]) == 96 and forecast.interval_minutes == 15
    assert (q["0.1"] <= q["0.5"] + 1e-9).all() and (q["0.5"] <= q["0.9"] + 1e-9).all()
    assert (q["0.1"] >= -0.05).all() and (q["0.9"] <= 1.0 + 1e-9).all()  # inside the plant's physical range
    assert pd.Timestamp(forecast.data_cutoff) < pd.Timestamp(
        datetime.combine(DELIVERY, datetime.min.time(), MARKET_TZ)
    )

    yesterday = read(
        engine, "gb_demo", ["gb_pv.pv_mw"], DELIVERY - timedelta(days=1), DELIVERY, interval_minutes=15
    )
    persistence_mae = float(np.mean(np.abs(yesterday["gb_pv.pv_mw"].to_numpy() - actual)))
    p50_mae = float(np.mean(np.abs(q["0.5"] - actual)))
    print(
        f"GB PV {DELIVERY}: P50 MAE {p50_mae:.4f}, persistence MAE {persistence_mae:.4f} (fraction of capacity)"
    )
    assert p50_mae <= 1.5 * persistence_mae  # a sanity bound on one day; skill is measured in forecast/README
