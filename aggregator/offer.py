"""The day-ahead offer: one stochastic optimisation over price scenarios, read off as offer curves.

``build_offer`` validates the forecast, fills the compiled offer model (built once per park
structure and cached) with the day's data, solves it and turns the answer into an
:class:`~infra.contracts.Offer`: monotone energy curves under the province's rules (the price
scenarios' points plus the batteries' flexibility bands), regulation and demand-response
offers, expected revenue and emissions. The schedule keeps headroom for the P10-P90 range of
load and renewables; intervals where it cannot are reported as at risk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from aggregator.ancillary import demand_response_offers, regulation_offers, regulation_value_per_mw_interval
from aggregator.curves import energy_curve
from aggregator.errors import InfeasibleError, Violation
from aggregator.inputs import (
    DayInputs,
    contract_positions,
    inputs_from_forecast,
    price_scenarios,
)
from aggregator.model import ParkModel, Portfolio, SolveInfo, cached_model, fingerprint
from infra.contracts import ForecastSet, Offer
from infra.scenario import Scenario

# Tuning knobs of the offer model (not domain numbers).
PRICE_SCENARIOS = 5  # K: points per offer curve; solve time grows about linearly with K
RISK_LOW, RISK_HIGH = 0.1, 0.9  # the forecast range the offer must stay deliverable for
RISK_TOLERANCE_MW = 0.01
BAND_MIN_MW = 0.01  # smaller bands are solver noise


@dataclass(frozen=True)
class AtRisk:
    """An interval where the schedule cannot hold headroom for the whole P10-P90 range."""

    interval_start: str
    direction: str  # "up": load above / renewables below the median; "down": the opposite
    shortfall_mw: float


@dataclass
class OfferResult:
    offer: Offer
    info: SolveInfo
    expected_costs_cny: float
    carbon_price_cny_per_tco2: float
    at_risk: list[AtRisk] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def expected_profit_cny(self) -> float:
        return self.offer.expected_revenue_cny - self.expected_costs_cny

    @property
    def carbon_adjusted_profit_cny(self) -> float:
        return self.expected_profit_cny - self.carbon_price_cny_per_tco2 * self.offer.expected_emissions_tco2

    def summary(self) -> dict[str, object]:
        return {
            "expected_revenue_cny": round(self.offer.expected_revenue_cny, 2),
            "expected_costs_cny": round(self.expected_costs_cny, 2),
            "expected_emissions_tco2": round(self.offer.expected_emissions_tco2, 4),
            "carbon_price_cny_per_tco2": self.carbon_price_cny_per_tco2,
            "solver": self.info.solver,
            "solve_seconds": round(self.info.seconds, 3),
            "at_risk": [vars(r) for r in self.at_risk],
            "violations": [v.describe() for v in self.violations],
            "notes": self.notes,
        }


def forecast_day(forecast: ForecastSet) -> date:
    from infra.timeutil import ensure_aware

    return ensure_aware(forecast.interval_starts[0], "interval_starts").date()


def reserve_needs(scenario: Scenario, inputs: DayInputs) -> tuple[np.ndarray, np.ndarray]:
    """Headroom (MW) the schedule must keep up and down for the P10-P90 range of the forecasts.

    Load above its median or renewables below theirs need upward headroom, and the opposite
    downward. Ranges are added (as if errors moved together), which is the cautious choice
    when only marginal quantiles are known. Heat and compute demand are buffered by their own
    tank and deferral, so they are not counted here.
    """
    up = np.zeros(inputs.T)
    down = np.zeros(inputs.T)
    for sid in inputs.series:
        owner, quantity = sid.split(".", 1)
        if owner == "market" or quantity not in ("load_mw", "pv_mw", "wind_mw"):
            continue
        med = inputs.median(sid)
        low, high = inputs.quantile(sid, RISK_LOW), inputs.quantile(sid, RISK_HIGH)
        if quantity == "load_mw":
            up += high - med
            down += med - low
        else:
            up += med - low
            down += high - med
    return up, down


def offer_model(scenario: Scenario, T: int, dt_h: float) -> ParkModel:
    """The compiled offer model for a park (built on first use, then re-solved)."""
    return cached_model(
        ("offer", fingerprint(scenario), PRICE_SCENARIOS, T, dt_h),
        lambda: ParkModel(Portfolio.from_scenario(scenario), PRICE_SCENARIOS, T, dt_h, "offer"),
    )


def build_offer(
    scenario: Scenario,
    forecast: ForecastSet,
    *,
    forecast_message_id: str,
    carbon_price_cny_per_tco2: float | None = None,
    solver: str = "ECOS",
    allow_relaxed: bool = False,
) -> OfferResult:
    """The park's day-ahead offer for the forecast's day.

    Raises :class:`~aggregator.errors.InputError` for a forecast the model cannot use and,
    unless ``allow_relaxed``, :class:`~aggregator.errors.InfeasibleError` naming the device and
    constraint family when no schedule meets every constraint (with ``allow_relaxed`` the
    penalised relaxed answer is returned and its violations listed).
    """
    day = forecast_day(forecast)
    inputs = inputs_from_forecast(scenario, forecast, day)
    model = offer_model(scenario, inputs.T, inputs.dt_h)
    carbon_price = (
        scenario.park.carbon.carbon_price_cny_per_tco2
        if carbon_price_cny_per_tco2 is None
        else carbon_price_cny_per_tco2
    )
    with model.lock:
        return _solve_offer(scenario, inputs, model, forecast_message_id, carbon_price, solver, allow_relaxed)


def _solve_offer(
    scenario: Scenario,
    inputs: DayInputs,
    model: ParkModel,
    forecast_message_id: str,
    carbon_price: float,
    solver: str,
    allow_relaxed: bool,
) -> OfferResult:
    prices = price_scenarios(inputs, model.b.K)
    contracts = contract_positions(scenario, inputs.starts, inputs.dt_h)
    need_up, need_down = reserve_needs(scenario, inputs)
    model.set_day(inputs.medians(), contracts.green_mw, need_up, need_down)
    model.weighted_price.value = prices.prices * prices.weights[:, None]
    model.set_carbon_price(carbon_price)
    if model.reg_total is not None:
        model.reg_value.value = regulation_value_per_mw_interval(scenario.market, inputs.dt_h)
        battery = model.portfolio.fleet("battery")
        offered = float(np.sum(battery.power_mw)) if model.reg_value.value > 0 else 0.0
        model.reg_cap.value = np.full(inputs.T, offered)
    info = model.solve(solver)
    if info.violations and not allow_relaxed:
        raise InfeasibleError(f"the day-ahead offer for park {scenario.id} on {inputs.day}", info.violations)

    G = np.asarray(model.G.value)
    median_price = inputs.median("market.price_da_cny_per_mwh")
    bands = _bands(model)
    curves = [
        energy_curve(prices.prices[:, t], G[:, t], scenario.market, float(median_price[t]), *bands[t])
        for t in range(inputs.T)
    ]
    revenue = contracts.revenue_cny + float(
        np.sum(prices.weights[:, None] * prices.prices * (G - contracts.quantity_mw[None, :])) * inputs.dt_h
    )
    regulation = regulation_offers(model, scenario.market)
    if regulation:
        revenue += float(model.reg_value.value) * float(np.sum(model.reg_total.value))
    demand_response = demand_response_offers(
        model, scenario.market, need_up, need_down, float(np.mean(median_price))
    )
    offer = Offer(
        interval_minutes=inputs.interval_minutes,
        interval_starts=[ts.to_pydatetime() for ts in inputs.starts],
        market="day_ahead",
        scenario_version=scenario.version,
        forecast_message_id=forecast_message_id,
        energy=curves,
        regulation=regulation,
        demand_response=demand_response,
        expected_revenue_cny=round(revenue, 2),
        expected_emissions_tco2=round(float(prices.weights @ model.emissions_tco2()), 4),
    )
    return OfferResult(
        offer=offer,
        info=info,
        expected_costs_cny=float(prices.weights @ model.costs_cny()),
        carbon_price_cny_per_tco2=float(carbon_price),
        at_risk=_at_risk(model, inputs),
        violations=info.violations,
        notes=list(inputs.notes),
    )


def _bands(model: ParkModel) -> list[tuple[list[tuple[float, float]], list[tuple[float, float]]]]:
    """Per interval, the batteries' (price, MW) up and down flexibility bands."""
    out: list[tuple[list[tuple[float, float]], list[tuple[float, float]]]] = [
        ([], []) for _ in range(model.b.T)
    ]
    fleet = model.band_fleet
    if fleet is None:
        return out
    up, up_price, down, down_price = fleet.band_offers()
    for t in range(model.b.T):
        for i in range(fleet.n):
            if up[i, t] > BAND_MIN_MW:
                out[t][0].append((float(up_price[i, t]), float(up[i, t])))
            if down[i, t] > BAND_MIN_MW:
                out[t][1].append((float(down_price[i, t]), float(down[i, t])))
    return out


def _at_risk(model: ParkModel, inputs: DayInputs) -> list[AtRisk]:
    out = []
    for direction, short in (("up", model.short_up.value), ("down", model.short_down.value)):
        worst = np.max(np.maximum(np.asarray(short), 0.0), axis=0)
        for t in np.flatnonzero(worst > RISK_TOLERANCE_MW):
            out.append(AtRisk(inputs.starts[t].isoformat(), direction, round(float(worst[t]), 3)))
    return sorted(out, key=lambda r: r.interval_start)
