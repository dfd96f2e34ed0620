"""Wire contracts: the message envelope, the topics and the payload of every message.

Every message is JSON in an :class:`Envelope` (ARCHITECTURE.md): ``schema`` (name and
version), ``message_id`` (deterministic for the same business fact, so it doubles as the
idempotency key), ``park_id``, ``market_day``, ``produced_at`` and ``payload``.

Sign convention everywhere: power and energy are *net injection* into the market, seen from
the park or asset: generation and discharge positive, consumption and charging negative.
Payloads carry per-interval arrays aligned with ``interval_starts`` (half-open intervals of
``interval_minutes``). Amounts carry their unit in the field name.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from infra.timeutil import MARKET_TZ, now


class Topic(StrEnum):
    FORECASTS = "vpp.forecasts"
    OFFERS = "vpp.offers"
    BIDS = "vpp.bids"
    AWARDS = "vpp.awards"
    DISPATCH = "vpp.dispatch"
    METERING = "vpp.metering"
    SETTLEMENTS = "vpp.settlements"
    DEAD_LETTERS = "vpp.deadletters"


MESSAGE_NAMESPACE = uuid.UUID("6f1d3c2a-9b7e-4c1f-8a52-3e0d7b9c4a11")


def message_id(schema: str, park_id: str, market_day: date, *key: object) -> str:
    """Deterministic id of a business fact: the same fact always gets the same id."""
    parts = [schema, park_id, market_day.isoformat(), *(str(k) for k in key)]
    return str(uuid.uuid5(MESSAGE_NAMESPACE, "|".join(parts)))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number; messages carry finite numbers only")


class SchemaRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    version: int


class Envelope(BaseModel):
    """The JSON envelope around every Kafka message."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    schema_: SchemaRef = Field(alias="schema")
    message_id: str
    park_id: str
    market_day: date
    produced_at: datetime
    payload: dict[str, Any]
    producer: str | None = Field(None, description="the service that produced and signed it")
    signature: str | None = Field(None, description="Ed25519 signature (base64) of the rest, by the producer")

    @field_validator("produced_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("produced_at must carry a timezone offset")
        return value.astimezone(MARKET_TZ)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        """Parse strict JSON: NaN and Infinity literals are refused, numbers must be finite."""
        return cls.model_validate(json.loads(raw, parse_constant=_refuse_constant))


class Payload(BaseModel):
    """Base of all payloads: knows its schema name/version and how to wrap itself."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    SCHEMA: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[Topic]

    def envelope(self, park_id: str, market_day: date, *key: object) -> Envelope:
        return Envelope(
            schema=SchemaRef(name=self.SCHEMA, version=self.VERSION),
            message_id=message_id(self.SCHEMA, park_id, market_day, *key),
            park_id=park_id,
            market_day=market_day,
            produced_at=now(),
            payload=self.model_dump(mode="json"),
        )

    @classmethod
    def from_envelope(cls, env: Envelope) -> Any:
        if env.schema_.name != cls.SCHEMA:
            raise ValueError(f"message {env.message_id}: schema {env.schema_.name!r} is not {cls.SCHEMA!r}")
        if env.schema_.version != cls.VERSION:
            raise ValueError(
                f"message {env.message_id}: {cls.SCHEMA} version {env.schema_.version} is not supported "
                f"(this build reads version {cls.VERSION})"
            )
        return cls.model_validate(env.payload)


class Intervals(Payload):
    """Mixin for payloads that carry per-interval arrays."""

    interval_minutes: int = Field(gt=0)
    interval_starts: list[datetime]

    @field_validator("interval_starts")
    @classmethod
    def _market_time(cls, value: list[datetime]) -> list[datetime]:
        """Starts in Asia/Shanghai, however they arrived: JSON keeps only the +08:00 offset, and a
        fixed-offset index does not compare equal to the market calendar's. Naive values are left
        for the consumer to reject with its own message."""
        return [ts if ts.tzinfo is None else ts.astimezone(MARKET_TZ) for ts in value]

    @model_validator(mode="after")
    def _check_arrays(self) -> Intervals:
        n = len(self.interval_starts)
        for name, value in self._interval_arrays():
            if len(value) != n:
                raise ValueError(f"{name}: has {len(value)} values for {n} intervals")
        return self

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        return []


# --- forecasts -------------------------------------------------------------------------

Horizon = Literal["day_ahead", "72h", "intraday"]


class SeriesForecast(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    series_id: str
    asset_id: str | None = None
    quantity: str = Field(
        description="what is forecast, with unit, e.g. load_mw, pv_mw, price_da_cny_per_mwh"
    )
    model: str
    model_version: str
    quantiles: dict[str, list[float]] = Field(description='keys like "0.1", "0.5", "0.9"')


class ForecastSet(Intervals):
    SCHEMA: ClassVar[str] = "forecast_set"
    TOPIC: ClassVar[Topic] = Topic.FORECASTS
    horizon: Horizon
    issued_at: datetime
    data_cutoff: datetime
    series: list[SeriesForecast]

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        return [(f"{s.series_id}.q{q}", v) for s in self.series for q, v in s.quantiles.items()]


# --- offers, bids, awards --------------------------------------------------------------

MarketName = Literal["day_ahead", "real_time"]

ExchangeStatus = Literal["open", "withdrawn", "closed", "cleared", "rejected"]
"""A bid's state as the exchange sees it (the bidding service keeps the fuller lifecycle)."""


class ExchangeRefusal(ValueError):
    """An exchange refused a request; ``code`` says why (gate_closed, unknown_bid, not_open, invalid)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Segment(BaseModel):
    """One price-quantity step: ``quantity_mw`` more net injection at or above ``price``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    price_cny_per_mwh: float
    quantity_mw: float = Field(ge=0)


class EnergyCurve(BaseModel):
    """Net-injection supply curve for one interval.

    At clearing price ``p`` the park injects ``base_mw + sum(s.quantity_mw for s if s.price <= p)``.
    ``base_mw`` is the price-taking position (negative when the park must buy).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base_mw: float
    segments: list[Segment]

    def quantity_at(self, price_cny_per_mwh: float) -> float:
        return self.base_mw + sum(
            s.quantity_mw for s in self.segments if s.price_cny_per_mwh <= price_cny_per_mwh
        )


class RegulationOffer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    capacity_mw: float = Field(ge=0)
    mileage_price_cny_per_mw: float = Field(ge=0)


class DemandResponseOffer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    direction: Literal["peak_cut", "valley_fill"]
    capacity_mw: float = Field(ge=0)
    price_cny_per_mwh: float = Field(ge=0)


class DemandResponseEvent(BaseModel):
    """One invited demand-response event: what the flexible loads that offered it must do.

    Delivery is the metered change against the baseline (``DemandResponseRule.baseline_days``
    similar days) in ``direction`` over intervals ``first_interval..last_interval`` (inclusive,
    on the award's grid), settled with the market file's deviation rule."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    direction: Literal["peak_cut", "valley_fill"]
    first_interval: int = Field(ge=0)
    last_interval: int = Field(ge=0)
    notified_at: datetime
    target_mw: float = Field(ge=0, description="change against the baseline the event asks for")
    price_cny_per_mwh: float = Field(ge=0)
    baseline_days: int = Field(gt=0)


class AssetContribution(BaseModel):
    """What one asset brings to a pooled offer, from the solve the offer was read from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    asset_id: str
    enterprise_id: str
    expected_mwh: float = Field(
        description="net injection over the day (+ generation / discharge), expected over the price scenarios"
    )
    min_mw: float = Field(description="lowest expected net injection of any interval")
    max_mw: float = Field(description="highest expected net injection of any interval")
    flexible_mw: float = Field(
        ge=0,
        description="largest price-responsive range of any interval: the spread of its injection across "
        "the offer's price scenarios plus its flexibility bands",
    )


class Offer(Intervals):
    """The aggregator's pooled VPP offer for one market and day."""

    SCHEMA: ClassVar[str] = "offer"
    TOPIC: ClassVar[Topic] = Topic.OFFERS
    market: MarketName
    market_id: str | None = Field(
        None,
        description="market id <province>.<market> from the market file's registry (None: stored before ids existed)",
    )
    scenario_version: str
    forecast_message_id: str
    energy: list[EnergyCurve]
    regulation: list[RegulationOffer] = Field(default_factory=list)
    demand_response: list[list[DemandResponseOffer]] = Field(default_factory=list)
    expected_revenue_cny: float
    expected_emissions_tco2: float
    assets: list[AssetContribution] = Field(
        default_factory=list,
        description="the assets pooled in this offer (the portfolio of scenario_version) and what each "
        "brings; empty in offers made before offers named their assets",
    )
    issued_at: datetime | None = Field(
        None,
        description="market-clock time the offer was made: a real-time offer's intraday re-optimisation "
        "(its bid goes to the exchange then, before each interval's rolling gate); None for day-ahead offers",
    )

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        arrays: list[tuple[str, list[Any]]] = [("energy", self.energy)]
        if self.regulation:
            arrays.append(("regulation", self.regulation))
        if self.demand_response:
            arrays.append(("demand_response", self.demand_response))
        return arrays


class Bid(Offer):
    """An offer after the province rules were applied; what is submitted to the market."""

    SCHEMA: ClassVar[str] = "bid"
    TOPIC: ClassVar[Topic] = Topic.BIDS
    offer_message_id: str
    rules_version: str
    adjustments: list[str] = Field(default_factory=list, description="what the rules changed, for the trader")
    submitted_at: datetime | None = Field(
        None,
        description="market-clock time the bid goes to the exchange (simulated time in run-day); None: before the clock",
    )
    amends: str | None = Field(
        None,
        description="a revision: the message id of the bid it amends or withdraws (None: the bid as first submitted)",
    )
    revision: int = Field(
        0, ge=0, description="0: the bid as submitted; 1, 2, ...: each amendment or withdrawal"
    )
    withdrawn: bool = Field(
        False,
        description="a withdrawal: the bid named by amends is taken back (the curves are those withdrawn)",
    )


class Award(Intervals):
    """What the (simulated) exchange cleared for a bid.

    ``market="day_ahead"``: ``cleared_mw`` is the park's day-ahead position Q_DA (total net
    injection, medium/long-term contracts included) at the day-ahead price. ``market="real_time"``:
    ``cleared_mw`` is the real-time schedule Q_RT and the price the real-time price P_RT: for the
    whole day with Q_RT = Q_DA when no real-time bid was made, or (``real_time_bid``) what a
    real-time bid cleared in its intervals on the real-time grid.
    """

    SCHEMA: ClassVar[str] = "award"
    TOPIC: ClassVar[Topic] = Topic.AWARDS
    market: MarketName
    bid_message_id: str
    market_id: str | None = Field(
        None,
        description="energy market id <province>.<market> from the market file's registry (None: stored before ids existed)",
    )
    regulation_market_id: str | None = None
    demand_response_market_id: str | None = None
    real_time_bid: bool = Field(
        False,
        description="market real_time: True for the result of a real-time bid (only the bid's intervals, on "
        "the real-time grid; where two such awards overlap the later bid's stands); False for the whole day's "
        "real-time prices with the day-ahead position standing (no real-time bid: the market file's missing_bid)",
    )
    exchange: str
    cleared_mw: list[float]
    clearing_price_cny_per_mwh: list[float]
    regulation_mw: list[float] = Field(default_factory=list)
    regulation_mileage_price_cny_per_mw: list[float] = Field(default_factory=list)
    demand_response_mw: list[float] = Field(default_factory=list, description="+ peak cut, - valley fill")
    demand_response_price_cny_per_mwh: list[float] = Field(default_factory=list)
    demand_response_events: list[DemandResponseEvent] = Field(
        default_factory=list,
        description="the invitations behind demand_response_mw, with notice time and target",
    )

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        arrays = [
            ("cleared_mw", self.cleared_mw),
            ("clearing_price_cny_per_mwh", self.clearing_price_cny_per_mwh),
        ]
        for name in (
            "regulation_mw",
            "regulation_mileage_price_cny_per_mw",
            "demand_response_mw",
            "demand_response_price_cny_per_mwh",
        ):
            if getattr(self, name):
                arrays.append((name, getattr(self, name)))
        return arrays


# --- dispatch and metering -------------------------------------------------------------


class AssetSetpoints(BaseModel):
    """One asset's schedule. ``power_mw`` is a set-point for controllable assets and the
    expected output for uncontrolled ones (inflexible load, uncurtailed PV and wind);
    ``cap_mw`` holds a curtailment limit for generation where one applies (None = free)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    asset_id: str
    enterprise_id: str
    power_mw: list[float]
    cap_mw: list[float | None] = Field(default_factory=list)


class ChunkRef(BaseModel):
    """Which part of a split message this is (``infra.chunks``): chunk ``index`` of ``count``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(description='the chunk key, e.g. "c0003"; the message id is the parent key plus it')
    index: int = Field(ge=0)
    count: int = Field(gt=0)
    parent_message_id: str | None = Field(
        None,
        description="the id the whole message would have had: the chunks of one message share it and "
        "their manifest names it, so a consumer can tell two messages of one park and day apart",
    )

    @model_validator(mode="after")
    def _in_range(self) -> ChunkRef:
        if self.index >= self.count:
            raise ValueError(f"chunk {self.key}: index {self.index} is not below count {self.count}")
        return self


class Chunkable(Intervals):
    """A per-asset payload that may travel in chunks (``infra.chunks.split``).

    ``chunk`` None is the whole day in one message, and is left out of the JSON so that a
    message made before chunks existed keeps its bytes, and a stored fact its digest."""

    chunk: ChunkRef | None = Field(
        None, description="set on each part of a message split by assets; None: the whole message"
    )

    # model_dump and model_dump_json rather than a model_serializer: a wrapping serializer
    # would turn NaN into null in JSON mode and change what the contract's checks report.
    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return super().model_dump(**self._whole_without_chunk(kwargs))

    def model_dump_json(self, **kwargs: Any) -> str:
        return super().model_dump_json(**self._whole_without_chunk(kwargs))

    def _whole_without_chunk(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.chunk is not None:
            return kwargs
        exclude = kwargs.get("exclude")
        if exclude is None:
            exclude = {"chunk"}
        elif isinstance(exclude, dict):
            exclude = {**exclude, "chunk": True}
        else:
            exclude = {*exclude, "chunk"}
        return {**kwargs, "exclude": exclude}


class Dispatch(Chunkable):
    """Asset set-points that deliver an award."""

    SCHEMA: ClassVar[str] = "dispatch"
    TOPIC: ClassVar[Topic] = Topic.DISPATCH
    award_message_id: str
    assets: list[AssetSetpoints]
    deviation_mw: list[float] = Field(
        description="sum of set-points minus the award: its energy position plus the demand response it awards"
    )
    regulation_mw: list[float] = Field(default_factory=list, description="regulation capacity held")
    notes: list[str] = Field(default_factory=list)

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        arrays: list[tuple[str, list[Any]]] = [("deviation_mw", self.deviation_mw)]
        arrays += [(f"assets.{a.asset_id}.power_mw", a.power_mw) for a in self.assets]
        arrays += [(f"assets.{a.asset_id}.cap_mw", a.cap_mw) for a in self.assets if a.cap_mw]
        if self.regulation_mw:
            arrays.append(("regulation_mw", self.regulation_mw))
        return arrays


class AssetMetering(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    asset_id: str
    enterprise_id: str
    energy_mwh: list[float | None] = Field(description="None where the meter has a gap")


class RegulationPerformance(BaseModel):
    """Measured frequency-regulation performance per interval (inputs to the K factor)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    mileage_mw: list[float]
    k1_ramp: list[float] = Field(description="achieved / required ramp rate")
    k2_delay: list[float] = Field(description="1 - delay / allowed delay")
    k3_error: list[float] = Field(description="1 - error / allowed error")


class Metering(Chunkable):
    """Metered delivery at every asset and at the park's grid connection."""

    SCHEMA: ClassVar[str] = "metering"
    TOPIC: ClassVar[Topic] = Topic.METERING
    source: str
    grid_energy_mwh: list[float] = Field(description="net injection at the park's grid connection")
    assets: list[AssetMetering]
    regulation: RegulationPerformance | None = None

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        arrays: list[tuple[str, list[Any]]] = [("grid_energy_mwh", self.grid_energy_mwh)]
        arrays += [(f"assets.{a.asset_id}", a.energy_mwh) for a in self.assets]
        if self.regulation is not None:
            arrays += [(f"regulation.{k}", v) for k, v in self.regulation.model_dump().items()]
        return arrays


# --- settlement ------------------------------------------------------------------------


class StatementLine(BaseModel):
    """One revenue or cost line; ``amount_cny`` positive is money to the account holder."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    item: str
    amount_cny: float
    energy_mwh: float | None = None
    interval_amount_cny: list[float] = Field(default_factory=list)
    market_id: str | None = Field(
        None,
        description="market id <province>.<market> the line settles (None: not a market line, e.g. the grid "
        "tariff or an enterprise's supply, or stored before ids existed)",
    )


class Settlement(Intervals):
    """A daily statement for the park or one enterprise."""

    SCHEMA: ClassVar[str] = "settlement"
    TOPIC: ClassVar[Topic] = Topic.SETTLEMENTS
    account_id: str
    rules_version: str
    market_id: str | None = Field(
        None,
        description="market id <province>.<market> settled (e.g. the real-time energy market), from the market file's registry (None: stored before ids existed)",
    )
    source_message_ids: list[str]
    lines: list[StatementLine]
    interval_total_cny: list[float]
    total_cny: float
    emissions_tco2: float
    carbon_adjusted_revenue_cny: float

    def _interval_arrays(self) -> list[tuple[str, list[Any]]]:
        return [("interval_total_cny", self.interval_total_cny)] + [
            (f"lines.{line.item}", line.interval_amount_cny)
            for line in self.lines
            if line.interval_amount_cny
        ]


# --- chunk manifests -------------------------------------------------------------------


class ChunkEntry(BaseModel):
    """One chunk as its manifest names it: the digest lets a consumer refuse a changed chunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    message_id: str
    assets: int = Field(ge=0)
    enterprises: list[str]
    payload_sha256: str = Field(description="sha256 of the chunk's canonical payload JSON (outbox digest)")


class ChunkManifest(Payload):
    """Says which chunks make a whole Dispatch or Metering, so a consumer knows when a day is whole.

    It travels on the topic of the schema it describes (:attr:`topic`), keyed by park id, after
    its chunks; chunks are keyed by park and chunk and may arrive in any order around it."""

    SCHEMA: ClassVar[str] = "chunk_manifest"
    of_schema: Literal["dispatch", "metering"]
    parent_key: str = Field(description='the key the whole message would have had, e.g. "day_ahead"')
    parent_message_id: str = Field(description="the message id the whole message would have had")
    chunks: list[ChunkEntry] = Field(min_length=1)
    total_assets: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ChunkManifest:
        keys = [c.key for c in self.chunks]
        if len(set(keys)) != len(keys):
            raise ValueError("chunks: a chunk key is listed twice")
        if sum(c.assets for c in self.chunks) != self.total_assets:
            raise ValueError(f"total_assets {self.total_assets} is not the sum of the chunks' assets")
        return self

    @property
    def topic(self) -> Topic:
        """The topic of the chunks it describes, which it travels on too."""
        return PAYLOADS[self.of_schema].TOPIC


PAYLOADS: dict[str, type[Payload]] = {
    cls.SCHEMA: cls for cls in (ForecastSet, Offer, Bid, Award, Dispatch, Metering, Settlement, ChunkManifest)
}
