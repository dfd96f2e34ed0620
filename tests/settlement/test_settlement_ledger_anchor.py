"""Tampering a hash chain alone cannot hide: signatures and checkpoints outside the database.

Each case is one an attacker with full write access to the database (but not to the ledger key
or the checkpoint folder) can do, and each was reported "intact" before the ledger was
anchored (issue 12).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update
from typer.testing import CliRunner

from settlement.carbon.ledger import GENESIS, VerifyError, compute_hash, verify
from settlement.tables import carbon_ledger, carbon_ledger_heads
from tests.settlement.test_settlement_ledger import DAY, draft, ledger_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    return ledger_engine(url)


def found(engine: Engine, park: str = "p1") -> list:
    with engine.connect() as conn:
        return verify(conn, park)[1]


def rows(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            r._asdict()
            for r in conn.execute(
                select(carbon_ledger)
                .where(carbon_ledger.c.park_id == "p1")
                .order_by(carbon_ledger.c.position)
            )
        ]


def rehash_from(engine: Engine, chain: list[dict], start: int) -> str:
    """Recompute hashes (and links) of every entry from ``start`` on, as an attacker would."""
    prev = chain[start - 1]["entry_hash"] if start else GENESIS
    with engine.begin() as conn:
        for r in chain[start:]:
            r["prev_hash"] = prev
            r["entry_hash"] = prev = compute_hash(r)
            conn.execute(
                update(carbon_ledger)
                .where(carbon_ledger.c.entry_id == r["entry_id"])
                .values(memo=r["memo"], prev_hash=r["prev_hash"], entry_hash=r["entry_hash"])
            )
    return prev


def test_intact_ledger_verifies(engine: Engine) -> None:
    assert found(engine) == []


def test_entry_appended_without_moving_the_head_is_detected(engine: Engine) -> None:
    chain = rows(engine)
    forged = dict(chain[-1])
    forged.update(
        entry_id="forged-entry", position=6, memo="extra allowance", prev_hash=chain[-1]["entry_hash"]
    )
    forged["entry_hash"] = compute_hash(forged)
    forged["signature"] = chain[-1]["signature"]  # copying a signature does not help
    with engine.begin() as conn:
        conn.execute(carbon_ledger.insert().values(**forged))
    problems = found(engine)
    assert {(p.kind, p.rule, p.entry_id) for p in problems} >= {
        ("forged", "signature", "forged-entry"),
        ("forged", "head", "forged-entry"),
    }
    assert any("beyond the signed chain head" in p.message for p in problems)


def test_entry_appended_with_the_head_moved_is_detected(engine: Engine) -> None:
    chain = rows(engine)
    forged = dict(chain[-1])
    forged.update(
        entry_id="forged-entry", position=6, memo="x", prev_hash=chain[-1]["entry_hash"], signature=None
    )
    forged["entry_hash"] = compute_hash(forged)
    with engine.begin() as conn:
        conn.execute(carbon_ledger.insert().values(**forged))
        conn.execute(update(carbon_ledger_heads).values(position=6, entry_hash=forged["entry_hash"]))
    kinds = {(p.kind, p.rule) for p in found(engine)}
    assert ("forged", "signature") in kinds and ("head", "head") in kinds


def test_last_entry_deleted_together_with_the_head_is_detected(engine: Engine) -> None:
    with engine.connect() as conn:
        old_head = conn.execute(select(carbon_ledger_heads)).one()._asdict()  # a genuinely signed head
    with engine.begin() as conn:
        from settlement.carbon.ledger import append

        append(conn, "p1", DAY, [draft(6)])
    with engine.begin() as conn:  # cut the new entry off and restore the old, validly signed head
        conn.execute(delete(carbon_ledger).where(carbon_ledger.c.position == 6))
        conn.execute(update(carbon_ledger_heads).values(**old_head))
    problems = found(engine)
    assert [(p.kind, p.rule) for p in problems] == [("truncated", "checkpoint")]
    assert "entries up to 6 were deleted" in problems[0].message


def test_edit_with_the_rest_of_the_chain_and_the_head_rehashed_is_detected(engine: Engine) -> None:
    chain = rows(engine)
    chain[2]["memo"] = "rewritten"
    last = rehash_from(engine, chain, 2)
    with engine.begin() as conn:
        conn.execute(update(carbon_ledger_heads).values(entry_hash=last))
    problems = found(engine)
    forged = {p.position for p in problems if p.kind == "forged" and p.rule == "signature"}
    assert forged == {2, 3, 4, 5}
    assert ("head", "head") in {(p.kind, p.rule) for p in problems}
    assert any(p.rule == "checkpoint" and p.kind == "edited" for p in problems)


def test_all_rows_deleted_is_detected(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(carbon_ledger))
        conn.execute(delete(carbon_ledger_heads))
    problems = found(engine)
    assert [(p.kind, p.rule) for p in problems] == [("truncated", "checkpoint")]
    assert "the chain ends at position -1" in problems[0].message
    with engine.connect() as conn:  # also found when no park is named
        assert [p.kind for p in verify(conn)[1]] == ["truncated"]


def test_unknown_park_is_an_error_not_intact(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(VerifyError, match="not a known park"):
        verify(conn, "no_such_park")
    with engine.connect() as conn:  # a registered park that posted nothing yet is simply empty
        assert verify(conn, "fresh_park", known_parks=["fresh_park"]) == (0, [])


def test_cli_errors_on_unknown_park_and_missing_database(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import app

    ledger_engine(sqlite_url)
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    unknown = CliRunner().invoke(app, ["ledger", "verify", "--park", "atlantis"])
    assert unknown.exit_code == 2 and "not a known park" in unknown.output
    missing = tmp_path / "nowhere" / "parkvpp.sqlite"
    monkeypatch.setenv("PARKVPP_DATABASE_URL", f"sqlite:///{missing}")
    result = CliRunner().invoke(app, ["ledger", "verify"])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_cli_reports_each_problem_with_entry_and_rule(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import app

    engine = ledger_engine(sqlite_url)
    chain = rows(engine)
    chain[4]["memo"] = "rewritten"
    rehash_from(engine, chain, 4)
    monkeypatch.setenv("PARKVPP_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(app, ["ledger", "verify", "--park", "p1"])
    assert result.exit_code == 1
    assert f"forged: entry {chain[4]['entry_id']} (position 4" in result.output
    assert "[rule: every entry carries an Ed25519 signature" in result.output


def test_verify_with_the_public_key_only(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auditor holds the public key, not the private one."""
    from cryptography.hazmat.primitives import serialization

    from settlement.carbon.signing import ANCHOR_ENV, PUBLIC_KEY_ENV, anchor_dir, ledger_key

    pem = ledger_key().public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "ledger.pub").write_bytes(pem)
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(tmp_path / "ledger.pub"))
    monkeypatch.setenv(ANCHOR_ENV, str(anchor_dir()))
    monkeypatch.setenv("PARKVPP_RUN_DIR", str(tmp_path / "elsewhere"))  # no private key here
    with engine.connect() as conn:
        assert verify(conn, "p1") == (6, [])
