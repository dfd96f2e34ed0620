"""Issue forecasts: select models on schedule (cached), forecast every series on Ray, store, publish.

:func:`issue_forecast` is the entry point the run-day orchestrator and the scheduler call.
Models are re-selected every ``reselect_days`` (``PARKVPP_FORECAST_RESELECT_DAYS``) at fixed
boundaries; an issue uses the selection of the last boundary at or before its data cut-off,
selecting it first if nobody has yet. The same inputs therefore always give the same models
and the same forecast, so issuing twice stores one fact.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from forecast import store
from forecast.backtest import LAG_MARGIN_DAYS
from forecast.config import ForecastConfig, HorizonSpec, horizon_spec
from forecast.features import context_frame, scenario_site, weather_names
from forecast.history import interval_minutes, read_history
from forecast.jobs import JobOutcome, SeriesJob, SharedData, StoredModel, run_batch
from forecast.models import MODEL_CODE_VERSION
from forecast.series import SeriesSpec, scenario_series
from infra.contracts import Envelope, ForecastSet, SeriesForecast, Topic
from infra.db.outbox import enqueue
from infra.scenario.model import Scenario
from infra.timeutil import MARKET_TZ, day_start, ensure_aware, now

log = logging.getLogger(__name__)

SELECTION_EPOCH = pd.Timestamp("2024-01-01", tz=MARKET_TZ)  # a Monday: selections fall on Mondays
ALWAYS_KNOWN = ("weather_fc1.", "weather_fc2.", "weather_fc3.")  # published ahead of the day they describe


class ForecastError(ValueError):
    """A forecast request that cannot be served, with the reason."""


def model_cache_key(scenario: Scenario) -> str:
    """Cached models belong to one scenario version and one version of the modelling code."""
    return f"{scenario.version}|{MODEL_CODE_VERSION}"


def selection_as_of(cutoff: datetime, reselect_days: int) -> pd.Timestamp:
    """The schedule boundary at or before ``cutoff`` whose selection an issue uses."""
    period = pd.Timedelta(days=reselect_days)
    return SELECTION_EPOCH + ((pd.Timestamp(cutoff) - SELECTION_EPOCH) // period) * period


def default_issued_at(scenario: Scenario, delivery_day: date, cfg: ForecastConfig) -> datetime:
    """D-1 at the market's gate closure minus the configured lead (09:00 for Shanxi's 09:30)."""
    gate = scenario.market.gate_closure_local_time
    closes = day_start(delivery_day - timedelta(days=1)) + timedelta(hours=gate.hour, minutes=gate.minute)
    return closes - timedelta(minutes=cfg.da_lead_minutes)


def on_grid(ts: datetime, ceil: bool = False, minutes: int = 15) -> pd.Timestamp:
    """``ts`` on the ``minutes`` interval grid (floor, or ceiling)."""
    stamp = pd.Timestamp(ts).tz_convert(MARKET_TZ)
    freq = f"{minutes}min"
    return stamp.ceil(freq) if ceil else stamp.floor(freq)


def target_rows(
    horizon: str, delivery_day: date, issued_at: datetime, cfg: ForecastConfig, minutes: int = 15
) -> pd.DatetimeIndex:
    """The intervals an issue forecasts, checked against its issue time."""
    freq = f"{minutes}min"
    start = pd.Timestamp(day_start(delivery_day))
    if horizon in ("day_ahead", "72h"):
        days = horizon_spec(horizon).days
        if not start - pd.Timedelta(days=1) <= pd.Timestamp(issued_at) < start:
            raise ForecastError(
                f"issued_at={issued_at.isoformat()}: a {horizon} forecast for {delivery_day} is issued on "
                f"{delivery_day - timedelta(days=1)} (the day before delivery)"
            )
        return pd.date_range(start, periods=days * 1440 // minutes, freq=freq)
    first = on_grid(issued_at, ceil=True, minutes=minutes)
    if first.date() != delivery_day:
        raise ForecastError(
            f"issued_at={issued_at.isoformat()}: the next intraday interval ({first.isoformat()}) is not on "
            f"delivery day {delivery_day}"
        )
    return pd.date_range(first, periods=cfg.intraday_steps, freq=freq)


def _history(
    engine: Engine, scenario: Scenario, first_day: date, end_day: date, cutoff: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History up to ``end_day`` with every measured column hidden from the cut-off on."""
    names = [s.series_id for s in scenario_series(scenario)] + weather_names()
    frame = read_history(engine, scenario, names, first_day, end_day).copy()
    hidden = [c for c in frame.columns if not c.startswith(ALWAYS_KNOWN)]
    frame.loc[frame.index >= cutoff, hidden] = float("nan")
    return frame, context_frame(scenario_site(scenario), frame)


