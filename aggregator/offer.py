"""The day-ahead offer: one stochastic optimisation over price scenarios, read off as offer curves.

``build_offer`` validates the forecast, solves the offer model (compiled once per park
structure when the caller keeps a :class:`~aggregator.portfolio.ModelStore`) with the day's
data and turns the returned :class:`~aggregator.solution.Solution` into an
:class:`~infra.contracts.Offer`: monotone energy curves under the province's rules (the price
scenarios' points plus the batteries' flexibility bands), regulation and demand-response
offers, expected revenue and emissions. The schedule keeps headroom for the P10-P90 range of
load and renewables; intervals where it cannot are reported as at risk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from aggregator.ancillary import demand_response_offers, regulation_offers, regulation_value_per_mw_interval
from aggregator.bands import ImportCharge, import_charge, market_bands
from aggregator.curves import energy_curve
from aggregator.errors import InfeasibleError, Violation
from aggregator.inputs import (
    DayInputs,
    contract_positions,
    inputs_from_forecast,
    price_scenarios,
)
from aggregator.model import ParkModel
from aggregator.portfolio import ModelStore, Portfolio, fingerprint
from aggregator.scale import pooled_model
from aggregator.solution import DayData, Solution, SolveInfo
from aggregator.uncertainty import ENERGY_WINDOWS_H, energy_needs, reserve_needs
from infra.contracts import ForecastSet, Offer
from infra.scenario import Scenario

# Tuning knobs of the offer model (not domain numbers).
PRICE_SCENARIOS = 5  # K: points per offer curve; solve time grows about linearly with K
RISK_TOLERANCE_MW = 0.01
BAND_MIN_MW = 0.01  # smaller bands are solver noise


@dataclass(frozen=True)
class AtRisk:
    """An interval where the schedule cannot hold headroom for the whole P10-P90 range."""

    interval_start: str
    direction: str  # "up": load above / renewables below the median; "down": the opposite
    shortfall_mw: float


@dataclass(frozen=True)
class EnergyAtRisk:
    """A window whose forecast error energy the schedule cannot cover (storage and headroom)."""

    window_end: str  # start of the window's last interval
    window_h: float
    direction: str  # "up": more energy needed than the median; "down": less
    shortfall_mwh: float


@dataclass
class OfferResult:
    offer: Offer
    info: SolveInfo
    expected_costs_cny: float
    carbon_price_cny_per_tco2: float
    at_risk: list[AtRisk] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    solution: Solution | None = None
    energy_at_risk: list[EnergyAtRisk] = field(
        default_factory=list
    )  # the solve the offer was read from (schedules, duals, bands)

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
            "energy_at_risk": [vars(r) for r in self.energy_at_risk],
            "violations": [v.describe() for v in self.violations],
            "notes": self.notes,
        }


def forecast_day(forecast: ForecastSet) -> date:
    from infra.timeutil import ensure_aware

    return ensure_aware(forecast.interval_starts[0], "interval_starts").date()


def offer_model(scenario: Scenario, T: int, dt_h: float, models: ModelStore | None = None) -> ParkModel:
    """The offer model for a park: compiled here, or taken from (and kept in) ``models``."""

    def make() -> ParkModel:
        return ParkModel(Portfolio.from_scenario(scenario), PRICE_SCENARIOS, T, dt_h, "offer")

    if models is None:
        return make()
    return models.get(("offer", fingerprint(scenario), PRICE_SCENARIOS, T, dt_h), make)


def build_offer(
    scenario: Scenario,
    forecast: ForecastSet,
    *,
    forecast_message_id: str,
    carbon_price_cny_per_tco2: float | None = None,
    solver: str = "ECOS",
    allow_relaxed: bool = False,
    models: ModelStore | None = None,
) -> OfferResult:
    """The park's day-ahead offer for the forecast's day.

    Raises :class:`~aggregator.errors.InputError` for a forecast the model cannot use and,
    unless ``allow_relaxed``, :class:`~aggregator.errors.InfeasibleError` naming the device and
    constraint family when no schedule meets every constraint (with ``allow_relaxed`` the
    penalised relaxed answer is returned and its violations listed). ``models`` keeps the
    compiled model for the next call (a worker's or a sweep's store).
    """
    day = forecast_day(forecast)
    inputs = inputs_from_forecast(scenario, forecast, day)
    profiles = inputs.medians()
    pooled = pooled_model(scenario, PRICE_SCENARIOS, inputs.T, inputs.dt_h, "offer", profiles)
    if pooled is None:
        model = offer_model(scenario, inputs.T, inputs.dt_h, models)
    else:
        model, profiles = pooled[0], pooled[1].profiles
    carbon_price = (
        scenario.park.carbon.carbon_price_cny_per_tco2
        if carbon_price_cny_per_tco2 is None
        else carbon_price_cny_per_tco2
    )
    prices = price_scenarios(inputs, PRICE_SCENARIOS)
    contracts = contract_positions(scenario, inputs.starts, inputs.dt_h)
    need_up, need_down = reserve_needs(scenario, inputs)
    energy_up, energy_down = energy_needs(scenario, inputs)
    regulation_value = regulation_value_per_mw_interval(scenario.market, inputs.dt_h)
    offered = model.portfolio.regulation_capacity_mw() if regulation_value > 0 else 0.0
    solution = model.solve(
        DayData(
            profiles=profiles,
            green_mw=contracts.green_mw,
            need_up=need_up,
            need_down=need_down,
            carbon_price=carbon_price,
            energy_need_up=energy_up,
            energy_need_down=energy_down,
            prices=prices.prices,
            regulation_value=regulation_value,
            regulation_cap_mw=np.full(inputs.T, offered),
        ),
        solver,
    )
    info = solution.info
    if info.violations and not allow_relaxed:
        raise InfeasibleError(f"the day-ahead offer for park {scenario.id} on {inputs.day}", info.violations)

    G = solution.injection
    median_price = inputs.median("market.price_da_cny_per_mwh")
    charge = import_charge(
        solution,
        model.portfolio.import_tariff_cny_per_mwh,
        model.portfolio.grid_ef_tco2_per_mwh,
        contracts.green_mw,
    )
    bands = _bands(solution, prices.prices, charge, model.b.band_scenario or 0)
    curves = [
        energy_curve(prices.prices[:, t], G[:, t], scenario.market, float(median_price[t]), *bands[t])
        for t in range(inputs.T)
    ]
    revenue = contracts.revenue_cny + float(
        np.sum(prices.weights[:, None] * prices.prices * (G - contracts.quantity_mw[None, :])) * inputs.dt_h
    )
    regulation = regulation_offers(solution, scenario.market)
    if regulation:
        revenue += solution.regulation.value_cny_per_mw_interval * float(
            np.sum(solution.regulation.capacity_mw)
        )
    # Energy a demand-response call moves is bought back (or sold) later at the expected price plus
    # the import charges the model's objective puts on it where the park imports.
    band_injection = solution.injection[model.b.band_scenario or 0]
    reference = float(np.mean(median_price)) + float(
        np.mean([charge.on(t, float(band_injection[t])) for t in range(inputs.T)])
    )
    demand_response = demand_response_offers(
        solution,
        scenario.market,
        (need_up, need_down),
        (energy_up.max(axis=0), energy_down.max(axis=0)),
        reference,
        np.asarray(median_price, dtype=float),
    )
    offer = Offer(
        interval_minutes=inputs.interval_minutes,
        interval_starts=[ts.to_pydatetime() for ts in inputs.starts],
        market="day_ahead",
        market_id=scenario.market.market_for("day_ahead_energy")[0],
        scenario_version=scenario.version,
        forecast_message_id=forecast_message_id,
        energy=curves,
        regulation=regulation,
        demand_response=demand_response,
        expected_revenue_cny=round(revenue, 2),
        expected_emissions_tco2=round(float(prices.weights @ solution.emissions_tco2), 4),
    )
    return OfferResult(
        offer=offer,
        info=info,
        expected_costs_cny=float(prices.weights @ solution.costs_cny),
        carbon_price_cny_per_tco2=float(carbon_price),
        at_risk=_at_risk(solution, inputs),
        violations=info.violations,
        notes=list(inputs.notes),
        solution=solution,
        energy_at_risk=energy_at_risk(solution, inputs.starts),
    )


def _bands(
    solution: Solution, prices: np.ndarray, charge: ImportCharge, band_scenario: int
) -> list[tuple[list[tuple[float, float]], list[tuple[float, float]]]]:
    """Per interval, the storage fleets' (market price, MW) up and down flexibility bands: device
    prices net of the import charges each band moves, beyond the price scenarios ``prices`` (K, T)
    (:mod:`aggregator.bands`)."""
    T = prices.shape[1]
    device: list[tuple[list[tuple[float, float]], list[tuple[float, float]]]] = [([], []) for _ in range(T)]
    for fleet, bands in solution.bands():
        for t in range(T):
            for i in range(fleet.n):
                if bands.up_mw[i, t] > BAND_MIN_MW:
                    device[t][0].append((float(bands.up_price[i, t]), float(bands.up_mw[i, t])))
                if bands.down_mw[i, t] > BAND_MIN_MW:
                    device[t][1].append((float(bands.down_price[i, t]), float(bands.down_mw[i, t])))
    G = solution.injection[band_scenario]
    return [market_bands(t, float(G[t]), prices[:, t], *device[t], charge) for t in range(T)]


def _at_risk(solution: Solution, inputs: DayInputs) -> list[AtRisk]:
    out = []
    for direction, short in (("up", solution.short_up), ("down", solution.short_down)):
        worst = np.max(short, axis=0)
        for t in np.flatnonzero(worst > RISK_TOLERANCE_MW):
            out.append(AtRisk(inputs.starts[t].isoformat(), direction, round(float(worst[t]), 3)))
    return sorted(out, key=lambda r: r.interval_start)


def energy_at_risk(solution: Solution, starts: pd.DatetimeIndex) -> list[EnergyAtRisk]:
    """Windows whose error energy is not covered in some scenario, worst scenario per window."""
    out = []
    for direction, short in (("up", solution.energy_short_up), ("down", solution.energy_short_down)):
        if short is None:
            continue
        worst = short.max(axis=1)  # (W, T)
        for w, hours in enumerate(ENERGY_WINDOWS_H):
            for t in np.flatnonzero(worst[w] > RISK_TOLERANCE_MW * hours):
                out.append(
                    EnergyAtRisk(starts[t].isoformat(), hours, direction, round(float(worst[w, t]), 3))
                )
    return sorted(out, key=lambda r: (r.window_end, r.window_h))
