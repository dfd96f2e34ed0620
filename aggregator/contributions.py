"""What each asset brings to a pooled offer, read from the solve the offer was made from.

The offer contract names its assets (``Offer.assets``) so a trader, an operator or an
enterprise can see which assets an offer pools and what each adds: its expected schedule over
the offer's price scenarios and the price-responsive range it gives (its spread across the
scenarios plus its flexibility bands). The worker attaches them to every offer it publishes.
"""

from __future__ import annotations

import numpy as np

from aggregator.solution import Solution
from infra.contracts import AssetContribution, Offer
from infra.scenario import Scenario


def _r(value: float) -> float:
    return round(float(value), 3) + 0.0  # no "-0.0"


def contributions(scenario: Scenario, solution: Solution) -> list[AssetContribution]:
    """Every asset of the solve with its expected net injection and price-responsive range."""
    owner = {a.id: a.enterprise for a in scenario.park.assets}
    bands = {fleet.kind: b for fleet, b in solution.bands()}
    out = []
    for fs in solution.fleets:
        b = bands.get(fs.fleet.kind)
        for i, asset_id in enumerate(fs.fleet.ids):
            if asset_id not in owner:
                continue
            power = np.asarray(fs.power[:, i, :], dtype=float)  # (K, T)
            expected = solution.weights @ power
            spread = power.max(axis=0) - power.min(axis=0)
            if b is not None:
                spread = spread + b.up_mw[i] + b.down_mw[i]
            out.append(
                AssetContribution(
                    asset_id=asset_id,
                    enterprise_id=owner[asset_id],
                    expected_mwh=_r(expected.sum() * solution.dt_h),
                    min_mw=_r(expected.min()),
                    max_mw=_r(expected.max()),
                    flexible_mw=_r(max(float(spread.max()), 0.0)),
                )
            )
    return sorted(out, key=lambda c: (c.enterprise_id, c.asset_id))


def with_contributions(offer: Offer, scenario: Scenario, solution: Solution | None) -> Offer:
    """The offer naming its assets (unchanged when there is no solve to read them from)."""
    if solution is None:
        return offer
    return offer.model_copy(update={"assets": contributions(scenario, solution)})
