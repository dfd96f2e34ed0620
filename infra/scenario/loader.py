"""Load and validate park scenarios, turning every problem into a message a planner can act on."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from infra.scenario.model import MarketRules, Park, Scenario
from infra.settings import get_settings
from infra.validation import park_id_problem, text_file_problem

PACKAGE_DIR = Path(__file__).parent


class ScenarioError(ValueError):
    """A scenario file is malformed or inconsistent; ``problems`` lists each issue."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"scenario {name} is invalid:\n  - " + "\n  - ".join(problems))


def _describe(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """Turn a pydantic error location into 'asset 'x' (battery): field' where possible."""
    if len(loc) >= 2 and loc[0] == "assets" and isinstance(loc[1], int):
        assets = raw.get("assets") if isinstance(raw.get("assets"), list) else []
        asset = assets[loc[1]] if loc[1] < len(assets) and isinstance(assets[loc[1]], dict) else {}
        head = f"asset {asset.get('id', '#' + str(loc[1]))!r} ({asset.get('type', '?')})"
        rest = [str(p) for p in loc[2:] if p != asset.get("type")]
        return head + (": " + ".".join(rest) if rest else "")
    if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in ("enterprises", "grid", "contracts"):
        items = raw.get(loc[0]) if isinstance(raw.get(loc[0]), list) else []
        item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
        head = f"{loc[0][:-1] if loc[0] != 'grid' else 'grid node'} {item.get('id', '#' + str(loc[1]))!r}"
        return head + (": " + ".".join(str(p) for p in loc[2:]) if loc[2:] else "")
    return ".".join(str(p) for p in loc) or "(file)"


def _validation_problems(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{_describe(tuple(err['loc']), raw)}: {msg}")
    return problems


def _items(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _text_ids(items: list[dict[str, Any]]) -> list[str]:
    """Ids that are strings: anything else is reported by the field checks."""
    return [x["id"] for x in items if isinstance(x.get("id"), str)]


def _cross_reference_problems(raw: dict[str, Any]) -> list[str]:
    """Duplicate ids and dangling references, checked on the raw file so they are reported
    together with any field errors. Values of the wrong type are left to the field checks."""
    problems: list[str] = []
    for kind, key in (("asset", "assets"), ("enterprise", "enterprises"), ("grid node", "grid")):
        ids = _text_ids(_items(raw, key))
        problems += [f"{kind} id {i!r} is used {n} times" for i, n in Counter(ids).items() if n > 1]
    enterprises = set(_text_ids(_items(raw, "enterprises")))
    nodes = set(_text_ids(_items(raw, "grid")))
    carbon = raw.get("carbon") if isinstance(raw.get("carbon"), dict) else {}
    fuels = set(carbon["fuels"]) if isinstance(carbon.get("fuels"), dict) else set()
    for a in _items(raw, "assets"):
        head = f"asset {str(a.get('id'))[:64]!r} ({str(a.get('type', '?'))[:32]})"
        for field, known, what in (
            ("enterprise", enterprises, "is not a park enterprise"),
            ("connection", nodes, "is not a grid node"),
            ("fuel", fuels, "has no entry in carbon.fuels"),
        ):
            value = a.get(field)
            if isinstance(value, str) and value not in known:
                problems.append(f"{head}: {field} {value!r} {what}")
    connection = raw.get("grid_connection")
    if isinstance(connection, str) and connection not in nodes:
        problems.append(f"grid_connection: {connection!r} is not a grid node")
    if enterprises and not any(e.get("contract", "missing") is None for e in _items(raw, "enterprises")):
        problems.append("enterprises: one enterprise must be the operator (contract: null)")
    return problems


def _storage_policy_problems(park: Park) -> list[str]:
    policy = park.storage_policy
    if policy is None:
        return []
    operators = {e.id for e in park.enterprises if e.contract is None}
    renewables_mw = sum(a.capacity_mw for a in park.assets if a.type in ("pv", "wind"))
    batteries = [a for a in park.assets if a.type == "battery" and a.enterprise in operators]
    need_mw = policy.min_power_fraction_of_renewables * renewables_mw
    have_mw = sum(b.power_mw for b in batteries)
    have_mwh = sum(b.energy_mwh for b in batteries)
    problems = []
    if have_mw + 1e-9 < need_mw:
        problems.append(
            f"storage_policy: operator storage {have_mw:g} MW is below {need_mw:g} MW "
            f"({policy.min_power_fraction_of_renewables:.0%} of {renewables_mw:g} MW renewables)"
        )
    if have_mwh + 1e-9 < need_mw * policy.min_hours:
        problems.append(
            f"storage_policy: operator storage {have_mwh:g} MWh is below {need_mw * policy.min_hours:g} MWh "
            f"({need_mw:g} MW for {policy.min_hours:g} h)"
        )
    return problems


def _market_problems(park: Park, market: MarketRules) -> list[str]:
    problems = []
    for c in park.contracts:
        if (
            not market.offer_price_floor_cny_per_mwh
            <= c.price_cny_per_mwh
            <= market.offer_price_cap_cny_per_mwh
        ):
            problems.append(
                f"contract {c.id!r}: price_cny_per_mwh={c.price_cny_per_mwh} is outside the market's offer limits"
            )
    return problems


def search_dirs() -> list[Path]:
    return [*get_settings().scenario_dirs, PACKAGE_DIR]


def read_yaml(path: Path, name: str) -> dict[str, Any]:
    problem = text_file_problem(path, "scenario file")
    if problem:
        raise ScenarioError(name, [problem])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(name, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ScenarioError(name, ["the file must hold a mapping at the top level"])
    return data


def parse_market(raw: dict[str, Any], name: str) -> MarketRules:
    try:
        return MarketRules.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(name, _validation_problems(exc, raw)) from exc


def parse_scenario(raw: dict[str, Any], market: MarketRules, name: str) -> Scenario:
    """Validate a park mapping against itself and its market; all problems are reported at once."""
    references = _cross_reference_problems(raw)
    try:
        park = Park.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(name, _validation_problems(exc, raw) + references) from exc
    problems = references + _storage_policy_problems(park) + _market_problems(park, market)
    if park.market != market.id:
        problems.append(f"market: park names {park.market!r} but rules {market.id!r} were given")
    if problems:
        raise ScenarioError(name, problems)
    return Scenario(park=park, market=market)


def _find(kind: str, ident: str) -> Path:
    problem = park_id_problem(ident, f"{kind[:-1]} id")
    if problem:
        raise ScenarioError(ident[:64], [problem])
    for base in search_dirs():
        path = base / kind / f"{ident}.yaml"
        if path.exists():
            return path
    available = sorted({p.stem for base in search_dirs() for p in (base / kind).glob("*.yaml")})
    raise ScenarioError(
        ident, [f"no {kind[:-1]} file {ident}.yaml; available: {', '.join(available) or 'none'}"]
    )


def load_market(market_id: str) -> MarketRules:
    return parse_market(
        read_yaml(_find("markets", market_id), f"markets/{market_id}"), f"markets/{market_id}"
    )


def load_file(path: Path) -> Scenario:
    """Load a park file from any path, resolving its market by id."""
    name = str(path)
    raw = read_yaml(path, name)
    market_id = raw.get("market")
    if not isinstance(market_id, str):
        raise ScenarioError(name, ["market: required, the id of a markets/<id>.yaml rule file"])
    return parse_scenario(raw, load_market(market_id), name)


@lru_cache(maxsize=16)
def load_scenario(park_id: str) -> Scenario:
    """The named park (``datong``, ``chifeng`` or one in ``PARKVPP_SCENARIO_DIRS``)."""
    return load_file(_find("parks", park_id))


def available_parks() -> list[str]:
    return sorted({p.stem for base in search_dirs() for p in (base / "parks").glob("*.yaml")})


def find_park_file(park_id: str) -> Path:
    """The template file of park ``park_id`` (package parks or ``PARKVPP_SCENARIO_DIRS``)."""
    return _find("parks", park_id)
