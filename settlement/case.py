"""Settlement cases from files: ``parkvpp settlement case FILE.yaml [--json]``.

A case is a few intervals of one park-day written by hand: the market rules (a market file
with overrides), a small park (enterprises, assets, contracts), the awards, prices, metering,
baselines and optionally a tariff. It is settled by :func:`settlement.day.settle_day`, the same
code as production, and ``expect`` (optional) is checked to the fen. The README ("Settlement
cases") gives a worked example with the hand arithmetic.

Format (every list has one value per interval)::

    case: three-part energy, deviation outside the free band
    interval_minutes: 60
    market: shanxi                     # infra/scenario/markets/<id>.yaml
    rules:                             # overrides of the market rules (merged)
      deviation: {free_band_fraction: 0.03, penalty_price_factor: 1.0}
      grid_import_tariff_cny_per_mwh: 0
    enterprises:
      - {id: op}                       # the operator: no contract
      - {id: fab, contract: {kind: tou_plus_share, share_fraction: 0.5}}
    assets:                            # type defaults are filled in (see ASSET_DEFAULTS)
      - {id: load_fab, type: inflexible_load, enterprise: fab, peak_mw: 20}
    contracts: []                      # medium/long-term: {id, quantity_mw, price_cny_per_mwh, hours, green}
    day_ahead: {cleared_mw: [..], price: [..], regulation_mw: [..], regulation_price: [..], dr_mw: [..], dr_price: [..]}
    real_time: {cleared_mw: [..], price: [..]}
    real_time_bids:                    # optional: awards of real-time bids on the market's real-time grid
      - {first: "00:05", cleared_mw: [..], price: [..]}   # one value per real-time interval from `first`
    metering: {grid: [..], assets: {load_fab: [..]}, regulation: {mileage_mw: [..], k1: [..], k2: [..], k3: [..]}}
    baseline: {grid: [..], assets: {load_fab: [..]}}
    tariff: {seasons: [...], demand_charge_cny_per_kw_month: .., enterprises: {...}}   # settlement/tariffs.py
    expect: {park: {real_time_energy: -40.0, total: -3240.0}, fab: {energy_supply: ...}}
"""

from __future__ import annotations

import copy
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from infra.scenario import ScenarioError, load_scenario
from infra.scenario.loader import load_market, parse_market, parse_scenario
from infra.scenario.model import Scenario
from infra.timeutil import day_intervals
from settlement.baseline import Baseline
from settlement.day import DayResult, settle_day
from settlement.facts import MEASURED, DayFacts
from settlement.realtime import RealTimeGrid, real_time_grid
from settlement.tariffs import Tariff, parse_tariff

SRC = "[case] settlement case file"
DEFAULT_DAY = date(2026, 7, 15)

ASSET_DEFAULTS: dict[str, dict[str, Any]] = {
    "pv": {
        "capacity_mw": 10,
        "kind": "central",
        "tilt_deg": 30,
        "azimuth_deg": 180,
        "system_loss_fraction": 0.14,
    },
    "gas_generator": {
        "capacity_mw": 5,
        "min_load_fraction": 0.3,
        "electric_efficiency": 0.4,
        "fuel": "natural_gas",
        "annual_fuel_budget_units": 1e6,
    },
    "battery": {
        "power_mw": 5,
        "energy_mwh": 10,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.95,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 0,
    },
    "inflexible_load": {
        "peak_mw": 20,
        "load_factor": 0.8,
        "profile": "three_shift",
        "weekend_factor": 1,
        "holiday_factor": 1,
    },
    "interruptible_load": {
        "baseline_mw": 6,
        "max_curtail_mw": 5,
        "max_duration_h": 2,
        "max_energy_mwh_per_day": 10,
        "cost_cny_per_mwh": 300,
        "notice_minutes": 0,
    },
}


