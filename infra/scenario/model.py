"""Park scenario: every asset, enterprise, grid connection, market rule and carbon setting.

Scenarios are versioned YAML files (``parks/<id>.yaml``, ``markets/<id>.yaml``). Every
object carries a ``source`` for its figures (DOMAIN.md tags: [plan], [rule], [est], or
[assumption] with the reasoning) and ``field_sources`` for figures whose source differs.
The checks here reject a scenario that is internally inconsistent, naming asset and field.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Hour = Annotated[float, Field(ge=0, le=24)]


class Sourced(BaseModel):
    """Base: strict fields, a source for the figures and optional per-field sources."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    source: str = Field(min_length=3)
    field_sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _field_sources_name_fields(self) -> Sourced:
        unknown = sorted(set(self.field_sources) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"field_sources names unknown fields: {', '.join(unknown)}")
        return self


# --- market rules ------------------------------------------------------------------------


class DeviationRule(Sourced):
    """Charge for delivering short of an award (Guangdong-style DR deviation, DOMAIN.md §3)."""

    threshold_fraction: Fraction = Field(description="delivery below award x this fraction is penalised")
    penalty_price_factor: NonNegative = Field(description="penalty = shortfall x clearing price x factor")
    free_band_fraction: Fraction = Field(description="energy deviation within this band of the award is free")
    demand_response_exempt: bool = Field(
        False,
        description="energy that departs from the real-time schedule in the direction of an awarded "
        "demand-response event, up to the event's MW, is not assessed as deviation (the market asked for it)",
    )


class RegulationBlock(BaseModel):
    """One time block of the regulation market: demand cleared at one uniform mileage price."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    start_hour: Hour
    end_hour: Hour
    demand_mw: NonNegative

    @model_validator(mode="after")
    def _ordered(self) -> RegulationBlock:
        if self.end_hour <= self.start_hour:
            raise ValueError(f"block {self.start_hour}-{self.end_hour} h: end_hour must be after start_hour")
        return self


class RegulationRule(Sourced):
    mileage_price_min_cny_per_mw: NonNegative
    mileage_price_max_cny_per_mw: Positive
    price_tick_cny_per_mw: Positive
    k_weights: tuple[float, float, float] = Field(
        description="K = w0*(a*k1 + k2 + k3) with a = k1_multiplier"
    )
    k1_multiplier: Positive
    k_cap: Positive
    capacity_price_cny_per_mw_h: NonNegative = 0.0
    mileage_per_mw_h: NonNegative = Field(
        description="expected mileage (MW moved) per MW of capacity per hour"
    )
    expected_mileage_price_cny_per_mw: NonNegative = Field(
        0.0, description="mileage price a VPP expects to clear at, for valuing capacity when offering"
    )
    expected_k_indices: tuple[NonNegative, NonNegative, NonNegative] = Field(
        (1.0, 1.0, 1.0),
        description="ramp (k1), delay (k2) and accuracy (k3) indices a storage resource typically reaches; "
        "the expected K follows from them by this market's k_formula, as settlement computes it",
    )
    k_formula: Literal["additive", "multiplicative"] = Field(
        "additive",
        description="additive: K = w0*(a*k1 + w1*k2 + w2*k3) (Shaanxi); multiplicative: K = k1*k2*k3 (Shanxi)",
    )
    k_formula_source: str = Field("[rule] DOMAIN.md §3 (Shaanxi) additive K", min_length=3)
    blocks: list[RegulationBlock] = Field(
        default_factory=list, description="time blocks of regulation demand (3-5 a day); empty = not cleared"
    )
    performance_weight: Fraction = Field(
        1.0, description="ranking price = offer price / performance**weight (0 = rank on price alone)"
    )

    @property
    def expected_k_factor(self) -> float:
        """K the VPP expects to earn: the expected indices through the market's own K formula."""
        return self.k_factor(*self.expected_k_indices)

    def k_factor(self, k1: float, k2: float, k3: float) -> float:
        """Performance factor K from the ramp (k1), delay (k2) and accuracy (k3) indices, in [0, k_cap]."""
        if self.k_formula == "multiplicative":
            raw = k1 * k2 * k3
        else:
            w0, w1, w2 = self.k_weights
            raw = w0 * (self.k1_multiplier * k1 + w1 * k2 + w2 * k3)
        return min(max(raw, 0.0), self.k_cap)

    @model_validator(mode="after")
    def _blocks_cover_day(self) -> RegulationRule:
        if not self.blocks:
            return self
        edges = [(b.start_hour, b.end_hour) for b in self.blocks]
        if edges[0][0] != 0 or edges[-1][1] != 24 or any(a[1] != b[0] for a, b in itertools.pairwise(edges)):
            raise ValueError("blocks: must tile the day from 0 to 24 h in order")
        return self


