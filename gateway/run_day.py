"""``parkvpp run-day``: one market day end to end, every stage a real service over Kafka.

history (the simulator backfills the time-series store) -> forecast (Ray, sktime) -> offer (aggregator) -> bid (bidding) -> clearing
(exchange simulator) -> dispatch (aggregator) -> delivery (delivery simulator) ->
settlement and carbon ledger (settlement) -> run folder with the report.

The orchestrator only triggers the forecast and watches the database for each stage's
facts; the services pass the day along through the broker. A day already settled is not
run again (its facts are immutable); a day interrupted part-way is resumed by replaying its
stored facts, which the idempotent consumers skip where already applied.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.pipeline import Pipeline, PipelineError
from infra.contracts import Envelope
from infra.db import make_engine, migrate
from infra.db.outbox import stored_envelopes
from infra.db.tables import dead_letters, outbox, runs
from infra.embedded import Endpoints, exit_if_terminating, local_services
from infra.health import (
    Component,
    ComponentDown,
    database_component,
    ensure_up,
    kafka_component,
    redis_component,
)
from infra.kafka import ensure_topics
from infra.locks import Lease, LeaseLost, lease
from infra.registry import portfolio
from infra.scenario import Scenario
from infra.settings import Settings
from infra.timeutil import now
from sim.backfill import backfill
from sim.history import history_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    schema: str
    label: str
    service: str
    timeout_s: float
    min_count: int = 1


STAGES = (
    Stage("forecast_set", "forecast", "forecast", 600),
    Stage("offer", "offer", "aggregator", 180),
    Stage("bid", "bids", "bidding", 60),
    Stage("award", "awards", "exchange simulator", 60, min_count=2),
    Stage("dispatch", "dispatch", "aggregator", 120),
    Stage("metering", "delivery", "delivery simulator", 60),
    Stage("settlement", "settlement", "settlement", 180),
)


class RunDayError(RuntimeError):
    """A stage failed or stalled; the message names it and the reason."""


@dataclass
class RunOutcome:
    park_id: str
    day: date
    run_id: str
    folder: Path
    already_settled: bool
    scenario: Scenario | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    facts: dict[str, list[Envelope]] = field(default_factory=dict)


Progress = Callable[[str], None]


def _count(engine: Engine, park_id: str, day: date, schema: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(
                    outbox.c.park_id == park_id, outbox.c.market_day == day, outbox.c.schema_name == schema
                )
            ).scalar_one()
        )


def _dead_letters_for(engine: Engine, park_id: str, day: date) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(dead_letters.c.consumer, dead_letters.c.reason)
            .join(outbox, outbox.c.message_id == dead_letters.c.message_id)
            .where(outbox.c.park_id == park_id, outbox.c.market_day == day)
        ).all()
    return [f"{consumer}: {reason}" for consumer, reason in rows]


def _replay_day(engine: Engine, park_id: str, day: date) -> int:
    """Mark the day's stored facts unpublished so the relay sends them again."""
    with engine.begin() as conn:
        result = conn.execute(
            update(outbox)
            .where(outbox.c.park_id == park_id, outbox.c.market_day == day)
            .values(published_at=None)
        )
    return result.rowcount


HEALTH_EVERY_S = 2.0


@dataclass
class Watch:
    """What the orchestrator checks while it waits: the parts it depends on, and its lease."""

    components: list[Component]
    held: Lease
    budget_s: float
    last: float = 0.0

    def tick(self, force: bool = False) -> None:
        exit_if_terminating()
        if not force and time.monotonic() - self.last < HEALTH_EVERY_S:
            return
        self.last = time.monotonic()
        try:
            ensure_up(self.components, self.budget_s)
            self.held.check()
        except (ComponentDown, LeaseLost) as exc:
            raise RunDayError(str(exc)) from exc


def _wait_for(
    stage: Stage, engine: Engine, pipeline: Pipeline, park_id: str, day: date, watch: Watch
) -> None:
    deadline = time.monotonic() + stage.timeout_s
    while True:
        try:
            if _count(engine, park_id, day, stage.schema) >= stage.min_count:
                return
            problems = _dead_letters_for(engine, park_id, day)
        except SQLAlchemyError as exc:
            watch.tick(force=True)  # names the database if it stays away for the outage budget
            if time.monotonic() > deadline:
                raise RunDayError(f"{stage.label}: the database answers but cannot be read: {exc}") from exc
            time.sleep(0.5)
            continue
        watch.tick()  # a component that went away is the true cause: report it before a worker's failure
        pipeline.check_alive()
        if problems:
            raise RunDayError(f"{stage.label} failed in {stage.service}: " + "; ".join(problems))
        if time.monotonic() > deadline:
            raise RunDayError(f"{stage.label}: {stage.service} produced nothing in {stage.timeout_s:.0f} s")
        time.sleep(0.1)


def _prepare_history(engine: Engine, scenario: Scenario, day: date, progress: Progress) -> None:
    """Demo wiring: the simulator stands in for meters, weather service and market data and
    fills the time-series store with the history the services will read."""
    start, end = history_window(scenario, day)
    t0 = time.monotonic()
    report = backfill(engine, scenario, start, end, progress)
    state = "already in the store" if report.days_written == 0 else "written to the store"
    progress(
        f"history   {start} .. {end - timedelta(days=1)} of {report.series or 'every'} series {state} "
        f"(synthetic, from the simulator, {time.monotonic() - t0:.1f} s)"
    )


