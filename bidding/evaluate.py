"""Value captured: the VPP's storage margin against a perfect-foresight optimum and a naive rule.

Pure functions over arrays; the backtest that feeds them is ``gateway/evaluate.py``.

Every strategy is valued the same way, on the batteries' net injection ``p_t`` (MW, + discharge)
at the realised day-ahead price: ``margin = sum(p_t * (P_DA,t + adder) * dt) - degradation *
discharged MWh + terminal value of the change of stored energy``. ``adder`` = grid import tariff +
carbon price x grid emission factor: the park imports in every interval (Datong), so a MWh charged
is a MWh more imported (tariff and grid carbon paid) and a MWh discharged one less. Energy left in
a battery at the end of the day is worth what it sells for later, ``v x eta_d - degradation`` per
stored MWh, energy missing costs what buying it back costs, ``v / eta_c``, with ``v`` = the day's
mean price + adder (so no strategy gains by emptying the battery, nor by filling it at the end).

Perfect foresight: one linear programme over all batteries with the realised prices and the same
power, energy, efficiency and state-of-charge limits, and the same grid limits: every grid node's
and the park connection's import and export limits, with the park's other assets at the power
the VPP dispatched them (:class:`GridLimits`), maximising the same margin. Naive rule: charge at
full power in the four cheapest hours of D-1's day-ahead prices, discharge in the four dearest,
within the same limits (each battery's share of its node's and the connection's headroom, in
proportion to power); no ancillary services.
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
    """CNY per MWh of grid energy at the end of the day: the day's mean price plus the adder."""
    return float(np.mean(price)) + adder


def soc_change_mwh(b: Battery, power_mw: np.ndarray, dt_h: float) -> float:
    p = np.asarray(power_mw, dtype=float)
    return float(
        np.sum(-np.minimum(p, 0.0) * b.charge_efficiency - np.maximum(p, 0.0) / b.discharge_efficiency) * dt_h
    )


def stored_value(b: Battery, change_mwh: float, value: float) -> float:
    """Value of a change of stored energy: sold later at ``value`` (after discharge losses and wear)
    if more is left, bought back at ``value`` (before charge losses) if less."""
    if change_mwh >= 0:
        return change_mwh * (value * b.discharge_efficiency - b.degradation_cny_per_mwh)
    return change_mwh * value / b.charge_efficiency


def margin(b: Battery, power_mw: np.ndarray, price: np.ndarray, dt_h: float, adder: float) -> float:
    """Trading margin plus the value of the change of stored energy."""
    p = np.asarray(power_mw, dtype=float)
    trade = np.sum(p * (price + adder)) * dt_h - b.degradation_cny_per_mwh * np.sum(np.maximum(p, 0.0)) * dt_h
    return float(trade + stored_value(b, soc_change_mwh(b, p, dt_h), terminal_value(price, adder)))


@dataclass(frozen=True)
class GridLimits:
    """Grid limits the batteries share: per group (a grid node, or the park connection) the
    batteries in it (indices) and the MW their net injection may take from (``import_mw``) or add
    to (``export_mw``) the grid in each interval, the other assets' power already counted."""

    groups: tuple[tuple[tuple[int, ...], np.ndarray, np.ndarray], ...] = ()

    def caps(self, batteries: list[Battery]) -> tuple[np.ndarray, np.ndarray]:
        """Per battery (B, T) charge and discharge caps: its share of every group's headroom, in
        proportion to power (what a rule that ignores the other batteries can safely use)."""
        power = np.array([b.power_mw for b in batteries], dtype=float)
        T = len(self.groups[0][1]) if self.groups else 0
        charge = np.repeat(power[:, None], max(T, 1), axis=1)
        discharge = charge.copy()
        for members, imp, exp in self.groups:
            idx = list(members)
            share = power[idx] / max(power[idx].sum(), 1e-9)
            charge[idx] = np.minimum(charge[idx], share[:, None] * np.maximum(imp, 0.0)[None, :])
            discharge[idx] = np.minimum(discharge[idx], share[:, None] * np.maximum(exp, 0.0)[None, :])
        return charge, discharge


def perfect_foresight(
    b: Battery | list[Battery], price: np.ndarray, dt_h: float, adder: float, limits: GridLimits | None = None
) -> np.ndarray:
    """The batteries' net injection (B, T), or (T,) for one battery, that maximises the summed
    margin with the realised prices within the batteries' and the grid's limits."""
    batteries = b if isinstance(b, list) else [b]
    B, T = len(batteries), len(price)
    c, d = cp.Variable((B, T), nonneg=True), cp.Variable((B, T), nonneg=True)
    gain, loss = cp.Variable(B, nonneg=True), cp.Variable(B, nonneg=True)
    v = terminal_value(price, adder)
    value = 0
    cons = []
    for i, bat in enumerate(batteries):
        soc0 = bat.soc_initial_fraction * bat.energy_mwh
        soc = soc0 + cp.cumsum(c[i] * bat.charge_efficiency - d[i] / bat.discharge_efficiency) * dt_h
        value += (price + adder) @ (d[i] - c[i]) * dt_h - bat.degradation_cny_per_mwh * cp.sum(d[i]) * dt_h
        value += gain[i] * (v * bat.discharge_efficiency - bat.degradation_cny_per_mwh)
        value -= loss[i] * v / bat.charge_efficiency
        cons += [
            soc[T - 1] - soc0 == gain[i] - loss[i],
            c[i] <= bat.power_mw,
            d[i] <= bat.power_mw,
            soc >= bat.soc_min_fraction * bat.energy_mwh,
            soc <= bat.soc_max_fraction * bat.energy_mwh,
        ]
    for members, imp, exp in limits.groups if limits is not None else ():
        net = sum(d[i] - c[i] for i in members)
        cons += [net >= -np.maximum(imp, 0.0), net <= np.maximum(exp, 0.0)]
    cp.Problem(cp.Maximize(value), cons).solve(solver="ECOS")
    out = np.asarray(d.value - c.value).round(6)
    return out if isinstance(b, list) else out[0]


def naive_rule(
    b: Battery,
    price_yesterday: np.ndarray,
    dt_h: float,
    hours: int = 4,
    charge_cap: np.ndarray | None = None,
    discharge_cap: np.ndarray | None = None,
) -> np.ndarray:
    """Charge in the ``hours`` cheapest hours of yesterday's prices, discharge in the dearest, at
    full power or at the caps (MW per interval) where the grid allows less."""
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
            power = b.power_mw if charge_cap is None else min(b.power_mw, float(charge_cap[t]))
            charge = max(min(power, (hi - soc) / (b.charge_efficiency * dt_h)), 0.0)
            soc += charge * b.charge_efficiency * dt_h
            out[t] = -charge
        elif h in dear:
            power = b.power_mw if discharge_cap is None else min(b.power_mw, float(discharge_cap[t]))
            discharge = max(min(power, (soc - lo) * b.discharge_efficiency / dt_h), 0.0)
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
