"""Offer curves: the optimiser's (price, injection) points put into the province's offer format.

Each interval's points come from the K price scenarios (cheapest first). The rules are
applied in a fixed order: prices to the tick (half up) and inside the offer limits, equal
prices merged, then segments below the minimum size merged with their nearest neighbour,
then the closest-priced neighbours merged until the count fits; merges take the
quantity-weighted price. The result is monotone by construction:
prices strictly rise and every quantity is positive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from infra.contracts import EnergyCurve, Segment
from infra.scenario import MarketRules

# Quantities below this (MW) are solver noise, not an offer.
QUANTITY_EPSILON_MW = 1e-3
QUANTITY_DECIMALS = 3


def to_tick(price: float, rules: MarketRules) -> float:
    tick = rules.price_tick_cny_per_mwh
    clipped = min(max(price, rules.offer_price_floor_cny_per_mwh), rules.offer_price_cap_cny_per_mwh)
    ticked = math.floor(clipped / tick + 0.5) * tick  # half up
    # Rounding may step outside a limit that is not itself on the tick grid.
    if ticked > rules.offer_price_cap_cny_per_mwh:
        ticked -= tick
    if ticked < rules.offer_price_floor_cny_per_mwh:
        ticked += tick
    return round(ticked, 6)


def band_tick(price: float, rules: MarketRules, *, up: bool) -> float | None:
    """A band's price on the tick, rounded to the side where the band still pays (up bands sell
    at or above their price, so up; down bands buy below theirs, so down); None when no clearing
    price inside the offer limits would make the band pay (an up band dearer than the cap, a
    down band below the floor)."""
    tick = rules.price_tick_cny_per_mwh
    if up and price > rules.offer_price_cap_cny_per_mwh + 1e-9:
        return None
    if not up and price <= rules.offer_price_floor_cny_per_mwh + 1e-9:
        return None
    steps = price / tick
    ticked = (math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * tick
    ticked = min(max(ticked, rules.offer_price_floor_cny_per_mwh), rules.offer_price_cap_cny_per_mwh)
    return round(ticked, 6)


def _merge(steps: list[list[float]], i: int, j: int, rules: MarketRules) -> None:
    """Merge step j into step i (neighbours) at their quantity-weighted price."""
    (pi, qi), (pj, qj) = steps[i], steps[j]
    steps[i] = [to_tick((pi * qi + pj * qj) / (qi + qj), rules), qi + qj]
    del steps[j]


def _merge_equal_prices(steps: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for price, qty in steps:
        if out and abs(out[-1][0] - price) < 1e-9:
            out[-1][1] += qty
        else:
            out.append([price, qty])
    return out


def energy_curve(
    prices: Sequence[float],
    quantities: Sequence[float],
    rules: MarketRules,
    median_price: float,
    up_bands: Sequence[tuple[float, float]] = (),
    down_bands: Sequence[tuple[float, float]] = (),
) -> EnergyCurve:
    """Offer curve through the points (prices ascending, the park's injection at each), plus bands.

    ``base_mw`` is the injection at the cheapest point. Scenario steps too small for one
    minimum-size segment are merged as described above; a last one too small goes into the
    base if the median price would buy it, else is dropped.

    ``up_bands`` (price, MW) add injection at or above their price; ``down_bands`` (price, MW)
    add consumption below theirs (the base drops by the band and a step at the price restores
    it). Bands keep their own price: moving a band would sell or buy where it does not pay, so a
    band below the minimum size, or beyond the segment count, is left out (smallest first).
    """
    q = np.maximum.accumulate(np.asarray(quantities, dtype=float))
    base = float(q[0])
    steps = [[to_tick(p, rules), float(dq)] for p, dq in zip(prices[1:], np.diff(q), strict=True)]
    steps = _merge_equal_prices([s for s in steps if s[1] > QUANTITY_EPSILON_MW])
    minimum = max(rules.min_segment_mw, QUANTITY_EPSILON_MW)
    while len(steps) > 1:
        small = [k for k, s in enumerate(steps) if s[1] < minimum]
        if small:
            k = min(small, key=lambda idx: steps[idx][1])
            if k == 0:
                neighbour = 1
            elif k == len(steps) - 1:
                neighbour = k - 1
            else:
                closer_below = steps[k][0] - steps[k - 1][0] <= steps[k + 1][0] - steps[k][0]
                neighbour = k - 1 if closer_below else k + 1
            _merge(steps, *sorted((k, neighbour)), rules)
        elif len(steps) > rules.max_segments:
            gaps = [steps[k + 1][0] - steps[k][0] for k in range(len(steps) - 1)]
            k = int(np.argmin(gaps))
            _merge(steps, k, k + 1, rules)
        else:
            break
        steps = _merge_equal_prices(steps)
    if len(steps) == 1 and steps[0][1] < minimum:
        price, qty = steps.pop()
        if price <= median_price:
            base += qty
    base = _add_bands(steps, base, up_bands, down_bands, rules)
    return EnergyCurve(
        base_mw=round(base, QUANTITY_DECIMALS),
        segments=[
            Segment(price_cny_per_mwh=p, quantity_mw=round(qty, QUANTITY_DECIMALS)) for p, qty in steps
        ],
    )


def _add_bands(
    steps: list[list[float]],
    base: float,
    up_bands: Sequence[tuple[float, float]],
    down_bands: Sequence[tuple[float, float]],
    rules: MarketRules,
) -> float:
    """Add the largest bands that fit the rules as they are; returns the new base."""
    candidates: dict[tuple[str, float], float] = {}
    for kind, bands in (("up", up_bands), ("down", down_bands)):
        for price, qty in bands:
            ticked = band_tick(price, rules, up=kind == "up")
            if ticked is None:
                continue
            key = (kind, ticked)
            candidates[key] = candidates.get(key, 0.0) + qty
    prices = {p for p, _ in steps}
    for (kind, price), qty in sorted(candidates.items(), key=lambda item: -item[1]):
        if qty < max(rules.min_segment_mw, QUANTITY_EPSILON_MW):
            break
        if price not in prices and len(prices) >= rules.max_segments:
            continue
        prices.add(price)
        steps.append([price, qty])
        if kind == "down":
            base -= qty
    steps.sort()
    steps[:] = _merge_equal_prices(steps)
    return base


def curve_problems(curve: EnergyCurve, rules: MarketRules) -> list[str]:
    """Every way a curve breaks the province's offer format (empty when it complies)."""
    out = []
    prices = [s.price_cny_per_mwh for s in curve.segments]
    if len(curve.segments) > rules.max_segments:
        out.append(f"{len(curve.segments)} segments, more than max_segments={rules.max_segments}")
    if any(b <= a for a, b in itertools.pairwise(prices)):
        out.append("segment prices do not strictly rise")
    for s in curve.segments:
        if s.quantity_mw < rules.min_segment_mw - 1e-9:
            out.append(f"segment of {s.quantity_mw} MW is below min_segment_mw={rules.min_segment_mw}")
        if (
            not rules.offer_price_floor_cny_per_mwh
            <= s.price_cny_per_mwh
            <= rules.offer_price_cap_cny_per_mwh
        ):
            out.append(f"price {s.price_cny_per_mwh} outside the offer limits")
        ticks = s.price_cny_per_mwh / rules.price_tick_cny_per_mwh
        if abs(ticks - round(ticks)) > 1e-6:
            out.append(f"price {s.price_cny_per_mwh} is not on the {rules.price_tick_cny_per_mwh} tick")
    return out