class DemandResponseRule(Sourced):
    peak_cut_cap_cny_per_mwh: NonNegative
    valley_fill_cap_cny_per_mwh: NonNegative
    emergency_peak_cut_cap_cny_per_mwh: NonNegative
    emergency_valley_fill_cap_cny_per_mwh: NonNegative
    baseline_days: int = Field(gt=0, description="baseline = mean of this many recent similar days")
    min_delivery_fraction: Fraction


class PriceShape(Sourced):
    """Parameters of the synthetic price history for this province (the simulator's, not a rule)."""

    mean_cny_per_mwh: Positive
    solar_dip_cny_per_mwh: NonNegative
    evening_peak_cny_per_mwh: NonNegative
    morning_peak_cny_per_mwh: NonNegative
    seasonal_amplitude_fraction: Fraction
    daily_noise_cny_per_mwh: NonNegative
    real_time_noise_cny_per_mwh: NonNegative
    spike_probability: Fraction
    weekend_discount_cny_per_mwh: NonNegative


class ExchangeSimulatorSettings(Sourced):
    """How the exchange simulator clears what has no price history (not a market rule)."""

    regulation_mileage_price_mean_cny_per_mw: NonNegative
    regulation_mileage_price_sd_cny_per_mw: NonNegative
    regulation_evening_premium_cny_per_mw: NonNegative
    dr_peak_cut_price_percentile: Annotated[float, Field(gt=0, lt=100)]
    dr_valley_fill_price_percentile: Annotated[float, Field(gt=0, lt=100)]
    pricing: Literal["price_forming", "price_taker"] = Field(
        "price_taker", description="price_forming: clear a supply stack with the park's curve added"
    )
    supply_stack: list[tuple[float, float]] = Field(
        default_factory=list,
        description="(price CNY/MWh, cumulative MW offered by other sellers) knots, strictly increasing",
    )
    tie_line_mw: NonNegative = Field(0.0, description="mean import over the tie-lines into the bidding space")
    regulation_competitors: list[tuple[float, float, float]] = Field(
        default_factory=list,
        description="(capacity MW, mileage price CNY/MW, performance 0..1) of other resources",
    )
    agc_allowed_delay_s: Positive = 60.0
    agc_allowed_error_fraction: Positive = 0.05
    agc_required_ramp_fraction_per_min: Positive = Field(
        0.015, description="ramp the AGC asks for, as a fraction of capacity per minute"
    )

    @model_validator(mode="after")
    def _stack_increasing(self) -> ExchangeSimulatorSettings:
        knots = self.supply_stack
        if any(b[0] <= a[0] or b[1] <= a[1] for a, b in itertools.pairwise(knots)):
            raise ValueError("supply_stack: prices and cumulative MW must both strictly increase")
        if knots and len(knots) < 2:
            raise ValueError("supply_stack: needs at least two knots")
        return self


MarketKind = Literal["day_ahead_energy", "real_time_energy", "regulation", "demand_response"]
MissingBidRule = Literal["price_cap", "price_taker", "no_participation"]


