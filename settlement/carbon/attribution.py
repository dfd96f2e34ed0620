"""One day's carbon: electricity by type, emissions by source and scope, green certificates.

Park pools follow the national park method (DOMAIN.md §4) with the certificate policy of
:mod:`settlement.certificates`:

* electricity consumed in the park is *direct green*, *green-traded*, *certificate-covered*,
  *grid* (everything else imported) or *own fossil* (the park's gas generation);
* ``E_elec = grid * Ef - exported_other * Ef`` (green and covered electricity have Ef = 0;
  exports are counted as green first), ``E_fuel = fuel * NCV * EF * oxidation`` for each
  generator's fuel, derived from its metered output and electric efficiency.

Each pool is attributed per interval: its daily total is split over the intervals by where that
electricity occurred (direct green where green generation met park load, green-traded and
certificate-covered where imports were covered, grid where imports were not), then each interval's
share goes to the assets (equipment accounts ``<enterprise>/<asset>``) consuming in it, pro rata
to their net consumption in that interval, exactly in micro-units, so enterprise and park totals
are sums of equipment postings. Entries are per enterprise and kind, with one
posting per equipment (a 10,000-meter park writes ~100 entries a day, not 30,000). Export
and its credit belong to the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infra.scenario.model import Scenario
from settlement.carbon.ledger import EntryDraft, Posting
from settlement.certificates import Certificates
from settlement.money import MICRO, allocate, to_micro

ELECTRICITY_TYPES = ("direct_green", "green_traded", "certificate_covered", "grid", "own_fossil")
GREEN_TYPES = ("direct_green", "green_traded", "certificate_covered")
GREEN_ASSET_TYPES = ("pv", "wind")
RULE_ELEC = "park method E_elec = sum(E_in x Ef) - sum(E_out x Ef); Ef = 0 for direct green, green-traded and certificate-covered"
RULE_FUEL = "park method E_fuel = consumption x NCV x EF x oxidation"
RULE_USE = "electricity by type, daily park pools attributed pro rata to net consumption"
RULE_GEC = (
    "1 GEC = 1 MWh; certificates of consumed green energy are cancelled, surplus covers imports, rest is sold"
)


@dataclass
class CarbonDay:
    """Per-asset quantities (micro-units, scenario asset order) and the day's ledger entries."""

    holders: list[str]
    enterprise_of: list[str]
    electricity_mu: dict[str, np.ndarray]
    emissions_mu: np.ndarray
    green_mu: np.ndarray
    operator: str
    operator_emissions_mu: int
    exported_green_mu: int
    exported_other_mu: int
    drafts: list[EntryDraft] = field(default_factory=list)
    metered_emissions_mu: dict[str, int] = field(default_factory=dict)  # heat/fuel meters, per enterprise
    summary: dict[str, Any] = field(default_factory=dict)

    def _by_enterprise(self, values: np.ndarray) -> dict[str, int]:
        out: dict[str, int] = {}
        for ent, v in zip(self.enterprise_of, values.tolist(), strict=True):
            out[ent] = out.get(ent, 0) + v
        return out

    def account_emissions_tco2(self) -> dict[str, float]:
        """Emissions attributed to each enterprise (the operator carries the export credit)."""
        out = self._by_enterprise(self.emissions_mu)
        out[self.operator] = out.get(self.operator, 0) + self.operator_emissions_mu
        for ent, mu in self.metered_emissions_mu.items():
            out[ent] = out.get(ent, 0) + mu
        return {k: v / MICRO for k, v in out.items()}

    def account_green_mwh(self) -> dict[str, float]:
        return {k: v / MICRO for k, v in self._by_enterprise(self.green_mu).items()}

    @property
    def park_emissions_tco2(self) -> float:
        return (
            int(self.emissions_mu.sum())
            + self.operator_emissions_mu
            + sum(self.metered_emissions_mu.values())
        ) / MICRO

    @property
    def park_green_mwh(self) -> float:
        return int(self.green_mu.sum()) / MICRO


