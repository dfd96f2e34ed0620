"""``parkvpp bench scale --devices N``: one market day of a generated park, stage by stage.

Stages and what runs them (all production code unless marked):

* registry: the generated park (:mod:`gateway.scale.park`) entered and read back as the day's portfolio;
* history: each device's past week into the time-series store (benchmark data, :mod:`gateway.scale.history`);
* forecast: device baselines by cluster (one enterprise's interruptible loads; site load, PV,
  price) with the forecast service's model, as parallel Ray tasks;
* offer: the aggregator's day-ahead offer (pooled into virtual devices above
  ``aggregator.scale.POOL_ABOVE_ASSETS`` assets);
* bid and clear: the province's bid rules and the exchange simulator (Datong's market day, in a
  bidding space widened for a park larger than its spare supply: :mod:`gateway.scale.market`);
* disaggregate: the award split back into set-points for every device;
* dispatch: the set-points as chunks of at most ``PARKVPP_MESSAGE_CHUNK_BYTES`` with a manifest
  on the partitioned ``vpp.dispatch`` topic, read back by two consumers in one group;
* delivery + metering: every chunk played out (simulator) and its readings written to the
  store, as parallel Ray tasks;
* metering: the day's metering as chunks on the partitioned ``vpp.metering`` topic, read by two
  consumers in one group and assembled by its manifest;
* settlement: the park-day settled from the award and the assembled metering, every meter's
  baseline in blocks of assets by enterprise as parallel Ray tasks (:mod:`settlement.park_baseline`).

The parallel stages (forecast, delivery + metering, settlement) run twice in the same process, with one
worker (in-process) and with ``workers`` Ray workers, and must give identical results; their
ratio is the Ray speed-up. Peak memory is the largest resident set of this process and its
children (Ray) sampled every 0.2 s, or less often when a sample itself is slow (a tenth of a
core at most). Progress goes to stderr.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

from aggregator.dispatch import disaggregate
from aggregator.inputs import required_series
from aggregator.offer import build_offer
from bidding.rules import make_bid
from gateway.scale.history import device_frame, store_history
from gateway.scale.market import market_scale, widened
from gateway.scale.measure import Stages, digest, peak_memory, say, settled_digest, timed_both
from gateway.scale.park import generated_park
from gateway.scale.stages import Cluster, DeliveryShared, ForecastShared, deliver_chunk, forecast_cluster
from infra.chunks import Assembly, chunk_envelopes
from infra.contracts import Award, Dispatch, Envelope, ForecastSet, Metering, Topic
from infra.db import make_engine
from infra.db.migrate import migrate
from infra.embedded import local_services
from infra.kafka import GroupMember, ensure_topics, make_producer, publish_all, topic_partitions
from infra.parallel import map_chunks
from infra.ray import ensure_ray
from infra.registry import portfolio
from infra.registry.portfolio import register
from infra.scenario import Scenario, load_scenario
from infra.settings import get_settings
from infra.timeutil import day_intervals, day_start
from settlement.facts import read_fact
from settlement.settle import settle_facts
from sim.exchange import clear_day_ahead, real_time_results

CONSUMERS = 2  # dispatch consumers in one group


def _clusters(scenario: Scenario, needed: dict[str, float | None]) -> list[Cluster]:
    """One cluster per enterprise's device baselines; the site series and the price alone."""
    by_enterprise: dict[str, list[str]] = {}
    singles = []
    enterprise = {a.id: a.enterprise for a in scenario.park.assets}
    for sid in needed:
        owner = sid.split(".")[0]
        if owner.startswith("il"):
            by_enterprise.setdefault(enterprise[owner], []).append(sid)
        else:
            singles.append(sid)
    clusters = [Cluster(e, tuple(s), tuple(needed[x] for x in s)) for e, s in sorted(by_enterprise.items())]
    return clusters + [Cluster(s.split(".")[0], (s,), (needed[s],)) for s in singles]


def _assembled(shares: list[list[Envelope]], what: str) -> Assembly:
    """The group members' messages put together (each envelope dropped once read); every chunk
    the manifest names must be there."""
    assembly = Assembly()
    for share in shares:
        while share:
            assembly.add(share.pop())
    if not assembly.complete:
        raise RuntimeError(f"{what} chunks missing after the group read them: {assembly.missing}")
    return assembly


def _through_group(bootstrap: str, topic: str, envelopes: list[Envelope], group: str) -> list[list[Envelope]]:
    """Publish ``envelopes`` once :data:`CONSUMERS` members of one group hold every partition
    between them; returns what each member received (they share the chunks; a message
    redelivered after a rebalance shows twice). The list is emptied once published: the members
    hold their own copies."""
    members = [GroupMember(bootstrap, group, [topic]) for _ in range(CONSUMERS)]
    for m in members:
        m.start()
    try:
        partitions = topic_partitions(topic)
        _until(
            lambda: sum(len(m.assigned) for m in members) == partitions and all(m.assigned for m in members),
            members,
            f"{topic}: {CONSUMERS} group members assigned",
        )
        producer = make_producer(bootstrap)
        try:
            publish_all(producer, topic, envelopes)
        finally:
            producer.close()
        expected = {e.message_id for e in envelopes}
        envelopes.clear()
        _until(
            lambda: {e.message_id for m in members for _, e in m.received} >= expected,
            members,
            f"{topic}: {len(expected)} messages received",
            timeout_s=max(120.0, 0.5 * len(expected)),  # 2,000 chunks of a million devices take minutes
        )
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(15)
    return [[env for _, env in m.received] for m in members]


