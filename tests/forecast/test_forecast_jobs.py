"""A failing series is retried, then reported with its reason, and never kills the batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecast.config import DEFAULT_QUANTILES, horizon_spec
from forecast.features import context_frame, scenario_site
from forecast.jobs import SeriesJob, SharedData, run_batch
from forecast.series import SeriesSpec
from infra.scenario.model import Scenario
from infra.timeutil import MARKET_TZ
from sim.history import load_history


def _batch(scenario: Scenario) -> tuple[list[SeriesJob], SharedData]:
    history = load_history(scenario, date(2026, 5, 20), date(2026, 7, 16))
    cutoff = pd.Timestamp("2026-07-14 09:00", tz=MARKET_TZ)
    frame = history.copy()
    frame["stuck_meter.load_mw"] = 57.0  # a meter that stopped updating
    measured = [c for c in frame.columns if not c.startswith("weather")]
    frame.loc[frame.index >= cutoff, measured] = np.nan
    shared = SharedData(scenario, frame, context_frame(scenario_site(scenario), frame))
    rows = pd.date_range("2026-07-15", periods=96, freq="15min", tz=MARKET_TZ)
    specs = [
        SeriesSpec(
            "cell_plant_load.load_mw", "cell_plant_load", "load_mw", "load", shift_profile="three_shift"
        ),
        SeriesSpec("stuck_meter.load_mw", "stuck_meter", "load_mw", "load"),
        SeriesSpec(
            "pv_roof_cell.pv_mw", "pv_roof_cell", "pv_mw", "pv", 0.0, 10.0, 10.0, pv_assets=("pv_roof_cell",)
        ),
    ]
    jobs = [
        SeriesJob(
            spec=spec,
            horizon=horizon_spec("day_ahead"),
            issue_minutes=540,
            levels=DEFAULT_QUANTILES,
            select_as_of=pd.Timestamp("2026-07-13", tz=MARKET_TZ),
            backtest_days=7,
            train_days=28,
            candidates=("seasonal_naive", "linear_exog"),
            cutoff=cutoff,
            rows=rows,
        )
        for spec in specs
    ]
    return jobs, shared


@pytest.mark.parametrize("use_ray", [False, True], ids=["sequential", "ray"])
def test_failing_series_is_retried_and_reported_while_the_rest_is_forecast(
    mini_scenario: Scenario, use_ray: bool
) -> None:
    jobs, shared = _batch(mini_scenario)
    outcomes = run_batch(jobs, shared, use_ray=use_ray, retries=1)
    by_id = {o.series_id: o for o in outcomes}
    stuck = by_id["stuck_meter.load_mw"]
    assert stuck.quantiles is None
    assert stuck.attempts == 2
    assert "stuck_meter.load_mw" in stuck.error and "flat-lined" in stuck.error
    for sid in ("cell_plant_load.load_mw", "pv_roof_cell.pv_mw"):
        good = by_id[sid]
        assert good.error is None and good.attempts == 1
        assert set(good.quantiles) == set(DEFAULT_QUANTILES)
        assert all(len(v) == 96 for v in good.quantiles.values())
    pv = by_id["pv_roof_cell.pv_mw"].quantiles
    assert pv[0.95].max() <= 10.0 and pv[0.05].min() >= 0.0
    assert pv[0.5][:16].max() == 0.0  # midnight to 04:00: no sun


def test_a_new_meter_with_three_days_of_history_is_forecast_not_failed(mini_scenario: Scenario) -> None:
    jobs, shared = _batch(mini_scenario)
    cutoff = jobs[0].cutoff
    frame = shared.frame.copy()
    young = frame["cell_plant_load.load_mw"].copy()
    young[young.index < cutoff - pd.Timedelta(days=3)] = np.nan  # enrolled three days ago
    frame["new_meter.load_mw"] = young
    spec = SeriesSpec("new_meter.load_mw", "new_meter", "load_mw", "load")
    job = replace(jobs[0], spec=spec)
    [outcome] = run_batch([job], SharedData(shared.scenario, frame, shared.ctx), use_ray=False)
    assert outcome.error is None and outcome.model.startswith("short_history_")
    q = np.column_stack([outcome.quantiles[level] for level in DEFAULT_QUANTILES])
    assert q.shape == (96, len(DEFAULT_QUANTILES)) and (np.diff(q, axis=1) >= 0).all() and q.min() >= 0
