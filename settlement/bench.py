"""``parkvpp bench settlement``: a month of a 10,000-meter park settled, vectorised vs per row.

A synthetic park (``assets`` meters of PV, batteries and loads in 50 enterprises, Datong's
market and carbon settings) is settled day by day with the production
:func:`settlement.day.settle_day`: park lines, per-asset amounts, enterprise statements,
carbon attribution and ledger entries (not the database writes). Every enterprise is billed under a
synthetic TOU tariff (half by maximum demand, half by contracted capacity, profit-share terms),
and after the month 1 % of its intervals get a corrected meter reading (the grid meter and one
asset): each affected day is settled again as version 2 with its difference statement and
ledger reversal-and-repost entries, all inside the timed month. The naive approach runs
the same pipeline with the per-asset stage computed one asset-interval at a time in plain
Python, on a smaller park in the same run; both must produce identical statements.
A row is one asset-interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from infra.scenario import load_scenario
from infra.scenario.loader import parse_scenario
from infra.scenario.model import Scenario
from infra.timeutil import day_intervals
from settlement.assets import AssetAmounts, AssetBook
from settlement.baseline import Baseline
from settlement.day import DayResult, settle_day
from settlement.facts import MEASURED, DayFacts
from settlement.tariffs import Tariff, parse_tariff

N_ENTERPRISES = 50
CPU_SECONDS: dict[str, float] = {}  # process CPU time per timed stage (wall time suffers on a shared machine)
CORRECTED_FRACTION = 0.01  # share of the month's intervals that get a corrected meter reading
INTERVALS = 96
FIRST_DAY = date(2026, 7, 1)


def synthetic_scenario(n_assets: int, seed: int = 1) -> Scenario:
    """Datong's rules and carbon settings with ``n_assets`` generated assets."""
    base = load_scenario("datong")
    gen = np.random.default_rng(seed)
    raw = base.park.model_dump(mode="json")
    ents = [raw["enterprises"][0]] + [
        {
            "id": f"ent{i}",
            "name": f"Enterprise {i}",
            "sector": "industry",
            "source": "[assumption] benchmark",
            "contract": {
                "kind": "fixed_plus_share" if i % 2 else "tou_plus_share",
                "fixed_price_cny_per_mwh": 40.0 if i % 2 else 0.0,
                "share_fraction": 0.5,
            },
        }
        for i in range(1, N_ENTERPRISES)
    ]
    node = raw["grid"][0]["id"]
    assets = []
    for i in range(n_assets):
        ent = ents[int(gen.integers(0, len(ents)))]["id"]
        common = {
            "id": f"a{i}",
            "name": f"asset {i}",
            "enterprise": ent,
            "connection": node,
            "source": "[assumption] benchmark",
        }
        kind = gen.random()
        if kind < 0.1:
            assets.append(
                {
                    **common,
                    "type": "battery",
                    "power_mw": 2.0,
                    "energy_mwh": 4.0,
                    "charge_efficiency": 0.95,
                    "discharge_efficiency": 0.95,
                    "soc_min_fraction": 0.1,
                    "soc_max_fraction": 0.95,
                    "soc_initial_fraction": 0.5,
                    "degradation_cny_per_mwh": 40.0,
                }
            )
        elif kind < 0.3:
            assets.append(
                {
                    **common,
                    "type": "pv",
                    "capacity_mw": 2.0,
                    "kind": "rooftop",
                    "tilt_deg": 10,
                    "azimuth_deg": 180,
                    "system_loss_fraction": 0.14,
                }
            )
        else:
            assets.append(
                {
                    **common,
                    "type": "inflexible_load",
                    "peak_mw": 4.0,
                    "load_factor": 0.7,
                    "profile": "three_shift",
                    "weekend_factor": 0.9,
                    "holiday_factor": 0.8,
                }
            )
    raw.update(enterprises=ents, assets=assets, id="bench")
    return parse_scenario(raw, base.market, "bench")


