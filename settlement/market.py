"""The park's settlement with the exchange and the grid, per interval (pure arrays).

Sign: positive is money to the park. Energy is net injection (export positive). Each
function returns per-interval amounts in CNY; :mod:`settlement.day` rounds them to the fen.

* Three-part energy (DOMAIN.md §3): ``Q_MLT*P_MLT + (Q_DA - Q_MLT)*P_DA + (Q_actual - Q_DA)*P_RT``.
* Energy deviation: metered energy that misses the real-time schedule by more than
  ``deviation.free_band_fraction`` of it pays ``excess * P_RT * penalty_price_factor``
  (a negative real-time price never turns the charge into a payment); where the market file
  says so (``deviation.demand_response_exempt``) the deviation an awarded demand-response event
  asked for (its direction, up to its MW) is not assessed.
* Frequency regulation: ``mileage * price * K`` with ``K = w0*(a*k1 + w1*k2 + w2*k3)`` clipped to
  ``[0, k_cap]``, plus ``capacity_mw * hours * capacity_price`` where the province pays one.
* Demand response: delivery is the metered change against the baseline in the awarded
  direction. Paid ``min(delivered, award) * price`` (price capped by the rules) when at least
  ``min_delivery_fraction`` of the award was delivered; below ``deviation.threshold_fraction``
  of the award the shortfall pays ``shortfall * price * penalty_price_factor``.
* Grid import: imported energy pays ``grid_import_tariff_cny_per_mwh``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from infra.scenario.model import LongTermContract, MarketRules, Park


@dataclass(frozen=True)
class ContractPosition:
    """Medium/long-term contracts per interval: net injection and its value, and the green part."""

    q_mw: np.ndarray
    amount_cny: np.ndarray
    green_mwh: np.ndarray  # energy bought under green-power contracts (with its certificates)


def contract_active(contract: LongTermContract, starts: list[datetime]) -> np.ndarray:
    """Whether each interval starts inside the contract's daily hours (which may wrap midnight)."""
    hours = np.array([s.hour + s.minute / 60.0 for s in starts])
    h0, h1 = contract.hours
    if h0 == h1:
        return np.zeros(len(starts), dtype=bool)
    return (hours >= h0) & (hours < h1) if h0 < h1 else (hours >= h0) | (hours < h1)


def contract_position(park: Park, starts: list[datetime], hours: float) -> ContractPosition:
    q = np.zeros(len(starts))
    amount = np.zeros(len(starts))
    green = np.zeros(len(starts))
    for c in park.contracts:
        active = contract_active(c, starts)
        q += active * c.quantity_mw
        amount += active * c.quantity_mw * hours * c.price_cny_per_mwh
        if c.green:
            green += active * max(-c.quantity_mw, 0.0) * hours
    return ContractPosition(q, amount, green)


def energy_amounts(
    q_mlt_mw: np.ndarray,
    mlt_amount_cny: np.ndarray,
    q_da_mw: np.ndarray,
    p_da: np.ndarray,
    actual_mwh: np.ndarray,
    p_rt: np.ndarray,
    hours: float,
) -> dict[str, np.ndarray]:
    """The three-part energy settlement."""
    return {
        "mlt_energy": mlt_amount_cny,
        "day_ahead_energy": (q_da_mw - q_mlt_mw) * hours * p_da,
        "real_time_energy": (actual_mwh - q_da_mw * hours) * p_rt,
    }


def deviation_excess_mwh(
    rules: MarketRules,
    actual_mwh: np.ndarray,
    q_rt_mw: np.ndarray,
    hours: float,
    dr_mw: np.ndarray | None = None,
) -> np.ndarray:
    """Energy missing or exceeding the real-time schedule beyond the free band. With
    ``deviation.demand_response_exempt``, the part of the deviation in the direction of an awarded
    demand-response event (``dr_mw``: + peak cut, - valley fill), up to the event's energy, is not
    assessed: the market asked for that change."""
    schedule = q_rt_mw * hours
    deviation = actual_mwh - schedule
    if dr_mw is not None and rules.deviation.demand_response_exempt:
        direction = np.sign(dr_mw)
        asked = np.minimum(np.maximum(direction * deviation, 0.0), np.abs(dr_mw) * hours)
        deviation = deviation - direction * asked
    return np.maximum(np.abs(deviation) - rules.deviation.free_band_fraction * np.abs(schedule), 0.0)


