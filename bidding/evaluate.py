"""Value captured: the VPP's storage margin against a perfect-foresight optimum and a naive rule.

Pure functions over arrays; the backtest that feeds them is ``gateway/evaluate.py``.

Every strategy is valued the same way, on the batteries' net injection ``p_t`` (MW, + discharge)
at the realised day-ahead price: ``margin = sum(p_t * (P_DA,t + adder) * dt) - degradation *
discharged MWh + (SoC_end - SoC_start) * (mean P_DA + adder)`` (energy left in the battery is
worth the day's mean price, so no strategy gains by emptying it). ``adder`` = grid import tariff + carbon price x grid emission factor: the park
imports in every interval (Datong), so a MWh charged is a MWh more imported (tariff and
grid carbon paid) and a MWh discharged one less. Perfect foresight: the batteries' linear
programme with the realised prices and the same power, energy, efficiency and state-of-charge
limits, maximising the same margin. Naive rule: charge at full power in
the four cheapest hours of D-1's day-ahead prices, discharge in the four dearest, within the
same limits; no ancillary services.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from infra.scenario.model import Battery, Scenario


@dataclass(frozen=True)
class DayMargins:
    day: str
    vpp_cny: float
    perfect_cny: float
    naive_cny: float

    @property
    def captured(self) -> float | None:
        return self.vpp_cny / self.perfect_cny if self.perfect_cny > 1e-6 else None


def import_adder(scenario: Scenario) -> float:
    """CNY per MWh of import avoided: grid tariff plus internal carbon cost of grid power."""
    c = scenario.park.carbon
    return (
        scenario.market.grid_import_tariff_cny_per_mwh + c.carbon_price_cny_per_tco2 * c.grid_ef_tco2_per_mwh
    )


def terminal_value(price: np.ndarray, adder: float) -> float:
    """CNY per MWh of energy left in (or taken from) a battery at the end of the day."""
    return float(np.mean(price)) + adder


def soc_change_mwh(b: Battery, power_mw: np.ndarray, dt_h: float) -> float:
    p = np.asarray(power_mw, dtype=float)
    return float(
        np.sum(-np.minimum(p, 0.0) * b.charge_efficiency - np.maximum(p, 0.0) / b.discharge_efficiency) * dt_h
    )


def margin(b: Battery, power_mw: np.ndarray, price: np.ndarray, dt_h: float, adder: float) -> float:
    """Trading margin plus the change of stored energy at the day's terminal value."""
    p = np.asarray(power_mw, dtype=float)
    trade = np.sum(p * (price + adder)) * dt_h - b.degradation_cny_per_mwh * np.sum(np.maximum(p, 0.0)) * dt_h
    return float(trade + soc_change_mwh(b, p, dt_h) * terminal_value(price, adder))


def perfect_foresight(b: Battery, price: np.ndarray, dt_h: float, adder: float) -> np.ndarray:
    """The battery's net injection that maximises the margin with the realised prices."""
    T = len(price)
    c, d = cp.Variable(T, nonneg=True), cp.Variable(T, nonneg=True)
    soc0 = b.soc_initial_fraction * b.energy_mwh
    soc = soc0 + cp.cumsum(c * b.charge_efficiency - d / b.discharge_efficiency) * dt_h
    value = (price + adder) @ (d - c) * dt_h - b.degradation_cny_per_mwh * cp.sum(d) * dt_h
    value += (soc[T - 1] - soc0) * terminal_value(price, adder)
    cons = [
        c <= b.power_mw,
        d <= b.power_mw,
        soc >= b.soc_min_fraction * b.energy_mwh,
        soc <= b.soc_max_fraction * b.energy_mwh,
    ]
    cp.Problem(cp.Maximize(value), cons).solve(solver="ECOS")
    return np.asarray(d.value - c.value).round(6)


def naive_rule(b: Battery, price_yesterday: np.ndarray, dt_h: float, hours: int = 4) -> np.ndarray:
    """Charge in the ``hours`` cheapest hours of yesterday's prices, discharge in the dearest."""
    per_hour = round(1 / dt_h)
    hourly = price_yesterday.reshape(-1, per_hour).mean(axis=1)
    order = np.argsort(hourly, kind="stable")
    cheap, dear = set(order[:hours]), set(order[-hours:])
    soc = b.soc_initial_fraction * b.energy_mwh
    lo, hi = b.soc_min_fraction * b.energy_mwh, b.soc_max_fraction * b.energy_mwh
    out = np.zeros(len(price_yesterday))
    for t in range(len(out)):
        h = t // per_hour
        if h in cheap:
            charge = min(b.power_mw, (hi - soc) / (b.charge_efficiency * dt_h))
            soc += charge * b.charge_efficiency * dt_h
            out[t] = -charge
        elif h in dear:
            discharge = min(b.power_mw, (soc - lo) * b.discharge_efficiency / dt_h)
            soc -= discharge / b.discharge_efficiency * dt_h
            out[t] = discharge
    return out


def summarise(days: list[DayMargins]) -> dict[str, object]:
    shares = [d.captured for d in days if d.captured is not None]
    return {
        "days": len(days),
        "vpp_margin_cny": round(sum(d.vpp_cny for d in days), 2),
        "perfect_foresight_margin_cny": round(sum(d.perfect_cny for d in days), 2),
        "naive_margin_cny": round(sum(d.naive_cny for d in days), 2),
        "share_captured_total": round(
            sum(d.vpp_cny for d in days) / max(sum(d.perfect_cny for d in days), 1e-9), 4
        ),
        "share_captured_median": round(float(np.median(shares)), 4) if shares else None,
        "naive_share_captured_median": round(
            float(np.median([d.naive_cny / d.perfect_cny for d in days if d.perfect_cny > 1e-6])), 4
        )
        if shares
        else None,
        "days_vpp_beats_naive_fraction": round(
            sum(d.vpp_cny > d.naive_cny for d in days) / max(len(days), 1), 4
        ),
        "per_day": [
            {
                "day": d.day,
                "vpp_cny": round(d.vpp_cny, 2),
                "perfect_cny": round(d.perfect_cny, 2),
                "naive_cny": round(d.naive_cny, 2),
                "captured": None if d.captured is None else round(d.captured, 4),
            }
            for d in days
        ],
    }