def synthetic_day(scenario: Scenario, day: date, seed: int) -> tuple[DayFacts, Baseline]:
    gen = np.random.default_rng(seed)
    n = len(scenario.park.assets)
    starts = list(day_intervals(day, 15).to_pydatetime())
    t = len(starts)
    hours = np.arange(t) / 4.0
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    kinds = np.array([a.type for a in scenario.park.assets])
    energy = np.zeros((n, t))
    energy[kinds == "pv"] = 0.5 * sun * gen.uniform(0.7, 1.0, ((kinds == "pv").sum(), 1))
    loads = kinds == "inflexible_load"
    energy[loads] = -gen.uniform(0.4, 0.8, (loads.sum(), 1)) * (1 + 0.1 * np.sin(hours / 24 * 2 * np.pi))
    bats = kinds == "battery"
    energy[bats] = np.where(
        (hours >= 11) & (hours < 14), -0.4, np.where((hours >= 18) & (hours < 21), 0.36, 0.0)
    )
    baseline = energy + gen.normal(0, 0.02, energy.shape)
    dr = np.where((hours >= 18) & (hours < 20), 200.0, 0.0)
    energy[loads] += np.where(dr > 0, 0.05, 0.0)
    energy += gen.normal(0, 0.01, energy.shape)
    grid = energy.sum(axis=0) * 0.995
    p_da = 300 + 150 * np.sin((hours - 9) / 24 * 2 * np.pi) + gen.normal(0, 20, t)
    facts = DayFacts(
        park_id=scenario.id,
        day=day,
        interval_minutes=15,
        interval_starts=starts,
        q_da_mw=grid / 0.25 * (1 + gen.normal(0, 0.02, t)),
        p_da_cny_per_mwh=p_da,
        q_rt_mw=grid / 0.25,
        p_rt_cny_per_mwh=p_da + gen.normal(0, 30, t),
        regulation_mw=np.full(t, 100.0),
        regulation_price_cny_per_mw=np.full(t, 6.0),
        dr_mw=dr,
        dr_price_cny_per_mwh=np.full(t, 600.0),
        grid_mwh=grid,
        asset_ids=tuple(a.id for a in scenario.park.assets),
        metered_mwh=energy,
        quality=np.full(energy.shape, MEASURED, dtype=np.int8),
        mileage_mw=np.full(t, 50.0),
        k_inputs=(np.full(t, 0.9), np.full(t, 0.8), np.full(t, 0.85)),
        source_message_ids=("da", "rt", "metering"),
    )
    provenance = {"target": day.isoformat(), "n_days": 5, "sources": {}, "meters": []}
    return facts, Baseline(grid_mwh=baseline.sum(axis=0) * 0.995, assets_mwh=baseline, provenance=provenance)


def naive_asset_stage(
    book: AssetBook,
    energy_mwh: np.ndarray,
    baseline_mwh: np.ndarray,
    p_da: np.ndarray,
    dr_mw: np.ndarray,
    dr_net_cny: np.ndarray,
    regulation_cny: np.ndarray,
) -> AssetAmounts:
    """:func:`settlement.assets.settle_assets`, one asset-interval at a time in plain Python."""
    n_assets, n_intervals = energy_mwh.shape
    energy, baseline = energy_mwh.tolist(), baseline_mwh.tolist()
    prices, dr, dr_net, regulation = (
        p_da.tolist(),
        dr_mw.tolist(),
        dr_net_cny.tolist(),
        regulation_cny.tolist(),
    )
    mean_price = float(p_da.mean())
    weight_total = float(book.regulation_weight.sum())
    delivered = [[0.0] * n_intervals for _ in range(n_assets)]
    totals = [0.0] * n_intervals
    for a in range(n_assets):
        for t in range(n_intervals):
            direction = (dr[t] > 0) - (dr[t] < 0)
            value = direction * (energy[a][t] - baseline[a][t])
            value = 0.0 if value != value or value < 0 else value
            delivered[a][t] = value
            totals[t] += value
    supply = [[0] * n_intervals for _ in range(n_assets)]
    flex = [[0] * n_intervals for _ in range(n_assets)]
    wear = [[0] * n_intervals for _ in range(n_assets)]
    for a in range(n_assets):
        e = int(book.enterprise_of[a])
        internal, flat = bool(book.contracted[e]), bool(book.flat_price[e])
        fee, share = float(book.fee_cny_per_mwh[e]), float(book.share_fraction[e])
        degradation = float(book.degradation_cny_per_mwh[a])
        reg_share = float(book.regulation_weight[a]) / weight_total if weight_total > 0 else 0.0
        for t in range(n_intervals):
            x = energy[a][t]
            wear[a][t] = -round(max(x, 0.0) * degradation * 100)
            if internal:
                supply[a][t] = round(x * (mean_price if flat else prices[t]) * 100)
                attributed = (delivered[a][t] / totals[t] if totals[t] > 0 else 0.0) * dr_net[
                    t
                ] + reg_share * regulation[t]
                flex[a][t] = round((fee * delivered[a][t] + share * attributed) * 100)
    return AssetAmounts(
        energy_supply_fen=np.array(supply, dtype=np.int64),
        flexibility_fen=np.array(flex, dtype=np.int64),
        degradation_fen=np.array(wear, dtype=np.int64),
        delivered_mwh=np.array(delivered),
    )


