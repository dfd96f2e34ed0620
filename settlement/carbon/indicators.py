"""Zero-carbon indicators for any period and account, computed from the carbon ledger.

* carbon per unit energy (tCO2/tce): gross emissions over energy use, where energy is
  electricity consumed (except the park's own fossil generation, whose fuel is counted) on
  the scenario's electricity tce basis, plus fuel and bought heat in tce;
* the threshold band by annual energy use (the period's energy annualised over the settled
  days) and pass or fail;
* clean-energy share (green electricity and non-fossil heat in tce over energy use), direct green-supply share
  (direct green over electricity consumed), both with their targets;
* location-based scope-2 emissions: all electricity drawn from the grid times the provincial
  factor of the latest year not after the period (reported for comparison only).

``account`` is ``park`` (every holder), an enterprise (with its equipment) or one
``<enterprise>/<asset>`` equipment account.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection

from infra.scenario.model import Scenario
from settlement.carbon.activity import band_for, verdict_for
from settlement.carbon.ledger import entries, holds, is_holder

ENERGY_TYPES = ("direct_green", "green_traded", "certificate_covered", "grid")
GREEN_TYPES = ("direct_green", "green_traded", "certificate_covered")
GRID_DRAWN_TYPES = ("green_traded", "certificate_covered", "grid")


@dataclass(frozen=True)
class Indicators:
    park_id: str
    account: str
    start: date
    end: date
    settled_days: int
    emissions_tco2: float
    emissions_by_source_tco2: dict[str, float]
    removals_tco2: float
    offsets_retired_tco2: float
    electricity_mwh: dict[str, float]
    exported_mwh: float
    fuel_tce: float
    heat_gj: dict[str, float]
    energy_tce: float
    electricity_tce_basis: str
    kgce_per_kwh: float
    tco2_per_tce: float | None
    annualised_tce: float | None
    band: dict[str, Any] | None
    verdict: str
    clean_energy_share: float | None
    clean_energy_share_target: float
    direct_green_share: float | None
    direct_green_share_target: float
    location_scope2_tco2: float
    location_factor_tco2_per_mwh: float | None
    location_factor_year: int | None
    green_certificates_mwh: dict[str, float]
    factor_version: str
    # The same indicator on every electricity tce basis the scenario knows (the chosen one first):
    # {basis: {kgce_per_kwh, energy_tce, tco2_per_tce, annualised_tce, band, verdict, clean_energy_share}}
    by_basis: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return out


def _location_factor(scenario: Scenario, year: int) -> tuple[float | None, int | None]:
    factors = scenario.park.carbon.location_grid_ef_tco2_per_mwh
    years = [y for y in factors if y <= year] or sorted(factors)[:1]
    if not years:
        return None, None
    chosen = max(years)
    return factors[chosen], chosen


def indicators(
    conn: Connection, scenario: Scenario, start: date, end: date, account: str = "park"
) -> Indicators:
    """Indicators of ``account`` over market days ``[start, end)`` from the ledger."""
    carbon = scenario.park.carbon
    rows = entries(conn, scenario.id, start, end)

    def mine(holder: str) -> bool:
        return is_holder(holder) and (account == "park" or holds(holder, account))

    by_source: dict[str, float] = defaultdict(float)
    electricity: dict[str, float] = defaultdict(float)
    certificates: dict[str, float] = defaultdict(float)
    heat: dict[str, float] = defaultdict(float)
    removals = offsets = exported = fuel_tce = 0.0
    days = set()
    for row in rows:
        if row["kind"] in ("electricity_use", "emission", "gec_issue"):
            days.add(row["market_day"])
        for p in row["postings"]:
            if not mine(p.account):
                continue
            if p.book.startswith("emissions."):
                by_source[p.book.removeprefix("emissions.")] += p.quantity
            elif p.book.startswith("removals."):
                removals += p.quantity
            elif p.book.startswith("electricity.exported"):
                exported += p.quantity
            elif p.book.startswith("electricity."):
                electricity[p.book.removeprefix("electricity.")] += p.quantity
            elif p.book.startswith("heat."):
                heat[p.book.removeprefix("heat.")] += p.quantity * 3.6  # GJ
            elif p.book.startswith("green."):
                certificates[p.book] += p.quantity
            elif p.book.startswith("offsets.") and row["kind"] == "offset_retirement":
                offsets -= p.quantity
        activity, factors = row["activity"], row["factors"]
        if "fuel" in activity and "kgce_per_unit" in factors and mine(row["account_id"]):
            fuel_tce += activity["quantity"] * factors["kgce_per_unit"] / 1000.0
    basis = carbon.electricity_tce_basis
    kgce = carbon.kgce_per_kwh[basis]
    emissions = sum(by_source.values())
    elec_energy = sum(electricity[k] for k in ENERGY_TYPES)
    heat_tce = sum(heat.values()) * carbon.heat_kgce_per_mj
    energy = elec_energy * kgce + fuel_tce + heat_tce
    n_days = len(days)
    annual = energy * 365.0 / n_days if n_days else None
    intensity = emissions / energy if energy > 0 else None
    band = band_for(carbon, annual) if annual is not None else None
    consumed = sum(electricity.values())
    factor, factor_year = _location_factor(scenario, start.year)
    green_elec = sum(electricity[k] for k in GREEN_TYPES)
    by_basis = {}
    for name in sorted(carbon.kgce_per_kwh, key=lambda b: b != basis):
        k = carbon.kgce_per_kwh[name]
        e = elec_energy * k + fuel_tce + heat_tce
        a = e * 365.0 / n_days if n_days else None
        i = emissions / e if e > 0 else None
        b = band_for(carbon, a) if a is not None else None
        by_basis[name] = {
            "kgce_per_kwh": k,
            "energy_tce": e,
            "tco2_per_tce": i,
            "annualised_tce": a,
            "band": b,
            "verdict": verdict_for(i, b),
            "clean_energy_share": (green_elec * k + heat["non_fossil"] * carbon.heat_kgce_per_mj) / e
            if e > 0
            else None,
        }
    return Indicators(
        park_id=scenario.id,
        account=account,
        start=start,
        end=end,
        settled_days=n_days,
        emissions_tco2=emissions,
        emissions_by_source_tco2=dict(by_source),
        removals_tco2=removals,
        offsets_retired_tco2=offsets,
        electricity_mwh=dict(electricity),
        exported_mwh=exported,
        fuel_tce=fuel_tce,
        heat_gj=dict(heat),
        energy_tce=energy,
        electricity_tce_basis=basis,
        kgce_per_kwh=kgce,
        tco2_per_tce=intensity,
        annualised_tce=annual,
        band=band,
        verdict=verdict_for(intensity, band),
        clean_energy_share=(
            sum(electricity[k] for k in GREEN_TYPES) * kgce + heat["non_fossil"] * carbon.heat_kgce_per_mj
        )
        / energy
        if energy > 0
        else None,
        clean_energy_share_target=carbon.clean_energy_share_target,
        direct_green_share=electricity["direct_green"] / consumed if consumed > 0 else None,
        direct_green_share_target=carbon.green_power_share_target,
        location_scope2_tco2=sum(electricity[k] for k in GRID_DRAWN_TYPES) * (factor or 0.0),
        location_factor_tco2_per_mwh=factor,
        location_factor_year=factor_year,
        green_certificates_mwh=dict(certificates),
        factor_version=carbon.version,
        by_basis=by_basis,
    )
