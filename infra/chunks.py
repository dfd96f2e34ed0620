"""Messages that scale: a per-asset Dispatch or Metering travels in chunks under Kafka's limits.

Why: the set-points or readings of 100,000 assets are tens of MiB, far over a broker's usual
1 MiB message limit, and one partition cannot spread the work over consumers. A payload that
fits stays one message as before (``chunk`` None: same id, same bytes). A larger one is split by
its assets into chunks keyed ``park|chunk`` (spread over the partitions), followed by a
:class:`ChunkManifest` keyed by park that names every chunk and its digest: it says when a
message is whole. :class:`Assembly` rebuilds it from chunks and manifest in any order.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from itertools import groupby
from typing import TypeVar

from pydantic import BaseModel

from infra.contracts import (
    PAYLOADS,
    Chunkable,
    ChunkEntry,
    ChunkManifest,
    ChunkRef,
    Envelope,
    SchemaRef,
    message_id,
)
from infra.settings import Settings, get_settings

CHUNK_BYTES = Settings.message_chunk_bytes  # 512 KiB default: well under the usual 1 MiB limit
# Room kept beside a chunk's payload for the envelope: schema, ids, park id (up to 64
# characters), day, times, and the producer and Ed25519 signature the outbox adds.
ENVELOPE_ALLOWANCE = 1024
SIGNATURE_ALLOWANCE = 256  # the part of it that signing adds after chunk_envelopes measured

P = TypeVar("P", bound=Chunkable)


class ChunkMismatch(ValueError):
    """A chunk or manifest does not belong with what was received (content, id, park, day)."""


def chunk_key(index: int) -> str:
    """The key of chunk ``index``: ``c0000``, ``c0001``, ..."""
    return f"c{index:04d}"


def payload_sha256(envelope: Envelope) -> str:
    """Digest of the canonical payload JSON, the same as the outbox's ``payload_digest``."""
    canonical = json.dumps(envelope.payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _size(model: BaseModel) -> int:
    return len(model.model_dump_json().encode())


def split(payload: P, max_bytes: int | None = None, parent_message_id: str | None = None) -> list[P]:
    """``payload`` as chunks whose envelopes are at most ``max_bytes`` (default
    ``PARKVPP_MESSAGE_CHUNK_BYTES``), or ``[payload]`` itself when it fits.

    Assets go in (enterprise, asset id) order; an enterprise's assets share a chunk where the
    enterprise fits in one. Raises ValueError for an asset that alone exceeds a chunk."""
    if payload.chunk is not None:
        raise ValueError(f"{payload.SCHEMA} is already chunk {payload.chunk.key}; split the whole message")
    limit = max_bytes if max_bytes is not None else get_settings().message_chunk_bytes
    budget = limit - ENVELOPE_ALLOWANCE
    if _size(payload) <= budget:
        return [payload]
    probe = ChunkRef(key=chunk_key(10**6), index=10**6, count=10**6 + 1, parent_message_id=" " * 64)
    base = _size(payload.model_copy(update={"assets": [], "chunk": probe}))
    room = budget - base + 1  # an asset costs its JSON and a comma, save the first
    if room <= 1:
        raise ValueError(f"{payload.SCHEMA}: park-level fields alone ({base:,} bytes) fill {limit:,} bytes")
    ordered = sorted(payload.assets, key=lambda a: (a.enterprise_id, a.asset_id))
    cost = [_size(a) + 1 for a in ordered]
    for asset, c in zip(ordered, cost, strict=True):
        if c > room:
            what = f"{payload.SCHEMA}: asset {asset.asset_id} of enterprise {asset.enterprise_id}"
            raise ValueError(f"{what} needs {c - 1:,} bytes, more than a chunk of {limit:,} bytes holds")
    groups: list[list[int]] = [[]]
    used = 0
    for _, members in groupby(range(len(ordered)), key=lambda i: ordered[i].enterprise_id):
        enterprise = list(members)
        size = sum(cost[i] for i in enterprise)
        if groups[-1] and used + size > room:  # a fresh chunk: whole, or spanning as few as it can
            groups.append([])
            used = 0
        for i in enterprise:
            if used + cost[i] > room:
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += cost[i]
    count = len(groups)
    return [
        payload.model_copy(
            update={
                "assets": [ordered[i] for i in members],
                "chunk": ChunkRef(
                    key=chunk_key(n), index=n, count=count, parent_message_id=parent_message_id
                ),
            }
        )
        for n, members in enumerate(groups)
    ]


def chunk_envelopes(
    payload: Chunkable, park_id: str, market_day: date, *key: object, max_bytes: int | None = None
) -> list[Envelope]:
    """The envelopes that carry ``payload``: its chunks, then their manifest; or only
    ``payload.envelope(park_id, market_day, *key)`` when it fits. All ids are deterministic:
    a chunk's is the parent key plus its chunk key, the manifest's the schema plus the parent key."""
    limit = max_bytes if max_bytes is not None else get_settings().message_chunk_bytes
    parent_id = message_id(payload.SCHEMA, park_id, market_day, *key)
    parts = split(payload, limit, parent_message_id=parent_id)
    if parts[0].chunk is None:
        return [payload.envelope(park_id, market_day, *key)]
    refs = [p.chunk for p in parts if p.chunk is not None]
    envelopes = [p.envelope(park_id, market_day, *key, r.key) for p, r in zip(parts, refs, strict=True)]
    manifest = ChunkManifest(
        of_schema=payload.SCHEMA,  # type: ignore[arg-type]  # dispatch or metering: the Chunkable ones
        parent_key="|".join(str(k) for k in key),
        parent_message_id=parent_id,
        chunks=[
            ChunkEntry(
                key=r.key,
                message_id=env.message_id,
                assets=len(p.assets),
                enterprises=sorted({a.enterprise_id for a in p.assets}),
                payload_sha256=payload_sha256(env),
            )
            for p, r, env in zip(parts, refs, envelopes, strict=True)
        ],
        total_assets=len(payload.assets),
    )
    envelopes.append(manifest.envelope(park_id, market_day, payload.SCHEMA, *key))
    for env in envelopes:
        if (size := len(env.to_json().encode())) > limit - SIGNATURE_ALLOWANCE:
            raise ValueError(f"{env.schema_.name} {env.message_id}: {size:,} bytes, over {limit:,} signed")
    return envelopes


def partition_key(envelope: Envelope) -> bytes:
    """The Kafka key: the park id, so a park's messages stay in order in one partition; for a
    chunk ``park|chunk key``, so the chunks of one message spread over the partitions."""
    chunk = envelope.payload.get("chunk")
    if isinstance(chunk, dict) and chunk.get("key"):
        return f"{envelope.park_id}|{chunk['key']}".encode()
    return envelope.park_id.encode()


def parent_of(envelope: Envelope) -> str | None:
    """The message a chunk or manifest belongs to (one :class:`Assembly` each), None for others."""
    if envelope.schema_.name == ChunkManifest.SCHEMA:
        return envelope.payload.get("parent_message_id")
    chunk = envelope.payload.get("chunk")
    return chunk.get("parent_message_id") if isinstance(chunk, dict) else None


class Assembly:
    """Collects the chunks and the manifest of one message, in any order, and rebuilds it.

    Duplicates are ignored. A chunk that differs from its manifest entry (digest or id) or
    from a copy received before, or that belongs to another message, raises
    :class:`ChunkMismatch` and is not kept. A manifest arriving after such a chunk is kept; the
    chunk is dropped (it shows in :attr:`missing`) and the error names it."""

    def __init__(self) -> None:
        self.manifest: ChunkManifest | None = None
        self.manifest_envelope: Envelope | None = None
        self._origin: tuple[str, date, str, str | None] | None = None  # park, day, schema, parent
        self._chunks: dict[str, tuple[str, Chunkable, str]] = {}  # key: message id, payload, digest

    def _check_origin(self, envelope: Envelope, schema: str, parent: str | None) -> None:
        origin = (envelope.park_id, envelope.market_day, schema, parent)
        if self._origin is None:
            self._origin = origin
        elif origin != self._origin:
            raise ChunkMismatch(f"{envelope.message_id} is of {origin}, not of {self._origin}")

    def _entry_problem(self, key: str, message_id: str, digest: str) -> str | None:
        entry = next((c for c in self.manifest.chunks if c.key == key), None) if self.manifest else None
        if entry is None:
            return f"chunk {key} ({message_id}) is not in the manifest"
        if entry.message_id != message_id:
            return f"chunk {key} has id {message_id}; the manifest names {entry.message_id}"
        if entry.payload_sha256 != digest:
            return (
                f"chunk {key} ({message_id}) has payload digest {digest} but the manifest "
                f"says {entry.payload_sha256}: altered, or not this message's chunk; refused"
            )
        return None

    def add(self, envelope: Envelope) -> bool:
        """Take one chunk or manifest envelope; False for a duplicate."""
        if envelope.schema_.name == ChunkManifest.SCHEMA:
            manifest = ChunkManifest.from_envelope(envelope)
            self._check_origin(envelope, manifest.of_schema, manifest.parent_message_id)
            if self.manifest is not None:
                if manifest != self.manifest:
                    raise ChunkMismatch(f"manifest {envelope.message_id} differs from the one received")
                return False
            self.manifest, self.manifest_envelope = manifest, envelope
            problems = {k: self._entry_problem(k, mid, d) for k, (mid, _, d) in self._chunks.items()}
            refused = {k: p for k, p in problems.items() if p is not None}
            for k in refused:
                del self._chunks[k]
            if refused:
                raise ChunkMismatch("; ".join(refused.values()))
            return True
        cls = PAYLOADS.get(envelope.schema_.name)
        if cls is None or not issubclass(cls, Chunkable):
            raise ChunkMismatch(f"{envelope.message_id}: {envelope.schema_.name} messages are not chunked")
        payload = cls.from_envelope(envelope)
        if payload.chunk is None:
            raise ChunkMismatch(f"{envelope.message_id} is a whole {envelope.schema_.name}, not a chunk")
        key = payload.chunk.key
        self._check_origin(envelope, envelope.schema_.name, payload.chunk.parent_message_id)
        digest = payload_sha256(envelope)
        if (held := self._chunks.get(key)) is not None:
            if held[2] != digest or held[0] != envelope.message_id:
                raise ChunkMismatch(f"chunk {key} ({envelope.message_id}) differs from the copy received")
            return False
        if self.manifest is not None and (problem := self._entry_problem(key, envelope.message_id, digest)):
            raise ChunkMismatch(problem)
        self._chunks[key] = (envelope.message_id, payload, digest)
        return True

    @property
    def missing(self) -> list[str]:
        """Keys of the chunks not received: the manifest's, or before it those the chunks' count implies."""
        if self.manifest is not None:
            return [c.key for c in self.manifest.chunks if c.key not in self._chunks]
        count = max((p.chunk.count for _, p, _ in self._chunks.values() if p.chunk), default=0)
        return [k for k in map(chunk_key, range(count)) if k not in self._chunks]

    @property
    def complete(self) -> bool:
        """The manifest and every chunk it names are here."""
        return self.manifest is not None and not self.missing

    def chunks(self) -> list[Chunkable]:
        """The chunks' payloads in manifest order, for a consumer that works chunk by chunk."""
        if self.manifest is None or self.missing:
            raise ValueError("the message is not whole yet")
        return [self._chunks[c.key][1] for c in self.manifest.chunks]

    def whole(self) -> Chunkable:
        """The whole message (chunk None), its assets in manifest order: (enterprise, asset id)."""
        if self.manifest is None or self.missing:
            what = "the manifest" if self.manifest is None else "chunks " + ", ".join(self.missing)
            raise ValueError(f"the message is not whole yet: {what} missing")
        parts = self.chunks()
        shared = {"assets", "chunk"}  # everything else is the park's and repeated in every chunk
        first = parts[0].model_dump(exclude=shared)
        if any(p.model_dump(exclude=shared) != first for p in parts[1:]):
            raise ChunkMismatch(f"{self.manifest.parent_message_id}: park-level fields differ between chunks")
        assets = [a for part in parts for a in part.assets]
        return parts[0].model_copy(update={"assets": assets, "chunk": None})

    def whole_envelope(self) -> Envelope:
        """The whole message as its producer would have sent it whole: the parent's id, the
        manifest's producer and time, no signature (every part was verified on its way in)."""
        whole = self.whole()
        manifest = self.manifest_envelope
        assert manifest is not None and self.manifest is not None  # whole() checked both
        return Envelope(
            schema=SchemaRef(name=whole.SCHEMA, version=whole.VERSION),
            message_id=self.manifest.parent_message_id,
            park_id=manifest.park_id,
            market_day=manifest.market_day,
            produced_at=manifest.produced_at,
            payload=whole.model_dump(mode="json"),
            producer=manifest.producer,
        )


def is_part(envelope: Envelope) -> bool:
    """A chunk or a manifest: one part of a message that travels in pieces."""
    return parent_of(envelope) is not None


def parts_of(envelope: Envelope) -> int:
    """How many parts (chunks and the manifest) the message of this chunk or manifest has."""
    if envelope.schema_.name == ChunkManifest.SCHEMA:
        return len(envelope.payload.get("chunks") or []) + 1
    return int((envelope.payload.get("chunk") or {}).get("count", 0)) + 1
