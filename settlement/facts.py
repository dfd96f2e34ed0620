"""The facts a park-day is settled from: its day-ahead award, real-time award and metering,
and the awards of any real-time bids.

Messages are checked against the scenario before anything is stored, and every problem is
reported at once, naming the field and the rule. :func:`assemble` puts the three facts on
one interval grid, the metering grid: award values on a coarser grid are repeated, finer
ones (e.g. 5-minute real-time prices) are averaged, which is exact when energy is flat
within a meter interval. Real-time bid awards (``Award.real_time_bid``; kind
``award_real_time@HH:MM`` by their first interval, so a later award for the same intervals is a
correction of it) also go onto the real-time grid (:mod:`settlement.realtime`), where
the real-time lines are settled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from infra.contracts import Award, Envelope, Metering
from infra.scenario.model import Scenario
from infra.timeseries.quantities import rating_margin_fraction
from infra.timeutil import day_intervals
from settlement.realtime import RealTimeGrid, real_time_bid_problems, real_time_grid

KINDS = ("award_day_ahead", "award_real_time", "metering")
REAL_TIME_BID = "award_real_time@"  # kind prefix of a real-time bid's award, + its first interval HH:MM


def is_real_time_bid(kind: str) -> bool:
    return kind.startswith(REAL_TIME_BID)


def fact_ids(facts: dict[str, Fact]) -> list[str]:
    """Message ids a day is settled from: the three kinds, then the real-time bid awards in order."""
    return [facts[k].message_id for k in KINDS] + [
        facts[k].message_id for k in sorted(facts) if is_real_time_bid(k)
    ]


# A meter reading above rated power x interval x this margin is treated as a meter fault
# (estimated and flagged like a gap): the store's bound for every reading (quantities.yaml).
PLAUSIBILITY_MARGIN = 1.0 + rating_margin_fraction()

AWARD_ARRAYS = (
    "cleared_mw",
    "clearing_price_cny_per_mwh",
    "regulation_mw",
    "regulation_mileage_price_cny_per_mw",
    "demand_response_mw",
    "demand_response_price_cny_per_mwh",
)

MEASURED, GAP, IMPLAUSIBLE, NOT_METERED = 0, 1, 2, 3
QUALITY_NAMES = {GAP: "meter gap", IMPLAUSIBLE: "implausible reading", NOT_METERED: "asset not in metering"}


class FactError(ValueError):
    """An award or metering message cannot be settled; ``problems`` names each field and rule."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{what}: " + "; ".join(problems))


@dataclass(frozen=True)
class Fact:
    """One stored input message: its kind and parsed payload."""

    kind: str
    envelope: Envelope
    payload: Award | Metering

    @property
    def message_id(self) -> str:
        return self.envelope.message_id


def _pydantic_problems(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    ]


def _park_problems(envelope: Envelope, scenario: Scenario | None) -> list[str]:
    if scenario is not None and envelope.park_id != scenario.id:
        return [f"park_id: {envelope.park_id!r} is not the scenario's park {scenario.id!r}"]
    return []


def read_fact(envelope: Envelope, scenario: Scenario | None = None) -> Fact:
    """Parse an award or metering envelope; anything else is refused with the reason (with
    ``scenario``, a payload that does not parse is reported together with a wrong park)."""
    schema = envelope.schema_.name
    what = f"{schema} message {envelope.message_id} ({envelope.park_id} {envelope.market_day})"
    model = {"award": Award, "metering": Metering}.get(schema)
    if model is None:
        raise FactError(what, [f"schema: {schema!r} is not settled here (expected award or metering)"])
    try:
        payload = model.from_envelope(envelope)
    except ValidationError as exc:
        raise FactError(what, _park_problems(envelope, scenario) + _pydantic_problems(exc)) from exc
    except ValueError as exc:
        raise FactError(what, [str(exc)]) from exc
    if isinstance(payload, Award) and payload.real_time_bid:
        if payload.market != "real_time" or not payload.interval_starts:
            raise FactError(
                what, ["real_time_bid: only a real-time award with intervals can be a real-time bid's"]
            )
        first = payload.interval_starts[0]
        kind = f"{REAL_TIME_BID}{first:%H:%M}"
    else:
        kind = f"award_{payload.market}" if isinstance(payload, Award) else "metering"
    return Fact(kind, envelope, payload)