def _issue_forecast(engine: Engine, scenario: Scenario, day: date, watch: Watch) -> None:
    """The day-ahead forecast (minutes of Ray work), with the health watch running meanwhile."""
    from forecast.service import issue_forecast

    failure: list[BaseException] = []

    def work() -> None:
        try:
            issue_forecast(engine, scenario, day, horizon="day_ahead")
        except BaseException as exc:  # noqa: BLE001 - handed to the orchestrator below
            failure.append(exc)

    thread = threading.Thread(target=work, name="forecast", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        watch.tick()  # a broker, Redis or database that went away stops the run now, not after the forecast
    if failure:
        raise failure[0]


def run_day(park_id: str, day: date, settings: Settings, progress: Progress = log.info) -> RunOutcome:
    """Run (or resume) one park's market day and write its run folder."""
    run_id = f"{park_id}-{day.isoformat()}-{uuid.uuid4().hex[:8]}"
    folder = settings.run_dir / park_id / day.isoformat()
    database_url = settings.resolved_database_url
    migrate(database_url)  # under its own lock: concurrent first runs both get the schema
    # the lease before anything slow, so a second run of the day is refused within seconds
    with (
        lease(f"run-day:{park_id}:{day.isoformat()}", database_url, settings.redis_url) as held,
        local_services(settings) as endpoints,
    ):
        progress(
            f"services  kafka {endpoints.kafka_bootstrap}, redis {endpoints.redis_url}, "
            f"database {endpoints.database_url.split('?')[0]}"
        )
        engine = make_engine(endpoints.database_url)
        scenario = portfolio(engine, park_id, day)
        progress(f"park      {scenario.park.name} ({scenario.version}), delivery day {day}")
        ensure_topics(endpoints.kafka_bootstrap)
        watch = Watch(_components(endpoints, engine), held, settings.outage_budget_s)
        abandoned = _abandon_stale_runs(engine, park_id, day)
        if abandoned:
            progress(
                f"recover   {abandoned} earlier run(s) of this day stopped without finishing: marked abandoned"
            )
        outcome = RunOutcome(park_id, day, run_id, folder, already_settled=False, scenario=scenario)
        with engine.begin() as conn:
            conn.execute(
                insert(runs).values(
                    run_id=run_id, park_id=park_id, market_day=day, status="running", started_at=now()
                )
            )
        try:
            if _count(engine, park_id, day, "settlement") > 0:
                outcome.already_settled = True
                progress(
                    f"settled   {park_id} {day} was settled before; its facts are final, nothing is rerun"
                )
            else:
                _run_stages(engine, endpoints.kafka_bootstrap, scenario, day, progress, outcome, watch)
            with engine.connect() as conn:
                outcome.facts = {s.schema: stored_envelopes(conn, park_id, day, s.schema) for s in STAGES}
            held.check()
            _finish(engine, run_id, "done", None)
        except BaseException as exc:
            try:
                _finish(engine, run_id, "failed", f"{type(exc).__name__}: {exc}")
            except Exception as journal_exc:  # noqa: BLE001 - the database may be the failure: keep the true cause
                log.warning("could not record the failed run %s: %s", run_id, journal_exc)
            raise
    return outcome


def _components(endpoints: Endpoints, engine: Engine) -> list[Component]:
    return [
        kafka_component(endpoints.kafka_bootstrap),
        redis_component(endpoints.redis_url),
        database_component(engine),
    ]


def _abandon_stale_runs(engine: Engine, park_id: str, day: date) -> int:
    """Runs of this day still marked running: we hold the lease, so their process is gone."""
    with engine.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.park_id == park_id, runs.c.market_day == day, runs.c.status == "running")
            .values(
                status="abandoned",
                finished_at=now(),
                error="the process running it stopped without finishing (found by the next run)",
            )
        )
    return result.rowcount


def _finish(engine: Engine, run_id: str, status: str, error: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(runs).where(runs.c.run_id == run_id).values(status=status, finished_at=now(), error=error)
        )


def _run_stages(
    engine: Engine,
    bootstrap: str,
    scenario: Scenario,
    day: date,
    progress: Progress,
    outcome: RunOutcome,
    watch: Watch,
) -> None:
    park_id = scenario.id
    from bidding.clock import trading_timeline

    timeline = trading_timeline(scenario.market, day)
    progress("clock     market time: " + ", ".join(f"{k} {v:%m-%d %H:%M}" for k, v in timeline.items()))
    _prepare_history(engine, scenario, day, progress)
    replayed = _replay_day(engine, park_id, day)
    if replayed:
        progress(f"resume    replaying {replayed} stored facts of the interrupted day")
    with Pipeline(engine, bootstrap) as pipeline:
        t0 = time.monotonic()
        try:
            pipeline.wait_ready(watch=watch.tick)
        except PipelineError as exc:
            watch.tick(force=True)  # a component that went away is the true cause, not the worker
            raise RunDayError(f"workers: {exc}") from exc
        progress(
            f"workers   {len(pipeline.threads)} service workers joined their consumer groups "
            f"({time.monotonic() - t0:.1f} s)"
        )
        for stage in STAGES:
            t0 = time.monotonic()
            if stage.schema == "forecast_set" and _count(engine, park_id, day, stage.schema) == 0:
                progress("forecast  running sktime models on Ray ...")
                _issue_forecast(engine, scenario, day, watch)
            try:
                _wait_for(stage, engine, pipeline, park_id, day, watch)
            except PipelineError as exc:
                watch.tick(force=True)  # a worker stalled by a component that went away: name the component
                raise RunDayError(f"{stage.label}: {exc}") from exc
            outcome.stage_seconds[stage.label] = time.monotonic() - t0
            progress(
                f"{stage.label:<9} done ({outcome.stage_seconds[stage.label]:.1f} s)"
                f"  market clock {timeline[stage.label]:%Y-%m-%d %H:%M}"
            )
