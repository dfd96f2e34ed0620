"""Forecast jobs for many series, run sequentially or as Ray tasks, with retries.

A job selects a model for one series (when none is cached) and/or forecasts it. The shared
data (history frame, context, scenario) goes to Ray's object store once. A job that raises is
retried ``retries`` times (Ray also re-runs a task whose worker died) and then reported with
its reason in :attr:`JobOutcome.error`; it never stops the other series.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecast.backtest import Selection, min_history_days, select
from forecast.calibration import Calibration
from forecast.config import HorizonSpec
from forecast.hygiene import clean_values
from forecast.meter import forecast_meter
from forecast.models import CANDIDATES, FittedModel, single_threaded
from forecast.predict import forecast_series
from forecast.series import SeriesSpec
from infra.scenario.model import Scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedData:
    scenario: Scenario | None
    frame: pd.DataFrame  # raw series columns (NaN from the cut-off on)
    ctx: pd.DataFrame  # features shared by every series


@dataclass
class StoredModel:
    name: str
    version: str
    fitted: FittedModel | None
    calibration: Calibration


@dataclass
class SeriesJob:
    spec: SeriesSpec
    horizon: HorizonSpec
    issue_minutes: int
    levels: tuple[float, ...]
    select_as_of: pd.Timestamp | None = None  # run model selection as of this time
    backtest_days: int = 21
    refit_days: int = 7
    train_days: int = 100
    intraday_steps: int = 16
    candidates: tuple[str, ...] = CANDIDATES
    model: StoredModel | None = None  # the cached model to forecast with
    cutoff: pd.Timestamp | None = None  # forecast when set
    rows: pd.DatetimeIndex | None = None
    intraday: bool = False


@dataclass
class JobOutcome:
    series_id: str
    selection: Selection | None = None
    quantiles: dict[float, np.ndarray] | None = None
    hygiene: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


def run_job(job: SeriesJob, shared: SharedData) -> JobOutcome:
    """Select (if asked) and forecast one series. Raises on failure; the batch runner reports it."""
    started = time.perf_counter()
    spec = job.spec
    outcome = JobOutcome(spec.series_id)
    raw = shared.frame[spec.series_id]
    if spec.upper == 0:  # e.g. park PV in a park without PV: nothing to model
        if job.rows is not None:
            zero = np.zeros(len(job.rows))
            outcome.quantiles = {q: zero for q in job.levels}
        outcome.model = "zero_capacity"
        return outcome
    if job.model is None and _too_short(raw, job):
        return _short_history(job, raw, outcome, started)
    with single_threaded():
        model = job.model
        if job.select_as_of is not None:
            outcome.selection = select(
                spec,
                shared.scenario,
                raw,
                shared.ctx,
                job.select_as_of,
                job.horizon,
                job.issue_minutes,
                job.levels,
                job.backtest_days,
                job.refit_days,
                job.train_days,
                candidates=job.candidates,
                intraday_steps=job.intraday_steps,
            )
            sel = outcome.selection
            model = StoredModel(sel.model, "", sel.fitted, sel.calibration)
        if job.cutoff is not None and job.rows is not None:
            if model is None:
                raise RuntimeError(f"{spec.series_id}: no model to forecast with")
            outcome.quantiles, outcome.hygiene = forecast_series(
                spec,
                shared.scenario,
                raw,
                shared.ctx,
                model.name,
                model.fitted,
                model.calibration,
                job.cutoff,
                job.rows,
                job.intraday,
            )
        outcome.model = model.name if model else None
    outcome.seconds = time.perf_counter() - started
    return outcome


def _too_short(raw: pd.Series, job: SeriesJob) -> bool:
    """Too little history for the park models' backtest (a new asset or meter)."""
    known = raw[raw.index < (job.select_as_of if job.select_as_of is not None else job.cutoff)]
    finite = np.flatnonzero(np.isfinite(known.to_numpy()))
    if not len(finite):
        return True
    per_day = pd.Timedelta(days=1) / (raw.index[1] - raw.index[0])
    return (len(known) - finite[0]) / per_day < min_history_days(job.backtest_days)


