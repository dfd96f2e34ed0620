"""Quantities a series may hold, their units and physical bounds (``quantities.yaml``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

SERIES_NAME = re.compile(r"^[a-z0-9_]{1,64}\.[a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    min: float
    max: float
    rated: bool = False  # bounded by the owning asset's rating too
    floor_at_night: bool = False
    extensive: bool = False  # an amount per interval (MWh, GJ, m3, kg): splits or sums across intervals


@lru_cache(maxsize=1)
def _config() -> dict:
    return yaml.safe_load((Path(__file__).with_name("quantities.yaml")).read_text(encoding="utf-8"))


def rating_margin_fraction() -> float:
    return float(_config()["rating_margin_fraction"])


@lru_cache(maxsize=1)
def quantities() -> dict[str, Quantity]:
    return {name: Quantity(name=name, **spec) for name, spec in _config()["quantities"].items()}


def series_problem(name: str) -> str | None:
    """Why ``name`` is not a valid series name, or None."""
    if not isinstance(name, str) or not SERIES_NAME.match(name):
        return (
            f"{str(name)[:80]!r} is not '<owner>.<quantity>' (lower-case letters, digits and _, "
            "owner up to 64 characters)"
        )
    quantity = name.split(".", 1)[1]
    if quantity not in quantities():
        return f"quantity {quantity!r} of {name!r} is not one of: {', '.join(sorted(quantities()))}"
    return None


def quantity_of(name: str) -> Quantity:
    problem = series_problem(name)
    if problem:
        raise ValueError(problem)
    return quantities()[name.split(".", 1)[1]]