def _pair(
    holders: list[str], amounts: np.ndarray, book: str, unit: str, counter: str, counter_book: str
) -> list[Posting]:
    postings = [Posting(h, book, unit, int(q)) for h, q in zip(holders, amounts, strict=True) if q]
    total = int(amounts.sum())
    return [*postings, Posting(counter, counter_book, unit, -total)] if total else postings


def _enterprise_entries(
    assets: list[Any],
    holders: list[str],
    electricity: dict[str, np.ndarray],
    grid_emissions: np.ndarray,
    consumption: np.ndarray,
    version: str,
    ef: float,
) -> list[EntryDraft]:
    """Per enterprise: one ``electricity_use`` and one grid ``emission`` entry, posting to each equipment."""
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(assets):
        groups.setdefault(a.enterprise, []).append(i)
    columns = {k: electricity[k].tolist() for k in ELECTRICITY_TYPES}
    emissions = grid_emissions.tolist()
    net = consumption.tolist()
    drafts = []
    for ent, rows in groups.items():
        postings: list[Posting] = []
        for k, values in columns.items():
            book = f"electricity.{k}"
            parts = [Posting(holders[i], book, "MWh", values[i]) for i in rows if values[i]]
            if parts:
                postings += [*parts, Posting(f"supply:{k}", book, "MWh", -sum(p.micro for p in parts))]
        if postings:
            drafts.append(
                EntryDraft(
                    kind="electricity_use",
                    account_id=ent,
                    rule=RULE_USE,
                    factor_version=version,
                    activity={"net_consumption_mwh": round(sum(net[i] for i in rows), 6)},
                    postings=tuple(postings),
                )
            )
        parts = [
            Posting(holders[i], "emissions.scope2.electricity_grid", "tCO2", emissions[i])
            for i in rows
            if emissions[i]
        ]
        if parts:
            total = sum(p.micro for p in parts)
            drafts.append(
                EntryDraft(
                    kind="emission",
                    account_id=ent,
                    key="scope2:electricity_grid",
                    rule=RULE_ELEC,
                    factor_version=version,
                    factors={"grid_ef_tco2_per_mwh": ef},
                    activity={"grid_mwh": sum(columns["grid"][i] for i in rows) / MICRO},
                    postings=(*parts, Posting("external:atmosphere", "co2", "tCO2", -total)),
                )
            )
    return drafts


