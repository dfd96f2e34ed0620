"""Transactions the operator records by hand: allowances, offsets, sinks, unmetered fuel and heat, corrections.

A YAML file lists the transactions; each becomes one balanced ledger entry that cites its
rule and reference. ``adjustment`` corrects earlier entries with explicit balancing postings
(the ledger is never edited). Format (see ``settlement/README.md``)::

    park: datong
    entries:
      - {day: 2026-07-31, kind: allowance_allocation, account: cathode_plant, quantity_tco2: 1200, reference: "2026 CEA"}
      - {day: 2026-07-31, kind: offset_retirement, account: park_energy, offset: ccer, quantity_tco2: 50}
      - {day: 2026-07-31, kind: sink_removal, account: park_services, quantity_tco2: 12.5, memo: green space}
      - {day: 2026-07-31, kind: fuel_use, account: park_logistics, fuel: {fuel: diesel, quantity: 2.5, unit: t}}
      - {day: 2026-07-31, kind: heat_use, account: cathode_plant, fossil_gj: 800, non_fossil_gj: 200}
      - day: 2026-07-31
        kind: adjustment
        account: cell_plant
        corrects: <entry id>
        memo: meter recalibration
        postings: [[cell_plant/cell_plant_load, emissions.scope2.electricity_grid, tCO2, 1.5],
                   [external:atmosphere, co2, tCO2, -1.5]]
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, select

from infra.scenario.model import CarbonSettings, Scenario
from settlement.carbon.activity import FuelUse, fuel_line
from settlement.carbon.ledger import (
    EntryDraft,
    LedgerError,
    Posting,
    append,
    canonical,
    check_draft,
    entry_id,
)
from settlement.money import to_micro
from settlement.tables import carbon_ledger

Kind = Literal[
    "allowance_allocation",
    "allowance_purchase",
    "allowance_sale",
    "allowance_surrender",
    "offset_purchase",
    "offset_sale",
    "offset_retirement",
    "sink_removal",
    "fuel_use",
    "heat_use",
    "adjustment",
]
RULES = {
    "allowance_allocation": "national ETS allowance (CEA) allocated to the account",
    "allowance_purchase": "allowances bought on the carbon market",
    "allowance_sale": "allowances sold on the carbon market",
    "allowance_surrender": "allowances surrendered for compliance",
    "offset_purchase": "offset credits (CCER or other) bought",
    "offset_sale": "offset credits sold",
    "offset_retirement": "offset credits retired against the account's emissions",
    "sink_removal": "CO2 removed by a sink (park green space, forest)",
    "fuel_use": "park method E_fuel = consumption x NCV x EF x oxidation (fuel not metered by settlement)",
    "heat_use": "park method E_heat = fossil heat x EF; non-fossil heat 0",
    "adjustment": "correction of earlier entries by explicit balancing postings",
}
MANUAL_VERSION = "manual-1"


class ManualEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date
    kind: Kind
    account: str = Field(min_length=1)
    quantity_tco2: float | None = Field(None, gt=0)
    offset: Literal["ccer", "carbon_inclusion", "other"] = "ccer"
    fuel: FuelUse | None = Field(None, description="fuel_use: the fuel line, as in the activity file")
    fossil_gj: float = Field(0.0, ge=0, description="heat_use: fossil heat bought")
    non_fossil_gj: float = Field(0.0, ge=0, description="heat_use: non-fossil heat bought")
    reference: str = ""
    memo: str = ""
    corrects: str | None = None
    postings: list[tuple[str, str, Literal["tCO2", "MWh", "MWh_green"], float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ManualEntry:
        if self.kind == "adjustment":
            if not self.corrects:
                raise ValueError("an adjustment must name the entry it corrects (corrects: <entry id>)")
            if not self.postings:
                raise ValueError("an adjustment needs its balancing postings")
        elif self.kind == "fuel_use":
            if self.fuel is None:
                raise ValueError("fuel_use needs fuel: {fuel, quantity, unit}")
        elif self.kind == "heat_use":
            if self.fossil_gj + self.non_fossil_gj <= 0:
                raise ValueError("heat_use needs fossil_gj or non_fossil_gj (> 0)")
        elif self.quantity_tco2 is None:
            raise ValueError(f"{self.kind} needs quantity_tco2 (> 0)")
        return self


class ManualFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    park: str
    entries: list[ManualEntry] = Field(min_length=1)


def _postings(e: ManualEntry) -> tuple[Posting, ...]:
    q = int(to_micro(e.quantity_tco2 or 0.0))
    a = e.account
    book = f"offsets.{e.offset}"
    pairs = {
        "allowance_allocation": (
            (a, "allowances.cea", q),
            ("external:cea_registry", "allowances.allocated", -q),
        ),
        "allowance_purchase": ((a, "allowances.cea", q), ("external:carbon_market", "allowances.traded", -q)),
        "allowance_sale": ((a, "allowances.cea", -q), ("external:carbon_market", "allowances.traded", q)),
        "allowance_surrender": (
            (a, "allowances.cea", -q),
            ("external:cea_registry", "allowances.surrendered", q),
        ),
        "offset_purchase": ((a, book, q), ("external:carbon_market", book, -q)),
        "offset_sale": ((a, book, -q), ("external:carbon_market", book, q)),
        "offset_retirement": ((a, book, -q), ("external:offset_registry", f"{book}.retired", q)),
        "sink_removal": ((a, "removals.sink", -q), ("external:atmosphere", "co2", q)),
    }
    if e.kind == "adjustment":
        return tuple(Posting(acc, bk, unit, int(to_micro(v))) for acc, bk, unit, v in e.postings)
    return tuple(Posting(acc, bk, "tCO2", v) for acc, bk, v in pairs[e.kind])


def _fuel_entry(
    e: ManualEntry, carbon: CarbonSettings, where: str
) -> tuple[tuple[Posting, ...], dict[str, Any], dict[str, Any]]:
    assert e.fuel is not None
    problems: list[str] = []
    line = fuel_line(where, 0, e.fuel, carbon, problems)
    if line is None:
        raise LedgerError("; ".join(problems))
    q = int(to_micro(line.tco2))
    postings = (
        Posting(e.account, f"emissions.scope1.fuel.{line.fuel}", "tCO2", q),
        Posting("external:atmosphere", "co2", "tCO2", -q),
    )
    activity = {"fuel": line.fuel, "activity": line.activity, "quantity": line.quantity, "unit": line.unit}
    return postings, line.factors, activity


def _heat_entry(
    e: ManualEntry, carbon: CarbonSettings
) -> tuple[tuple[Posting, ...], dict[str, Any], dict[str, Any]]:
    ef = carbon.fossil_heat_ef_tco2_per_gj
    co2 = int(to_micro(e.fossil_gj * ef))
    fossil, clean = int(to_micro(e.fossil_gj / 3.6)), int(to_micro(e.non_fossil_gj / 3.6))
    postings = [
        Posting(e.account, "heat.fossil", "MWh", fossil),
        Posting(e.account, "heat.non_fossil", "MWh", clean),
        Posting("supply:heat", "heat", "MWh", -(fossil + clean)),
    ]
    if co2:
        postings += [
            Posting(e.account, "emissions.scope2.heat", "tCO2", co2),
            Posting("external:atmosphere", "co2", "tCO2", -co2),
        ]
    factors = {"fossil_heat_ef_tco2_per_gj": ef, "heat_kgce_per_mj": carbon.heat_kgce_per_mj}
    return (
        tuple(p for p in postings if p.micro),
        factors,
        {"fossil_gj": e.fossil_gj, "non_fossil_gj": e.non_fossil_gj},
    )


def _holders(scenario: Scenario) -> set[str]:
    return {e.id for e in scenario.park.enterprises} | {
        f"{a.enterprise}/{a.id}" for a in scenario.park.assets
    }


def read_manual(path: Path) -> ManualFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ManualFile.model_validate(raw)
    except FileNotFoundError as exc:
        raise LedgerError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise LedgerError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise LedgerError(f"{path}: {problems}") from exc


def post_manual(conn: Connection, scenario: Scenario, manual: ManualFile) -> list[str]:
    """Post every transaction (all or none: the caller's transaction); returns the entry ids.

    A transaction is identified by its content, so posting the same file twice is a no-op;
    two identical lines are one transaction (give each a ``reference`` to tell them apart).
    """
    if manual.park != scenario.id:
        raise LedgerError(f"park: {manual.park!r} is not {scenario.id!r}")
    holders = _holders(scenario)
    ids = []
    for i, e in enumerate(manual.entries):
        where = f"entries[{i}] ({e.kind})"
        if e.account not in holders:
            raise LedgerError(
                f"{where}.account: {e.account!r} is not an enterprise or equipment account of {scenario.id}"
            )
        if e.kind == "adjustment":
            hit = conn.execute(
                select(carbon_ledger.c.entry_id).where(carbon_ledger.c.entry_id == e.corrects)
            ).first()
            if hit is None:
                raise LedgerError(f"{where}.corrects: no ledger entry {e.corrects}")
        version = scenario.park.carbon.version
        if e.kind == "fuel_use":
            postings, factors, activity = _fuel_entry(e, scenario.park.carbon, f"{where}.fuel")
        elif e.kind == "heat_use":
            postings, factors, activity = _heat_entry(e, scenario.park.carbon)
        else:
            postings, factors, activity = _postings(e), {}, {"quantity_tco2": e.quantity_tco2}
            version = MANUAL_VERSION
        if e.corrects:
            activity["corrects"] = e.corrects
        if e.reference:
            activity["reference"] = e.reference
        draft = EntryDraft(
            kind=e.kind,
            account_id=e.account,
            key="manual:" + hashlib.sha256(canonical(e.model_dump(mode="json")).encode()).hexdigest()[:16],
            rule=RULES[e.kind],
            factor_version=version,
            factors=factors,
            activity=activity,
            postings=postings,
            memo=e.memo,
        )
        try:
            check_draft(draft)
        except LedgerError as exc:
            raise LedgerError(f"{where}: {exc}") from exc
        append(conn, scenario.id, e.day, [draft], source="manual")
        ids.append(entry_id(scenario.id, e.day, draft))
    return ids