def deviation_charge(
    rules: MarketRules,
    actual_mwh: np.ndarray,
    q_rt_mw: np.ndarray,
    p_rt: np.ndarray,
    hours: float,
    dr_mw: np.ndarray | None = None,
) -> np.ndarray:
    excess = deviation_excess_mwh(rules, actual_mwh, q_rt_mw, hours, dr_mw)
    return -excess * np.maximum(p_rt, 0.0) * rules.deviation.penalty_price_factor


def k_factor(rules: MarketRules, k1: np.ndarray, k2: np.ndarray, k3: np.ndarray) -> np.ndarray:
    """K per interval by the market file's formula (multiplicative in Shanxi, additive in Mengxi),
    the same as ``RegulationRule.k_factor`` applied to arrays."""
    r = rules.regulation
    if r.k_formula == "multiplicative":
        raw = k1 * k2 * k3
    else:
        w0, w1, w2 = r.k_weights
        raw = w0 * (r.k1_multiplier * k1 + w1 * k2 + w2 * k3)
    return np.clip(raw, 0.0, r.k_cap)


def regulation_amounts(
    rules: MarketRules,
    regulation_mw: np.ndarray,
    price_cny_per_mw: np.ndarray,
    mileage_mw: np.ndarray | None,
    k_inputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    hours: float,
) -> dict[str, np.ndarray]:
    active = regulation_mw > 0
    if mileage_mw is None or k_inputs is None:
        mileage = np.zeros_like(regulation_mw)
    else:
        mileage = active * mileage_mw * price_cny_per_mw * k_factor(rules, *k_inputs)
    return {
        "regulation_mileage": mileage,
        "regulation_capacity": regulation_mw * hours * rules.regulation.capacity_price_cny_per_mw_h,
    }


def dr_delivered_mwh(dr_mw: np.ndarray, actual_mwh: np.ndarray, baseline_mwh: np.ndarray) -> np.ndarray:
    """Energy delivered in the awarded direction against the baseline (0 without a baseline)."""
    direction = np.sign(dr_mw)
    delivered = np.maximum(direction * (actual_mwh - baseline_mwh), 0.0)
    return np.where(np.isnan(delivered), 0.0, delivered)


def dr_paid_mwh(rules: MarketRules, dr_mw: np.ndarray, delivered_mwh: np.ndarray, hours: float) -> np.ndarray:
    """Delivered energy that is paid: up to the award, where enough of the award was delivered."""
    award_mwh = np.abs(dr_mw) * hours
    qualifies = (award_mwh > 0) & (delivered_mwh >= rules.demand_response.min_delivery_fraction * award_mwh)
    return qualifies * np.minimum(delivered_mwh, award_mwh)


def dr_shortfall_mwh(
    rules: MarketRules, dr_mw: np.ndarray, delivered_mwh: np.ndarray, hours: float
) -> np.ndarray:
    """Energy short of ``threshold_fraction`` of the award (penalised)."""
    return np.maximum(rules.deviation.threshold_fraction * np.abs(dr_mw) * hours - delivered_mwh, 0.0)


def dr_amounts(
    rules: MarketRules, dr_mw: np.ndarray, price: np.ndarray, delivered_mwh: np.ndarray, hours: float
) -> dict[str, np.ndarray]:
    dr = rules.demand_response
    cap = np.where(dr_mw >= 0, dr.peak_cut_cap_cny_per_mwh, dr.valley_fill_cap_cny_per_mwh)
    paid_price = np.minimum(price, cap)
    return {
        "demand_response": dr_paid_mwh(rules, dr_mw, delivered_mwh, hours) * paid_price,
        "demand_response_penalty": -dr_shortfall_mwh(rules, dr_mw, delivered_mwh, hours)
        * paid_price
        * rules.deviation.penalty_price_factor,
    }


def import_tariff(rules: MarketRules, actual_mwh: np.ndarray) -> np.ndarray:
    return -np.maximum(-actual_mwh, 0.0) * rules.grid_import_tariff_cny_per_mwh