def attribute_day(
    scenario: Scenario,
    operator: str,
    energy_mwh: np.ndarray,
    imported_mwh: np.ndarray,
    exported_mwh: np.ndarray,
    cert: Certificates,
    metered: Any = None,
) -> CarbonDay:
    carbon = scenario.park.carbon
    version = carbon.version
    ef = carbon.grid_ef_tco2_per_mwh
    assets = scenario.park.assets
    holders = [f"{a.enterprise}/{a.id}" for a in assets]
    green_rows = np.array([a.type in GREEN_ASSET_TYPES for a in assets])
    fossil_rows = np.array([a.type == "gas_generator" for a in assets])
    produced = np.maximum(energy_mwh, 0.0).sum(axis=1)
    consumption = np.maximum(-energy_mwh.sum(axis=1), 0.0)

    # Certificates, in whole micro-MWh so that holdings end the day exactly at zero.
    issued = np.where(green_rows, to_micro(produced), 0)
    issued_total = int(issued.sum())
    # Direct green is what remains of the issued certificates, so rounding never leaves dust.
    sold_total = min(int(to_micro(cert.sold.sum())), issued_total)
    covered_own = min(int(to_micro(cert.covered_own.sum())), issued_total - sold_total)
    direct = issued_total - sold_total - covered_own
    bought = int(to_micro(cert.bought.sum()))
    traded = int(to_micro(cert.traded.sum()))
    debit_direct = allocate(direct, issued)
    debit_cover = allocate(covered_own, issued - debit_direct)
    debit_sale = issued - debit_direct - debit_cover

    exported_green = float(cert.exported_green.sum())
    exported_other = max(float(exported_mwh.sum()) - exported_green, 0.0)
    own_fossil = max(float(produced[fossil_rows].sum()) - exported_other, 0.0)
    grid = max(int(to_micro(imported_mwh.sum())) - traded - covered_own - bought, 0)
    pools = {
        "direct_green": direct,
        "green_traded": traded,
        "certificate_covered": covered_own + bought,
        "grid": grid,
        "own_fossil": int(to_micro(own_fossil)),
    }
    # Per interval: each pool's daily total (whole micro-MWh) is split over the intervals by
    # where that electricity occurred, then each interval's share goes to the assets consuming
    # in that interval (pro rata to their net consumption there).
    exported_other_t = np.maximum(exported_mwh - cert.exported_green, 0.0)
    covered_t = cert.covered_own + cert.bought
    weights_t = {
        "direct_green": cert.direct,
        "green_traded": cert.traded,
        "certificate_covered": covered_t,
        "grid": np.maximum(imported_mwh - cert.traded - covered_t, 0.0),
        "own_fossil": np.maximum(
            np.maximum(energy_mwh[fossil_rows], 0.0).sum(axis=0) - exported_other_t, 0.0
        ),
    }
    consumers = np.maximum(-energy_mwh, 0.0)
    consumed_t = consumers.sum(axis=0)
    share_t = np.divide(consumers, consumed_t, out=np.zeros_like(consumers), where=consumed_t > 0)
    pool_t = {
        k: allocate(v, np.maximum(weights_t[k], 0.0)) if v else np.zeros(len(consumed_t), np.int64)
        for k, v in pools.items()
    }
    # An asset's share of a pool is the sum over intervals of (the interval's part of the pool x
    # the asset's share of that interval's consumption); whole micro-units by largest remainder.
    electricity = {
        k: allocate(v, share_t @ pool_t[k].astype(float)) if v else np.zeros(len(assets), np.int64)
        for k, v in pools.items()
    }
    grid_emissions = allocate(int(to_micro(grid / MICRO * ef)), electricity["grid"])
    grid_t = pool_t["grid"]
    emissions_t = allocate(int(grid_emissions.sum()), grid_t) if grid_t.any() else np.zeros_like(grid_t)

    drafts = _enterprise_entries(assets, holders, electricity, grid_emissions, consumption, version, ef)
    fuel_emissions = np.zeros(len(assets), dtype=np.int64)
    for i in np.flatnonzero(fossil_rows & (produced > 0)):
        a, holder = assets[i], holders[i]
        fuel = carbon.fuels[a.fuel]
        units = produced[i] * 3600.0 / a.electric_efficiency / fuel.ncv_mj_per_unit
        tco2 = units * fuel.ncv_mj_per_unit * 1e-6 * fuel.ef_tco2_per_tj * fuel.oxidation_fraction
        fuel_emissions[i] = int(to_micro(tco2))
        drafts.append(
            EntryDraft(
                kind="emission",
                account_id=holder,
                key=f"{a.id}:scope1:fuel.{a.fuel}",
                rule=RULE_FUEL,
                factor_version=version,
                factors={
                    "ncv_mj_per_unit": fuel.ncv_mj_per_unit,
                    "ef_tco2_per_tj": fuel.ef_tco2_per_tj,
                    "oxidation_fraction": fuel.oxidation_fraction,
                    "kgce_per_unit": fuel.kgce_per_unit,
                },
                activity={
                    "fuel": a.fuel,
                    "quantity": round(float(units), 6),
                    "unit": fuel.unit,
                    "electricity_mwh": round(float(produced[i]), 6),
                    "electric_efficiency": a.electric_efficiency,
                },
                postings=(
                    Posting(holder, f"emissions.scope1.fuel.{a.fuel}", "tCO2", int(fuel_emissions[i])),
                    Posting("external:atmosphere", "co2", "tCO2", -int(fuel_emissions[i])),
                ),
            )
        )

    xg, xo = int(to_micro(exported_green)), int(to_micro(exported_other))
    operator_emissions = -int(to_micro(xo / MICRO * ef))
    if xg or xo:
        drafts.append(
            EntryDraft(
                kind="electricity_export",
                account_id=operator,
                rule=RULE_ELEC,
                factor_version=version,
                postings=tuple(
                    p
                    for p in (
                        Posting(operator, "electricity.exported_green", "MWh", xg) if xg else None,
                        Posting(operator, "electricity.exported_other", "MWh", xo) if xo else None,
                        Posting("supply:export", "electricity.exported", "MWh", -(xg + xo)),
                    )
                    if p is not None
                ),
            )
        )
    if operator_emissions:
        drafts.append(
            EntryDraft(
                kind="emission",
                account_id=operator,
                key="scope2:electricity_export",
                rule=RULE_ELEC,
                factor_version=version,
                factors={"grid_ef_tco2_per_mwh": ef},
                activity={"exported_other_mwh": xo / MICRO},
                postings=(
                    Posting(operator, "emissions.scope2.electricity_export", "tCO2", operator_emissions),
                    Posting("external:atmosphere", "co2", "tCO2", -operator_emissions),
                ),
            )
        )

    def gec(kind: str, postings: list[Posting], activity: dict[str, Any] | None = None) -> None:
        if any(p.micro for p in postings):
            drafts.append(
                EntryDraft(
                    kind=kind,
                    account_id="park",
                    rule=RULE_GEC,
                    factor_version=version,
                    postings=tuple(postings),
                    activity=activity or {},
                )
            )

    gec(
        "gec_issue", _pair(holders, issued, "gec.holding", "MWh_green", "external:gec_registry", "gec.issued")
    )
    gec(
        "gec_cancel_direct",
        [
            Posting(h, "gec.holding", "MWh_green", -int(q))
            for h, q in zip(holders, debit_direct, strict=True)
            if q
        ]
        + [
            Posting(h, "green.direct", "MWh_green", int(q))
            for h, q in zip(holders, electricity["direct_green"], strict=True)
            if q
        ],
    )
    gec(
        "green_trade",
        _pair(
            holders,
            electricity["green_traded"],
            "green.traded",
            "MWh_green",
            "external:green_power_market",
            "green.traded",
        ),
    )
    if bought:
        gec(
            "gec_purchase",
            [
                Posting(operator, "gec.holding", "MWh_green", bought),
                Posting("external:gec_market", "gec.traded", "MWh_green", -bought),
            ],
            {"price_cny": carbon.green_certificate_price_cny},
        )
    gec(
        "gec_cancel_cover",
        [
            Posting(h, "gec.holding", "MWh_green", -int(q))
            for h, q in zip(holders, debit_cover, strict=True)
            if q
        ]
        + ([Posting(operator, "gec.holding", "MWh_green", -bought)] if bought else [])
        + [
            Posting(h, "green.certificate_covered", "MWh_green", int(q))
            for h, q in zip(holders, electricity["certificate_covered"], strict=True)
            if q
        ],
    )
    sold = int(debit_sale.sum())
    if sold:
        gec(
            "gec_sale",
            [
                Posting(h, "gec.holding", "MWh_green", -int(q))
                for h, q in zip(holders, debit_sale, strict=True)
                if q
            ]
            + [Posting("external:gec_market", "gec.traded", "MWh_green", sold)],
            {"price_cny": carbon.green_certificate_price_cny},
        )

    metered_mu, metered_t = _metered_entries(carbon, metered, drafts, energy_mwh.shape[1])
    green = sum(electricity[k] for k in GREEN_TYPES)
    summary = {
        "electricity_mwh": {k: v / MICRO for k, v in pools.items()},
        "imported_mwh": round(float(imported_mwh.sum()), 6),
        "exported_green_mwh": xg / MICRO,
        "exported_other_mwh": xo / MICRO,
        "certificates_mwh": {
            "issued": issued_total / MICRO,
            "cancelled_direct": direct / MICRO,
            "cancelled_cover": (covered_own + bought) / MICRO,
            "bought": bought / MICRO,
            "sold": sold / MICRO,
        },
        "grid_ef_tco2_per_mwh": ef,
        "fuel_tco2": int(fuel_emissions.sum()) / MICRO,
        "by_interval": {
            "electricity_mwh": {k: (m / MICRO).round(6).tolist() for k, m in pool_t.items()},
            "grid_emissions_tco2": (emissions_t / MICRO).round(6).tolist(),
            "heat_fuel_emissions_tco2": (metered_t / MICRO).round(6).tolist(),
        },
        "metered_heat_fuel_tco2": sum(metered_mu.values()) / MICRO,
        "factor_version": version,
    }
    return CarbonDay(
        holders=holders,
        enterprise_of=[a.enterprise for a in assets],
        electricity_mu=electricity,
        emissions_mu=grid_emissions + fuel_emissions,
        green_mu=green,
        operator=operator,
        operator_emissions_mu=operator_emissions,
        exported_green_mu=xg,
        exported_other_mu=xo,
        drafts=drafts,
        summary=summary,
        metered_emissions_mu=metered_mu,
    )