class _Timed:
    """Wraps an asset stage and adds up the time spent in it."""

    def __init__(self, stage: Any) -> None:
        self.stage, self.seconds = stage, 0.0

    def __call__(self, *args: Any) -> AssetAmounts:
        start = time.perf_counter()
        try:
            return self.stage(*args)
        finally:
            self.seconds += time.perf_counter() - start


def synthetic_tariff(scenario: Scenario) -> Tariff:
    """A Shanxi-like TOU tariff: valley 23-07, peak 08-11 and 17-23, flat otherwise."""
    enterprises = {
        e.id: {
            "charge_basis": "demand" if i % 2 else "capacity",
            "contracted_kva": 2000.0,
            "share_fraction": 0.6,
        }
        for i, e in enumerate(scenario.park.enterprises)
        if e.contract is not None
    }
    return parse_tariff(
        {
            "park": scenario.id,
            "version": "bench",
            "effective_from": "2026-01-01",
            "seasons": [
                {
                    "months": list(range(1, 13)),
                    "periods": [
                        {"name": "valley", "hours": [[0, 7], [23, 24]], "price_cny_per_mwh": 230},
                        {"name": "flat", "hours": [[7, 8], [11, 17]], "price_cny_per_mwh": 480},
                        {"name": "peak", "hours": [[8, 11], [17, 23]], "price_cny_per_mwh": 760},
                    ],
                }
            ],
            "capacity_charge_cny_per_kva_month": 28,
            "demand_charge_cny_per_kw_month": 42,
            "enterprises": enterprises,
        }
    )


def _settle_days(
    scenario: Scenario,
    days: int,
    stage: _Timed,
    progress: Callable[[str], None],
    label: str,
    tariff: Tariff | None = None,
) -> tuple[float, list[DayResult], list[tuple[DayFacts, Baseline]]]:
    seconds, results, inputs = 0.0, [], []
    for i in range(days):
        facts, baseline = synthetic_day(scenario, FIRST_DAY + timedelta(days=i), seed=i)
        start, cpu = time.perf_counter(), time.process_time()
        results.append(settle_day(scenario, facts, baseline, asset_stage=stage, tariff=tariff))
        seconds += time.perf_counter() - start
        CPU_SECONDS[label] = CPU_SECONDS.get(label, 0.0) + time.process_time() - cpu
        inputs.append((facts, baseline))
        if (i + 1) % 5 == 0 or i + 1 == days:
            progress(f"{label}: {i + 1}/{days} days settled ({seconds:.1f} s)")
    return seconds, results, inputs