class CaseError(ValueError):
    """A case file is invalid; every problem is named."""


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _series(raw: Any, where: str, n: int, problems: list[str], default: float | None = 0.0) -> np.ndarray:
    if raw is None:
        if default is None:
            problems.append(f"{where}: required ({n} values)")
        return np.full(n, default if default is not None else 0.0)
    if not isinstance(raw, list) or len(raw) != n:
        problems.append(f"{where}: must be a list of {n} numbers (one per interval)")
        return np.zeros(n)
    try:
        values = np.array([float(v) for v in raw])
    except (TypeError, ValueError):
        problems.append(f"{where}: must be numbers")
        return np.zeros(n)
    if not np.isfinite(values).all():
        problems.append(f"{where}: must be finite numbers")
    return values


def _scenario(spec: dict[str, Any], minutes: int, problems: list[str]) -> Scenario | None:
    try:
        market = load_market(str(spec.get("market", "shanxi")))
    except ScenarioError as exc:
        problems.append(f"market: {exc}")
        return None
    raw_market = _merge(market.model_dump(mode="json"), spec.get("rules") or {})
    raw_market.update(
        id=f"{market.id}-case", day_ahead_interval_minutes=minutes, real_time_interval_minutes=minutes
    )
    base = load_scenario(str(spec.get("base_park", "datong"))).park.model_dump(mode="json")
    enterprises = []
    for e in spec.get("enterprises") or []:
        enterprises.append({"name": e["id"], "sector": "case", "source": SRC, "contract": None, **e})
    assets = []
    for a in spec.get("assets") or []:
        kind = a.get("type")
        if kind not in ASSET_DEFAULTS:
            problems.append(f"assets.{a.get('id')}.type: {kind!r} must be one of {', '.join(ASSET_DEFAULTS)}")
            continue
        assets.append({"name": a["id"], "connection": "node", "source": SRC, **ASSET_DEFAULTS[kind], **a})
    raw = {
        "id": str(spec.get("park", "case")),
        "name": str(spec.get("case", "settlement case")),
        "province": base.get("province", "Shanxi"),
        "version": "case",
        "timezone": "Asia/Shanghai",
        "market": raw_market["id"],
        "source": SRC,
        "choices": [],
        "location": base["location"],
        "simulation": base["simulation"],
        "carbon": _merge(base["carbon"], spec.get("carbon") or {}),
        "grid": [
            {
                "id": "node",
                "voltage_kv": 35,
                "import_limit_mw": 10000,
                "export_limit_mw": 10000,
                "source": SRC,
            }
        ],
        "enterprises": enterprises,
        "contracts": [{"green": False, "source": SRC, **c} for c in spec.get("contracts") or []],
        "assets": assets,
    }
    if problems:
        return None
    try:
        return parse_scenario(raw, parse_market(raw_market, raw_market["id"]), str(spec.get("case", "case")))
    except ScenarioError as exc:
        problems.append(str(exc))
        return None