def rated_mw(asset: Any) -> float:
    """The most power an asset can move, for plausibility checks of its meter."""
    return asset.rated_mw


def _interval_problems(starts: list[datetime], minutes: int, day: date) -> list[str]:
    if 1440 % minutes:
        return [f"interval_minutes: {minutes} does not divide a day (1440 minutes) evenly"]
    expected = day_intervals(day, minutes)
    if len(starts) != len(expected):
        return [
            f"interval_starts: {len(starts)} intervals, but market day {day} has {len(expected)} of {minutes} min"
        ]
    for i, (got, want) in enumerate(zip(starts, expected, strict=True)):
        if got.tzinfo is None:
            return [f"interval_starts[{i}]: {got.isoformat()} has no timezone offset"]
        if got != want.to_pydatetime():
            return [
                f"interval_starts[{i}]: {got.isoformat()} is not {want.isoformat()} (intervals of market day {day})"
            ]
    return []


def _finite_problems(name: str, values: list[float | None]) -> list[str]:
    bad = [i for i, v in enumerate(values) if v is not None and not math.isfinite(v)]
    return (
        [f"{name}[{bad[0]}]: {values[bad[0]]} is not a finite number ({len(bad)} such values)"] if bad else []
    )


def _grid_problems(minutes: int, other: int, name: str) -> list[str]:
    if minutes % other and other % minutes:
        return [
            f"interval_minutes: {minutes} cannot be mapped onto the market's {other}-minute {name} intervals"
        ]
    return []


def check_fact(fact: Fact, scenario: Scenario) -> None:
    """Refuse a fact that does not fit the park and market day, listing every problem."""
    env, p = fact.envelope, fact.payload
    what = f"{env.schema_.name} message {env.message_id} ({env.park_id} {env.market_day})"
    problems = _park_problems(env, scenario)
    if isinstance(p, Award) and p.real_time_bid:
        problems += real_time_bid_problems(p, scenario, env.market_day)
    else:
        problems += _interval_problems(p.interval_starts, p.interval_minutes, env.market_day)
    if isinstance(p, Award):
        for name in AWARD_ARRAYS:
            problems += _finite_problems(name, getattr(p, name))
        if p.market == "day_ahead" and p.interval_minutes != scenario.market.day_ahead_interval_minutes:
            problems.append(
                f"interval_minutes: {p.interval_minutes} is not the market's day-ahead interval "
                f"({scenario.market.day_ahead_interval_minutes} min)"
            )
        if p.market == "real_time":
            problems += _grid_problems(
                p.interval_minutes, scenario.market.day_ahead_interval_minutes, "day-ahead"
            )
    else:
        problems += _grid_problems(
            p.interval_minutes, scenario.market.day_ahead_interval_minutes, "day-ahead"
        )
        problems += _finite_problems("grid_energy_mwh", p.grid_energy_mwh)
        seen: set[str] = set()
        for a in p.assets:
            if a.asset_id in seen:
                problems.append(f"assets.{a.asset_id}: metered twice")
            seen.add(a.asset_id)
            try:
                asset = scenario.asset(a.asset_id)
            except KeyError:
                problems.append(f"assets.{a.asset_id}: not an asset of park {scenario.id}")
                continue
            if a.enterprise_id != asset.enterprise:
                problems.append(
                    f"assets.{a.asset_id}.enterprise_id: {a.enterprise_id!r} but the scenario assigns it to {asset.enterprise!r}"
                )
            problems += _finite_problems(f"assets.{a.asset_id}.energy_mwh", a.energy_mwh)
        if p.regulation is not None:
            for name, values in p.regulation.model_dump().items():
                problems += _finite_problems(f"regulation.{name}", values)
    if problems:
        raise FactError(what, problems)


