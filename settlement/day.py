"""Settle one park-day: pure, from the day's facts and baselines to statements and ledger entries.

Accounts: ``park`` is the park's settlement with the exchange and the grid (plus its storage
degradation and certificate trades); every enterprise gets a statement too. The operator
(the enterprise without revenue-sharing terms) holds the exchange lines and is the
counterparty of the internal ones (``energy_supply``, ``flexibility_payment``), so for
every line item and every interval the enterprise amounts sum exactly, in fen, to the
park's (to zero for internal items). See ``settlement/README.md`` for each line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np

from infra.contracts import Settlement, StatementLine
from infra.scenario.model import Scenario
from settlement import market
from settlement.assets import AssetAmounts, AssetBook, AssetStage, by_enterprise, fill_gaps, settle_assets
from settlement.baseline import Baseline
from settlement.carbon.attribution import GREEN_ASSET_TYPES, CarbonDay, attribute_day
from settlement.carbon.ledger import EntryDraft
from settlement.certificates import Certificates, plan_certificates
from settlement.facts import MEASURED, QUALITY_NAMES, DayFacts
from settlement.money import FEN_PER_CNY, allocate, fen_series, to_fen
from settlement.realtime import real_time_amounts
from settlement.tariffs import Tariff, days_in_month

METHOD_VERSION = "settlement-1"
PARK_ACCOUNT = "park"
PARK_ITEMS = (
    "mlt_energy",
    "day_ahead_energy",
    "real_time_energy",
    "deviation_charge",
    "regulation_mileage",
    "regulation_capacity",
    "demand_response",
    "demand_response_penalty",
    "grid_import_tariff",
    "storage_degradation",
    "green_certificate_sales",
    "green_certificate_purchases",
)
INTERNAL_ITEMS = ("energy_supply", "flexibility_payment")
ENTERPRISE_ITEMS = (*INTERNAL_ITEMS, "storage_degradation")
TARIFF_CHARGES = ("capacity_charge", "demand_charge")  # internal, only when a tariff applies
MARKET_ITEMS = (
    "mlt_energy",
    "day_ahead_energy",
    "real_time_energy",
    "deviation_charge",
    "grid_import_tariff",
)


@dataclass(frozen=True)
class GreenRecords:
    """Recorded green-power trades and certificate purchases of a day, allocated to intervals (MWh)."""

    traded_mwh: np.ndarray
    gec_mwh: np.ndarray
    gec_cost_cny: np.ndarray
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DayResult:
    park_id: str
    day: date
    rules_version: str
    statements: list[Settlement]
    drafts: list[EntryDraft]
    record: dict[str, Any]
    asset_ids: tuple[str, ...]
    asset_amounts_fen: dict[str, np.ndarray]  # item -> (assets, intervals) whole fen


def rules_version(scenario: Scenario) -> str:
    return f"{scenario.version}|{scenario.park.carbon.version}|{METHOD_VERSION}"


@dataclass(frozen=True)
class _Park:
    """Park-level quantities of the day (MWh per interval unless named otherwise)."""

    actual: np.ndarray
    imported: np.ndarray
    exported: np.ndarray
    green: np.ndarray
    fossil_total: float


def _park_quantities(scenario: Scenario, facts: DayFacts, energy: np.ndarray) -> _Park:
    types = np.array([a.type for a in scenario.park.assets])
    actual = facts.grid_mwh
    return _Park(
        actual=actual,
        imported=np.maximum(-actual, 0.0),
        exported=np.maximum(actual, 0.0),
        green=np.maximum(energy[np.isin(types, GREEN_ASSET_TYPES)], 0.0).sum(axis=0),
        fossil_total=float(np.maximum(energy[types == "gas_generator"], 0.0).sum()),
    )


def _exchange(
    scenario: Scenario,
    facts: DayFacts,
    park: _Park,
    baseline: Baseline,
    green: GreenRecords | None = None,
    plan_top_up: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, float | None], Certificates, dict[str, Any]]:
    rules, h = scenario.market, facts.hours
    contracts = market.contract_position(scenario.park, facts.interval_starts, h)
    cny = market.energy_amounts(
        contracts.q_mw,
        contracts.amount_cny,
        facts.q_da_mw,
        facts.p_da_cny_per_mwh,
        park.actual,
        facts.p_rt_cny_per_mwh,
        h,
    )
    cny["deviation_charge"] = market.deviation_charge(
        rules, park.actual, facts.q_rt_mw, facts.p_rt_cny_per_mwh, h, facts.dr_mw
    )
    excess = market.deviation_excess_mwh(rules, park.actual, facts.q_rt_mw, h, facts.dr_mw)
    real_time = None
    if facts.real_time is not None:  # real-time bids cleared: those intervals settle on the real-time grid
        rt = real_time_amounts(rules, facts.real_time, facts.q_da_mw, park.actual, facts.dr_mw)
        cny["real_time_energy"] = np.where(rt.covered, rt.real_time_energy_cny, cny["real_time_energy"])
        cny["deviation_charge"] = np.where(rt.covered, rt.deviation_charge_cny, cny["deviation_charge"])
        excess = np.where(rt.covered, rt.deviation_excess_mwh, excess)
        real_time = {
            "interval_minutes": facts.real_time.minutes,
            "bid_intervals": int(facts.real_time.bid_covered.sum()),
            "bid_awards": list(facts.real_time.bid_message_ids),
            "cleared_change_cny": rt.cleared_change_cny,
            "remaining_deviation_cny": rt.remaining_deviation_cny,
        }
    cny.update(
        market.regulation_amounts(
            rules, facts.regulation_mw, facts.regulation_price_cny_per_mw, facts.mileage_mw, facts.k_inputs, h
        )
    )
    delivered = market.dr_delivered_mwh(facts.dr_mw, park.actual, baseline.grid_mwh)
    cny.update(market.dr_amounts(rules, facts.dr_mw, facts.dr_price_cny_per_mwh, delivered, h))
    cny["grid_import_tariff"] = market.import_tariff(rules, park.actual)
    carbon = scenario.park.carbon
    cert = plan_certificates(
        park.green,
        park.imported,
        park.exported,
        contracts.green_mwh + (green.traded_mwh if green is not None else 0.0),
        park.fossil_total,
        carbon.clean_energy_share_target,
        top_up=plan_top_up,
        recorded_gec_mwh=None if green is None else green.gec_mwh,
    )
    cny["green_certificate_sales"] = cert.sold * carbon.green_certificate_price_cny
    # Recorded purchases at their recorded prices (pro rata to what could be cancelled);
    # planning top-ups at the scenario's certificate price.
    recorded_total = 0.0 if green is None else float(green.gec_mwh.sum())
    recorded_used = min(float(cert.bought.sum()), recorded_total)
    recorded_cost = (
        green.gec_cost_cny.sum() * (recorded_used / recorded_total)
        if green is not None and recorded_total
        else 0.0
    )
    top_up_mwh = float(cert.bought.sum()) - recorded_used
    bought_total = float(cert.bought.sum())
    cost_total = recorded_cost + top_up_mwh * carbon.green_certificate_price_cny
    cny["green_certificate_purchases"] = (
        -cert.bought * (cost_total / bought_total)
        if recorded_total > 0 and bought_total > 0
        else -cert.bought * carbon.green_certificate_price_cny
    )
    energy = {
        "mlt_energy": float(contracts.q_mw.sum() * h),
        "day_ahead_energy": float((facts.q_da_mw - contracts.q_mw).sum() * h),
        "real_time_energy": float((park.actual - facts.q_da_mw * h).sum()),
        "deviation_charge": float(excess.sum()),
        "regulation_mileage": None,
        "regulation_capacity": None,
        "demand_response": float(market.dr_paid_mwh(rules, facts.dr_mw, delivered, h).sum()),
        "demand_response_penalty": float(market.dr_shortfall_mwh(rules, facts.dr_mw, delivered, h).sum()),
        "grid_import_tariff": float(park.imported.sum()),
        "green_certificate_sales": float(cert.sold.sum()),
        "green_certificate_purchases": float(cert.bought.sum()),
    }
    series = {"q_mlt_mw": contracts.q_mw, "dr_delivered_mwh": delivered, "real_time": real_time}
    return cny, energy, cert, series


# The market (by kind in the market file) each park line settles; other lines (contracts, the
# grid tariff, certificates, storage wear, enterprises' supply) are not one market's.
LINE_MARKETS: dict[str, str] = {
    "day_ahead_energy": "day_ahead_energy",
    "real_time_energy": "real_time_energy",
    "deviation_charge": "real_time_energy",
    "regulation_mileage": "regulation",
    "regulation_capacity": "regulation",
    "demand_response": "demand_response",
    "demand_response_penalty": "demand_response",
}


def market_ids(scenario: Scenario, facts: DayFacts) -> dict[str, str]:
    """Market id per kind: the one the day's awards name, else the market file's market of that kind."""
    out = {}
    for kind in set(LINE_MARKETS.values()):
        known = facts.market_ids.get(kind)
        if known is None:
            try:
                known = scenario.market.market_for(kind)[0]  # type: ignore[arg-type]
            except KeyError:
                continue
        out[kind] = known
    return out


def _line(item: str, fen: np.ndarray, energy_mwh: float | None, ids: dict[str, str]) -> StatementLine:
    intervals, amount = fen_series(fen)
    return StatementLine(
        item=item,
        amount_cny=amount,
        energy_mwh=None if energy_mwh is None else round(energy_mwh, 6),
        interval_amount_cny=intervals,
        market_id=ids.get(LINE_MARKETS.get(item, "")),
    )


def _statement(
    scenario: Scenario,
    facts: DayFacts,
    account_id: str,
    lines: list[tuple[str, np.ndarray, float | None]],
    emissions_tco2: float,
    green_mwh: float,
) -> Settlement:
    carbon = scenario.park.carbon
    total = np.sum([fen for _, fen, _ in lines], axis=0).astype(np.int64)
    total_fen = int(total.sum())
    interval_totals, total_cny = fen_series(total)
    adjusted = (
        total_fen
        - int(to_fen(carbon.carbon_price_cny_per_tco2 * emissions_tco2))
        + int(to_fen(carbon.green_certificate_price_cny * green_mwh))
    )
    ids = market_ids(scenario, facts)
    return Settlement(
        interval_minutes=facts.interval_minutes,
        interval_starts=facts.interval_starts,
        account_id=account_id,
        rules_version=rules_version(scenario),
        market_id=ids.get("day_ahead_energy"),
        source_message_ids=list(facts.source_message_ids),
        lines=[_line(item, fen, e, ids) for item, fen, e in lines],
        interval_total_cny=interval_totals,
        total_cny=total_cny,
        emissions_tco2=round(emissions_tco2, 6),
        carbon_adjusted_revenue_cny=adjusted / FEN_PER_CNY,
    )


def _quality_notes(
    scenario: Scenario, facts: DayFacts, energy: np.ndarray, estimated: np.ndarray
) -> tuple[list[str], dict[str, Any]]:
    notes = []
    for i, a in enumerate(scenario.park.assets):
        codes = facts.quality[i][facts.quality[i] != MEASURED]
        if len(codes):
            kinds = ", ".join(
                f"{np.count_nonzero(codes == c)} {QUALITY_NAMES[c]}" for c in sorted(set(codes.tolist()))
            )
            notes.append(f"{a.id}: {len(codes)} of {facts.n} intervals estimated ({kinds})")
    magnitude = np.abs(energy)
    total = float(magnitude.sum())
    share = float(magnitude[~estimated].sum() / total) if total > 0 else 1.0
    ent_index = {e.id: i for i, e in enumerate(scenario.park.enterprises)}
    ent_of = np.array([ent_index[a.enterprise] for a in scenario.park.assets], dtype=np.int64)
    all_energy = np.bincount(ent_of, magnitude.sum(axis=1), minlength=len(ent_index))
    measured = np.bincount(ent_of, np.where(estimated, 0.0, magnitude).sum(axis=1), minlength=len(ent_index))
    per_enterprise = {
        e: round(float(measured[i] / all_energy[i]), 6) if all_energy[i] > 0 else 1.0
        for e, i in ent_index.items()
    }
    return notes, {"park": round(share, 6), **per_enterprise}


def _accounts(
    book: AssetBook,
    park_fen: dict[str, np.ndarray],
    park_energy: dict[str, float | None],
    amounts: AssetAmounts,
    energy: np.ndarray,
) -> dict[str, list[tuple[str, np.ndarray, float | None]]]:
    ent_fen = {item: by_enterprise(book, fen) for item, fen in amounts.items().items()}
    internal = book.contracted[book.enterprise_of]
    ent_energy = np.zeros(len(book.enterprise_ids))
    np.add.at(ent_energy, book.enterprise_of, np.where(internal, energy.sum(axis=1), 0.0))
    ent_delivered = np.zeros(len(book.enterprise_ids))
    np.add.at(ent_delivered, book.enterprise_of, amounts.delivered_mwh.sum(axis=1))
    ent_discharged = np.zeros(len(book.enterprise_ids))
    discharged = np.where(book.degradation_cny_per_mwh > 0, np.maximum(energy, 0).sum(axis=1), 0.0)
    np.add.at(ent_discharged, book.enterprise_of, discharged)
    others = np.arange(len(book.enterprise_ids)) != book.operator
    out: dict[str, list[tuple[str, np.ndarray, float | None]]] = {}
    for e, ent_id in enumerate(book.enterprise_ids):
        if e == book.operator:
            lines = [
                (item, park_fen[item], park_energy[item])
                for item in PARK_ITEMS
                if item != "storage_degradation"
            ]
            lines += [
                (
                    "energy_supply",
                    -ent_fen["energy_supply"][others].sum(axis=0),
                    float(-ent_energy[others].sum()),
                ),
                ("flexibility_payment", -ent_fen["flexibility_payment"][others].sum(axis=0), None),
                (
                    "storage_degradation",
                    park_fen["storage_degradation"] - ent_fen["storage_degradation"][others].sum(axis=0),
                    float(ent_discharged[e]),
                ),
            ]
        else:
            lines = [
                ("energy_supply", ent_fen["energy_supply"][e], float(ent_energy[e])),
                ("flexibility_payment", ent_fen["flexibility_payment"][e], float(ent_delivered[e])),
                ("storage_degradation", ent_fen["storage_degradation"][e], float(ent_discharged[e])),
            ]
        out[ent_id] = lines
    return out


def _asset_record(
    book: AssetBook, energy: np.ndarray, estimated: np.ndarray, amounts: AssetAmounts
) -> dict[str, dict[str, Any]]:
    """Per-asset day figures: energy, estimated intervals, delivered flexibility, each item's total (fen)."""
    columns = {
        "enterprise": [book.enterprise_ids[e] for e in book.enterprise_of.tolist()],
        "energy_mwh": np.round(energy.sum(axis=1), 6).tolist(),
        "estimated_intervals": estimated.sum(axis=1).tolist(),
        "delivered_mwh": np.round(amounts.delivered_mwh.sum(axis=1), 6).tolist(),
        **{item: fen.sum(axis=1).tolist() for item, fen in amounts.items().items()},
    }
    return {a: {k: v[i] for k, v in columns.items()} for i, a in enumerate(book.asset_ids)}


