"""Flexibility bands at market prices: a device's own price net of the park's import charges,
beyond the price scenarios the optimiser already answered.

A fleet prices its flexibility bands at the device (:meth:`~aggregator.devices.Fleet.flexibility_bands`:
a battery's expected marginal value of stored energy, wear and losses). Two things separate that
from the market price at which a band may be offered:

* **Import charges.** The model's objective charges every MWh imported the grid import tariff
  and every non-green MWh imported the internal carbon price x the grid emission factor
  (:meth:`aggregator.model.ParkModel._value`). One more MWh bought while the park imports
  costs ``price + charge``; one more MWh sold saves ``charge`` besides earning ``price``. So a
  band's market price is its device price minus the charge on the stretch of park injection it
  moves: up bands (more injection) stack upward from the band scenario's injection, cheapest
  first; down bands (more consumption) stack downward, most valuable first; a band crossing a
  kink of the charge (injection 0 for the tariff, minus the green contracts' MW for carbon) is
  split there into pieces priced separately.
* **The scenario points.** Inside the range of the price scenarios the offer curve is the
  optimiser's own answer: at scenario k's price the park injects scenario k's schedule. The
  price scenarios are comonotone day paths whose schedules the offer's monotonicity couples, so
  the model has one expected value of stored energy, not one per scenario (the split of the
  duals between scenarios is arbitrary). A band priced at that expected value inside the range
  would buy at a cheap scenario's prices energy that scenario does not value (the day is cheap
  all through, so is the energy later on). Bands therefore extend the curve beyond the
  scenarios: a down band buys only below the cheapest scenario's price of its interval (and
  below its own market value), an up band sells only above the dearest (and above its value).

Together an offer cleared at any of the price paths it was optimised for buys and sells exactly
what the optimum scheduled, and beyond them only what pays at the model's own marginal costs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.solution import Solution

# Pieces of a band smaller than this (MW) are rounding noise at a kink, not an offer.
PIECE_EPSILON_MW = 1e-6
# A band's price sits at least this far outside the scenarios' prices (CNY/MWh): clearing at a
# scenario's own price never calls it.
OUTSIDE_SCENARIOS_CNY_PER_MWH = 0.01


@dataclass(frozen=True)
class ImportCharge:
    """What the model charges per MWh of grid import beyond the market price."""

    tariff_cny_per_mwh: float  # on every MWh imported (net injection below 0)
    carbon_cny_per_mwh: float  # carbon price x grid EF, on imports not covered by green contracts
    green_mw: np.ndarray  # (T,) green contract MW covering imports

    def kinks(self, t: int) -> list[tuple[float, float]]:
        """(injection, charge per MWh on injection below it), per kink of interval ``t``."""
        return [(0.0, self.tariff_cny_per_mwh), (-float(self.green_mw[t]), self.carbon_cny_per_mwh)]

    def on(self, t: int, high: float) -> float:
        """Charge per MWh on a stretch of injection ending at ``high`` that crosses no kink."""
        return sum(charge for kink, charge in self.kinks(t) if high <= kink + 1e-9)


def import_charge(
    solution: Solution, tariff_cny_per_mwh: float, grid_ef_tco2_per_mwh: float, green_mw: np.ndarray
) -> ImportCharge:
    """The charges the model's objective puts on imports, at the solve's carbon price."""
    return ImportCharge(
        tariff_cny_per_mwh=float(tariff_cny_per_mwh),
        carbon_cny_per_mwh=float(solution.carbon_price) * float(grid_ef_tco2_per_mwh),
        green_mw=np.asarray(green_mw, dtype=float),
    )


def _split(t: int, low: float, high: float, charge: ImportCharge) -> list[tuple[float, float]]:
    """[low, high] cut at the kinks inside it, as (low, high) pieces."""
    cuts = sorted({k for k, _ in charge.kinks(t) if low < k < high})
    edges = [low, *cuts, high]
    return [(a, b) for a, b in itertools.pairwise(edges) if b - a > PIECE_EPSILON_MW]


def market_bands(
    t: int,
    injection_mw: float,
    prices: np.ndarray,
    up: Sequence[tuple[float, float]],
    down: Sequence[tuple[float, float]],
    charge: ImportCharge,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Device bands (price, MW) of interval ``t`` as market bands (price, MW) around the band
    scenario's injection ``injection_mw``; ``prices`` (K,) are the scenarios' prices of the interval."""
    lowest = float(np.min(prices)) - OUTSIDE_SCENARIOS_CNY_PER_MWH
    highest = float(np.max(prices)) + OUTSIDE_SCENARIOS_CNY_PER_MWH
    up_out: list[tuple[float, float]] = []
    x = injection_mw
    for price, mw in sorted(up):
        for low, high in _split(t, x, x + mw, charge):
            up_out.append((max(price - charge.on(t, high), highest), high - low))
        x += mw
    down_out: list[tuple[float, float]] = []
    x = injection_mw
    for price, mw in sorted(down, reverse=True):
        for low, high in reversed(_split(t, x - mw, x, charge)):
            down_out.append((min(price - charge.on(t, high), lowest), high - low))
        x -= mw
    return up_out, down_out
