"""The settlement worker: store each award and metering message, settle complete park-days.

Messages arrive in any order. Each is checked against the scenario and stored in
``ctx.transaction()``; when the park-day then has its day-ahead award, real-time award and
metering, the day is settled in the same transaction: statements, their ``Settlement``
messages in the outbox (topic ``vpp.settlements``, one per account) and ledger entries.
A replayed message is skipped by the worker loop; a settled day is never settled again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine

from infra.contracts import Topic
from infra.scenario import load_scenario
from infra.scenario.model import Scenario
from infra.worker import MessageContext, Worker
from settlement import store
from settlement.facts import KINDS, check_fact, read_fact
from settlement.settle import settle_facts

log = logging.getLogger(__name__)


class SettlementWorker(Worker):
    group = "settlement"
    topics = (Topic.AWARDS, Topic.METERING)

    def __init__(
        self, engine: Engine, kafka_bootstrap: str, scenarios: Callable[[str], Scenario] = load_scenario
    ) -> None:
        super().__init__(engine, kafka_bootstrap)
        self.scenarios = scenarios

    def handle(self, ctx: MessageContext) -> None:
        fact = read_fact(ctx.envelope)
        park_id, day = ctx.envelope.park_id, ctx.envelope.market_day
        scenario = self.scenarios(park_id)
        check_fact(fact, scenario)
        result = None
        with self.engine.connect() as conn:
            store.refuse_replacement(conn, fact)
            facts = store.load_facts(conn, park_id, day)
            facts.setdefault(fact.kind, fact)
            if all(k in facts for k in KINDS) and not store.is_settled(conn, park_id, day):
                result = settle_facts(conn, scenario, facts)
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