def _short_history(job: SeriesJob, raw: pd.Series, outcome: JobOutcome, started: float) -> JobOutcome:
    """Forecast a short series with the meter pool (from 2 days of history); nothing is cached,
    so the park models take over once the history is long enough."""
    spec = job.spec
    if job.cutoff is None or job.rows is None:
        outcome.model = "short_history"
        return outcome
    known = raw[raw.index < job.cutoff]
    first = (
        int(np.flatnonzero(np.isfinite(known.to_numpy()))[0]) if np.isfinite(known.to_numpy()).any() else 0
    )
    known = known.iloc[first:]
    minutes = int((raw.index[1] - raw.index[0]) / pd.Timedelta(minutes=1))
    y, report = clean_values(known, spec.series_id, minutes, spec.lower, spec.upper)
    interval = raw.index[1] - raw.index[0]
    steps = int((job.rows[-1] - job.cutoff) / interval) + 1
    kind = "pv" if spec.kind == "pv" else "load" if spec.kind in ("load", "heat", "it_load") else "generic"
    result = forecast_meter(y, steps, job.levels, kind, capacity=spec.upper, name=spec.series_id)  # type: ignore[arg-type]
    values = result.quantiles[-len(job.rows) :]
    if spec.lower is not None:
        values = np.maximum(values, spec.lower)
    if spec.upper is not None:
        values = np.minimum(values, spec.upper)
    values = np.sort(values, axis=1)
    outcome.quantiles = {q: values[:, i] for i, q in enumerate(job.levels)}
    outcome.model = f"short_history_{result.choice.model}"
    outcome.hygiene = report.as_dict()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}".strip()


def run_sequential(
    jobs: list[SeriesJob],
    shared: SharedData,
    retries: int = 1,
    progress: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    outcomes = []
    for job in jobs:
        outcome = JobOutcome(job.spec.series_id)
        for attempt in range(1, retries + 2):
            try:
                outcome = run_job(job, shared)
                outcome.attempts = attempt
                break
            except Exception as exc:  # noqa: BLE001 - one series failing never kills the batch
                log.debug("%s attempt %d failed:\n%s", job.spec.series_id, attempt, traceback.format_exc())
                outcome = JobOutcome(job.spec.series_id, error=_reason(exc), attempts=attempt)
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def _remote_run(job: SeriesJob, shared: SharedData) -> JobOutcome:
    return run_job(job, shared)


def run_on_ray(
    jobs: list[SeriesJob],
    shared: SharedData,
    retries: int = 1,
    progress: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    """The same jobs as Ray tasks, one per series, all in flight at once."""
    from infra.ray import ensure_ray

    ray = ensure_ray()
    remote = ray.remote(num_cpus=1, max_retries=retries)(_remote_run)
    shared_ref = ray.put(shared)
    pending: dict[Any, tuple[int, int]] = {}
    for i, job in enumerate(jobs):
        pending[remote.remote(job, shared_ref)] = (i, 1)
    results: dict[int, JobOutcome] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        ref = done[0]
        i, attempt = pending.pop(ref)
        try:
            outcome = ray.get(ref)
            outcome.attempts = attempt
        except Exception as exc:  # noqa: BLE001 - a failed Ray task is retried, then reported
            if attempt <= retries:
                pending[remote.remote(jobs[i], shared_ref)] = (i, attempt + 1)
                continue
            outcome = JobOutcome(jobs[i].spec.series_id, error=_reason(exc), attempts=attempt)
        results[i] = outcome
        if progress:
            progress(outcome)
    return [results[i] for i in range(len(jobs))]


def run_batch(
    jobs: list[SeriesJob],
    shared: SharedData,
    use_ray: bool = True,
    retries: int = 1,
    progress: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    if use_ray:
        from infra.ray import ensure_ray

        try:
            ensure_ray()
        except Exception as exc:  # noqa: BLE001 - the forecast matters more than where it runs
            log.warning("Ray is not available (%s); running the %d series sequentially", exc, len(jobs))
            use_ray = False
    runner = run_on_ray if use_ray else run_sequential
    return runner(jobs, shared, retries, progress)