def build_case(spec: Any) -> tuple[Scenario, DayFacts, Baseline, Tariff | None]:
    if not isinstance(spec, dict):
        raise CaseError("a case file is a mapping (see settlement/case.py)")
    problems: list[str] = []
    minutes = int(spec.get("interval_minutes", 60))
    if minutes <= 0 or 1440 % minutes:
        raise CaseError(f"interval_minutes: {minutes} must divide a day")
    day = spec.get("day", DEFAULT_DAY)
    day = day if isinstance(day, date) else date.fromisoformat(str(day))
    grid = spec.get("metering", {}).get("grid")
    if not isinstance(grid, list) or not grid:
        raise CaseError("metering.grid: required, one value per interval (it sets the number of intervals)")
    n = len(grid)
    if n > 1440 // minutes:
        raise CaseError(f"metering.grid: {n} intervals do not fit in a day of {minutes}-minute intervals")
    scenario = _scenario(spec, minutes, problems)
    da, rt = spec.get("day_ahead") or {}, spec.get("real_time") or {}
    met = spec.get("metering") or {}
    base = spec.get("baseline") or {}
    arrays = {
        "q_da": _series(da.get("cleared_mw"), "day_ahead.cleared_mw", n, problems, None),
        "p_da": _series(da.get("price"), "day_ahead.price", n, problems, None),
        "reg": _series(da.get("regulation_mw"), "day_ahead.regulation_mw", n, problems),
        "reg_p": _series(da.get("regulation_price"), "day_ahead.regulation_price", n, problems),
        "dr": _series(da.get("dr_mw"), "day_ahead.dr_mw", n, problems),
        "dr_p": _series(da.get("dr_price"), "day_ahead.dr_price", n, problems),
        "q_rt": _series(rt.get("cleared_mw"), "real_time.cleared_mw", n, problems, None),
        "p_rt": _series(rt.get("price"), "real_time.price", n, problems, None),
        "grid": _series(grid, "metering.grid", n, problems, None),
        "base_grid": _series(base.get("grid"), "baseline.grid", n, problems, math.nan),
    }
    reg = met.get("regulation")
    mileage = k = None
    if reg:
        mileage = _series(reg.get("mileage_mw"), "metering.regulation.mileage_mw", n, problems, None)
        k = tuple(
            _series(reg.get(x), f"metering.regulation.{x}", n, problems, None) for x in ("k1", "k2", "k3")
        )
    tariff = None
    if spec.get("tariff"):
        try:
            tariff = parse_tariff(
                {"park": "case", "version": "case", "effective_from": day.isoformat(), **spec["tariff"]},
                "tariff",
            )
        except ValueError as exc:
            problems.append(str(exc))
    if scenario is None or problems:
        raise CaseError("; ".join(problems))
    ids = [a.id for a in scenario.park.assets]
    metered = (
        np.vstack(
            [
                _series((met.get("assets") or {}).get(a), f"metering.assets.{a}", n, problems, None)
                for a in ids
            ]
        )
        if ids
        else np.zeros((0, n))
    )
    base_assets = (
        np.vstack(
            [
                _series((base.get("assets") or {}).get(a), f"baseline.assets.{a}", n, problems, math.nan)
                for a in ids
            ]
        )
        if ids
        else np.zeros((0, n))
    )
    if problems:
        raise CaseError("; ".join(problems))
    starts = list(day_intervals(day, minutes).to_pydatetime())[:n]
    real_time = _real_time_bids(spec.get("real_time_bids"), scenario, minutes, n, arrays)
    facts = DayFacts(
        park_id=scenario.id,
        day=day,
        interval_minutes=minutes,
        interval_starts=starts,
        q_da_mw=arrays["q_da"],
        p_da_cny_per_mwh=arrays["p_da"],
        q_rt_mw=arrays["q_rt"],
        p_rt_cny_per_mwh=arrays["p_rt"],
        regulation_mw=arrays["reg"],
        regulation_price_cny_per_mw=arrays["reg_p"],
        dr_mw=arrays["dr"],
        dr_price_cny_per_mwh=arrays["dr_p"],
        grid_mwh=arrays["grid"],
        asset_ids=tuple(ids),
        metered_mwh=metered,
        quality=np.full(metered.shape, MEASURED, dtype=np.int8),
        mileage_mw=mileage,
        k_inputs=k,  # type: ignore[arg-type]
        source_message_ids=("case-day-ahead", "case-real-time", "case-metering"),
        real_time=real_time,
    )
    baseline = Baseline(
        arrays["base_grid"],
        base_assets,
        {"target": day.isoformat(), "n_days": 0, "sources": {}, "meters": []},
    )
    return scenario, facts, baseline, tariff


