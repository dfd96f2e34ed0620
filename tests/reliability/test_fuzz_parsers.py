"""Fuzzing every parser that takes input from outside: no traceback, no non-finite number accepted.

2,000 generated cases each for park scenarios, activity files, meter files and messages.
A parser may only ever return a valid result or raise its own error type naming the problem.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.db import make_engine, migrate
from infra.scenario import ScenarioError, load_scenario
from infra.scenario.loader import find_park_file, load_market, parse_scenario, read_yaml
from infra.signing import sign
from infra.timeseries import TimeSeriesError
from infra.timeseries.files import IngestError, ingest
from infra.worker import admit
from settlement.carbon.activity import ActivityError, park_account, parse_activity

CASES = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)

junk_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e400, -1e400, float("nan"), 0, -1, 1e12, "", "x" * 300, "2026-07-15", "09:30"]),
    st.text(max_size=20),
)
junk = st.recursive(
    junk_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def finite_everywhere(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(finite_everywhere(v) for v in value)
    return True


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(base: dict[str, Any], data: st.DataObject, count: int) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    for _ in range(count):
        candidates = paths(raw)
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates))
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(junk)
    return raw


DATONG = read_yaml(find_park_file("datong"), "datong")
SHANXI = load_market("shanxi")


@CASES
@given(data=st.data(), count=st.integers(min_value=1, max_value=4))
def test_scenarios(data: st.DataObject, count: int) -> None:
    raw = mutate(DATONG, data, count)
    try:
        scenario = parse_scenario(raw, SHANXI, "fuzz")
    except ScenarioError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert finite_everywhere(scenario.park.model_dump())


ACTIVITY = {
    "park": "Datong",
    "year": 2025,
    "fuels": [{"fuel": "natural_gas", "activity": "heat", "quantity": 422.69, "unit": "10^4 m3"}],
    "electricity": {"in": {"grid": 1520000, "direct_green": 610000}, "out": {"grid": 0, "green": 35000}},
    "heat": {"in": {"fossil_gj": 20000, "non_fossil_gj": 850000}},
    "process": [{"product": "lime", "quantity_t": 12000, "ef_tco2_per_t": 0.683}],
}


@CASES
@given(data=st.data(), count=st.integers(min_value=1, max_value=4))
def test_activity_files(data: st.DataObject, count: int) -> None:
    carbon = load_scenario("datong").park.carbon
    raw = mutate(ACTIVITY, data, count)
    try:
        account = park_account(parse_activity(raw, "fuzz", carbon), carbon, "fuzz")
    except ActivityError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    assert finite_everywhere(vars(account) if hasattr(account, "__dict__") else account)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.sqlite'}"
    migrate(url)
    return make_engine(url)


cell = st.one_of(
    st.sampled_from(
        [
            "2026-07-15T00:15:00+08:00",
            "2026-07-15T00:15:00",
            "1899-01-01T00:00:00+00:00",
            "",
            "cell_plant_load.load_mw",
            "x.pv_mw",
            "a.b",
            "120.5",
            "-1",
            "1e400",
            "nan",
            "inf",
            "good",
            "suspect",
            '"',
            ",",
            "\x00",
            "\u2028",
        ]
    ),
    st.text(max_size=12),
)


@CASES
@given(rows=st.lists(st.lists(cell, min_size=0, max_size=5), min_size=0, max_size=6), header=st.booleans())
def test_meter_files(
    store: Any, tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], header: bool
) -> None:
    scenario = load_scenario("datong")
    path = Path(tmp_path_factory.getbasetemp()) / "fuzz-meters.csv"
    lines = (["timestamp,series_id,value,quality"] if header else []) + [",".join(r) for r in rows]
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        report = ingest(store, "fuzz", path, "meters", scenario)
    except (IngestError, TimeSeriesError) as exc:
        assert str(exc)
        return
    assert report.points_new + report.points_corrected + report.points_unchanged >= 0


ENVELOPE = yaml.safe_load(
    """
schema: {name: award, version: 1}
message_id: 0eafe82e-09de-5ab9-9f63-d6b68dd326cf
park_id: datong
market_day: 2026-07-15
produced_at: "2026-07-14T17:30:00+08:00"
payload: {interval_minutes: 15, market: day_ahead, cleared_mw: [1.0, 2.0]}
"""
)


@CASES
@given(
    data=st.data(),
    count=st.integers(min_value=0, max_value=3),
    raw=st.binary(max_size=64),
    as_bytes=st.booleans(),
)
def test_messages(store: Any, data: st.DataObject, count: int, raw: bytes, as_bytes: bool) -> None:
    import json

    if as_bytes:
        message = raw
    else:
        body = mutate(ENVELOPE, data, count) if count else copy.deepcopy(ENVELOPE)
        message = json.dumps(body, default=str).encode()
    envelope, problem = admit(store, message)
    if problem is None:
        assert envelope is not None and finite_everywhere(envelope.payload)
    assert envelope is None or problem is not None or envelope.signature  # only signed messages pass


def test_a_signed_message_passes_the_fuzzed_gate(store: Any) -> None:
    """The control: the gate is not refusing everything (an award must name a stored bid)."""
    from infra.contracts import Envelope
    from infra.db.outbox import enqueue
    from tests.reliability.test_messages import bid

    stored = bid()
    with store.begin() as conn:
        enqueue(conn, "vpp.bids", stored)
    body = copy.deepcopy(ENVELOPE)
    body["payload"]["bid_message_id"] = stored.message_id
    good = sign(Envelope.model_validate(body))
    assert admit(store, good.to_json().encode()) == (good, None)
