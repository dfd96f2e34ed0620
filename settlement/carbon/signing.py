"""Anchoring the carbon ledger outside its own tables: Ed25519 signatures and signed checkpoints.

A hash chain alone proves nothing to someone who can rewrite the whole table: they can edit an
entry and re-hash everything after it, cut entries off the end together with the head, or
delete everything. Two anchors that live outside the ledger tables close those holes:

* **Signatures.** Every entry is signed (Ed25519, ``cryptography``) over its park, position
  and hash, and so is the chain head. The private key is never in the database: it comes from
  ``PARKVPP_LEDGER_KEY_FILE`` (a PEM file), or in embedded/dev mode it is generated on first use
  at ``<run dir>/keys/ledger-ed25519.pem`` (mode 0600). An auditor verifies with the public key
  alone: ``PARKVPP_LEDGER_PUBLIC_KEY_FILE``. Without the key nobody can append, re-hash or move
  the head back to an unsigned state.
* **Checkpoints.** After each committed append a signed checkpoint ``(park, position, hash)`` is
  appended to a JSON-lines file outside the database: ``PARKVPP_LEDGER_ANCHOR_DIR`` (default
  ``<run dir>/ledger-anchors``), one folder per database (a digest of its URL) and one file per
  park. Deleting entries at the end, or all of them, leaves checkpoints that point past the
  chain; restoring an older signed head does not remove them. In production put the folder on
  write-once storage or ship the lines to a separate store.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, event

from infra.settings import get_settings
from infra.timeutil import now

KEY_ENV = "PARKVPP_LEDGER_KEY_FILE"
PUBLIC_KEY_ENV = "PARKVPP_LEDGER_PUBLIC_KEY_FILE"
ANCHOR_ENV = "PARKVPP_LEDGER_ANCHOR_DIR"
DEV_KEY = Path("keys") / "ledger-ed25519.pem"


class SigningError(ValueError):
    """The ledger key is missing or unusable."""


@dataclass(frozen=True)
class LedgerKey:
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None
    key_id: str

    def sign(self, message: str) -> str:
        if self.private is None:
            raise SigningError(
                f"the ledger key is a public key only ({PUBLIC_KEY_ENV}); posting needs the private key ({KEY_ENV})"
            )
        return base64.b64encode(self.private.sign(message.encode())).decode()

    def valid(self, message: str, signature: str | None) -> bool:
        if not signature:
            return False
        try:
            self.public.verify(base64.b64decode(signature), message.encode())
        except (InvalidSignature, ValueError):
            return False
        return True


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@lru_cache(maxsize=8)
def _load(path: str, public_only: bool, mtime: float) -> LedgerKey:
    data = Path(path).read_bytes()
    try:
        if public_only:
            public = serialization.load_pem_public_key(data)
            if not isinstance(public, Ed25519PublicKey):
                raise SigningError(f"{path}: not an Ed25519 public key")
            return LedgerKey(public, None, _key_id(public))
        private = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise SigningError(f"{path}: not a PEM key ({exc})") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key")
    return LedgerKey(private.public_key(), private, _key_id(private.public_key()))


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def ledger_key(create: bool = True) -> LedgerKey:
    """The configured key; in dev mode (no ``PARKVPP_LEDGER_KEY_FILE``) generated on first use."""
    configured = os.environ.get(KEY_ENV)
    public = os.environ.get(PUBLIC_KEY_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise SigningError(f"{KEY_ENV}: {path} does not exist")
        return _load(str(path.resolve()), False, path.stat().st_mtime)
    if public and not create:
        path = Path(public)
        if not path.is_file():
            raise SigningError(f"{PUBLIC_KEY_ENV}: {path} does not exist")
        return _load(str(path.resolve()), True, path.stat().st_mtime)
    path = get_settings().run_dir / DEV_KEY
    if not path.is_file():
        if not create:
            raise SigningError(
                f"no ledger key: set {KEY_ENV} or {PUBLIC_KEY_ENV} (the dev key {path} does not exist)"
            )
        with contextlib.suppress(FileExistsError):  # another process created it first
            _generate(path)
    return _load(str(path.resolve()), False, path.stat().st_mtime)


def entry_message(park_id: str, position: int, entry_hash: str) -> str:
    return f"parkvpp-ledger-entry|{park_id}|{position}|{entry_hash}"


def head_message(park_id: str, position: int, entry_hash: str) -> str:
    return f"parkvpp-ledger-head|{park_id}|{position}|{entry_hash}"


def checkpoint_message(c: dict[str, Any]) -> str:
    return f"parkvpp-ledger-checkpoint|{c['park_id']}|{c['position']}|{c['entry_hash']}|{c['signed_at']}"


def database_id(conn: Connection) -> str:
    """A stable name of the database (and PostgreSQL schema) the ledger lives in."""
    url = conn.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        url = url.set(database=str(Path(url.database).resolve()))
    return hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]


def anchor_dir() -> Path:
    configured = os.environ.get(ANCHOR_ENV)
    return Path(configured) if configured else get_settings().run_dir / "ledger-anchors"


def _safe(park_id: str) -> str:
    return (
        hashlib.sha256(park_id.encode()).hexdigest()[:12]
        + "-"
        + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in park_id[:40])
    )


def anchor_file(conn: Connection, park_id: str) -> Path:
    return anchor_dir() / database_id(conn) / f"{_safe(park_id)}.jsonl"


def anchored_parks(conn: Connection) -> dict[str, Path]:
    folder = anchor_dir() / database_id(conn)
    out = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for c in read_checkpoints(path)[:1]:
            out[str(c.get("park_id"))] = path
    return out


def read_checkpoints(path: Path) -> list[dict[str, Any]]:
    out = []
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            c = json.loads(line)
        except json.JSONDecodeError:
            c = {"unreadable": True}
        c["line"] = n
        out.append(c)
    return out


def checkpoint_after_commit(conn: Connection, park_id: str, position: int, entry_hash: str) -> None:
    """Write a signed checkpoint once the caller's transaction commits (never for a rollback)."""
    key = ledger_key()
    path = anchor_file(conn, park_id)

    def write(_conn: Any) -> None:
        c = {
            "park_id": park_id,
            "position": position,
            "entry_hash": entry_hash,
            "signed_at": now().isoformat(),
            "key_id": key.key_id,
        }
        c["signature"] = key.sign(checkpoint_message(c))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(c, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    if conn.in_transaction():
        cancelled: list[bool] = []

        def commit(c: Any) -> None:
            if not cancelled:
                write(c)

        event.listen(conn, "commit", commit, once=True)
        event.listen(conn, "rollback", lambda c: cancelled.append(True), once=True)
    else:
        write(conn)