def _real_time_bids(
    bids: Any, scenario: Scenario, minutes: int, n: int, arrays: dict[str, np.ndarray]
) -> RealTimeGrid | None:
    """``real_time_bids`` on the real-time grid over the case's whole-day real-time prices."""
    if not bids:
        return None
    rt_minutes = scenario.market.market_for("real_time_energy")[1].interval_minutes
    if not isinstance(bids, list) or minutes % rt_minutes:
        raise CaseError(
            f"real_time_bids: a list of bids, and {minutes}-minute intervals must hold whole {rt_minutes}-minute ones"
        )
    per = minutes // rt_minutes
    parts, problems = [], []
    for i, bid in enumerate(bids):
        name = f"real_time_bids[{i}]"
        try:
            hh, mm = (int(x) for x in str(bid["first"]).split(":"))
            first = (hh * 60 + mm) // rt_minutes
            if (hh * 60 + mm) % rt_minutes:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            problems.append(f"{name}.first: HH:MM of its first {rt_minutes}-minute interval")
            continue
        size = len(bid.get("cleared_mw") or [])
        if size == 0 or first + size > n * per:
            problems.append(
                f"{name}.cleared_mw: one value per interval, inside the case's {n * per} intervals"
            )
            continue
        q = _series(bid.get("cleared_mw"), f"{name}.cleared_mw", size, problems, None)
        price = _series(bid.get("price"), f"{name}.price", size, problems, None)
        parts.append((first, q, price, f"case-real-time-bid-{i}"))
    if problems:
        raise CaseError("; ".join(problems))
    return real_time_grid(rt_minutes, minutes, arrays["q_da"], np.repeat(arrays["p_rt"], per), parts)


def _fen(x: float) -> int:
    return round(x * 100)


def check_expectations(result: DayResult, expect: dict[str, Any]) -> list[str]:
    """Each expected figure against the settled one, to the fen."""
    out = []
    by = {st.account_id: st for st in result.statements}
    for account, figures in (expect or {}).items():
        st = by.get(str(account))
        if st is None:
            out.append(f"expect.{account}: no such account")
            continue
        lines = {line.item: line for line in st.lines}
        for item, want in figures.items():
            if item == "total":
                got = st.total_cny
            elif item == "emissions_tco2":
                if round(st.emissions_tco2 * 1e6) != round(float(want) * 1e6):
                    out.append(f"expect.{account}.emissions_tco2: {want} but settled {st.emissions_tco2}")
                continue
            elif item in lines:
                got = lines[item].amount_cny
            else:
                out.append(f"expect.{account}.{item}: the statement has no such line")
                continue
            if isinstance(want, list):
                got_list = lines[item].interval_amount_cny if item in lines else st.interval_total_cny
                if [_fen(v) for v in got_list] != [_fen(float(v)) for v in want]:
                    out.append(
                        f"expect.{account}.{item}: {want} but settled {[round(v, 2) for v in got_list]}"
                    )
            elif _fen(got) != _fen(float(want)):
                out.append(f"expect.{account}.{item}: {float(want):,.2f} but settled {got:,.2f}")
    return out


def run_case(path: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CaseError(f"{path}: cannot read the file ({exc})") from exc
    try:
        scenario, facts, baseline, tariff = build_case(spec)
    except CaseError as exc:
        raise CaseError(f"{path}: {exc}") from exc
    result = settle_day(scenario, facts, baseline, tariff=tariff)
    mismatches = check_expectations(result, spec.get("expect") or {})
    return {
        "case": spec.get("case", path.stem),
        "intervals": facts.n,
        "interval_minutes": facts.interval_minutes,
        "accounts": [
            {
                "account_id": st.account_id,
                "total_cny": st.total_cny,
                "emissions_tco2": st.emissions_tco2,
                "lines": {
                    line.item: {
                        "amount_cny": line.amount_cny,
                        "intervals_cny": line.interval_amount_cny,
                        "energy_mwh": line.energy_mwh,
                    }
                    for line in st.lines
                    if line.amount_cny or any(line.interval_amount_cny)
                },
            }
            for st in result.statements
        ],
        "economics": result.record["economics"],
        "expectations_checked": sum(len(v) for v in (spec.get("expect") or {}).values()),
        "mismatches": mismatches,
    }
