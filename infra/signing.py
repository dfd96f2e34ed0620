"""Every envelope is signed by the service that produced it (Ed25519, ``cryptography``).

Keys live in ``PARKVPP_KEYS_DIR`` (default ``<run dir>/keys``): ``<service>.key`` (private,
raw 32 bytes, mode 0600) and ``<service>.pub``. A service needs its own private key and the
public keys of the services it consumes from; in a deployment each host gets only its own
private key. With no key on disk, one is generated on first use (the embedded default);
set ``PARKVPP_KEYS_GENERATE=0`` to refuse that and require provisioned keys.

The signature covers the canonical JSON of the whole envelope except the signature itself,
producer included. Ed25519 is deterministic, so the same fact signed twice is byte-identical
and the outbox's idempotency holds.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.contracts import Envelope
from infra.settings import get_settings

_current_producer: contextvars.ContextVar[str | None] = contextvars.ContextVar("producer", default=None)
_lock = threading.Lock()


class SigningError(RuntimeError):
    """A key is missing or unusable; the message says which and where."""


@contextlib.contextmanager
def producing_as(service: str) -> Iterator[None]:
    """Facts written inside the block are signed as ``service``."""
    token = _current_producer.set(service)
    try:
        yield
    finally:
        _current_producer.reset(token)


@lru_cache(maxsize=1)
def trust() -> dict[str, Any]:
    return yaml.safe_load(Path(__file__).with_name("trust.yaml").read_text(encoding="utf-8"))


def keys_dir() -> Path:
    configured = os.environ.get("PARKVPP_KEYS_DIR")
    return Path(configured) if configured else get_settings().run_dir / "keys"


def _generate_allowed() -> bool:
    return os.environ.get("PARKVPP_KEYS_GENERATE", "1") not in ("0", "false", "no")


def _private_key(service: str) -> Ed25519PrivateKey:
    folder = keys_dir()
    path = folder / f"{service}.key"
    with _lock:
        if not path.exists():
            if not _generate_allowed():
                raise SigningError(
                    f"no signing key for {service}: {path} is missing (PARKVPP_KEYS_GENERATE=0)"
                )
            folder.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            raw = key.private_bytes_raw()
            fd = os.open(path.with_suffix(".key.tmp"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            os.replace(path.with_suffix(".key.tmp"), path)
            (folder / f"{service}.pub").write_bytes(key.public_key().public_bytes_raw())
        return Ed25519PrivateKey.from_private_bytes(path.read_bytes())


def _public_key(service: str) -> Ed25519PublicKey | None:
    path = keys_dir() / f"{service}.pub"
    return Ed25519PublicKey.from_public_bytes(path.read_bytes()) if path.exists() else None


def signed_bytes(envelope: Envelope) -> bytes:
    body = envelope.model_dump(mode="json", by_alias=True, exclude={"signature"})
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def producer_for(envelope: Envelope) -> str:
    service = _current_producer.get() or trust()["default_producer"].get(envelope.schema_.name)
    if service is None:
        raise SigningError(
            f"no producer identity for a {envelope.schema_.name} message: write it inside producing_as()"
        )
    return service


def sign(envelope: Envelope, service: str | None = None) -> Envelope:
    """The envelope signed by ``service`` (default: the current producer, else the schema's producer)."""
    service = service or producer_for(envelope)
    unsigned = envelope.model_copy(update={"producer": service, "signature": None})
    signature = _private_key(service).sign(signed_bytes(unsigned))
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})


def verification_problem(envelope: Envelope) -> str | None:
    """Why the envelope must not be trusted, or None when its signature and producer are valid."""
    if not envelope.producer or not envelope.signature:
        return "unsigned message (no producer or signature)"
    allowed = trust()["producers"].get(envelope.schema_.name)
    if allowed is not None and envelope.producer not in allowed:
        return f"producer {envelope.producer!r} may not produce {envelope.schema_.name} (allowed: {', '.join(allowed)})"
    public = _public_key(envelope.producer)
    if public is None:
        return f"unknown producer {envelope.producer!r}: no public key {keys_dir() / (envelope.producer + '.pub')}"
    try:
        public.verify(base64.b64decode(envelope.signature, validate=True), signed_bytes(envelope))
    except (InvalidSignature, ValueError):
        return f"signature of {envelope.producer!r} does not match the message (forged or altered)"
    return None
