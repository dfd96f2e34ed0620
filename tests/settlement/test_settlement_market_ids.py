"""Every settlement carries its market id: the statement the day-ahead energy market's, each line the
market it settles (from the awards' ids, or the market file's registry for awards without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from infra.contracts import Award
from settlement.baseline import Baseline
from settlement.case import build_case
from settlement.day import settle_day
from settlement.facts import assemble, read_fact
from tests.settlement.settlement_factory import DAY

CASES = Path(__file__).parent / "cases"


def test_statements_and_market_lines_carry_the_market_files_ids():
    spec = yaml.safe_load((CASES / "demand_response_dispatched.yaml").read_text(encoding="utf-8"))
    scenario, facts, baseline, _ = build_case(spec)
    result = settle_day(scenario, facts, baseline)
    registry = scenario.market.registry()
    assert set(registry) >= {"shanxi-case.day_ahead", "shanxi-case.real_time", "shanxi-case.demand_response"}
    for statement in result.statements:
        assert statement.market_id == "shanxi-case.day_ahead"
    park = {line.item: line.market_id for line in result.statements[0].lines}
    assert park["day_ahead_energy"] == "shanxi-case.day_ahead"
    assert park["real_time_energy"] == park["deviation_charge"] == "shanxi-case.real_time"
    assert park["demand_response"] == park["demand_response_penalty"] == "shanxi-case.demand_response"
    assert park["regulation_mileage"] == "shanxi-case.regulation"
    assert park["grid_import_tariff"] is None and park["mlt_energy"] is None  # not one market's


def test_settlement_takes_the_market_ids_the_awards_name(datong, messages):
    scenario = datong
    msgs = messages[DAY]
    ids = {"day_ahead": "shanxi.day_ahead_b", "real_time": "shanxi.real_time_b"}
    facts = {}
    for env in msgs.all():
        fact = read_fact(env, scenario)
        if isinstance(fact.payload, Award):
            payload = fact.payload.model_copy(
                update={
                    "market_id": ids[fact.payload.market],
                    "demand_response_market_id": "shanxi.dr_b"
                    if fact.payload.market == "day_ahead"
                    else None,
                }
            )
            fact = type(fact)(fact.kind, fact.envelope, payload)
        facts[fact.kind] = fact
    day = assemble(scenario, facts)
    assert day.market_ids == {
        "day_ahead_energy": "shanxi.day_ahead_b",
        "real_time_energy": "shanxi.real_time_b",
        "demand_response": "shanxi.dr_b",
    }
    baseline = Baseline(np.full(day.n, np.nan), np.full(day.metered_mwh.shape, np.nan), {"meters": []})
    result = settle_day(scenario, day, baseline)
    park = result.statements[0]
    assert park.market_id == "shanxi.day_ahead_b"
    lines = {line.item: line.market_id for line in park.lines}
    assert lines["real_time_energy"] == "shanxi.real_time_b"
    assert lines["demand_response"] == "shanxi.dr_b"
    assert lines["regulation_mileage"] == "shanxi.regulation"  # the award named none: the market file's
