"""Awards back into set-points: every asset gets a feasible schedule that together delivers the award.

``disaggregate`` solves the dispatch model (one scenario, the award as target, deviation
priced above any clearing price) and reports any deviation with its reason. Awarded demand
response is executed, not merely held: in an event's intervals the target is the energy award
plus the event's MW (peak cut: more injection, valley fill: less), so the flexible assets that
offered it (batteries, interruptible loads, gas, shiftable loads) change their set-points;
settlement measures the delivery against the baseline. ``reoptimise``
is the intraday step: intervals already dispatched are frozen (and interruptible loads keep
orders inside their notice time), the rest is re-solved with the latest forecasts, warm
started on the compiled model. ``check_setpoints`` re-checks every device's limits in plain
numpy, independently of the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from aggregator.devices import fleets_for
from aggregator.dispatch_notes import demand_response_notes, deviation_notes, reserve_notes
from aggregator.errors import InfeasibleError, InputError, Violation
from aggregator.inputs import DayInputs, contract_positions, inputs_from_forecast
from aggregator.model import ParkModel
from aggregator.offer import forecast_day
from aggregator.portfolio import ModelStore, Portfolio, fingerprint
from aggregator.scale import Aggregated, is_pooled, pooled_model
from aggregator.solution import DayData, Intraday, Solution, SolveInfo
from aggregator.uncertainty import energy_needs, reserve_needs
from infra.contracts import AssetSetpoints, Award, Dispatch, ForecastSet
from infra.scenario import Scenario
from infra.timeutil import ensure_aware

# Deviations below this (MW) are solver tolerance, not a deviation worth a note.
SETPOINT_DECIMALS = 6
MAX_PROBLEM_NOTES = 20  # feasibility problems named in a dispatch's notes; the rest are counted


@dataclass
class DispatchResult:
    dispatch: Dispatch
    info: SolveInfo
    state: dict[str, float]
    violations: list[Violation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    solution: Solution | None = None  # the solve the set-points were read from

    def setpoints(self) -> dict[str, np.ndarray]:
        return {a.asset_id: np.asarray(a.power_mw) for a in self.dispatch.assets}


def dispatch_model(scenario: Scenario, T: int, dt_h: float, models: ModelStore | None = None) -> ParkModel:
    """The dispatch model for a park: compiled here, or taken from (and kept in) ``models``."""

    def make() -> ParkModel:
        return ParkModel(Portfolio.from_scenario(scenario), 1, T, dt_h, "dispatch")

    if models is None:
        return make()
    return models.get(("dispatch", fingerprint(scenario), T, dt_h), make)


def _award_arrays(award: Award, inputs: DayInputs) -> dict[str, np.ndarray]:
    """The award's per-interval arrays, checked against the forecast's interval grid."""
    if award.interval_minutes != inputs.interval_minutes:
        raise InputError(
            f"award interval_minutes={award.interval_minutes}: the day-ahead model uses {inputs.interval_minutes}"
        )
    starts = [ensure_aware(ts, "interval_starts") for ts in award.interval_starts]
    if len(starts) != inputs.T or any(a != b for a, b in zip(starts, inputs.starts, strict=True)):
        raise InputError(
            f"award interval_starts: expected {inputs.T} intervals from {inputs.starts[0].isoformat()}, the day of "
            "the forecast the offer was built on"
        )
    arrays = {"cleared_mw": np.asarray(award.cleared_mw, dtype=float)}
    for name in ("regulation_mw", "demand_response_mw"):
        values = getattr(award, name)
        arrays[name] = np.asarray(values, dtype=float) if values else np.zeros(inputs.T)
    for name, values in arrays.items():
        if not np.all(np.isfinite(values)):
            raise InputError(f"award {name}: every value must be a finite number")
    if np.any(arrays["regulation_mw"] < 0):
        raise InputError("award regulation_mw: capacity must be >= 0")
    return arrays


def target_mw(award: dict[str, np.ndarray]) -> np.ndarray:
    """The park injection the set-points must deliver: the energy award plus the awarded demand
    response executed on top of it (+ peak cut: more injection; - valley fill: less)."""
    return award["cleared_mw"] + award["demand_response_mw"]


def _day(
    scenario: Scenario,
    inputs: DayInputs,
    award: dict[str, np.ndarray],
    carbon_price: float,
    intraday: Intraday | None = None,
) -> DayData:
    contracts = contract_positions(scenario, inputs.starts, inputs.dt_h)
    need_up, need_down = reserve_needs(scenario, inputs)
    energy_up, energy_down = energy_needs(scenario, inputs)
    return DayData(
        profiles=inputs.medians(),
        green_mw=contracts.green_mw,
        need_up=need_up,
        need_down=need_down,
        carbon_price=carbon_price,
        energy_need_up=energy_up,
        energy_need_down=energy_down,
        award_mw=target_mw(award),
        regulation_award_mw=award["regulation_mw"],
        intraday=intraday,
    )


def disaggregate(
    scenario: Scenario,
    forecast: ForecastSet,
    award: Award,
    *,
    award_message_id: str,
    carbon_price_cny_per_tco2: float | None = None,
    solver: str = "ECOS",
    allow_relaxed: bool = False,
    models: ModelStore | None = None,
) -> DispatchResult:
    """Set-points for every asset that deliver ``award`` (or the closest feasible, with the reason)."""
    inputs = inputs_from_forecast(scenario, forecast, forecast_day(forecast))
    arrays = _award_arrays(award, inputs)
    carbon_price = _carbon_price(scenario, carbon_price_cny_per_tco2)
    day = _day(scenario, inputs, arrays, carbon_price)
    pooled = pooled_model(scenario, 1, inputs.T, inputs.dt_h, "dispatch", day.profiles)
    if pooled is None:
        model, aggregated, notes = dispatch_model(scenario, inputs.T, inputs.dt_h, models), None, []
    else:
        model, aggregated = pooled
        day = replace(day, profiles=aggregated.profiles)
        notes = [
            f"{model.portfolio.flexible_count():,} virtual devices split back to {len(scenario.park.assets):,} assets"
        ]
    solution = model.solve(day, solver)
    return _result(
        solution, scenario, inputs, arrays, award_message_id, allow_relaxed, notes, pooled=aggregated
    )


def reoptimise(
    scenario: Scenario,
    day_ahead: ForecastSet,
    latest: ForecastSet,
    award: Award,
    previous: Dispatch,
    *,
    award_message_id: str,
    state: dict[str, float],
    from_time: datetime,
    carbon_price_cny_per_tco2: float | None = None,
    solver: str = "ECOS",
    allow_relaxed: bool = False,
    models: ModelStore | None = None,
) -> DispatchResult:
    """Intraday: re-plan the intervals from ``from_time`` on with the latest forecast (``award``: the
    position to deliver, the day-ahead award or one with real-time results applied).

    Intervals before ``from_time`` keep the set-points of ``previous``; ``state`` holds the
    storage levels the earlier solve started the day with (``DispatchResult.state``).
    """
    if is_pooled(scenario):
        raise InputError(
            f"park {scenario.id}: intraday re-optimisation of a pooled portfolio ({len(scenario.park.assets):,} "
            "assets) is not built; its day-ahead dispatch stands"
        )
    day = forecast_day(day_ahead)
    inputs = inputs_from_forecast(scenario, day_ahead, day)
    now_index = int(np.searchsorted(inputs.starts, ensure_aware(from_time, "from_time")))
    # the latest forecast counts from its issue time, which may be before ``from_time`` (a real-time
    # award re-plans later intervals): the frozen intervals keep the baselines they were planned with
    newer = int(np.searchsorted(inputs.starts, ensure_aware(latest.issued_at, "latest.issued_at")))
    inputs = inputs.merged_with(
        inputs_from_forecast(scenario, latest, day, full_day=False), min(newer, now_index)
    )
    arrays = _award_arrays(award, inputs)
    frozen = np.arange(inputs.T) < now_index
    before = {a.asset_id: np.asarray(a.power_mw, dtype=float) for a in previous.assets}
    model = dispatch_model(scenario, inputs.T, inputs.dt_h, models)
    for f in model.portfolio.fleets:
        missing = [a for a in f.ids if a not in before]
        if missing:
            raise InputError(f"previous dispatch has no set-points for {', '.join(missing)}")
    intraday = Intraday(previous=before, frozen=frozen, now_index=now_index, state=dict(state))
    carbon_price = _carbon_price(scenario, carbon_price_cny_per_tco2)
    solution = model.solve(_day(scenario, inputs, arrays, carbon_price, intraday), solver, warm_start=True)
    note = (
        f"intraday re-optimisation from {inputs.starts[min(now_index, inputs.T - 1)]:%H:%M} "
        f"with the forecast issued {latest.issued_at:%H:%M}"
    )
    return _result(solution, scenario, inputs, arrays, award_message_id, allow_relaxed, [note], state)


def _carbon_price(scenario: Scenario, override: float | None) -> float:
    return scenario.park.carbon.carbon_price_cny_per_tco2 if override is None else override


def _result(
    solution: Solution,
    scenario: Scenario,
    inputs: DayInputs,
    award: dict[str, np.ndarray],
    award_message_id: str,
    allow_relaxed: bool,
    notes: list[str],
    state: dict[str, float] | None = None,
    pooled: Aggregated | None = None,
) -> DispatchResult:
    info: SolveInfo = solution.info
    if info.violations and not allow_relaxed:
        raise InfeasibleError(f"the dispatch for park {scenario.id} on {inputs.day}", info.violations)
    by_fleet = (
        [(fs.fleet, fs.setpoints(0)) for fs in solution.fleets]
        if pooled is None
        else pooled.fleet_setpoints(solution)
    )
    setpoints = {
        a: points[i].round(SETPOINT_DECIMALS) for fleet, points in by_fleet for i, a in enumerate(fleet.ids)
    }
    profiles = inputs.medians()
    caps: dict[str, list[float | None]] = {}
    for fleet, points in by_fleet:
        caps.update(fleet.dispatch_caps(points, profiles))
    enterprise = {a.id: a.enterprise for a in scenario.park.assets}
    total = np.sum(list(setpoints.values()), axis=0)
    deviation = total - target_mw(award)
    notes = notes + demand_response_notes(inputs, award, deviation)
    notes += deviation_notes(solution, inputs, deviation)
    notes += reserve_notes(solution, inputs)
    notes += [f"relaxed: {v.describe()}" for v in info.violations]
    notes += [f"{v.asset_id}: {v.family} by {v.amount:.3g} {v.unit}" for v in solution.targets_missed]
    problems = check_setpoints(scenario, inputs, setpoints)
    notes += [f"feasibility check: {p}" for p in problems[:MAX_PROBLEM_NOTES]]
    if len(problems) > MAX_PROBLEM_NOTES:  # a message is no place for a list the size of the park
        notes.append(f"feasibility check: {len(problems) - MAX_PROBLEM_NOTES} more problems not listed")
    dispatch = Dispatch(
        interval_minutes=inputs.interval_minutes,
        interval_starts=[ts.to_pydatetime() for ts in inputs.starts],
        award_message_id=award_message_id,
        assets=[
            AssetSetpoints(
                asset_id=a, enterprise_id=enterprise[a], power_mw=values.tolist(), cap_mw=caps.get(a, [])
            )
            for a, values in setpoints.items()
        ],
        deviation_mw=deviation.round(SETPOINT_DECIMALS).tolist(),
        regulation_mw=_regulation_held(solution),
        notes=notes,
    )
    return DispatchResult(
        dispatch=dispatch,
        info=info,
        state=state if state is not None else dict(solution.state),
        violations=info.violations,
        problems=problems,
        solution=solution,
    )


def _regulation_held(solution: Solution) -> list[float]:
    if solution.regulation is None:
        return []
    held = solution.regulation.capacity_mw.round(3)
    return held.tolist() if np.any(held > 0) else []


def check_setpoints(scenario: Scenario, inputs: DayInputs, setpoints: dict[str, np.ndarray]) -> list[str]:
    """Every device limit and grid limit the set-points break (empty when all are feasible)."""
    profiles = inputs.medians()
    problems = []
    missing = sorted({a.id for a in scenario.park.assets} - set(setpoints))
    if missing:
        problems.append(f"no set-points for {', '.join(missing)}")
        return problems
    for f in fleets_for(scenario):
        values = np.stack([np.asarray(setpoints[a], dtype=float) for a in f.ids])
        problems += f.check(values, profiles, inputs.dt_h)
    node_of = {a.id: a.connection for a in scenario.park.assets}
    total = np.sum([np.asarray(v) for v in setpoints.values()], axis=0)
    for g in scenario.park.grid:
        at_node = np.sum(
            [np.asarray(v) for a, v in setpoints.items() if node_of.get(a) == g.id] or [np.zeros(inputs.T)],
            axis=0,
        )
        if at_node.min() < -g.import_limit_mw - 1e-3:
            problems.append(
                f"grid node {g.id}: imports {-at_node.min():.1f} MW, above its {g.import_limit_mw:g} MW limit"
            )
        if at_node.max() > g.export_limit_mw + 1e-3:
            problems.append(
                f"grid node {g.id}: exports {at_node.max():.1f} MW, above its {g.export_limit_mw:g} MW limit"
            )
        if g.id == scenario.park.grid_connection:
            if total.min() < -g.import_limit_mw - 1e-3:
                problems.append(
                    f"park connection {g.id}: the park imports {-total.min():.1f} MW, above {g.import_limit_mw:g} MW"
                )
            if total.max() > g.export_limit_mw + 1e-3:
                problems.append(
                    f"park connection {g.id}: the park exports {total.max():.1f} MW, above {g.export_limit_mw:g} MW"
                )
    return problems