RULE_HEAT = "park method E_heat = fossil heat x EF (metered); non-fossil heat 0"
RULE_METERED_FUEL = "park method E_fuel = metered consumption x NCV x EF x oxidation"


def _metered_entries(
    carbon: Any, metered: Any, drafts: list[EntryDraft], n: int
) -> tuple[dict[str, int], np.ndarray]:
    """Ledger entries of the day's heat and fuel meters; emissions per enterprise and per interval."""
    per_ent: dict[str, int] = {}
    per_t = np.zeros(n, dtype=np.int64)
    if metered is None:
        return per_ent, per_t
    from settlement.metered import FUEL_QUANTITIES, HEAT_QUANTITIES

    for m in metered.meters:
        total = float(m.values.sum())
        if m.quantity in HEAT_QUANTITIES:
            kind = HEAT_QUANTITIES[m.quantity]
            mwh = int(to_micro(total / 3.6))
            ef = carbon.fossil_heat_ef_tco2_per_gj if kind == "fossil" else 0.0
            co2 = int(to_micro(total * ef))
            postings = [
                Posting(m.holder, f"heat.{kind}", "MWh", mwh),
                Posting("supply:heat", "heat", "MWh", -mwh),
            ]
            if co2:
                postings += [
                    Posting(m.holder, "emissions.scope2.heat", "tCO2", co2),
                    Posting("external:atmosphere", "co2", "tCO2", -co2),
                ]
            factors = {"fossil_heat_ef_tco2_per_gj": ef, "heat_kgce_per_mj": carbon.heat_kgce_per_mj}
            activity = {f"{kind}_gj": round(total, 6), "meter": m.series}
            rule, entry_kind = RULE_HEAT, "heat_use"
        else:
            fuel_id, unit = FUEL_QUANTITIES[m.quantity]
            fuel = carbon.fuels[fuel_id]
            co2 = int(
                to_micro(total * fuel.ncv_mj_per_unit * 1e-6 * fuel.ef_tco2_per_tj * fuel.oxidation_fraction)
            )
            postings = [
                Posting(m.holder, f"emissions.scope1.fuel.{fuel_id}", "tCO2", co2),
                Posting("external:atmosphere", "co2", "tCO2", -co2),
            ]
            factors = {
                "ncv_mj_per_unit": fuel.ncv_mj_per_unit,
                "ef_tco2_per_tj": fuel.ef_tco2_per_tj,
                "oxidation_fraction": fuel.oxidation_fraction,
                "kgce_per_unit": fuel.kgce_per_unit,
            }
            activity = {"fuel": fuel_id, "quantity": round(total, 6), "unit": unit, "meter": m.series}
            rule, entry_kind = RULE_METERED_FUEL, "fuel_use"
        postings = [p for p in postings if p.micro]
        if not postings:
            continue
        per_ent[m.enterprise] = per_ent.get(m.enterprise, 0) + co2
        if co2:  # the day's exact total, split over the intervals by the readings
            per_t += allocate(co2, np.maximum(m.values, 0.0))
        drafts.append(
            EntryDraft(
                kind=entry_kind,
                account_id=m.holder,
                key=f"metered:{m.quantity}",
                rule=rule,
                factor_version=carbon.version,
                factors=factors,
                activity=activity,
                postings=tuple(postings),
            )
        )
    return per_ent, per_t
