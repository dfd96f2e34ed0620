"""The headline figures of a settled day, from settlement's day summary (its per-interval series).

* ``margin_vs_not_bidding_cny``: what bidding earned against a park that does not bid and
  takes every MWh beyond its medium/long-term contracts at the real-time price, with no
  ancillary services. With ``h`` the interval length, ``sum((Q_DA - Q_MLT) * h * (P_DA - P_RT))``
  plus the deviation charge, regulation and demand-response lines (the MLT contracts and the
  grid tariff are the same either way and cancel out).
* ``captured_spread_cny_per_mwh``: the day-ahead price where the day-ahead position sits above
  its daily mean (the VPP sells more or buys less) minus the price where it sits below, each
  weighted by the distance from the mean; ``available_spread_cny_per_mwh`` is the day's
  highest minus lowest day-ahead price, for scale.
* ``deviation_share``: ``sum(|E - Q_RT * h|) / sum(|Q_RT * h|)`` of metered against awarded energy.
* ``regulation_revenue_cny``: mileage plus capacity payments.
* ``carbon_adjusted_cny``: the park statement's carbon-adjusted revenue.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ANCILLARY = (
    "deviation_charge",
    "regulation_mileage",
    "regulation_capacity",
    "demand_response",
    "demand_response_penalty",
)


def headline(summary: dict[str, Any]) -> dict[str, float | None]:
    series = summary.get("series") or {}
    park = next((a for a in summary.get("accounts", []) if a["account_id"] == "park"), None)
    lines = park["lines"] if park else {}
    starts = series.get("interval_starts") or []
    n = len(starts)
    if not n:
        return {}
    h = 24.0 / n
    q_da = np.asarray(series.get("q_da_mw", [0.0] * n), dtype=float)
    q_rt = np.asarray(series.get("q_rt_mw", q_da), dtype=float)
    q_mlt = np.asarray(series.get("q_mlt_mw", [0.0] * n), dtype=float)
    e = np.asarray(series.get("actual_mwh", [0.0] * n), dtype=float)
    p_da = np.asarray(series.get("p_da_cny_per_mwh", [0.0] * n), dtype=float)
    p_rt = np.asarray(series.get("p_rt_cny_per_mwh", p_da), dtype=float)
    energy_margin = float(np.sum((q_da - q_mlt) * h * (p_da - p_rt)))
    margin = energy_margin + sum(float(lines.get(k, 0.0)) for k in ANCILLARY)
    shift = q_da - q_da.mean()
    up, down = shift > 1e-9, shift < -1e-9
    captured = None
    if up.any() and down.any():
        captured = float(
            np.average(p_da[up], weights=shift[up]) - np.average(p_da[down], weights=-shift[down])
        )
    awarded = np.abs(q_rt * h).sum()
    return {
        "margin_vs_not_bidding_cny": round(margin, 2),
        "energy_arbitrage_cny": round(energy_margin, 2),
        "captured_spread_cny_per_mwh": None if captured is None else round(captured, 2),
        "available_spread_cny_per_mwh": round(float(p_da.max() - p_da.min()), 2),
        "deviation_share": None if awarded == 0 else round(float(np.abs(e - q_rt * h).sum() / awarded), 4),
        "regulation_revenue_cny": round(
            float(lines.get("regulation_mileage", 0.0)) + float(lines.get("regulation_capacity", 0.0)), 2
        ),
        "carbon_adjusted_cny": round(float(park["carbon_adjusted_revenue_cny"]), 2) if park else None,
        "total_cny": round(float(park["total_cny"]), 2) if park else None,
    }
