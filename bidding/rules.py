"""Province market rules applied to an offer: what turns an :class:`Offer` into a :class:`Bid`.

Pure functions over typed records. Every change the rules force on the trader's offer is
recorded as a readable adjustment; an offer that cannot be made valid raises
:class:`BidRejected` naming the interval, the field and the rule.
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from infra.contracts import Bid, DemandResponseOffer, EnergyCurve, Offer, RegulationOffer, Segment
from infra.scenario.model import MarketRules
from infra.timeutil import MARKET_TZ

EPS_MW = 1e-6


class BidRejected(ValueError):
    """The offer breaks a market rule that no adjustment can repair."""


def _round_to_tick(value: float, tick: float) -> float:
    return round(round(value / tick) * tick, 6)


Step = tuple[float, float]  # (price_cny_per_mwh, quantity_mw): plain floats in the hot loop


def _merge_equal_prices(steps: list[Step]) -> list[Step]:
    merged: list[Step] = []
    for price, quantity in sorted(steps):
        if merged and math.isclose(merged[-1][0], price):
            merged[-1] = (merged[-1][0], merged[-1][1] + quantity)
        else:
            merged.append((price, quantity))
    return merged


def _absorb_small(steps: list[Step], min_mw: float) -> list[Step]:
    """Fold steps below the minimum size into the next dearer one (or the previous, at the end).

    Moving quantity to a higher price only makes the park sell later, never cheaper than offered.
    """
    out = list(steps)
    i = 0
    while i < len(out) and len(out) > 1:
        if out[i][1] + EPS_MW >= min_mw:
            i += 1
            continue
        j = i + 1 if i + 1 < len(out) else i - 1
        out[j] = (out[j][0], out[j][1] + out[i][1])
        del out[i]
        i = max(i - 1, 0) if j < i else i
    return out


def _limit_count(steps: list[Step], max_segments: int) -> list[Step]:
    """Merge the adjacent pair with the closest prices (into the dearer price) until few enough."""
    out = list(steps)
    while len(out) > max_segments:
        gaps = [out[k + 1][0] - out[k][0] for k in range(len(out) - 1)]
        k = gaps.index(min(gaps))
        out[k : k + 2] = [(out[k + 1][0], out[k][1] + out[k + 1][1])]
    return out


def curve_for_rules(
    curve: EnergyCurve, rules: MarketRules, label: str, adjustments: list[str]
) -> EnergyCurve:
    """One interval's curve made valid: tick-rounded, clamped, merged, sized and counted."""
    lo, hi = rules.offer_price_floor_cny_per_mwh, rules.offer_price_cap_cny_per_mwh
    tick = rules.price_tick_cny_per_mwh
    if not math.isfinite(curve.base_mw):
        raise BidRejected(f"{label}: base_mw={curve.base_mw} is not a number")
    steps: list[Step] = []
    for seg in curve.segments:
        if not math.isfinite(seg.price_cny_per_mwh) or not math.isfinite(seg.quantity_mw):
            raise BidRejected(f"{label}: segment price/quantity must be finite numbers")
        if seg.quantity_mw <= EPS_MW:
            continue
        price = min(max(_round_to_tick(seg.price_cny_per_mwh, tick), lo), hi)
        if abs(price - seg.price_cny_per_mwh) > tick / 2:
            adjustments.append(
                f"{label}: price {seg.price_cny_per_mwh:.2f} moved to {price:.2f} CNY/MWh (offer limits {lo:g}..{hi:g})"
            )
        steps.append((price, seg.quantity_mw))
    before = len(steps)
    steps = _limit_count(_absorb_small(_merge_equal_prices(steps), rules.min_segment_mw), rules.max_segments)
    if len(steps) < before:
        adjustments.append(
            f"{label}: {before} segments merged into {len(steps)} "
            f"(max {rules.max_segments}, minimum {rules.min_segment_mw:g} MW each)"
        )
    return EnergyCurve(
        base_mw=round(curve.base_mw, 3),
        segments=[Segment(price_cny_per_mwh=p, quantity_mw=round(q, 3)) for p, q in steps],
    )


def regulation_for_rules(
    offer: RegulationOffer, rules: MarketRules, label: str, adjustments: list[str]
) -> RegulationOffer:
    reg = rules.regulation
    price = min(
        max(
            _round_to_tick(offer.mileage_price_cny_per_mw, reg.price_tick_cny_per_mw),
            reg.mileage_price_min_cny_per_mw,
        ),
        reg.mileage_price_max_cny_per_mw,
    )
    if not math.isclose(price, offer.mileage_price_cny_per_mw, abs_tol=reg.price_tick_cny_per_mw / 2):
        adjustments.append(
            f"{label}: regulation mileage price {offer.mileage_price_cny_per_mw:.2f} moved to {price:.1f} CNY/MW"
        )
    return RegulationOffer(capacity_mw=round(offer.capacity_mw, 3), mileage_price_cny_per_mw=price)


