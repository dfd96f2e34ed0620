"""``parkvpp bench aggregator``: aggregated vs monolithic offer for a generated portfolio, and Datong timings.

Both sides solve the same energy offer (price scenarios, monotone curves, every device
constraint, wear, curtailment and carbon costs) with ECOS in the same run: the monolithic
model with all devices, and the model over equivalent virtual devices followed by the exact
proportional split. The gap is measured on the split, feasible schedule, evaluated by the
same numpy function as the monolithic one. Progress goes to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import numpy as np

from aggregator.bench_data import generate_portfolio
from aggregator.devices import Resolution
from aggregator.devices.cluster import DEFAULT_RESOLUTION
from aggregator.dispatch import disaggregate
from aggregator.inputs import PRICE_DA, inputs_from_forecast, price_scenarios, required_series
from aggregator.model import ParkModel
from aggregator.offer import build_offer
from aggregator.portfolio import ModelStore, Portfolio
from aggregator.scale import (
    aggregate,
    check_all,
    objective_cny,
    pooled_levels,
    solution_setpoints,
    unmanaged_setpoints,
)
from aggregator.solution import DayData, Solution
from infra.contracts import Award, ForecastSet, SeriesForecast
from infra.db import make_engine
from infra.registry import open_portfolio
from infra.scenario import Scenario
from infra.settings import get_settings
from infra.timeseries import read
from infra.timeutil import day_start

SOLVER = "ECOS"
# The monolithic reference grows fast (10,000 devices x 2 scenarios is ~3 million variables for
# ECOS), so the benchmark's offer has two price scenarios: one curve segment per interval.
BENCH_PRICE_SCENARIOS = 2
HEARTBEAT_S = 15.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _heartbeat(label: str) -> Iterator[None]:
    """Print the elapsed time every few seconds while a long step runs."""
    stop = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            _say(f"  ... {label}: {time.perf_counter() - started:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def metered_day_forecast(scenario: Scenario, day: date, spread_fraction: float = 0.1) -> ForecastSet:
    """A forecast-shaped input made from the metered day in the time-series store: the readings
    (gaps interpolated) as P50, widened by ``spread_fraction`` into P10 and P90, so the benchmark
    measures the aggregator, not a forecast model's accuracy."""
    needed = required_series(scenario)
    url = get_settings().resolved_database_url
    frame = read(make_engine(url), scenario.id, needed, day, day + timedelta(days=1), missing="nan")
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise RuntimeError(
            f"no metered data for {', '.join(empty[:5])} on {day} in {url}; run `parkvpp run-day --park {scenario.id} "
            f"--date {day}` or ingest meters first"
        )
    frame = frame.interpolate(limit_direction="both")
    series = []
    for sid, upper in needed.items():
        median = frame[sid].to_numpy(dtype=float)
        if sid == PRICE_DA:
            width = spread_fraction * 2 * float(np.mean(np.abs(median)))
            low, high = median - width, median + width
        else:
            low, high = median * (1 - spread_fraction), median * (1 + spread_fraction)
            if upper is not None:
                median, high = np.minimum(median, upper / 1.1), np.minimum(high, upper / 1.1)
        quantiles = {
            "0.1": low.round(4).tolist(),
            "0.5": median.round(4).tolist(),
            "0.9": high.round(4).tolist(),
        }
        series.append(
            SeriesForecast(
                series_id=sid,
                asset_id=None if sid.startswith("market.") else sid.split(".")[0],
                quantity=sid.split(".", 1)[1],
                model="metered-day",
                model_version="1",
                quantiles=quantiles,
            )
        )
    issued = day_start(day) - timedelta(hours=14)
    return ForecastSet(
        interval_minutes=int((frame.index[1] - frame.index[0]).total_seconds() // 60),
        interval_starts=[ts.to_pydatetime() for ts in frame.index],
        horizon="day_ahead",
        issued_at=issued,
        data_cutoff=issued,
        series=series,
    )


def _datong(day: date) -> Scenario:
    return open_portfolio(get_settings().resolved_database_url, "datong", day)


def datong_timings() -> dict[str, float]:
    """Datong day-ahead offer plus dispatch: first run (compiles the models) and a warm run."""
    day = get_settings().default_day
    scenario = _datong(day)
    forecast = metered_day_forecast(scenario, day)
    times: dict[str, float] = {}
    models = ModelStore()  # the first run compiles both models, the second re-solves them
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        result = build_offer(scenario, forecast, forecast_message_id="bench", models=models)
        t1 = time.perf_counter()
        median = inputs_from_forecast(scenario, forecast, day).median("market.price_da_cny_per_mwh")
        award = Award(
            interval_minutes=forecast.interval_minutes,
            interval_starts=forecast.interval_starts,
            market="day_ahead",
            bid_message_id="bench",
            exchange="bench",
            cleared_mw=[c.quantity_at(p) for c, p in zip(result.offer.energy, median, strict=True)],
            clearing_price_cny_per_mwh=median.tolist(),
        )
        t2 = time.perf_counter()
        dispatch = disaggregate(scenario, forecast, award, award_message_id="bench", models=models)
        t3 = time.perf_counter()
        times[f"datong_offer_seconds_{label}"] = round(t1 - t0, 3)
        times[f"datong_dispatch_seconds_{label}"] = round(t3 - t2, 3)
        times[f"datong_offer_dispatch_seconds_{label}"] = round(t1 - t0 + t3 - t2, 3)
        times["datong_dispatch_max_deviation_mw"] = round(
            float(np.max(np.abs(dispatch.dispatch.deviation_mw))), 6
        )
    return times


def _day_data(
    devices: int, heterogeneous: bool = False
) -> tuple[Portfolio, dict[str, np.ndarray], np.ndarray, float, float]:
    """The generated portfolio on Datong's default day: profiles, price scenarios, dt, carbon price."""
    day = get_settings().default_day
    scenario = _datong(day)
    inputs = inputs_from_forecast(scenario, metered_day_forecast(scenario, day), day)
    load_shape = sum(inputs.median(f"{a.id}.load_mw") for a in scenario.assets_of("inflexible_load"))
    pv_shape = inputs.median("pv_central.pv_mw") / 300.0
    scale_mw = 0.8 * devices  # fixed load in proportion to the flexible pool (about 0.8 MW per device)
    load = scale_mw * load_shape / load_shape.max()
    portfolio, profiles = generate_portfolio(
        devices, load, 0.3 * scale_mw * pv_shape, scenario.park.carbon, heterogeneous=heterogeneous
    )
    prices = price_scenarios(inputs, BENCH_PRICE_SCENARIOS)
    return portfolio, profiles, prices.prices, inputs.dt_h, scenario.park.carbon.carbon_price_cny_per_tco2


def solve_energy_offer(
    portfolio: Portfolio, profiles: dict[str, np.ndarray], prices: np.ndarray, dt_h: float, carbon: float
) -> tuple[Solution, float, int]:
    """The benchmark's energy offer (no reserves) solved once: solution, seconds with building, variables."""
    K, T = prices.shape
    t0 = time.perf_counter()
    model = ParkModel(portfolio, K, T, dt_h, "offer", reserves=False)
    zeros = np.zeros(T)
    day = DayData(
        profiles=profiles, green_mw=zeros, need_up=zeros, need_down=zeros, carbon_price=carbon, prices=prices
    )
    solution = model.solve(day, SOLVER, once=True)
    return solution, time.perf_counter() - t0, model.variable_count


def run(
    devices: int = 10_000,
    full: bool = True,
    progress: bool = True,
    heterogeneous: bool = False,
    gap_target_percent: float | None = None,
    tradeoff: bool = False,
    resolution: Resolution = DEFAULT_RESOLUTION,
) -> dict[str, object]:
    """Run the benchmark; returns the figures (and prints a summary unless ``progress`` is False).

    ``heterogeneous`` generates every device with its own parameters; ``gap_target_percent``
    refines the clustering until the estimated gap is below the target
    (:func:`~aggregator.scale.pooled_levels`); ``tradeoff`` also runs every resolution level
    for the gap / time curve. ``resolution`` is the clustering's bins (the base of the levels).
    """
    kind = "heterogeneous" if heterogeneous else "catalogue"
    _say(
        f"aggregator benchmark: {devices:,} {kind} flexible devices, {BENCH_PRICE_SCENARIOS} price scenarios, {SOLVER}"
    )
    _say("Datong offer + dispatch (first run compiles the models) ...")
    figures: dict[str, object] = {
        "solver": SOLVER,
        "devices": devices,
        "heterogeneous": heterogeneous,
        "price_scenarios": BENCH_PRICE_SCENARIOS,
        "resolution": vars(resolution),
    }
    figures.update(datong_timings())

    portfolio, profiles, prices, dt_h, carbon = _day_data(devices, heterogeneous)
    K, T = prices.shape
    weights = np.full(K, 1.0 / K)
    figures["flexible_devices"] = portfolio.flexible_count()
    figures["intervals"] = T

    def solve(p: Portfolio, pr: dict[str, np.ndarray]) -> Solution:
        return solve_energy_offer(p, pr, prices, dt_h, carbon)[0]

    def evaluate(points: dict[str, np.ndarray]) -> float:
        return objective_cny(portfolio, points, profiles, prices, weights, carbon, dt_h)

    _say("aggregated: clustering into virtual devices, solving, splitting back ...")
    if gap_target_percent is None:
        t0 = time.perf_counter()
        pooled = aggregate(portfolio, profiles, T, dt_h, resolution)
        solution = solve(pooled.virtual, pooled.profiles)
        agg_points = pooled.split(solution)
        agg_seconds = time.perf_counter() - t0
        figures["virtual_devices"] = pooled.virtual.flexible_count()
        figures["aggregated_solve_seconds"] = round(solution.info.seconds, 3)
    else:
        search, chosen, agg_points = pooled_levels(
            portfolio, profiles, T, dt_h, solve, evaluate, gap_target_percent / 100, base=resolution
        )
        agg_seconds = sum(level.seconds for level in search)
        figures["gap_target_percent"] = gap_target_percent
        figures["virtual_devices"] = chosen.virtual_devices
        figures["resolution_factor"] = chosen.factor
        figures["aggregated_chosen_level_seconds"] = round(chosen.seconds, 3)
        figures["levels"] = [vars(level) for level in search]
    figures["aggregated_seconds"] = round(agg_seconds, 3)
    _say(f"  {figures['virtual_devices']} virtual devices, {agg_seconds:.2f} s")

    _say("checking every device's split schedule ...")
    figures["split_infeasible_devices"] = len(check_all(portfolio, agg_points, profiles, dt_h))
    agg_objective = evaluate(agg_points)
    base_objective = evaluate(unmanaged_setpoints(portfolio, profiles, K, T, dt_h))
    figures["objective_aggregated_cny"] = round(agg_objective, 2)
    figures["objective_unmanaged_cny"] = round(base_objective, 2)
    if tradeoff:
        _say("trade-off: every resolution level ...")
        curve, _, _ = pooled_levels(portfolio, profiles, T, dt_h, solve, evaluate, None, base=resolution)
        figures["tradeoff"] = [vars(level) for level in curve]

    if full:
        size = sum(f.n for f in portfolio.fleets)
        _say(
            f"monolithic: building and solving all {size:,} devices with {SOLVER} (slow; progress every {HEARTBEAT_S:.0f} s) ..."
        )
        with _heartbeat("monolithic ECOS"):
            full_solution, full_seconds, variables = solve_energy_offer(
                portfolio, profiles, prices, dt_h, carbon
            )
        full_objective = objective_cny(
            portfolio, solution_setpoints(full_solution), profiles, prices, weights, carbon, dt_h
        )
        flexibility = full_objective - base_objective
        figures.update(
            full_seconds=round(full_seconds, 3),
            full_solve_seconds=round(full_solution.info.seconds, 3),
            full_variables=variables,
            objective_full_cny=round(full_objective, 2),
            speedup=round(full_seconds / agg_seconds, 1),
            gap_percent=round(100 * (full_objective - agg_objective) / abs(full_objective), 4),
            gap_percent_of_flexibility_value=round(100 * (full_objective - agg_objective) / flexibility, 3)
            if flexibility > 0
            else None,
        )
        for key in ("levels", "tradeoff"):
            for level in figures.get(key, []):
                level["gap_percent"] = round(
                    100 * (full_objective - level["objective_cny"]) / abs(full_objective), 4
                )
                level["speedup"] = round(full_seconds / level["seconds"], 1)
    if progress:
        _print(figures)
    return figures


def _print(f: dict[str, object]) -> None:
    print(
        f"Datong offer + dispatch: {f['datong_offer_dispatch_seconds_warm']} s warm "
        f"(offer {f['datong_offer_seconds_warm']} s, dispatch {f['datong_dispatch_seconds_warm']} s); "
        f"first run {f['datong_offer_dispatch_seconds_cold']} s including model compilation"
    )
    print(
        f"portfolio: {f['flexible_devices']:,} flexible devices x {f['intervals']} intervals, "
        f"{f['price_scenarios']} price scenarios -> {f['virtual_devices']} virtual devices "
        f"(bins {','.join(str(v) for v in f['resolution'].values())})"
    )
    print(
        f"aggregated offer: {f['aggregated_seconds']} s (solve {f['aggregated_solve_seconds']} s), "
        f"objective {f['objective_aggregated_cny']:,.0f} CNY, infeasible split schedules: {f['split_infeasible_devices']}"
    )
    if "objective_full_cny" in f:
        print(
            f"monolithic {f['solver']}: {f['full_seconds']} s (solve {f['full_solve_seconds']} s, "
            f"{f['full_variables']:,} variables), objective {f['objective_full_cny']:,.0f} CNY"
        )
        print(
            f"speed-up {f['speedup']}x; gap {f['gap_percent']} % of the optimum "
            f"({f['gap_percent_of_flexibility_value']} % of the flexibility value over unmanaged devices)"
        )
    for key, title in (("levels", "resolution search"), ("tradeoff", "gap / time trade-off")):
        if key in f:
            print(f"{title}: factor, virtual devices, seconds, objective CNY, gap % (speed-up)")
            for level in f[key]:
                gap = f" {level['gap_percent']} % ({level['speedup']}x)" if "gap_percent" in level else ""
                print(
                    f"  x{level['factor']:g}: {level['virtual_devices']}, {level['seconds']:.2f} s, "
                    f"{level['objective_cny']:,.0f}{gap}"
                )
