"""Chunked dispatch and metering (infra/chunks.py): pure logic, no servers.

A 20,000-asset dispatch is ~16 MB of JSON; it must travel as chunks whose envelopes stay
under 512 KiB even once signed, and come back whole, from any order, refusing altered chunks.
A message that fits must be exactly what it was before chunks existed (same id and digest).
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from infra.chunks import (
    Assembly,
    ChunkMismatch,
    chunk_envelopes,
    parent_of,
    partition_key,
    payload_sha256,
    split,
)
from infra.contracts import (
    PAYLOADS,
    AssetMetering,
    AssetSetpoints,
    ChunkManifest,
    Dispatch,
    Envelope,
    Metering,
    RegulationPerformance,
    Topic,
    message_id,
)
from infra.db.outbox import payload_digest
from infra.settings import Settings, SettingsError
from infra.signing import producing_as, sign, verification_problem
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)
PARK = "datong"
KIB = 1024
STARTS = list(day_intervals(DAY, 15))


def big_dispatch(n_assets: int = 20_000, per_enterprise: int = 37, seed: int = 7) -> Dispatch:
    """Realistic set-points (four decimals, like 0.1234), curtailment caps on every fifth asset,
    assets already in (enterprise, asset id) order as split orders them."""
    rnd = random.Random(seed)
    assets = [
        AssetSetpoints(
            asset_id=f"asset{i:06d}",
            enterprise_id=f"ent{i // per_enterprise:04d}",
            power_mw=[round(rnd.uniform(-4.0, 6.0), 4) for _ in range(96)],
            cap_mw=[round(rnd.uniform(0.0, 6.0), 4) for _ in range(96)] if i % 5 == 0 else [],
        )
        for i in range(n_assets)
    ]
    return Dispatch(
        interval_minutes=15,
        interval_starts=STARTS,
        award_message_id="award-big",
        assets=assets,
        deviation_mw=[round(rnd.uniform(-1, 1), 4) for _ in range(96)],
        regulation_mw=[2.5] * 96,
        notes=["big park", "scaled"],
    )


def small_messages() -> tuple[Dispatch, Metering]:
    """The same small facts whose id and digest were recorded before chunks existed."""
    d = Dispatch(
        interval_minutes=15,
        interval_starts=STARTS,
        award_message_id="award-1",
        assets=[
            AssetSetpoints(
                asset_id=f"pv{i}",
                enterprise_id=f"ent{i % 2}",
                power_mw=[round(0.1234 * i + k / 1000, 4) for k in range(96)],
                cap_mw=[None] * 96 if i else [],
            )
            for i in range(3)
        ],
        deviation_mw=[0.0125] * 96,
        regulation_mw=[1.5] * 96,
        notes=["small"],
    )
    m = Metering(
        interval_minutes=15,
        interval_starts=STARTS,
        source="meters",
        grid_energy_mwh=[0.25] * 96,
        assets=[
            AssetMetering(
                asset_id=f"pv{i}",
                enterprise_id="ent0",
                energy_mwh=[None if k == 5 else round(0.031 * k, 4) for k in range(96)],
            )
            for i in range(2)
        ],
    )
    return d, m


@pytest.fixture(scope="module")
def big() -> tuple[Dispatch, list[Envelope]]:
    dispatch = big_dispatch()
    return dispatch, chunk_envelopes(dispatch, PARK, DAY, "day_ahead", max_bytes=512 * KIB)


def test_a_large_dispatch_travels_in_chunks_under_the_limit_and_comes_back_whole(
    big: tuple[Dispatch, list[Envelope]],
) -> None:
    dispatch, envelopes = big
    *chunks, manifest_env = envelopes
    assert len(dispatch.model_dump_json()) > 10 * 1024 * KIB  # far over 1 MiB whole
    assert len(chunks) > 1
    with producing_as("aggregator"):
        signed = [sign(env) for env in envelopes]
    for env in signed:  # as the outbox stores and publishes them
        assert len(env.to_json().encode()) <= 512 * KIB, env.message_id
        assert verification_problem(env) is None
    manifest = ChunkManifest.from_envelope(manifest_env)
    assert manifest.of_schema == "dispatch" and manifest.topic == Topic.DISPATCH
    assert manifest.parent_key == "day_ahead"
    assert manifest.parent_message_id == message_id("dispatch", PARK, DAY, "day_ahead")
    assert manifest.total_assets == 20_000 == sum(c.assets for c in manifest.chunks)
    assert [c.message_id for c in manifest.chunks] == [env.message_id for env in chunks]
    assert [c.payload_sha256 for c in manifest.chunks] == [payload_digest(env) for env in chunks]
    assert manifest_env.message_id == message_id("chunk_manifest", PARK, DAY, "dispatch", "day_ahead")
    for n, env in enumerate(chunks):
        part = Dispatch.from_envelope(env)
        assert part.chunk is not None and part.chunk.index == n and part.chunk.count == len(chunks)
        assert env.message_id == message_id("dispatch", PARK, DAY, "day_ahead", part.chunk.key)
        # park-level arrays travel in every chunk
        assert part.deviation_mw == dispatch.deviation_mw and part.notes == dispatch.notes
        assert part.regulation_mw == dispatch.regulation_mw
    # every enterprise (37 assets) fits a chunk, so each is in exactly one
    seen = [e for c in manifest.chunks for e in c.enterprises]
    assert len(seen) == len(set(seen)) == len({a.enterprise_id for a in dispatch.assets})
    assembly = Assembly()
    for env in envelopes:
        assert assembly.add(env) is True
    assert assembly.complete and assembly.missing == []
    whole = assembly.whole()
    assert whole.chunk is None
    assert whole.model_dump() == dispatch.model_dump()
    assert whole.model_dump_json() == dispatch.model_dump_json()


def test_ids_are_deterministic(big: tuple[Dispatch, list[Envelope]]) -> None:
    dispatch, envelopes = big
    again = chunk_envelopes(dispatch, PARK, DAY, "day_ahead", max_bytes=512 * KIB)
    assert [e.message_id for e in again] == [e.message_id for e in envelopes]
    assert [payload_sha256(e) for e in again] == [payload_sha256(e) for e in envelopes]


def test_any_order_and_duplicates_assemble_the_same_message(big: tuple[Dispatch, list[Envelope]]) -> None:
    dispatch, envelopes = big
    shuffled = envelopes + envelopes[::3]
    random.Random(3).shuffle(shuffled)
    assembly = Assembly()
    added = [assembly.add(env) for env in shuffled]
    assert added.count(True) == len(envelopes)
    assert added.count(False) == len(envelopes[::3])
    assert assembly.complete
    assert assembly.whole().model_dump() == dispatch.model_dump()


def test_a_missing_chunk_is_listed_and_the_message_is_not_whole(
    big: tuple[Dispatch, list[Envelope]],
) -> None:
    _, envelopes = big
    *chunks, manifest = envelopes
    lost = Dispatch.from_envelope(chunks[2]).chunk
    assert lost is not None
    assembly = Assembly()
    for env in chunks[:2] + chunks[3:]:
        assembly.add(env)
    assert assembly.missing == [lost.key]  # known from the chunks' count before the manifest
    assert not assembly.complete
    assembly.add(manifest)
    assert assembly.missing == [lost.key] and not assembly.complete
    with pytest.raises(ValueError, match=f"chunks {lost.key} missing"):
        assembly.whole()
    assembly.add(chunks[2])
    assert assembly.complete


def _tampered(env: Envelope) -> Envelope:
    payload = dict(env.payload)
    assets = list(payload["assets"])
    first = dict(assets[0])
    first["power_mw"] = [*first["power_mw"][:-1], first["power_mw"][-1] + 1.0]
    assets[0] = first
    payload["assets"] = assets
    return env.model_copy(update={"payload": payload})


def test_a_tampered_chunk_is_refused(big: tuple[Dispatch, list[Envelope]]) -> None:
    dispatch, envelopes = big
    *chunks, manifest = envelopes
    bad = _tampered(chunks[1])
    key = Dispatch.from_envelope(chunks[1]).chunk.key  # type: ignore[union-attr]

    after = Assembly()
    after.add(manifest)
    with pytest.raises(ChunkMismatch, match=f"chunk {key} .* payload digest .* manifest says"):
        after.add(bad)
    assert after.missing == [c.key for c in ChunkManifest.from_envelope(manifest).chunks]

    before = Assembly()  # the altered chunk came first: the manifest exposes and drops it
    for env in [chunks[0], bad, *chunks[2:]]:
        before.add(env)
    with pytest.raises(ChunkMismatch, match=f"chunk {key} "):
        before.add(manifest)
    assert before.manifest is not None and before.missing == [key]
    before.add(chunks[1])
    assert before.whole().model_dump() == dispatch.model_dump()

    held = Assembly()  # a different copy of a chunk already held is refused too
    held.add(chunks[1])
    with pytest.raises(ChunkMismatch, match="differs from the copy received"):
        held.add(bad)


def test_chunks_of_another_message_are_refused(big: tuple[Dispatch, list[Envelope]]) -> None:
    dispatch, envelopes = big
    other = chunk_envelopes(dispatch, PARK, DAY, "intraday", max_bytes=512 * KIB)
    assert parent_of(other[0]) == parent_of(other[-1]) != parent_of(envelopes[0])
    assembly = Assembly()
    assembly.add(envelopes[0])
    with pytest.raises(ChunkMismatch, match="not of"):
        assembly.add(other[1])
    with pytest.raises(ChunkMismatch, match="not a chunk"):
        Assembly().add(small_messages()[0].envelope(PARK, DAY, "day_ahead"))


def test_small_messages_stay_one_unchanged_message() -> None:
    """Id and payload digest as recorded with the contracts before chunks existed."""
    dispatch, metering = small_messages()
    assert split(dispatch) == [dispatch]
    (d_env,) = chunk_envelopes(dispatch, PARK, DAY, "day_ahead")
    (m_env,) = chunk_envelopes(metering, PARK, DAY, "day")
    assert "chunk" not in d_env.payload and "chunk" not in m_env.payload
    assert '"chunk"' not in d_env.to_json()
    assert d_env.message_id == "5b87b5f1-1d45-5d89-8e7b-32f28b6b832a"
    assert payload_digest(d_env) == "c578ae0021a2ed6d32b768cf057eba93a369a47423344e7afcda943c16748346"
    assert m_env.message_id == "0eafe82e-09de-5ab9-9f63-d6b68dd326cf"
    assert payload_digest(m_env) == "0ef3e2deecd3c60a2df3f5edd7cb6281277c050299d02425275431b0d2ce0ecb"
    assert d_env.payload == dispatch.envelope(PARK, DAY, "day_ahead").payload
    assert Dispatch.from_envelope(d_env) == dispatch
    assert partition_key(d_env) == PARK.encode()


def test_metering_splits_with_park_level_fields_in_every_chunk() -> None:
    rnd = random.Random(11)
    assets = [
        AssetMetering(
            asset_id=f"m{i:05d}",
            enterprise_id=f"ent{i // 10:03d}",
            energy_mwh=[None if rnd.random() < 0.01 else round(rnd.uniform(-1, 1), 4) for _ in range(96)],
        )
        for i in range(600)
    ]
    regulation = RegulationPerformance(
        mileage_mw=[3.0] * 96, k1_ramp=[0.9] * 96, k2_delay=[0.8] * 96, k3_error=[0.95] * 96
    )
    metering = Metering(
        interval_minutes=15,
        interval_starts=STARTS,
        source="meters",
        grid_energy_mwh=[0.1234] * 96,
        assets=assets,
        regulation=regulation,
    )
    envelopes = chunk_envelopes(metering, PARK, DAY, "day", max_bytes=64 * KIB)
    *chunks, manifest = envelopes
    assert len(chunks) > 3 and all(len(e.to_json().encode()) <= 64 * KIB for e in envelopes)
    assert ChunkManifest.from_envelope(manifest).topic == Topic.METERING
    for env in chunks:
        part = Metering.from_envelope(env)
        assert part.grid_energy_mwh == metering.grid_energy_mwh and part.regulation == regulation
        assert partition_key(env) == f"{PARK}|{part.chunk.key}".encode()  # type: ignore[union-attr]
    assert partition_key(manifest) == PARK.encode()
    assembly = Assembly()
    for env in reversed(envelopes):
        assembly.add(env)
    assert assembly.whole().model_dump() == metering.model_dump()


def test_unsorted_assets_come_back_in_enterprise_then_asset_order() -> None:
    dispatch = big_dispatch(400, per_enterprise=9)
    shuffled = dispatch.model_copy(update={"assets": random.Random(5).sample(dispatch.assets, 400)})
    assembly = Assembly()
    for env in chunk_envelopes(shuffled, PARK, DAY, "day_ahead", max_bytes=32 * KIB):
        assembly.add(env)
    assert assembly.whole().model_dump() == dispatch.model_dump()


def test_an_enterprise_larger_than_a_chunk_spans_as_few_chunks_as_it_can() -> None:
    dispatch = big_dispatch(300, per_enterprise=10)
    giant = [a.model_copy(update={"enterprise_id": "ent0000"}) for a in dispatch.assets[:120]]
    dispatch = dispatch.model_copy(update={"assets": giant + dispatch.assets[120:]})
    parts = split(dispatch, max_bytes=32 * KIB)
    holding = [n for n, p in enumerate(parts) if any(a.enterprise_id == "ent0000" for a in p.assets)]
    assert holding == list(range(len(holding))) and len(holding) > 1  # consecutive, from the first
    others = {a.enterprise_id for a in dispatch.assets} - {"ent0000"}
    for e in others:  # every other enterprise fits a chunk and is in exactly one
        assert sum(any(a.enterprise_id == e for a in p.assets) for p in parts) == 1


def test_an_asset_larger_than_a_chunk_is_named() -> None:
    dispatch = big_dispatch(50)
    with pytest.raises(ValueError, match="asset asset000000 of enterprise ent0000"):
        split(dispatch, max_bytes=6 * KIB)


def test_the_manifest_is_a_registered_schema_and_the_settings_name_the_sizes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PAYLOADS["chunk_manifest"] is ChunkManifest
    assert Settings().message_chunk_bytes == 512 * KIB and Settings().kafka_partitions == 4
    monkeypatch.setenv("PARKVPP_MESSAGE_CHUNK_BYTES", str(48 * KIB))
    monkeypatch.setenv("PARKVPP_KAFKA_PARTITIONS", "8")
    settings = Settings.from_env()
    assert settings.message_chunk_bytes == 48 * KIB and settings.kafka_partitions == 8
    envelopes = chunk_envelopes(big_dispatch(200), PARK, DAY, "day_ahead")  # the setting is the default
    assert len(envelopes) > 2 and all(len(e.to_json().encode()) <= 48 * KIB for e in envelopes)
    monkeypatch.setenv("PARKVPP_KAFKA_PARTITIONS", "0")
    with pytest.raises(SettingsError, match="PARKVPP_KAFKA_PARTITIONS"):
        Settings.from_env()