def _check_interval(scenario: Scenario) -> None:
    minutes = interval_minutes(scenario)
    if minutes <= 0 or 1440 % minutes:
        raise ForecastError(
            f"market {scenario.market.id}: day_ahead_interval_minutes={minutes} does not divide a day"
        )


def _progress(total: int, what: str) -> Any:
    done = [0]

    def report(outcome: JobOutcome) -> None:
        done[0] += 1
        state = (
            f"FAILED ({outcome.error})" if outcome.error else f"{outcome.model} in {outcome.seconds:.1f} s"
        )
        log.info("%s %d/%d %s: %s", what, done[0], total, outcome.series_id, state)

    return report


def _issue_minutes(issued_at: datetime) -> int:
    local = pd.Timestamp(issued_at).tz_convert(MARKET_TZ)
    return local.hour * 60 + local.minute


def _jobs(
    specs: list[SeriesSpec],
    hspec: HorizonSpec,
    cfg: ForecastConfig,
    issue_minutes: int,
    models: dict[str, StoredModel],
    as_of: pd.Timestamp,
    cutoff: pd.Timestamp | None,
    rows: pd.DatetimeIndex | None,
    intraday: bool,
) -> list[SeriesJob]:
    model_spec = horizon_spec(hspec.model_horizon)
    return [
        SeriesJob(
            spec=spec,
            horizon=model_spec,
            issue_minutes=issue_minutes,
            levels=cfg.quantiles,
            select_as_of=None if spec.series_id in models else as_of,
            backtest_days=cfg.backtest_days,
            refit_days=cfg.refit_days,
            train_days=cfg.train_days,
            intraday_steps=cfg.intraday_steps,
            model=models.get(spec.series_id),
            cutoff=cutoff,
            rows=rows,
            intraday=intraday,
        )
        for spec in specs
    ]


def _history_start(as_of: pd.Timestamp, cfg: ForecastConfig, hspec: HorizonSpec) -> date:
    days = cfg.train_days + cfg.backtest_days + hspec.days + LAG_MARGIN_DAYS + 2
    return (as_of - pd.Timedelta(days=days)).date()


def _store_selections(
    engine: Engine, scenario: Scenario, model_horizon: str, as_of: pd.Timestamp, outcomes: list[JobOutcome]
) -> dict[str, str]:
    rows = [
        store.selection_row(
            scenario.id, model_cache_key(scenario), model_horizon, as_of.to_pydatetime(), o.selection
        )
        for o in outcomes
        if o.selection is not None
    ]
    if rows:
        store.save_selections(engine, rows)
    return {r["series_id"]: r["model_version"] for r in rows}


def select_models(
    engine: Engine,
    scenario: Scenario,
    as_of: datetime,
    horizon: str = "day_ahead",
    cfg: ForecastConfig | None = None,
    issue_minutes: int | None = None,
) -> list[dict[str, Any]]:
    """Run (or reuse) the rolling-origin selection as of a schedule boundary; returns the backtests."""
    cfg = cfg or ForecastConfig.from_env()
    _check_interval(scenario)
    hspec = horizon_spec(horizon_spec(horizon).model_horizon)
    stamp = pd.Timestamp(ensure_aware(as_of, "as_of"))
    if issue_minutes is None:
        issue_minutes = _issue_minutes(default_issued_at(scenario, stamp.date(), cfg))
    specs = scenario_series(scenario)
    cached = store.load_models(
        engine, scenario.id, model_cache_key(scenario), hspec.name, stamp.to_pydatetime()
    )
    missing = [s for s in specs if s.series_id not in cached]
    if missing:
        frame, ctx = _history(
            engine, scenario, _history_start(stamp, cfg, hspec), stamp.date() + timedelta(days=1), stamp
        )
        jobs = _jobs(missing, hspec, cfg, issue_minutes, {}, stamp, None, None, False)
        log.info(
            "selecting models for %d %s series of %s as of %s", len(jobs), hspec.name, scenario.id, stamp
        )
        outcomes = run_batch(
            jobs,
            SharedData(scenario, frame, ctx),
            cfg.use_ray,
            cfg.retries,
            _progress(len(jobs), "selection"),
        )
        _store_selections(engine, scenario, hspec.name, stamp, outcomes)
        for o in outcomes:
            if o.error:
                log.warning("selection for %s failed: %s", o.series_id, o.error)
    return store.load_backtests(engine, scenario.id, hspec.name, stamp.to_pydatetime())


