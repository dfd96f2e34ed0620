"""``parkvpp bench bidding``: how fast offers become rule-checked bids and bids clear.

The rules engine keeps each curve as plain ``(price, quantity)`` floats while it rounds,
merges and counts segments, and builds the typed models once at the end. The naive
reference below is the straightforward first version: the same rules with a validated
pydantic ``Segment`` rebuilt at every step. Both run on the same generated offers in one
process, must produce identical bids, and the ratio is printed.
"""

from __future__ import annotations

import json
import math
import time
from datetime import date

import numpy as np
import typer

from bidding.rules import EPS_MW, _round_to_tick, make_bid
from infra.contracts import EnergyCurve, Offer, Segment
from infra.registry import open_portfolio
from infra.scenario.model import MarketRules
from infra.settings import get_settings
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)


def generated_offers(n_offers: int, seed: int = 7) -> list[Offer]:
    gen = np.random.default_rng(seed)
    starts = list(day_intervals(DAY, 15))
    offers = []
    for _ in range(n_offers):
        energy = []
        for _ in starts:
            prices = np.sort(gen.uniform(-50, 1600, 14))
            quantities = gen.uniform(0.2, 30, 14)
            energy.append(
                EnergyCurve(
                    base_mw=float(gen.uniform(-400, -100)),
                    segments=[
                        Segment(price_cny_per_mwh=float(p), quantity_mw=float(q))
                        for p, q in zip(prices, quantities, strict=True)
                    ],
                )
            )
        offers.append(
            Offer(
                interval_minutes=15,
                interval_starts=starts,
                market="day_ahead",
                scenario_version="bench",
                forecast_message_id="bench",
                energy=energy,
                expected_revenue_cny=0,
                expected_emissions_tco2=0,
            )
        )
    return offers


def naive_curve(curve: EnergyCurve, rules: MarketRules) -> EnergyCurve:
    """Reference: the same rules, rebuilding validated Segment models at every step."""
    lo, hi = rules.offer_price_floor_cny_per_mwh, rules.offer_price_cap_cny_per_mwh
    segs = [
        Segment(
            price_cny_per_mwh=min(
                max(_round_to_tick(s.price_cny_per_mwh, rules.price_tick_cny_per_mwh), lo), hi
            ),
            quantity_mw=s.quantity_mw,
        )
        for s in curve.segments
        if s.quantity_mw > EPS_MW
    ]
    merged: list[Segment] = []
    for s in sorted(segs, key=lambda s: s.price_cny_per_mwh):
        if merged and math.isclose(merged[-1].price_cny_per_mwh, s.price_cny_per_mwh):
            last = merged.pop()
            s = Segment(
                price_cny_per_mwh=last.price_cny_per_mwh, quantity_mw=last.quantity_mw + s.quantity_mw
            )
        merged.append(s)
    i = 0
    while i < len(merged) and len(merged) > 1:
        if merged[i].quantity_mw + EPS_MW >= rules.min_segment_mw:
            i += 1
            continue
        j = i + 1 if i + 1 < len(merged) else i - 1
        merged[j] = Segment(
            price_cny_per_mwh=merged[j].price_cny_per_mwh,
            quantity_mw=merged[j].quantity_mw + merged[i].quantity_mw,
        )
        del merged[i]
        i = max(i - 1, 0) if j < i else i
    while len(merged) > rules.max_segments:
        gaps = [merged[k + 1].price_cny_per_mwh - merged[k].price_cny_per_mwh for k in range(len(merged) - 1)]
        k = gaps.index(min(gaps))
        merged[k : k + 2] = [
            Segment(
                price_cny_per_mwh=merged[k + 1].price_cny_per_mwh,
                quantity_mw=merged[k].quantity_mw + merged[k + 1].quantity_mw,
            )
        ]
    return EnergyCurve(
        base_mw=round(curve.base_mw, 3),
        segments=[
            Segment(price_cny_per_mwh=s.price_cny_per_mwh, quantity_mw=round(s.quantity_mw, 3))
            for s in merged
        ],
    )


def run(n_offers: int = 100, as_json: bool = False) -> dict[str, float]:
    scenario = open_portfolio(get_settings().resolved_database_url, "datong", DAY)
    rules = scenario.market
    offers = generated_offers(n_offers)
    intervals = n_offers * len(offers[0].energy)

    t0 = time.perf_counter()
    bids = [make_bid(o, "bench", rules) for o in offers]
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = [[naive_curve(c, rules) for c in o.energy] for o in offers]
    naive_s = time.perf_counter() - t0
    if [b.energy for b in bids] != naive:
        raise RuntimeError("the rules engine and the naive reference disagree")
    result = {
        "offers": n_offers,
        "intervals": intervals,
        "rules_intervals_per_s": intervals / fast_s,
        "naive_rules_intervals_per_s": intervals / naive_s,
        "rules_speedup": naive_s / fast_s,
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"rules engine: {intervals:,} intervals ({n_offers} offers x 96, 14 segments each)")
        typer.echo(
            f"  plain-float engine {result['rules_intervals_per_s']:,.0f} intervals/s, "
            f"naive model-per-step {result['naive_rules_intervals_per_s']:,.0f} intervals/s, "
            f"ratio {result['rules_speedup']:.1f}x (identical bids)"
        )
    return result
