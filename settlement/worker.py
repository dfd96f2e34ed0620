"""The settlement worker: store each award and metering message, settle complete park-days.

Messages arrive in any order. Each is checked against the scenario and stored in
``ctx.transaction()``; when the park-day then has its day-ahead award, real-time award and
metering, the day is settled in the same transaction (with every real-time bid award stored by
then; one arriving after the day was settled makes a new statement version): statements, their ``Settlement``
messages in the outbox (topic ``vpp.settlements``, one per account) and ledger entries.
A replayed message is skipped by the worker loop; a settled day is never settled again. If the
settlement computation itself fails, the fact is still stored and the reason recorded in
``dead_letters``; ``parkvpp settlement replay`` settles the day once the cause is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine, insert

from infra.contracts import Topic
from infra.db.tables import dead_letters
from infra.registry import portfolio
from infra.scenario.model import Scenario
from infra.timeutil import now
from infra.worker import MessageContext, Worker
from settlement import store, versions
from settlement.facts import KINDS, check_fact, is_real_time_bid, read_fact
from settlement.settle import settle_facts

log = logging.getLogger(__name__)


class SettlementWorker(Worker):
    group = "settlement"
    topics = (Topic.AWARDS, Topic.METERING)

    def __init__(
        self,
        engine: Engine,
        kafka_bootstrap: str,
        scenarios: Callable[[str, date], Scenario] | None = None,
    ) -> None:
        super().__init__(engine, kafka_bootstrap)
        self.scenarios = scenarios or (lambda park_id, day: portfolio(engine, park_id, day))

    def handle(self, ctx: MessageContext) -> None:
        park_id, day = ctx.envelope.park_id, ctx.envelope.market_day
        scenario = self.scenarios(park_id, day)
        fact = read_fact(ctx.envelope, scenario)
        check_fact(fact, scenario)
        result, failure = None, None
        with self.engine.connect() as conn:
            stored = store.stored_fact_id(conn, park_id, day, fact.kind)
        if stored is not None and stored != fact.message_id:
            self._correct(ctx, fact, scenario)
            return
        if stored is None and is_real_time_bid(fact.kind):
            with self.engine.connect() as conn:
                late = store.is_settled(conn, park_id, day)
            if late:  # a real-time bid's award after the day was settled: a new version with it
                self._late(ctx, fact, scenario)
                return
        with self.engine.connect() as conn:
            facts = versions.latest_facts(conn, park_id, day)
            facts.setdefault(fact.kind, fact)
            if all(k in facts for k in KINDS) and not store.is_settled(conn, park_id, day):
                try:
                    result = settle_facts(conn, scenario, facts)
                except Exception as exc:  # noqa: BLE001 - the fact is valid: keep it, record why the day is not settled
                    failure = f"{type(exc).__name__}: {exc}"
        with ctx.transaction() as conn:
            store.store_fact(conn, fact)
            if result is not None and not store.is_settled(conn, park_id, day):
                store.write_result(conn, result)
                park = next(s for s in result.statements if s.account_id == "park")
                log.info(
                    "settled %s %s: park total %.2f CNY, %.3f tCO2, %d statements",
                    park_id,
                    day,
                    park.total_cny,
                    park.emissions_tco2,
                    len(result.statements),
                )
            if failure is not None:
                reason = (
                    f"{fact.kind} stored, but settling {park_id} {day} failed: {failure}; "
                    f"after fixing it run `parkvpp settlement replay --park {park_id} --day {day}`"
                )
                log.error("%s", reason)
                conn.execute(
                    insert(dead_letters).values(
                        consumer=self.group,
                        message_id=fact.message_id,
                        topic=ctx.topic,
                        reason=reason,
                        rejected_at=now(),
                    )
                )

    def _late(self, ctx: MessageContext, fact, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
        park_id, day = ctx.envelope.park_id, ctx.envelope.market_day
        reason = f"real-time bid award {fact.message_id} ({fact.kind}) arrived after the day was settled"
        with ctx.transaction() as conn:
            store.store_fact(conn, fact)
            done = versions.resettle(conn, scenario, day, reason)
        if done is not None:
            log.info("%s %s: version %d with real-time award %s", park_id, day, done.version, fact.message_id)

    def _correct(self, ctx: MessageContext, fact, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
        """A different message for a kind the park-day already has: a correction, a new version."""
        park_id, day = ctx.envelope.park_id, ctx.envelope.market_day
        reason = f"corrected {fact.kind} message {fact.message_id} (produced {ctx.envelope.produced_at.isoformat()})"
        with ctx.transaction() as conn:
            if not versions.store_correction(conn, fact, reason):
                return
            if store.is_settled(conn, park_id, day):
                done = versions.resettle(conn, scenario, day, reason)
                if done is not None:
                    log.info(
                        "corrected %s %s: version %d%s",
                        park_id,
                        day,
                        done.version,
                        f", booked in {done.booked_month:%Y-%m} (approved)" if done.booked_month else "",
                    )