def issue_forecast(
    engine: Engine,
    scenario: Scenario,
    delivery_day: date,
    horizon: str = "day_ahead",
    issued_at: datetime | None = None,
) -> Envelope:
    """Forecast every series of the park, store the forecast and enqueue its ForecastSet.

    Data cut-off = ``issued_at`` (readings of intervals that ended by then). One series that
    fails after its retries is left out of the set and recorded with its reason in
    ``forecast_issues.failures``; the others are still issued.
    """
    cfg = ForecastConfig.from_env()
    hspec = horizon_spec(horizon)
    _check_interval(scenario)
    if issued_at is None:
        if horizon == "intraday":
            raise ForecastError("issued_at: required for intraday forecasts (they roll every interval)")
        issued_at = default_issued_at(scenario, delivery_day, cfg)
    issued_at = ensure_aware(issued_at, "issued_at")
    minutes = interval_minutes(scenario)
    rows = target_rows(horizon, delivery_day, issued_at, cfg, minutes)
    cutoff = on_grid(issued_at, minutes=minutes)
    as_of = selection_as_of(cutoff, cfg.reselect_days)
    model_horizon = hspec.model_horizon
    specs = scenario_series(scenario)
    models = store.load_models(
        engine, scenario.id, model_cache_key(scenario), model_horizon, as_of.to_pydatetime()
    )
    frame, ctx = _history(
        engine, scenario, _history_start(as_of, cfg, hspec), rows[-1].date() + timedelta(days=1), cutoff
    )
    jobs = _jobs(
        specs, hspec, cfg, _issue_minutes(issued_at), models, as_of, cutoff, rows, horizon == "intraday"
    )
    selecting = sum(j.select_as_of is not None for j in jobs)
    log.info(
        "forecast %s %s for %s issued %s: %d series (%d need model selection as of %s)",
        scenario.id,
        horizon,
        delivery_day,
        issued_at.isoformat(),
        len(jobs),
        selecting,
        as_of.isoformat(),
    )
    outcomes = run_batch(
        jobs, SharedData(scenario, frame, ctx), cfg.use_ray, cfg.retries, _progress(len(jobs), "forecast")
    )
    versions = {sid: m.version for sid, m in models.items()}
    versions.update(_store_selections(engine, scenario, model_horizon, as_of, outcomes))
    failures = {o.series_id: o.error for o in outcomes if o.error}
    good = [
        (spec, o) for spec, o in zip(specs, outcomes, strict=True) if not o.error and o.quantiles is not None
    ]
    if not good:
        raise ForecastError(f"{scenario.id}: every series failed: {failures}")
    for sid, reason in failures.items():
        log.warning("forecast %s %s: series %s left out: %s", scenario.id, horizon, sid, reason)
    series = [
        SeriesForecast(
            series_id=spec.series_id,
            asset_id=spec.asset_id,
            quantity=spec.quantity,
            model=o.model or "unknown",
            model_version=versions.get(spec.series_id, o.model or "unknown"),
            quantiles={f"{q:g}": [round(float(v), 3) for v in values] for q, values in o.quantiles.items()},
        )
        for spec, o in good
    ]
    payload = ForecastSet(
        interval_minutes=minutes,
        interval_starts=[ts.to_pydatetime() for ts in rows],
        horizon=horizon,  # type: ignore[arg-type]
        issued_at=issued_at,
        data_cutoff=issued_at,
        series=series,
    )
    envelope = payload.envelope(scenario.id, delivery_day, horizon, issued_at.isoformat())
    issue_row = {
        "message_id": envelope.message_id,
        "park_id": scenario.id,
        "market_day": delivery_day,
        "horizon": horizon,
        "issued_at": issued_at,
        "data_cutoff": issued_at,
        "scenario_version": scenario.version,
        "selected_as_of": as_of.to_pydatetime(),
        "series_count": len(series),
        "failures": failures,
        "created_at": now(),
    }
    series_rows = [
        {
            "message_id": envelope.message_id,
            "series_id": s.series_id,
            "asset_id": s.asset_id,
            "model": s.model,
            "model_version": s.model_version,
            "hygiene": o.hygiene,
            "note": None,
        }
        for s, (_spec, o) in zip(series, good, strict=True)
    ]
    with engine.begin() as conn:
        enqueue(conn, Topic.FORECASTS, envelope)
        store.save_issue(conn, issue_row, series_rows)
    log.info(
        "forecast %s %s stored as %s (%d series, %d failed)",
        scenario.id,
        horizon,
        envelope.message_id,
        len(series),
        len(failures),
    )
    return envelope
