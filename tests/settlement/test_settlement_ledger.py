"""The carbon ledger on real databases: balance, append-only, and tamper detection by name."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import Engine, delete, select, text, update
from typer.testing import CliRunner

from infra.db import make_engine, migrate
from settlement.carbon.ledger import (
    EntryDraft,
    LedgerError,
    Posting,
    append,
    canonical,
    compute_hash,
    verify,
)
from settlement.tables import carbon_ledger

DAY = date(2026, 7, 15)


def draft(i: int, tonnes: int = 1_000_000) -> EntryDraft:
    return EntryDraft(
        kind="emission",
        account_id=f"ent{i}/asset{i}",
        key=str(i),
        rule="test rule",
        factor_version="test-1",
        factors={"ef": 0.8325},
        postings=(
            Posting(f"ent{i}/asset{i}", "emissions.scope2.electricity_grid", "tCO2", tonnes + i),
            Posting("external:atmosphere", "co2", "tCO2", -(tonnes + i)),
        ),
    )


def ledger_engine(url: str) -> Engine:
    migrate(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        assert append(conn, "p1", DAY, [draft(i) for i in range(6)], source="test") == 6
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    return ledger_engine(url)


def problems(engine: Engine) -> list:
    with engine.connect() as conn:
        return verify(conn, "p1")[1]


def entry(engine: Engine, position: int) -> dict:
    with engine.connect() as conn:
        return conn.execute(select(carbon_ledger).where(carbon_ledger.c.position == position)).one()._asdict()


def test_intact_chain_verifies_and_reappending_is_a_no_op(engine: Engine) -> None:
    assert problems(engine) == []
    with engine.begin() as conn:
        assert append(conn, "p1", DAY, [draft(2), draft(6)]) == 1  # only the new one
    assert problems(engine) == []


def test_unbalanced_entry_is_refused_and_nothing_is_written(engine: Engine) -> None:
    bad = EntryDraft(
        "emission",
        "x/y",
        "r",
        "v",
        (Posting("x/y", "emissions.a", "tCO2", 5), Posting("external:atmosphere", "co2", "tCO2", -4)),
    )
    with (
        pytest.raises(LedgerError, match=r"balance in every unit \(tCO2 off by 1e-06\)"),
        engine.begin() as conn,
    ):
        append(conn, "p1", DAY, [draft(7), bad])
    with engine.connect() as conn:
        assert conn.execute(select(carbon_ledger.c.entry_id)).all().__len__() == 6


def test_changed_content_under_the_same_id_is_refused(engine: Engine) -> None:
    with pytest.raises(LedgerError, match="append-only: post an adjustment"), engine.begin() as conn:
        append(conn, "p1", DAY, [draft(3, tonnes=2_000_000)])


def test_edited_entry_is_named(engine: Engine) -> None:
    victim = entry(engine, 3)
    postings = json.loads(victim["postings"])
    postings[0][3] -= 500_000
    postings[1][3] += 500_000  # still balanced: only the hash gives it away
    with engine.begin() as conn:
        conn.execute(
            update(carbon_ledger).where(carbon_ledger.c.position == 3).values(postings=canonical(postings))
        )
    found = problems(engine)
    assert [(p.kind, p.entry_id, p.position) for p in found] == [("edited", victim["entry_id"], 3)]
    assert "content no longer matches its hash" in found[0].message


def test_edited_and_rehashed_entry_is_named(engine: Engine) -> None:
    victim = entry(engine, 2)
    victim["memo"] = "nothing to see"
    with engine.begin() as conn:
        conn.execute(
            update(carbon_ledger)
            .where(carbon_ledger.c.position == 2)
            .values(memo=victim["memo"], entry_hash=compute_hash(victim))
        )
    found = problems(engine)
    assert [(p.kind, p.entry_id) for p in found] == [
        ("forged", victim["entry_id"]),  # the new hash carries no valid signature
        ("edited", victim["entry_id"]),
    ]
    assert "re-hashed" in found[1].message and found[1].rule == "link"


def test_unbalanced_tampering_is_reported_too(engine: Engine) -> None:
    victim = entry(engine, 1)
    postings = json.loads(victim["postings"])
    postings[0][3] = 1
    with engine.begin() as conn:
        conn.execute(
            update(carbon_ledger).where(carbon_ledger.c.position == 1).values(postings=canonical(postings))
        )
    assert {p.kind for p in problems(engine)} == {"edited", "unbalanced"}


def test_deleted_entry_is_named(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(carbon_ledger).where(carbon_ledger.c.position == 4))
    found = problems(engine)
    assert [p.kind for p in found] == ["deleted"]
    assert "positions 4..4 are missing" in found[0].message
    assert (
        entry(engine, 3)["entry_id"] in found[0].message and found[0].entry_id == entry(engine, 5)["entry_id"]
    )


def test_deleted_last_entry_is_detected_by_the_head(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(carbon_ledger).where(carbon_ledger.c.position == 5))
    found = problems(engine)
    assert [p.kind for p in found] == ["deleted", "truncated"]  # the head, and the checkpoint outside
    assert "positions 5..5 are missing at the end" in found[0].message


def test_reordered_entries_are_named(engine: Engine) -> None:
    a, b = entry(engine, 2), entry(engine, 3)
    with engine.begin() as conn:  # swap positions through a free slot
        conn.execute(update(carbon_ledger).where(carbon_ledger.c.position == 2).values(position=99))
        conn.execute(update(carbon_ledger).where(carbon_ledger.c.position == 3).values(position=2))
        conn.execute(update(carbon_ledger).where(carbon_ledger.c.position == 99).values(position=3))
    found = problems(engine)
    assert found and {p.kind for p in found} == {"reordered", "forged"}  # signatures bind the position
    named = {p.entry_id for p in found if p.kind == "reordered"}
    assert {a["entry_id"], b["entry_id"]} <= named


def test_cli_verify_names_the_entry_and_exits_1(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import app

    engine = ledger_engine(sqlite_url)
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    ok = CliRunner().invoke(app, ["ledger", "verify", "--park", "p1"])
    assert ok.exit_code == 0 and "6 entries checked: the chain is intact" in ok.output
    victim = entry(engine, 2)
    with engine.begin() as conn:
        conn.execute(text("UPDATE carbon_ledger SET rule = 'changed' WHERE position = 2"))
    bad = CliRunner().invoke(app, ["ledger", "verify", "--park", "p1"])
    assert bad.exit_code == 1
    assert f"edited: entry {victim['entry_id']} (position 2" in bad.output
    as_json = CliRunner().invoke(app, ["ledger", "verify", "--json"])
    assert json.loads(as_json.output)["problems"][0]["entry_id"] == victim["entry_id"]