class MarketConfig(Sourced):
    """One market of a province: what it trades, on which grid, when it closes, how it clears.

    ``id`` is local to the province file; the market id carried by bids, awards and settlements
    is ``<province>.<id>`` (:meth:`MarketRules.market_id`).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: MarketKind
    interval_minutes: int = Field(gt=0)
    clearing: str = Field(
        min_length=1, description="name of the clearing function in the exchange's registry"
    )
    gate_closure_days_before: int = Field(1, ge=0, description="bids close this many days before delivery")
    gate_closure_local_time: time | None = Field(
        None, description="... at this local time (day-ahead markets)"
    )
    gate_closure_minutes_before_delivery: int | None = Field(
        None, ge=0, description="rolling gate: bids for an interval close this long before it starts"
    )
    price_floor: float
    price_cap: float
    missing_bid: MissingBidRule = Field(
        description="what the exchange does when no bid stands at gate closure"
    )
    results_local_time: time | None = Field(
        None, description="results published at this time on the gate day"
    )

    @model_validator(mode="after")
    def _one_gate(self) -> MarketConfig:
        if (self.gate_closure_local_time is None) == (self.gate_closure_minutes_before_delivery is None):
            raise ValueError(
                f"market {self.id}: give exactly one of gate_closure_local_time, gate_closure_minutes_before_delivery"
            )
        if self.price_floor >= self.price_cap:
            raise ValueError(f"market {self.id}: price_floor must be below price_cap")
        if 1440 % self.interval_minutes:
            raise ValueError(f"market {self.id}: interval_minutes must divide a day (1440 minutes) evenly")
        return self

    def gate_closure(self, delivery_day: date, first_interval: datetime | None = None) -> datetime:
        """When bids for ``delivery_day`` (or, for a rolling gate, for ``first_interval``) close."""
        from infra.timeutil import MARKET_TZ

        if self.gate_closure_local_time is not None:
            day = delivery_day - timedelta(days=self.gate_closure_days_before)
            return datetime.combine(day, self.gate_closure_local_time, tzinfo=MARKET_TZ)
        start = first_interval or datetime.combine(delivery_day, time(0), tzinfo=MARKET_TZ)
        return start - timedelta(minutes=self.gate_closure_minutes_before_delivery or 0)


class MarketRules(Sourced):
    id: str
    name: str
    version: str
    day_ahead_interval_minutes: int = Field(gt=0)
    real_time_interval_minutes: int = Field(gt=0)
    offer_price_floor_cny_per_mwh: float
    offer_price_cap_cny_per_mwh: float
    clearing_price_floor_cny_per_mwh: float
    clearing_price_cap_cny_per_mwh: float
    max_segments: int = Field(gt=0)
    price_tick_cny_per_mwh: Positive
    min_segment_mw: NonNegative
    gate_closure_local_time: time = Field(description="day-ahead bids close at this time on D-1")
    vpp_min_capacity_mw: NonNegative
    vpp_min_response_hours: NonNegative
    grid_import_tariff_cny_per_mwh: NonNegative = Field(
        0.0, description="transmission and distribution charge on energy the park imports from the grid"
    )
    deviation: DeviationRule
    regulation: RegulationRule
    demand_response: DemandResponseRule
    price_shape: PriceShape
    exchange_simulator: ExchangeSimulatorSettings
    markets: list[MarketConfig] = Field(
        default_factory=list,
        description="the province's markets; empty = day-ahead and real-time energy derived from the fields above",
    )

    def market_id(self, local_id: str) -> str:
        return f"{self.id}.{local_id}"

    def registry(self) -> dict[str, MarketConfig]:
        """Every market of the province keyed by its market id (``<province>.<id>``)."""
        markets = self.markets or [
            MarketConfig(
                source="derived from the province's day-ahead fields",
                id="day_ahead",
                kind="day_ahead_energy",
                interval_minutes=self.day_ahead_interval_minutes,
                clearing="uniform_price_stack",
                gate_closure_local_time=self.gate_closure_local_time,
                price_floor=self.offer_price_floor_cny_per_mwh,
                price_cap=self.offer_price_cap_cny_per_mwh,
                missing_bid="price_cap",
            ),
            MarketConfig(
                source="derived from the province's real-time fields",
                id="real_time",
                kind="real_time_energy",
                interval_minutes=self.real_time_interval_minutes,
                clearing="uniform_price_stack",
                gate_closure_minutes_before_delivery=60,
                gate_closure_days_before=0,
                price_floor=self.offer_price_floor_cny_per_mwh,
                price_cap=self.offer_price_cap_cny_per_mwh,
                missing_bid="price_taker",
            ),
        ]
        return {self.market_id(m.id): m for m in markets}

    def market_for(self, kind: MarketKind) -> tuple[str, MarketConfig]:
        """The (first) market of a kind, with its market id."""
        for market_id, m in self.registry().items():
            if m.kind == kind:
                return market_id, m
        raise KeyError(f"market file {self.id}: no market of kind {kind!r}")

    @model_validator(mode="after")
    def _consistent(self) -> MarketRules:
        ids = [m.id for m in self.markets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"markets: ids must be unique ({', '.join(ids)})")
        if self.offer_price_floor_cny_per_mwh >= self.offer_price_cap_cny_per_mwh:
            raise ValueError("offer_price_floor_cny_per_mwh must be below offer_price_cap_cny_per_mwh")
        if self.clearing_price_floor_cny_per_mwh >= self.clearing_price_cap_cny_per_mwh:
            raise ValueError("clearing_price_floor_cny_per_mwh must be below clearing_price_cap_cny_per_mwh")
        for name in ("day_ahead_interval_minutes", "real_time_interval_minutes"):
            if 1440 % getattr(self, name):
                raise ValueError(f"{name}: must divide a day (1440 minutes) evenly")
        return self


# --- carbon --------------------------------------------------------------------------------


class Fuel(Sourced):
    unit: Literal["m3", "kg", "t"]
    ncv_mj_per_unit: Positive = Field(description="net calorific value")
    ef_tco2_per_tj: Positive
    oxidation_fraction: Fraction = 1.0
    kgce_per_unit: Positive = Field(description="standard-coal equivalent, GB/T 2589-2020")
    price_cny_per_unit: NonNegative = 0.0


class IndicatorBand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    min_annual_tce: NonNegative
    max_annual_tce: float | None = None
    max_tco2_per_tce: Positive


class CarbonSettings(Sourced):
    version: str
    grid_ef_tco2_per_mwh: Positive = Field(description="park method factor for non-green grid electricity")
    location_grid_ef_tco2_per_mwh: dict[int, Positive] = Field(
        description="provincial factor by year, scope 2"
    )
    fossil_heat_ef_tco2_per_gj: Positive
    electricity_tce_basis: Literal["calorific", "equal_value"]
    kgce_per_kwh: dict[Literal["calorific", "equal_value"], Positive]
    heat_kgce_per_mj: Positive
    carbon_price_cny_per_tco2: NonNegative
    green_certificate_price_cny: NonNegative
    ccer_price_cny_per_tco2: NonNegative
    indicator_bands: list[IndicatorBand]
    clean_energy_share_target: Fraction
    green_power_share_target: Fraction
    fuels: dict[str, Fuel]

    @model_validator(mode="after")
    def _basis_known(self) -> CarbonSettings:
        if self.electricity_tce_basis not in self.kgce_per_kwh:
            raise ValueError(
                f"kgce_per_kwh has no value for electricity_tce_basis={self.electricity_tce_basis!r}"
            )
        return self


# --- park structure ----------------------------------------------------------------------


class RevenueShare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: Literal["fixed_plus_share", "tou_plus_share"]
    fixed_price_cny_per_mwh: NonNegative = 0.0
    share_fraction: Fraction


class Enterprise(Sourced):
    id: str
    name: str
    sector: str
    contract: RevenueShare | None = Field(
        None, description="flexibility revenue-sharing terms; None = the operator"
    )


class GridNode(Sourced):
    id: str
    voltage_kv: Positive
    import_limit_mw: NonNegative
    export_limit_mw: NonNegative


class Location(Sourced):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude_m: float
    weather_file: Literal["723170TYA.CSV", "703165TY.csv"]
    weather_file_latitude: float
    weather_file_longitude: float


class LongTermContract(Sourced):
    id: str
    quantity_mw: float = Field(description="net injection; negative is a purchase")
    price_cny_per_mwh: float
    green: bool = Field(description="a green-power contract: energy with its certificates")
    hours: tuple[Hour, Hour] = (0, 24)


# --- assets --------------------------------------------------------------------------------


class AssetBase(Sourced):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    enterprise: str
    connection: str

    @property
    def is_flexible(self) -> bool:
        return True

    @property
    def rated_mw(self) -> float:
        """The most power the asset can move: the bound for plausibility checks of its meters."""
        raise NotImplementedError(type(self).__name__)


class PV(AssetBase):
    type: Literal["pv"]
    capacity_mw: Positive
    kind: Literal["central", "rooftop"]
    tilt_deg: float = Field(ge=0, le=90)
    azimuth_deg: float = Field(ge=0, lt=360)
    system_loss_fraction: Fraction
    curtailable: bool = True

    @property
    def rated_mw(self) -> float:
        return self.capacity_mw


class Wind(AssetBase):
    type: Literal["wind"]
    capacity_mw: Positive
    turbines: int = Field(gt=0)
    turbine_type: str = Field(description="windpowerlib turbine library name")
    hub_height_m: Positive
    full_load_hours: Positive = Field(description="annual energy / capacity; calibrates the wind history")
    curtailable: bool = True

    @property
    def rated_mw(self) -> float:
        return self.capacity_mw


class Battery(AssetBase):
    type: Literal["battery"]
    power_mw: Positive
    energy_mwh: Positive
    charge_efficiency: Annotated[float, Field(gt=0, le=1)]
    discharge_efficiency: Annotated[float, Field(gt=0, le=1)]
    soc_min_fraction: Fraction
    soc_max_fraction: Fraction
    soc_initial_fraction: Fraction
    degradation_cny_per_mwh: NonNegative
    max_duration_h: Positive = Field(8.0, description="energy_mwh may be at most power_mw x this")

    @model_validator(mode="after")
    def _window(self) -> Battery:
        if self.soc_min_fraction >= self.soc_max_fraction:
            raise ValueError("soc_min_fraction must be below soc_max_fraction")
        if not self.soc_min_fraction <= self.soc_initial_fraction <= self.soc_max_fraction:
            raise ValueError("soc_initial_fraction must lie within [soc_min_fraction, soc_max_fraction]")
        if self.energy_mwh > self.power_mw * self.max_duration_h + 1e-9:
            raise ValueError(
                f"energy_mwh={self.energy_mwh} exceeds power_mw x max_duration_h = "
                f"{self.power_mw} x {self.max_duration_h}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.power_mw


class HeatPump(AssetBase):
    type: Literal["heat_pump"]
    electric_mw: Positive
    cop: Positive
    heat_peak_mw_th: Positive = Field(description="peak heat demand served by this plant")
    tank_mwh_th: NonNegative
    tank_loss_fraction_per_h: Fraction
    heating_months: list[Annotated[int, Field(ge=1, le=12)]]
    cooling_peak_mw_th: NonNegative = Field(0.0, description="summer cooling demand served in reverse mode")

    @model_validator(mode="after")
    def _can_meet_peak(self) -> HeatPump:
        if self.heat_peak_mw_th > self.electric_mw * self.cop + 1e-9:
            raise ValueError(
                f"heat_peak_mw_th={self.heat_peak_mw_th} exceeds electric_mw x cop = {self.electric_mw * self.cop:g}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.electric_mw


class EVFleet(AssetBase):
    type: Literal["ev_fleet"]
    charge_mw: Positive
    vehicles: int = Field(gt=0)
    energy_per_day_mwh: Positive
    arrival_hour: Hour
    departure_hour: Hour
    v2g_mw: NonNegative = 0.0

    @property
    def plugged_hours(self) -> float:
        return (self.departure_hour - self.arrival_hour) % 24 or 24

    @model_validator(mode="after")
    def _energy_fits(self) -> EVFleet:
        if self.energy_per_day_mwh > self.charge_mw * self.plugged_hours + 1e-9:
            raise ValueError(
                f"energy_per_day_mwh={self.energy_per_day_mwh} exceeds charge_mw x plugged hours = "
                f"{self.charge_mw} x {self.plugged_hours:g}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return max(self.charge_mw, self.v2g_mw)


class ShiftableBatch(AssetBase):
    type: Literal["shiftable_batch"]
    energy_per_day_mwh: Positive
    power_min_mw: NonNegative
    power_max_mw: Positive
    window_start_hour: Hour
    window_end_hour: Hour

    @property
    def window_hours(self) -> float:
        return (self.window_end_hour - self.window_start_hour) % 24 or 24

    @model_validator(mode="after")
    def _energy_fits(self) -> ShiftableBatch:
        if self.power_min_mw > self.power_max_mw:
            raise ValueError("power_min_mw must not exceed power_max_mw")
        if self.energy_per_day_mwh > self.power_max_mw * self.window_hours + 1e-9:
            raise ValueError(
                f"energy_per_day_mwh={self.energy_per_day_mwh} exceeds power_max_mw x window = "
                f"{self.power_max_mw} x {self.window_hours:g} h"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.power_max_mw


class InterruptibleLoad(AssetBase):
    type: Literal["interruptible_load"]
    baseline_mw: Positive = Field(description="typical consumption of the interruptible process")
    max_curtail_mw: Positive
    max_duration_h: Positive
    max_energy_mwh_per_day: Positive
    cost_cny_per_mwh: NonNegative
    notice_minutes: NonNegative

    @model_validator(mode="after")
    def _limits(self) -> InterruptibleLoad:
        if self.max_curtail_mw > self.baseline_mw + 1e-9:
            raise ValueError(f"max_curtail_mw={self.max_curtail_mw} exceeds baseline_mw={self.baseline_mw}")
        if self.max_energy_mwh_per_day > self.max_curtail_mw * self.max_duration_h + 1e-9:
            raise ValueError(
                f"max_energy_mwh_per_day={self.max_energy_mwh_per_day} exceeds max_curtail_mw x max_duration_h"
                f" = {self.max_curtail_mw} x {self.max_duration_h}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.baseline_mw


class Electrolyser(AssetBase):
    type: Literal["electrolyser"]
    capacity_mw: Positive
    min_load_fraction: Fraction
    ramp_fraction_per_h: Annotated[float, Field(gt=0)]
    kwh_per_kg_h2: Positive
    h2_demand_kg_per_day: Positive
    h2_storage_kg: NonNegative

    @model_validator(mode="after")
    def _demand_fits(self) -> Electrolyser:
        max_kg = self.capacity_mw * 1000 * 24 / self.kwh_per_kg_h2
        if self.h2_demand_kg_per_day > max_kg + 1e-9:
            raise ValueError(
                f"h2_demand_kg_per_day={self.h2_demand_kg_per_day} exceeds 24 h at capacity = {max_kg:.0f}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.capacity_mw


class DataCentre(AssetBase):
    type: Literal["data_centre"]
    it_load_mw: Positive
    pue: Annotated[float, Field(ge=1)]
    deferrable_fraction: Fraction
    max_deferral_h: Positive
    max_power_mw: Positive = Field(description="electrical limit of the site including cooling")

    @model_validator(mode="after")
    def _headroom(self) -> DataCentre:
        if self.it_load_mw * self.pue > self.max_power_mw + 1e-9:
            raise ValueError(
                f"it_load_mw x pue = {self.it_load_mw * self.pue:g} exceeds max_power_mw={self.max_power_mw}"
            )
        return self

    @property
    def rated_mw(self) -> float:
        return self.max_power_mw


class GasGenerator(AssetBase):
    type: Literal["gas_generator"]
    capacity_mw: Positive
    min_load_fraction: Fraction
    electric_efficiency: Annotated[float, Field(gt=0, le=1)]
    fuel: str
    annual_fuel_budget_units: NonNegative = Field(description="fuel the park may burn per year (plan figure)")

    @property
    def rated_mw(self) -> float:
        return self.capacity_mw


class InflexibleLoad(AssetBase):
    type: Literal["inflexible_load"]
    peak_mw: Positive
    load_factor: Annotated[float, Field(gt=0, le=1)]
    profile: Literal["three_shift", "two_shift", "day_shift", "flat", "commercial"]
    weekend_factor: Annotated[float, Field(gt=0, le=1.5)]
    holiday_factor: Annotated[float, Field(gt=0, le=1.5)]

    @property
    def is_flexible(self) -> bool:
        return False

    @property
    def rated_mw(self) -> float:
        return self.peak_mw


Asset = Annotated[
    PV
    | Wind
    | Battery
    | HeatPump
    | EVFleet
    | ShiftableBatch
    | InterruptibleLoad
    | Electrolyser
    | DataCentre
    | GasGenerator
    | InflexibleLoad,
    Field(discriminator="type"),
]


class Simulation(Sourced):
    """How the synthetic history is made (simulator parameters, not domain facts)."""

    seed: int
    history_days: int = Field(ge=365)
    load_noise_fraction: Fraction
    weather_forecast_error_fraction: Fraction
    wind_forecast_error_ms: NonNegative
    outage_probability_per_day: Fraction
    meter_gap_probability_per_day: Fraction
    delivery_deviation_fraction: Fraction


class StoragePolicy(Sourced):
    """A rule tying operator storage to renewable capacity (e.g. Inner Mongolia: >= 15 % for 4 h)."""

    min_power_fraction_of_renewables: Fraction
    min_hours: Positive
    renewable_utilisation_target: Fraction


class Park(Sourced):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    province: str
    version: str
    timezone: Literal["Asia/Shanghai"]
    market: str = Field(description="id of a markets/<id>.yaml rule file")
    location: Location
    choices: list[str] = Field(description="where the source plans conflict: what was chosen and why")
    enterprises: list[Enterprise]
    grid: list[GridNode]
    contracts: list[LongTermContract]
    carbon: CarbonSettings
    simulation: Simulation
    storage_policy: StoragePolicy | None = None
    grid_connection: str | None = Field(
        None, description="grid node joining the park to the State Grid; its limits bound the park's total"
    )
    assets: list[Asset]


class Scenario(BaseModel):
    """A park with its market rules resolved: what every service reads."""

    model_config = ConfigDict(frozen=True)
    park: Park
    market: MarketRules

    @property
    def id(self) -> str:
        return self.park.id

    @property
    def version(self) -> str:
        return f"{self.park.id}@{self.park.version}+{self.market.id}@{self.market.version}"

    @cached_property
    def assets_by_id(self) -> dict[str, Any]:
        """Assets by id, built once: parks of 100,000 devices look assets up per device."""
        return {a.id: a for a in self.park.assets}

    def with_assets(self, assets: list[Any]) -> Scenario:
        """The same park and market with only ``assets`` (part of this valid park, so not checked
        again): what one block of a large park's per-asset work needs, small enough to send."""
        park = self.park.model_copy(update={"assets": assets})
        return Scenario.model_construct(park=park, market=self.market)

    def asset(self, asset_id: str) -> Any:
        try:
            return self.assets_by_id[asset_id]
        except KeyError:
            raise KeyError(f"park {self.park.id} has no asset {asset_id!r}") from None

    def assets_of(self, *types: str) -> list[Any]:
        return [a for a in self.park.assets if a.type in types]

    def enterprise(self, enterprise_id: str) -> Enterprise:
        for e in self.park.enterprises:
            if e.id == enterprise_id:
                return e
        raise KeyError(f"park {self.park.id} has no enterprise {enterprise_id!r}")