def _tariff_book(book: AssetBook, tariff: Tariff) -> AssetBook:
    """Every contracted enterprise billed at the TOU price, with the tariff's profit-share terms."""
    fee = book.fee_cny_per_mwh.copy()
    share = book.share_fraction.copy()
    for e, ent in enumerate(book.enterprise_ids):
        t = tariff.terms(ent)
        if book.contracted[e]:
            if t.fixed_price_cny_per_mwh is not None:
                fee[e] = t.fixed_price_cny_per_mwh
            if t.share_fraction is not None:
                share[e] = t.share_fraction
    return replace(book, flat_price=np.zeros_like(book.flat_price), fee_cny_per_mwh=fee, share_fraction=share)


def tariff_charges(
    book: AssetBook, tariff: Tariff, energy: np.ndarray, day: date, hours: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-enterprise capacity and demand charges of the day (fen, (enterprises, intervals)) and peaks (kW)."""
    n_ent, n = len(book.enterprise_ids), energy.shape[1]
    net = np.zeros((n_ent, n))
    np.add.at(net, book.enterprise_of, energy)
    peak_kw = np.maximum(-net, 0.0).max(axis=1) / hours * 1000.0 if n else np.zeros(n_ent)
    capacity = np.zeros((n_ent, n), dtype=np.int64)
    demand = np.zeros((n_ent, n), dtype=np.int64)
    month_days = days_in_month(day)
    for e, ent in enumerate(book.enterprise_ids):
        if not book.contracted[e]:
            continue
        t = tariff.terms(ent)
        if t.charge_basis == "capacity":
            fen = int(to_fen(t.contracted_kva * tariff.capacity_charge_cny_per_kva_month / month_days))
            capacity[e] = -allocate(fen, np.ones(n))
        elif t.charge_basis == "demand":
            fen = int(to_fen(peak_kw[e] * tariff.demand_charge_cny_per_kw_month / month_days))
            demand[e, int(np.argmax(-net[e]))] = -fen
    return {"capacity_charge": capacity, "demand_charge": demand}, peak_kw


def _economics(statements: list[Settlement], book: AssetBook) -> dict[str, float]:
    """Market cost, tariff bill and the park energy company's margin, separately (CNY)."""
    by = {st.account_id: {line.item: round(line.amount_cny * 100) for line in st.lines} for st in statements}
    park = by[PARK_ACCOUNT]
    others = [e for i, e in enumerate(book.enterprise_ids) if i != book.operator]
    tariff_bill = -sum(by[e].get(k, 0) for e in others for k in ("energy_supply", *TARIFF_CHARGES))
    profit_share = sum(by[e].get("flexibility_payment", 0) for e in others)
    operator = next(st for st in statements if st.account_id == book.operator_id)
    return {
        "market_cost_cny": sum(park.get(k, 0) for k in MARKET_ITEMS) / FEN_PER_CNY,
        "tariff_bill_cny": tariff_bill / FEN_PER_CNY,
        "profit_share_paid_cny": profit_share / FEN_PER_CNY,
        "operator_margin_cny": operator.total_cny,
    }


def settle_day(
    scenario: Scenario,
    facts: DayFacts,
    baseline: Baseline,
    asset_stage: AssetStage = settle_assets,
    tariff: Tariff | None = None,
    green: GreenRecords | None = None,
    plan_top_up: bool = False,
    metered: Any = None,
) -> DayResult:
    """Statements for the park and every enterprise, ledger entries and the day's record.

    ``asset_stage`` is the per-asset computation; only the benchmark swaps it (for the naive one).
    ``tariff`` bills the enterprises (TOU energy, capacity/demand charges, profit-share terms)
    instead of the day-ahead price; ``green`` are the day's recorded green-power trades and
    certificate purchases; ``plan_top_up`` buys certificates up to the clean-share target
    (a planning option, never used to settle).
    """
    book = AssetBook.from_scenario(scenario)
    energy, estimated = fill_gaps(facts.metered_mwh, baseline.assets_mwh)
    park = _park_quantities(scenario, facts, energy)
    cny, energy_mwh, cert, series = _exchange(scenario, facts, park, baseline, green, plan_top_up)
    park_fen = {item: to_fen(v) for item, v in cny.items()}
    price = facts.p_da_cny_per_mwh
    if tariff is not None:
        book = _tariff_book(book, tariff)
        price, _ = tariff.prices(facts.interval_starts)
    amounts = asset_stage(
        book,
        energy,
        baseline.assets_mwh,
        price,
        facts.dr_mw,
        (park_fen["demand_response"] + park_fen["demand_response_penalty"]) / FEN_PER_CNY,
        (park_fen["regulation_mileage"] + park_fen["regulation_capacity"]) / FEN_PER_CNY,
    )
    park_fen["storage_degradation"] = amounts.degradation_fen.sum(axis=0)
    energy_mwh["storage_degradation"] = float(np.maximum(energy[book.degradation_cny_per_mwh > 0], 0).sum())
    carbon: CarbonDay = attribute_day(
        scenario, book.operator_id, energy, park.imported, park.exported, cert, metered
    )

    park_lines = [(item, park_fen[item], energy_mwh[item]) for item in PARK_ITEMS]
    statements = [
        _statement(
            scenario, facts, PARK_ACCOUNT, park_lines, carbon.park_emissions_tco2, carbon.park_green_mwh
        )
    ]
    emissions, green_mwh = carbon.account_emissions_tco2(), carbon.account_green_mwh()
    charges, peak_kw = (
        tariff_charges(book, tariff, energy, facts.day, facts.hours) if tariff is not None else ({}, None)
    )
    accounts = _accounts(book, park_fen, energy_mwh, amounts, energy)
    for item, fen in charges.items():
        others = np.arange(len(book.enterprise_ids)) != book.operator
        for e, ent_id in enumerate(book.enterprise_ids):
            if e == book.operator:
                accounts[ent_id].append((item, -fen[others].sum(axis=0), None))
            else:
                accounts[ent_id].append(
                    (item, fen[e], float(peak_kw[e]) if item == "demand_charge" else None)
                )  # type: ignore[index]
    for ent_id, lines in accounts.items():
        statements.append(
            _statement(scenario, facts, ent_id, lines, emissions.get(ent_id, 0.0), green_mwh.get(ent_id, 0.0))
        )

    notes, measured_share = _quality_notes(scenario, facts, energy, estimated)
    notes += baseline.notes
    if metered is not None:
        notes += list(metered.notes)
    if facts.regulation_mw.any() and facts.mileage_mw is None:
        notes.append(
            "regulation was awarded but the metering carries no regulation performance: mileage paid as zero"
        )
    if facts.dr_mw.any() and np.isnan(baseline.grid_mwh).any():
        notes.append(
            "demand response was awarded but the park has no grid baseline: delivery counted as zero"
        )
    record = {
        "notes": notes,
        "measured_share": measured_share,
        "baseline": baseline.provenance,
        "series": {
            "interval_starts": [s.isoformat() for s in facts.interval_starts],
            "q_da_mw": facts.q_da_mw.tolist(),
            "q_rt_mw": facts.q_rt_mw.tolist(),
            "q_mlt_mw": series["q_mlt_mw"].tolist(),
            "actual_mwh": park.actual.tolist(),
            "p_da_cny_per_mwh": facts.p_da_cny_per_mwh.tolist(),
            "p_rt_cny_per_mwh": facts.p_rt_cny_per_mwh.tolist(),
            "dr_mw": facts.dr_mw.tolist(),
            "dr_delivered_mwh": series["dr_delivered_mwh"].tolist(),
            "baseline_grid_mwh": [None if np.isnan(v) else v for v in baseline.grid_mwh.tolist()],
            "regulation_mw": facts.regulation_mw.tolist(),
        },
        "assets": _asset_record(book, energy, estimated, amounts),
        "carbon": carbon.summary,
        "tariff_version": None if tariff is None else tariff.version,
        "green_records": [] if green is None else list(green.ids),
        "economics": _economics(statements, book),
    }
    if series["real_time"] is not None:  # real-time bids settled on the real-time grid
        record["real_time"] = series["real_time"]
    return DayResult(
        facts.park_id,
        facts.day,
        rules_version(scenario),
        statements,
        carbon.drafts,
        record,
        book.asset_ids,
        amounts.items(),
    )