def _until(
    condition: Callable[[], bool], members: list[GroupMember], what: str, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        errors = [m.error for m in members if m.error]
        if errors:
            raise RuntimeError(f"{what}: {errors[0]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.1)


def run(devices: int = 100_000, workers: int = 2, sequential: bool = True) -> dict[str, Any]:
    settings = get_settings()
    url = settings.resolved_database_url
    day = settings.default_day
    say(f"bench scale: {devices:,} heterogeneous devices, market day {day}, database {url.split('@')[-1]}")
    migrate(url)
    engine = make_engine(url)
    datong = load_scenario("datong")
    figures: dict[str, Any] = {"devices": devices, "market_day": day.isoformat(), "ray_workers": workers}
    speedups: dict[str, float | None] = {}
    sizes: dict[str, int] = {}
    with peak_memory() as peak, local_services(settings, redis=False) as endpoints:
        stages = Stages(peak, sequential)
        bootstrap = endpoints.kafka_bootstrap
        ensure_topics(bootstrap)
        if workers > 1:
            ensure_ray()  # started before the clock runs: the stages measure work, not start-up

        def registry() -> Scenario:
            raw = generated_park(devices)
            register(engine, raw["id"], raw, "bench-scale")
            return portfolio(engine, raw["id"], day)

        scenario = stages.run("registry", registry)
        park = scenario.id
        frame = device_frame(scenario, datong, day)
        figures["history_values"] = stages.run("history", lambda: store_history(engine, scenario, frame, day))

        needed = required_series(scenario)
        clusters = _clusters(scenario, needed)
        figures["forecast_clusters"] = len(clusters)
        job = ForecastShared(url, park, day)
        results, speedups["forecast"] = timed_both(
            stages, "forecast", lambda w: map_chunks(forecast_cluster, clusters, w, job), workers, digest
        )
        issued = day_start(day) - timedelta(hours=14)
        forecast = ForecastSet(
            interval_minutes=15,
            interval_starts=[ts.to_pydatetime() for ts in day_intervals(day, 15)],
            horizon="day_ahead",
            issued_at=issued,
            data_cutoff=issued,
            series=[s for r in results for s in r],
        )
        offer = stages.run(
            "offer", lambda: build_offer(scenario, forecast, forecast_message_id="bench-scale")
        )
        figures["virtual_devices"] = sum(fs.fleet.n for fs in offer.solution.fleets if fs.fleet.flexible)
        # What the pooled offer leaves uncovered after its holds (aggregator/holds.py).
        figures["offer_solves"] = offer.solution.info.solves  # 1 + rounds of raised holds
        figures["offer_intervals_at_risk"] = len(offer.at_risk)
        figures["offer_energy_at_risk_max_mwh"] = max(
            (r.shortfall_mwh for r in offer.energy_at_risk), default=0.0
        )
        bid = stages.run("bid", lambda: make_bid(offer.offer, "bench-scale-offer", scenario.market))
        scale = market_scale(datong, bid.energy, day)
        market = widened(datong, scale)
        figures["market_scale"] = round(scale, 3)
        if figures["market_scale"] > 1:
            say(
                f"the park buys or sells more than Shanxi's simulated bidding space has to spare: it clears in "
                f"one widened {figures['market_scale']}x (gateway/scale/market.py)"
            )
        award: Award = stages.run("clear", lambda: clear_day_ahead(bid, "bench-scale-bid", market, day))
        result = stages.run(
            "disaggregate",
            lambda: disaggregate(scenario, forecast, award, award_message_id="bench-scale-award"),
        )
        dispatch = result.dispatch
        figures["dispatch_max_deviation_mw"] = round(float(np.max(np.abs(dispatch.deviation_mw))), 4)
        figures["award_max_mw"] = round(float(np.max(np.abs(award.cleared_mw))), 4)
        figures["dispatch_notes"] = dispatch.notes[:6]
        figures["setpoint_check_problems"] = len(result.problems)
        figures["setpoint_check_examples"] = result.problems[:3]
        sizes["dispatch_whole_bytes"] = len(dispatch.model_dump_json())  # the envelope adds under 1 KiB
        # The dispatch stage holds the only reference to the whole dispatch and lets it go once
        # chunked; nothing later reads the forecast, offer or solution of every device.
        pending_dispatch = [dispatch]
        result = dispatch = offer = forecast = results = None  # type: ignore[assignment]

        def send_dispatch() -> list[Dispatch]:
            envelopes = chunk_envelopes(pending_dispatch.pop(), park, day, "day_ahead")
            sizes["dispatch_chunks"] = len(envelopes) - 1
            sizes["dispatch_largest_message_bytes"] = max(len(e.to_json().encode()) for e in envelopes)
            shares = _through_group(bootstrap, Topic.DISPATCH, envelopes, f"bench-scale-delivery-{park}")
            figures["dispatch_consumer_shares"] = [len(s) for s in shares]
            return _assembled(shares, "dispatch").chunks()  # type: ignore[return-value]

        chunks = stages.run("dispatch", send_dispatch)
        truth = {
            sid.split(".")[0]: (-frame[sid] if sid.endswith("load_mw") else frame[sid]).iloc[-96:].tolist()
            for sid in frame.columns
            if sid.startswith(("site_load", "site_pv"))
        }
        shared = DeliveryShared(
            url,
            park,
            day,
            scenario.park.simulation.seed,
            truth,
            scenario.park.simulation.delivery_deviation_fraction,
        )
        delivered, speedups["delivery_metering"] = timed_both(
            stages,
            "delivery_metering",
            lambda w: map_chunks(deliver_chunk, chunks, w, shared),
            workers,
            digest,
        )
        chunks = frame = None  # type: ignore[assignment]
        figures["metered_values"] = sum(n for _, n in delivered)
        parts = [m for m, _ in delivered]
        del delivered

        def send_metering(parts: list[Metering]) -> Envelope:
            """The park's metering (the chunks' readings, the park meter as their sum) as chunks
            through a group of settlement consumers, assembled by the manifest."""
            whole = Metering(
                interval_minutes=parts[0].interval_minutes,
                interval_starts=parts[0].interval_starts,
                source=parts[0].source,
                grid_energy_mwh=np.sum([m.grid_energy_mwh for m in parts], axis=0).round(6).tolist(),
                assets=[a for m in parts for a in m.assets],
            )
            envelopes = chunk_envelopes(whole, park, day, "day")
            del whole
            sizes["metering_chunks"] = len(envelopes) - 1
            sizes["metering_largest_message_bytes"] = max(len(e.to_json().encode()) for e in envelopes)
            shares = _through_group(bootstrap, Topic.METERING, envelopes, f"bench-scale-settlement-{park}")
            figures["metering_consumer_shares"] = [len(s) for s in shares]
            return _assembled(shares, "metering").whole_envelope()

        metering = stages.run("metering", functools.partial(send_metering, parts))
        del parts

        rt = real_time_results(award, market, day)
        facts = {
            f.kind: f
            for f in (
                read_fact(award.envelope(park, day, "day_ahead")),
                read_fact(rt.envelope(park, day, "real_time")),
                read_fact(metering),  # as a settlement consumer reads the assembled message
            )
        }
        metering = None  # type: ignore[assignment]

        def settle(w: int) -> Any:
            with engine.connect() as conn:
                return settle_facts(conn, scenario, facts, workers=w)

        settled, speedups["settlement"] = timed_both(stages, "settlement", settle, workers, settled_digest)
        figures["settlement_statements"] = len(settled.statements)
    figures["stage_seconds"] = stages.seconds
    figures["stage_peak_memory_gib"] = stages.peak_gib
    figures["market_day_seconds"] = round(sum(stages.seconds.values()), 1)
    figures["ray_speedup"] = speedups
    figures["peak_memory_gib"] = round(peak["gib"], 2)
    figures["peak_rss_sum_gib"] = round(peak["rss_gib"], 2)
    figures.update(sizes)
    figures["largest_message_bytes"] = max(
        sizes["dispatch_largest_message_bytes"], sizes["metering_largest_message_bytes"]
    )
    return figures


def summary(f: dict[str, Any]) -> str:
    """The figures as a few lines for a terminal."""
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in f["stage_seconds"].items())
    speedups = ", ".join(
        f"{name} {ratio}x" if ratio is not None else f"{name} not measured (--no-sequential)"
        for name, ratio in f["ray_speedup"].items()
    )
    return "\n".join(
        [
            f"market day for {f['devices']:,} devices ({f['virtual_devices']} virtual in the offer): "
            f"{f['market_day_seconds']} s, peak memory {f['peak_memory_gib']} GiB (PSS; resident sets summed "
            f"{f['peak_rss_sum_gib']} GiB)",
            f"stages: {stages}",
            f"pooled offer ({f['offer_solves']} solves with its holds) leaves uncovered: forecast "
            f"headroom in {f['offer_intervals_at_risk']} interval-directions, window energy up to "
            f"{f['offer_energy_at_risk_max_mwh']} MWh",
            f"cleared in Shanxi's bidding space widened {f['market_scale']:.2f}x; dispatch short of or above "
            f"the award by at most {f['dispatch_max_deviation_mw']} MW (award up to {f['award_max_mw']} MW)",
            f"Ray speed-up with {f['ray_workers']} workers over one: {speedups}",
            f"largest message {f['largest_message_bytes'] / 1024:.0f} KiB; the whole dispatch would be "
            f"{f['dispatch_whole_bytes'] / 2**20:.1f} MiB, sent as {f['dispatch_chunks']} chunks "
            f"shared by the group's consumers {f['dispatch_consumer_shares']}; metering as "
            f"{f['metering_chunks']} chunks shared {f['metering_consumer_shares']}",
        ]
    )