def on_grid(values: list[float], from_minutes: int, to_minutes: int, name: str) -> np.ndarray:
    """Map per-interval values onto the settlement grid (repeat coarser, average finer)."""
    v = np.asarray(values, dtype=float)
    if from_minutes == to_minutes:
        return v
    if from_minutes % to_minutes == 0:
        return np.repeat(v, from_minutes // to_minutes)
    if to_minutes % from_minutes == 0:
        return v.reshape(-1, to_minutes // from_minutes).mean(axis=1)
    raise FactError(
        name, [f"{from_minutes}-minute intervals cannot be mapped onto the {to_minutes}-minute metering grid"]
    )


@dataclass(frozen=True)
class DayFacts:
    """A park-day on the metering grid, ready to settle. Energy in MWh, power in MW."""

    park_id: str
    day: date
    interval_minutes: int
    interval_starts: list[datetime]
    q_da_mw: np.ndarray
    p_da_cny_per_mwh: np.ndarray
    q_rt_mw: np.ndarray
    p_rt_cny_per_mwh: np.ndarray
    regulation_mw: np.ndarray
    regulation_price_cny_per_mw: np.ndarray
    dr_mw: np.ndarray
    dr_price_cny_per_mwh: np.ndarray
    grid_mwh: np.ndarray
    asset_ids: tuple[str, ...]
    metered_mwh: np.ndarray  # (assets, intervals); NaN where not measured
    quality: np.ndarray  # (assets, intervals) MEASURED / GAP / IMPLAUSIBLE / NOT_METERED
    mileage_mw: np.ndarray | None
    k_inputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    source_message_ids: tuple[str, ...]  # the three kinds, then any real-time bid awards
    # Market id of each market the day's awards came from, by kind (day_ahead_energy,
    # real_time_energy, regulation, demand_response); kinds missing here come from the market file.
    market_ids: dict[str, str] = field(default_factory=dict)
    # The real-time result on the real-time grid, where real-time bids cleared (None: no real-time
    # bid, real time settles on the meter grid with Q_RT = Q_DA).
    real_time: RealTimeGrid | None = None

    @property
    def hours(self) -> float:
        return self.interval_minutes / 60.0

    @property
    def n(self) -> int:
        return len(self.interval_starts)


def _award_arrays(award: Award, minutes: int, prefix: str) -> dict[str, np.ndarray]:
    n = len(award.interval_starts)
    out = {}
    for name in AWARD_ARRAYS:
        values = getattr(award, name) or [0.0] * n
        out[name] = on_grid(values, award.interval_minutes, minutes, f"{prefix} award {name}")
    return out


def metered_energy(scenario: Scenario, m: Metering) -> tuple[np.ndarray, np.ndarray]:
    """Every scenario asset's metered energy ``(assets, intervals)``, NaN where not measured,
    and the quality code of each value (gap, implausible reading, asset not in the metering).

    The metering may be of another day (a baseline day) whose portfolio differed: assets that
    are not in ``scenario`` (withdrawn since) are left out; the day's own metering was checked
    against its portfolio by :func:`check_fact`."""
    h = m.interval_minutes / 60.0
    ids = [a.id for a in scenario.park.assets]
    metered = np.full((len(ids), len(m.interval_starts)), np.nan)
    quality = np.full(metered.shape, NOT_METERED, dtype=np.int8)
    row = {a: i for i, a in enumerate(ids)}
    for am in m.assets:
        if am.asset_id not in row:
            continue
        i = row[am.asset_id]
        values = np.array([np.nan if v is None else v for v in am.energy_mwh], dtype=float)
        limit = rated_mw(scenario.asset(am.asset_id)) * h * PLAUSIBILITY_MARGIN
        quality[i] = np.where(np.isnan(values), GAP, np.where(np.abs(values) > limit, IMPLAUSIBLE, MEASURED))
        metered[i] = np.where(quality[i] == MEASURED, values, np.nan)
    return metered, quality


def assemble(scenario: Scenario, facts: dict[str, Fact]) -> DayFacts:
    """Put the day-ahead award, real-time award and metering of one park-day on one grid."""
    missing = [k for k in KINDS if k not in facts]
    if missing:
        raise ValueError(f"cannot settle without {', '.join(missing)}")
    da: Award = facts["award_day_ahead"].payload  # type: ignore[assignment]
    rt: Award = facts["award_real_time"].payload  # type: ignore[assignment]
    m: Metering = facts["metering"].payload  # type: ignore[assignment]
    env = facts["metering"].envelope
    minutes = m.interval_minutes
    da_a = _award_arrays(da, minutes, "day-ahead")
    rt_a = _award_arrays(rt, minutes, "real-time")

    metered, quality = metered_energy(scenario, m)
    real_time = _real_time(scenario, facts, minutes, da_a["cleared_mw"], rt)
    q_rt, p_rt = rt_a["cleared_mw"], rt_a["clearing_price_cny_per_mwh"]
    if real_time is not None:  # meter-grid view of the real-time result (series and plots)
        covered = real_time.covered_meter_intervals()
        q_rt = np.where(covered, real_time.on_meter_grid(real_time.q_rt_mw), q_rt)
        p_rt = np.where(covered, real_time.on_meter_grid(real_time.p_rt_cny_per_mwh), p_rt)
    bid_awards = [facts[k].payload for k in sorted(facts) if is_real_time_bid(k)]
    rt_market_id = next((a.market_id for a in bid_awards if a.market_id), rt.market_id)  # type: ignore[union-attr]
    reg = m.regulation
    return DayFacts(
        park_id=env.park_id,
        day=env.market_day,
        interval_minutes=minutes,
        interval_starts=list(m.interval_starts),
        q_da_mw=da_a["cleared_mw"],
        p_da_cny_per_mwh=da_a["clearing_price_cny_per_mwh"],
        q_rt_mw=q_rt,
        p_rt_cny_per_mwh=p_rt,
        regulation_mw=da_a["regulation_mw"],
        regulation_price_cny_per_mw=da_a["regulation_mileage_price_cny_per_mw"],
        dr_mw=da_a["demand_response_mw"],
        dr_price_cny_per_mwh=da_a["demand_response_price_cny_per_mwh"],
        grid_mwh=np.asarray(m.grid_energy_mwh, dtype=float),
        asset_ids=tuple(a.id for a in scenario.park.assets),
        metered_mwh=metered,
        quality=quality,
        mileage_mw=None if reg is None else np.asarray(reg.mileage_mw, dtype=float),
        k_inputs=None
        if reg is None
        else (
            np.asarray(reg.k1_ramp, float),
            np.asarray(reg.k2_delay, float),
            np.asarray(reg.k3_error, float),
        ),
        source_message_ids=tuple(fact_ids(facts)),
        real_time=real_time,
        market_ids={
            kind: market_id
            for kind, market_id in (
                ("day_ahead_energy", da.market_id),
                ("real_time_energy", rt_market_id),
                ("regulation", da.regulation_market_id),
                ("demand_response", da.demand_response_market_id),
            )
            if market_id
        },
    )


def _real_time(
    scenario: Scenario, facts: dict[str, Fact], meter_minutes: int, q_da_mw: np.ndarray, day_award: Award
) -> RealTimeGrid | None:
    """The real-time bids' awards on the real-time grid over the whole-day award (None: no bids)."""
    bids = [facts[k] for k in sorted(facts) if is_real_time_bid(k)]
    if not bids:
        return None
    minutes = bids[0].payload.interval_minutes
    if meter_minutes % minutes:
        raise FactError(
            "real-time bid awards",
            [
                f"interval_minutes: {minutes}-minute real-time intervals do not divide the {meter_minutes}-minute metering"
            ],
        )
    grid = day_intervals(facts["metering"].envelope.market_day, minutes)
    p_day = on_grid(
        day_award.clearing_price_cny_per_mwh, day_award.interval_minutes, minutes, "real-time price"
    )
    parts = []
    for f in bids:
        a: Award = f.payload  # type: ignore[assignment]
        first = int(grid.get_loc(a.interval_starts[0]))
        parts.append(
            (
                first,
                np.asarray(a.cleared_mw, float),
                np.asarray(a.clearing_price_cny_per_mwh, float),
                f.message_id,
            )
        )
    return real_time_grid(minutes, meter_minutes, q_da_mw, p_day, parts)
