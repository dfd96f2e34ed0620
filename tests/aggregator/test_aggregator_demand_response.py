"""A demand-response event changes set-points, and its settlement matches a hand-computed case.

The case file (``tests/settlement/cases/demand_response_dispatched.yaml``) is one park-day
written by hand: a 10 MW inflexible load and a 6 MW interruptible load, a day-ahead award of
-16 MW and a 4 MW peak-cut event from 18:00 to 20:00 at 800 CNY/MWh. The aggregator's dispatch
of that award must curtail the interruptible load by the event's 4 MW (the file's metering is
those set-points, delivered exactly); settled by the production code against the file's
baseline, every figure matches the hand arithmetic in the file to the fen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml

from aggregator.dispatch import disaggregate
from infra.contracts import Award, DemandResponseEvent, ForecastSet, SeriesForecast
from infra.timeutil import day_intervals
from settlement.case import DEFAULT_DAY, build_case, run_case

CASE = Path(__file__).parents[1] / "settlement" / "cases" / "demand_response_dispatched.yaml"


def _forecast(spec: dict, starts: list[datetime]) -> ForecastSet:
    n = len(starts)
    medians = {**spec["dispatch"]["forecast"], "market.price_da_cny_per_mwh": spec["day_ahead"]["price"]}
    series = [
        SeriesForecast(
            series_id=sid,
            quantity=sid.split(".", 1)[1],
            model="case",
            model_version="1",
            quantiles={
                q: np.broadcast_to(np.asarray(v, dtype=float), (n,)).tolist() for q in ("0.1", "0.5", "0.9")
            },
        )
        for sid, v in medians.items()
    ]
    issued = starts[0] - timedelta(hours=14)
    return ForecastSet(
        interval_minutes=spec["interval_minutes"],
        interval_starts=starts,
        horizon="day_ahead",
        issued_at=issued,
        data_cutoff=issued,
        series=series,
    )


def _award(spec: dict, starts: list[datetime], with_event: bool) -> Award:
    da = spec["day_ahead"]
    n = len(starts)
    events = [
        DemandResponseEvent(
            notified_at=starts[0] - timedelta(hours=6, minutes=30),
            baseline_days=5,
            **e,
        )
        for e in spec["dispatch"]["events"]
    ]
    return Award(
        interval_minutes=spec["interval_minutes"],
        interval_starts=starts,
        market="day_ahead",
        bid_message_id="case-bid",
        exchange="case",
        cleared_mw=da["cleared_mw"],
        clearing_price_cny_per_mwh=da["price"],
        demand_response_mw=da["dr_mw"] if with_event else [0.0] * n,
        demand_response_price_cny_per_mwh=da["dr_price"] if with_event else [0.0] * n,
        demand_response_events=events if with_event else [],
    )


def test_a_demand_response_event_changes_set_points_and_settles_as_computed_by_hand():
    spec = yaml.safe_load(CASE.read_text(encoding="utf-8"))
    scenario, facts, baseline, _ = build_case(spec)
    starts = list(day_intervals(DEFAULT_DAY, spec["interval_minutes"]).to_pydatetime())
    forecast = _forecast(spec, starts)
    hours = spec["interval_minutes"] / 60

    without = disaggregate(scenario, forecast, _award(spec, starts, False), award_message_id="a0").setpoints()
    dispatched = disaggregate(scenario, forecast, _award(spec, starts, True), award_message_id="a1")
    with_event = dispatched.setpoints()

    # Without the event the plant runs as usual: its baseline.
    for i, asset in enumerate(facts.asset_ids):
        assert np.allclose(without[asset] * hours, baseline.assets_mwh[i], atol=1e-4)
    # The event changes set-points: the interruptible load curtails 4 MW from 18:00 to 20:00 and
    # nothing else moves; the file's metering is exactly these set-points.
    event = np.zeros(len(starts), dtype=bool)
    event[18:20] = True
    change = with_event["il_fab"] - without["il_fab"]
    assert np.allclose(change[event], 4.0, atol=1e-4) and np.allclose(change[~event], 0.0, atol=1e-4)
    assert np.allclose(with_event["load_fab"], without["load_fab"], atol=1e-4)
    for i, asset in enumerate(facts.asset_ids):
        assert np.allclose(with_event[asset] * hours, facts.metered_mwh[i], atol=1e-4)
    assert np.allclose(sum(with_event.values()) * hours, facts.grid_mwh, atol=1e-4)
    assert max(abs(d) for d in dispatched.dispatch.deviation_mw) < 1e-3
    assert any(
        "demand response peak cut of 4.000 MW executed" in n and "in full" in n
        for n in dispatched.dispatch.notes
    )

    # Settled by the production code: every figure of the file's hand arithmetic, to the fen.
    outcome = run_case(CASE)
    assert outcome["mismatches"] == []
    assert outcome["expectations_checked"] >= 9
