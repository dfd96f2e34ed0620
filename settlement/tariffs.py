"""Versioned tariff tables: how the park energy company bills its enterprises.

A tariff is per park and version, effective from a market day (the newest version whose
``effective_from`` is not after the day applies; a settled day records the version it used,
so a replay or a correction uses the same one). It holds:

* time-of-use periods by season (months), each with hours ``[start, end)`` of the local day
  and an energy price in CNY/MWh;
* the basic charge of China's two-part tariff: by contracted capacity
  (``capacity_charge_cny_per_kva_month``) or by the month's maximum demand
  (``demand_charge_cny_per_kw_month``), chosen per enterprise (``charge_basis``);
* the VPP profit-share terms per enterprise (``share_fraction``, ``fixed_price_cny_per_mwh``),
  overriding the scenario's revenue-sharing contract.

Billing (per asset and interval, rounded to the fen there; README "Tariffs"):

* ``energy_supply`` = metered net energy x TOU price of the interval (consumption pays,
  generation is credited at the same price);
* ``capacity_charge`` = contracted kVA x rate / days in the month, one share per day, spread
  evenly over the intervals in whole fen (remainders to the earliest intervals);
* ``demand_charge`` = the day's peak demand (kW, the largest interval net consumption / h)
  x rate / days in the month, booked in the peak interval: a daily accrual of the monthly
  maximum-demand charge (the monthly statement shows it; the true-up to the month's single
  maximum is a known limit).

File format (``parkvpp settlement tariff load FILE.yaml``)::

    park: datong
    version: "2026-07"
    effective_from: 2026-07-01
    source: "[est] Shanxi TOU 2026 ..."
    seasons:
      - months: [6, 7, 8]
        periods:
          - {name: peak,   hours: [[8, 11], [17, 23]], price_cny_per_mwh: 750}
          - {name: flat,   hours: [[7, 8], [11, 17]],  price_cny_per_mwh: 480}
          - {name: valley, hours: [[23, 24], [0, 7]],  price_cny_per_mwh: 230}
    capacity_charge_cny_per_kva_month: 28
    demand_charge_cny_per_kw_month: 42
    enterprises:
      cell_plant: {charge_basis: demand, share_fraction: 0.5, fixed_price_cny_per_mwh: 30}
      cathode_plant: {charge_basis: capacity, contracted_kva: 80000}
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import Connection, select

from infra.db import insert_ignore
from infra.timeutil import now
from settlement.tables import settlement_tariffs


class TariffError(ValueError):
    """A tariff file or table is invalid; every problem is named."""


@dataclass(frozen=True)
class Period:
    name: str
    hours: tuple[tuple[float, float], ...]
    price_cny_per_mwh: float


@dataclass(frozen=True)
class Terms:
    charge_basis: str = "none"  # none | capacity | demand
    contracted_kva: float = 0.0
    share_fraction: float | None = None
    fixed_price_cny_per_mwh: float | None = None


@dataclass(frozen=True)
class Tariff:
    park_id: str
    version: str
    effective_from: date
    source: str
    seasons: tuple[tuple[frozenset[int], tuple[Period, ...]], ...]
    capacity_charge_cny_per_kva_month: float = 0.0
    demand_charge_cny_per_kw_month: float = 0.0
    enterprises: dict[str, Terms] = field(default_factory=dict)

    def periods(self, month: int) -> tuple[Period, ...]:
        for months, periods in self.seasons:
            if month in months:
                return periods
        raise TariffError(f"tariff {self.park_id} {self.version}: no season covers month {month}")

    def prices(self, starts: list[datetime]) -> tuple[np.ndarray, list[str]]:
        """TOU price and period name of each interval (by its start's local hour)."""
        prices, names = [], []
        for s in starts:
            hour = s.hour + s.minute / 60.0
            for p in self.periods(s.month):
                if any(h0 <= hour < h1 for h0, h1 in p.hours):
                    prices.append(p.price_cny_per_mwh)
                    names.append(p.name)
                    break
            else:
                raise TariffError(f"tariff {self.park_id} {self.version}: no period covers {s:%m-%d %H:%M}")
        return np.array(prices, dtype=float), names

    def terms(self, enterprise: str) -> Terms:
        return self.enterprises.get(enterprise, Terms())


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _num(raw: Any, where: str, problems: list[str], low: float = 0.0, high: float = 1e7) -> float:
    try:
        x = float(raw)
    except (TypeError, ValueError):
        problems.append(f"{where}: {raw!r} is not a number")
        return 0.0
    if not (low <= x <= high):
        problems.append(f"{where}: {x:g} is outside {low:g}..{high:g}")
    return x


def parse_tariff(raw: Any, where: str = "tariff") -> Tariff:
    """Check a tariff mapping; every problem at once. Each month's periods must tile the day."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise TariffError(f"{where}: must be a mapping (see settlement/tariffs.py)")
    for k in ("park", "version", "effective_from", "seasons"):
        if k not in raw:
            problems.append(f"{where}: {k}: required")
    if problems:
        raise TariffError("; ".join(problems))
    try:
        eff = raw["effective_from"]
        eff = eff if isinstance(eff, date) else date.fromisoformat(str(eff))
    except ValueError:
        problems.append(f"{where}: effective_from: {raw['effective_from']!r} is not a date")
        eff = date(1970, 1, 1)
    seasons = []
    covered: list[int] = []
    for si, season in enumerate(raw.get("seasons") or []):
        w = f"{where}: seasons[{si}]"
        months = frozenset(int(m) for m in season.get("months", []))
        if not months or not months <= set(range(1, 13)):
            problems.append(f"{w}.months: must list months 1..12")
        covered += list(months)
        periods = []
        grid = np.zeros(24 * 4, dtype=int)
        for pi, p in enumerate(season.get("periods") or []):
            pw = f"{w}.periods[{pi}]"
            hours = []
            for span in p.get("hours") or []:
                h0, h1 = (_num(x, f"{pw}.hours", problems, 0, 24) for x in span)
                if h1 <= h0:
                    problems.append(f"{pw}.hours: [{h0:g}, {h1:g}] must end after it starts")
                hours.append((h0, h1))
                grid[int(h0 * 4) : int(h1 * 4)] += 1
            periods.append(
                Period(
                    str(p.get("name", f"p{pi}")),
                    tuple(hours),
                    _num(p.get("price_cny_per_mwh"), f"{pw}.price_cny_per_mwh", problems, -2000, 10000),
                )
            )
        if (grid != 1).any():
            problems.append(f"{w}.periods: the hours must cover the day exactly once (00:00-24:00)")
        seasons.append((months, tuple(periods)))
    if sorted(covered) != list(range(1, 13)):
        problems.append(f"{where}: seasons: every month must be in exactly one season")
    terms = {}
    for ent, t in (raw.get("enterprises") or {}).items():
        w = f"{where}: enterprises.{ent}"
        basis = str(t.get("charge_basis", "none"))
        if basis not in ("none", "capacity", "demand"):
            problems.append(f"{w}.charge_basis: {basis!r} must be none, capacity or demand")
        share = t.get("share_fraction")
        fixed = t.get("fixed_price_cny_per_mwh")
        terms[str(ent)] = Terms(
            basis,
            _num(t.get("contracted_kva", 0), f"{w}.contracted_kva", problems, 0, 1e8),
            None if share is None else _num(share, f"{w}.share_fraction", problems, 0, 1),
            None if fixed is None else _num(fixed, f"{w}.fixed_price_cny_per_mwh", problems, 0, 10000),
        )
    if problems:
        raise TariffError("; ".join(problems))
    return Tariff(
        park_id=str(raw["park"]),
        version=str(raw["version"]),
        effective_from=eff,
        source=str(raw.get("source", "")),
        seasons=tuple(seasons),
        capacity_charge_cny_per_kva_month=_num(raw.get("capacity_charge_cny_per_kva_month", 0), "c", []),
        demand_charge_cny_per_kw_month=_num(raw.get("demand_charge_cny_per_kw_month", 0), "d", []),
        enterprises=terms,
    )


def read_tariff(path: Path) -> tuple[Tariff, dict[str, Any]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TariffError(f"{path}: cannot read the file ({exc})") from exc
    return parse_tariff(raw, str(path)), raw


def load_tariff(conn: Connection, raw: dict[str, Any], by: str) -> bool:
    """Store a tariff version (idempotent; a version is never changed once stored)."""
    t = parse_tariff(raw)
    spec = json.dumps(raw, sort_keys=True, default=str)
    stored = conn.execute(
        select(settlement_tariffs.c.spec).where(
            settlement_tariffs.c.park_id == t.park_id, settlement_tariffs.c.version == t.version
        )
    ).scalar()
    if stored is not None and stored != spec:
        raise TariffError(
            f"tariff {t.park_id} version {t.version} is stored with other content; versions are never changed: load a new version"
        )
    row = {
        "park_id": t.park_id,
        "version": t.version,
        "effective_from": t.effective_from,
        "spec": spec,
        "loaded_at": now(),
        "loaded_by": by,
    }
    return insert_ignore(conn, settlement_tariffs, [row], ["park_id", "version"]) == 1


def tariff_for(conn: Connection, park_id: str, day: date, version: str | None = None) -> Tariff | None:
    """The tariff in effect on ``day`` (or the named version); None when the park has none."""
    stmt = select(settlement_tariffs.c.spec).where(settlement_tariffs.c.park_id == park_id)
    if version is not None:
        stmt = stmt.where(settlement_tariffs.c.version == version)
    else:
        stmt = stmt.where(settlement_tariffs.c.effective_from <= day).order_by(
            settlement_tariffs.c.effective_from.desc(), settlement_tariffs.c.loaded_at.desc()
        )
    spec = conn.execute(stmt).scalar()
    if spec is None:
        if version is not None:
            raise LookupError(f"tariff {park_id} version {version} is not stored")
        return None
    return parse_tariff(json.loads(spec))
