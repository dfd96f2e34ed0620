"""Fault drills as tests (issue 12): each would fail on the behaviour the issue reports.

* broker dies mid-day: run-day waited ~300 s and blamed the aggregator -> must name Kafka in 30 s;
* a killed run stayed ``running``, left Ray processes and ``/tmp/parkvpp-services-*`` folders;
* two runs at once on a fresh database: the second crashed (``table outbox already exists`` /
  ``UniqueViolation``) -> one runs, the other exits 3 with "already running";
* ``ledger verify`` said "intact" for six kinds of tampering;
* a forged bid was accepted, a 12,000 MWh award stored; junk only logged; a conflicting id skipped.
"""

from __future__ import annotations

import pytest

from gateway import drills
from gateway.drills import Case, Lab

pytestmark = pytest.mark.slow


def _held(cases: list[Case]) -> None:
    failed = [f"{c.drill} / {c.case}: {'; '.join(c.problems)}" for c in cases if not c.held]
    assert not failed, "\n".join(failed)


def test_two_runs_at_once_on_a_fresh_sqlite_database_one_runs_the_other_is_refused(drill_lab: Lab) -> None:
    cases = drill_lab.reference_cases  # type: ignore[attr-defined]
    _held(cases)
    assert cases and cases[0].cause_s is not None and cases[0].cause_s < drills.CAUSE_LIMIT_S
    assert "already running" in cases[0].cause


@pytest.mark.postgres
def test_two_runs_at_once_on_a_fresh_postgres_schema(drill_lab: Lab, postgres_server_url: str) -> None:
    drill_lab.postgres_url = postgres_server_url
    case = drills.concurrent_runs_postgres(drill_lab)
    _held([case])
    assert "already running" in case.cause


def test_ledger_verify_detects_every_tampering(drill_lab: Lab) -> None:
    assert drill_lab.reference_dir is not None
    cases = drills.tamper_ledger(drill_lab.reference_dir, drill_lab.root / "t-tamper", drill_lab.park)
    _held(cases)
    tampered = [c for c in cases if c.tamper_detected is not None]
    assert len(tampered) == len(drills.TAMPER_CASES) and all(c.tamper_detected for c in tampered)


def test_forged_bids_and_awards_are_dead_lettered_and_change_no_fact(drill_lab: Lab) -> None:
    assert drill_lab.reference_dir is not None
    cases = drills.message_drill(
        "forged-messages", drill_lab.reference_dir, drill_lab.root / "t-forged", drill_lab.park, drill_lab.day
    )
    _held(cases)
    assert len(cases) == 7 and all(
        c.cause and c.facts_changed == 0 and c.facts_duplicated == 0 for c in cases
    )


def test_malformed_messages_are_dead_lettered_with_a_reason(drill_lab: Lab) -> None:
    assert drill_lab.reference_dir is not None
    cases = drills.message_drill(
        "malformed-messages",
        drill_lab.reference_dir,
        drill_lab.root / "t-junk",
        drill_lab.park,
        drill_lab.day,
    )
    _held(cases)
    assert all(c.cause for c in cases)


def test_broker_killed_mid_day_the_run_names_kafka_within_30_s_and_a_rerun_completes(drill_lab: Lab) -> None:
    case = drills.kill_broker(drill_lab, "offer")
    _held([case])
    assert case.cause_s is not None and case.cause_s <= drills.CAUSE_LIMIT_S and "kafka" in case.cause.lower()
    assert case.facts_lost == 0 and case.facts_duplicated == 0 and case.facts_changed == 0


def test_run_day_killed_during_the_forecast_leaves_no_process_folder_or_running_row(drill_lab: Lab) -> None:
    case = drills.kill_run(drill_lab, "forecast", resume=False)
    _held([case])


def test_settlement_worker_killed_mid_message_settles_once(drill_lab: Lab) -> None:
    case = drills.kill_worker(drill_lab)
    _held([case])
    assert case.facts_lost == 0 and case.facts_duplicated == 0