def _corrections(
    scenario: Scenario,
    results: list[DayResult],
    inputs: list[tuple[DayFacts, Baseline]],
    tariff: Tariff,
    fraction: float,
    progress: Callable[[str], None],
) -> tuple[float, int, int, int]:
    """Correct ``fraction`` of the month's intervals and settle each affected day again (version 2)."""
    from settlement.versions import Snapshot, _identity, _net, difference, reversal_and_repost

    gen = np.random.default_rng(99)
    days = len(results)
    picked = gen.choice(days * INTERVALS, size=max(1, round(fraction * days * INTERVALS)), replace=False)
    by_day: dict[int, list[int]] = {}
    for k in picked.tolist():
        by_day.setdefault(k // INTERVALS, []).append(k % INTERVALS)
    seconds, entries = 0.0, 0
    for d, intervals in sorted(by_day.items()):
        facts, baseline = inputs[d]
        old = results[d]
        start, cpu = time.perf_counter(), time.process_time()
        grid = facts.grid_mwh.copy()
        metered = facts.metered_mwh.copy()
        row = int(gen.integers(0, metered.shape[0]))
        for t in intervals:
            grid[t] -= 0.5
            metered[row, t] = metered[row, t] * 0.9 if np.isfinite(metered[row, t]) else metered[row, t]
        corrected = replace(facts, grid_mwh=grid, metered_mwh=metered)
        new = settle_day(scenario, corrected, baseline, tariff=tariff)
        snap = Snapshot(1, old.statements, list(old.asset_ids), old.asset_amounts_fen, old.record, [])
        old_postings = [p for dr in old.drafts for p in dr.postings]
        difference(snap, new, old_postings, 2, "bench correction")
        nets = {_identity(dr.kind, dr.account_id, dr.key): _net(list(dr.postings)) for dr in old.drafts}
        entries += len(reversal_and_repost(nets, new.drafts, 2, "bench correction"))
        seconds += time.perf_counter() - start
        CPU_SECONDS["corrections"] = CPU_SECONDS.get("corrections", 0.0) + time.process_time() - cpu
    progress(f"corrections: {len(picked)} intervals on {len(by_day)} days settled again ({seconds:.1f} s)")
    return seconds, len(picked), len(by_day), entries


def run_bench(
    assets: int = 10_000,
    days: int = 30,
    naive_assets: int = 1_000,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Settle ``assets`` x 96 x ``days`` vectorised, and one day of ``naive_assets`` per row."""
    from settlement.assets import settle_assets

    progress(f"building a synthetic park of {assets} assets in {N_ENTERPRISES} enterprises")
    big = synthetic_scenario(assets)
    CPU_SECONDS.clear()
    tariff = synthetic_tariff(big)
    vector_stage = _Timed(settle_assets)
    month_s, results, inputs = _settle_days(big, days, vector_stage, progress, "vectorised", tariff)
    correction_s, corrected_intervals, corrected_days, reposts = _corrections(
        big, results, inputs, tariff, CORRECTED_FRACTION, progress
    )
    vector_s = month_s + correction_s
    cpu_s = CPU_SECONDS.get("vectorised", 0.0) + CPU_SECONDS.get("corrections", 0.0)
    small = synthetic_scenario(naive_assets, seed=2)
    small_tariff = synthetic_tariff(small)
    naive_stage = _Timed(naive_asset_stage)
    naive_s, naive, _ = _settle_days(small, 1, naive_stage, progress, "naive (per row)", small_tariff)
    _, check, _ = _settle_days(small, 1, _Timed(settle_assets), lambda _m: None, "check", small_tariff)
    same = [a.model_dump() for a in naive[0].statements] == [b.model_dump() for b in check[0].statements]
    rows = assets * INTERVALS * days
    naive_rows = naive_assets * INTERVALS
    vector_rate, naive_rate = rows / vector_s, naive_rows / naive_s
    stage_vector_rate = rows / vector_stage.seconds
    stage_naive_rate = naive_rows / naive_stage.seconds
    return {
        "assets": assets,
        "intervals_per_day": INTERVALS,
        "days": days,
        "rows": rows,
        "vectorised_seconds": round(vector_s, 3),
        "vectorised_cpu_seconds": round(cpu_s, 3),
        "month_settlement_seconds": round(month_s, 3),
        "tariff": "TOU + capacity/demand charges + profit share",
        "corrected_interval_fraction": CORRECTED_FRACTION,
        "corrected_intervals": corrected_intervals,
        "corrected_days": corrected_days,
        "correction_seconds": round(correction_s, 3),
        "correction_ledger_entries": reposts,
        "vectorised_rows_per_s": round(vector_rate),
        "naive_assets": naive_assets,
        "naive_rows": naive_rows,
        "naive_seconds": round(naive_s, 3),
        "naive_rows_per_s": round(naive_rate),
        "naive_month_estimate_seconds": round(rows / naive_rate, 1),
        "speedup": round(vector_rate / naive_rate, 1),
        "asset_stage_vectorised_rows_per_s": round(stage_vector_rate),
        "asset_stage_naive_rows_per_s": round(stage_naive_rate),
        "asset_stage_speedup": round(stage_vector_rate / stage_naive_rate, 1),
        "identical_statements": same,
        "month_under_60_s": vector_s < 60.0,
    }