def demand_response_for_rules(
    offer: DemandResponseOffer, rules: MarketRules, label: str, adjustments: list[str]
) -> DemandResponseOffer:
    dr = rules.demand_response
    cap = dr.peak_cut_cap_cny_per_mwh if offer.direction == "peak_cut" else dr.valley_fill_cap_cny_per_mwh
    price = min(_round_to_tick(offer.price_cny_per_mwh, rules.price_tick_cny_per_mwh), cap)
    if price < offer.price_cny_per_mwh - 1e-9:
        adjustments.append(
            f"{label}: {offer.direction} price {offer.price_cny_per_mwh:.0f} capped at {cap:g} CNY/MWh"
        )
    return DemandResponseOffer(
        direction=offer.direction, capacity_mw=round(offer.capacity_mw, 3), price_cny_per_mwh=price
    )


def flexible_range_mw(offer: Offer) -> float:
    """The largest price-responsive quantity in any interval: what the VPP brings to the market."""
    return max((sum(s.quantity_mw for s in c.segments) for c in offer.energy), default=0.0)


def real_time_interval_problems(offer: Offer, rules: MarketRules) -> list[str]:
    """Why a real-time offer is not on the real-time market's grid: its intervals must be that
    market's length and consecutive inside one market day (a rolling gate lets a real-time offer
    cover only the intervals still open, so it may start after midnight)."""
    market_id, market = rules.market_for("real_time_energy")
    minutes = market.interval_minutes
    if offer.interval_minutes != minutes:
        return [f"interval_minutes={offer.interval_minutes}: {market_id} intervals are {minutes} minutes"]
    if not offer.interval_starts:
        return ["interval_starts: a real-time offer needs at least one interval"]
    if any(s.tzinfo is None for s in offer.interval_starts):
        return ["interval_starts: every start must carry a timezone offset (+08:00)"]
    first = offer.interval_starts[0].astimezone(MARKET_TZ)
    day_start = datetime.combine(first.date(), time(0), tzinfo=MARKET_TZ)
    offset = (first - day_start).total_seconds() / 60
    if offset % minutes:
        return [
            f"interval_starts[0]: {first.isoformat()} is not on the {minutes}-minute grid of {first.date()}"
        ]
    step = timedelta(minutes=minutes)
    for i, s in enumerate(offer.interval_starts):
        if s != first + i * step:
            return [
                f"interval_starts[{i}]: {s.isoformat()} does not follow {first + (i - 1) * step:%H:%M} by {minutes} min"
            ]
    if first + len(offer.interval_starts) * step > day_start + timedelta(days=1):
        return [
            f"interval_starts: {len(offer.interval_starts)} intervals from {first:%H:%M} run past the market day"
        ]
    return []


def make_bid(offer: Offer, offer_message_id: str, rules: MarketRules) -> Bid:
    """Apply the province rules to an offer; the result is what gets submitted."""
    if offer.market == "day_ahead":
        if offer.interval_minutes != rules.day_ahead_interval_minutes:
            raise BidRejected(
                f"interval_minutes={offer.interval_minutes}: {rules.name} day-ahead intervals are "
                f"{rules.day_ahead_interval_minutes} minutes"
            )
        expected = 1440 // rules.day_ahead_interval_minutes
        if len(offer.energy) != expected:
            raise BidRejected(f"energy: {len(offer.energy)} intervals offered, the market day has {expected}")
    else:
        problems = real_time_interval_problems(offer, rules)
        if problems:
            raise BidRejected("; ".join(problems))
    flexible = flexible_range_mw(offer)
    if flexible + EPS_MW < rules.vpp_min_capacity_mw:
        raise BidRejected(
            f"energy: the VPP offers at most {flexible:.1f} MW of price-responsive capacity; "
            f"{rules.name} requires at least {rules.vpp_min_capacity_mw:g} MW"
        )
    adjustments: list[str] = []
    labels = [f"interval {start:%H:%M}" for start in offer.interval_starts]
    energy = [curve_for_rules(c, rules, labels[i], adjustments) for i, c in enumerate(offer.energy)]
    regulation = [
        regulation_for_rules(r, rules, labels[i], adjustments) for i, r in enumerate(offer.regulation)
    ]
    demand_response = [
        [demand_response_for_rules(o, rules, labels[i], adjustments) for o in offers]
        for i, offers in enumerate(offer.demand_response)
    ]
    market_id = (
        offer.market_id
        or rules.market_for("day_ahead_energy" if offer.market == "day_ahead" else "real_time_energy")[0]
    )
    if market_id not in rules.registry():
        raise BidRejected(f"market_id: {market_id!r} is not one of {', '.join(rules.registry())}")
    return Bid(
        **offer.model_dump(exclude={"energy", "regulation", "demand_response", "market_id"}),
        market_id=market_id,
        energy=energy,
        regulation=regulation,
        demand_response=demand_response,
        offer_message_id=offer_message_id,
        rules_version=f"{rules.id}@{rules.version}",
        adjustments=adjustments,
    )
