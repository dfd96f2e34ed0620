"""``parkvpp evaluate`` and ``parkvpp bench market``: how much of the available value the VPP captures.

A backtest over market days ``[from, to]`` through the production code: for each day a
day-ahead forecast (outputs: the metered day widened +-10 %; day-ahead price: the previous
seven days' prices at the same interval as P10/P50/P90, so the VPP does not see the price it
will clear at), the aggregator's offer (``aggregator.offer.build_offer``), the province rules
(``bidding.rules.make_bid``), the bid lifecycle on a simulated market clock against the
recorded-results adapter (which replays the day's prices from the time-series store), and the
aggregator's dispatch of the award (``aggregator.dispatch.disaggregate``). The batteries'
set-points are then valued with :mod:`bidding.evaluate` beside the perfect-foresight optimum
and the naive rule. History comes from the store; a fresh run directory is filled by the
demo wiring first (``gateway.run_day._prepare_history``), as ``run-day`` does.
"""

from __future__ import annotations

import json
import time as clock
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

import numpy as np
import typer

from infra.contracts import ForecastSet, SeriesForecast
from infra.scenario.model import Battery, Scenario
from infra.timeutil import MARKET_TZ, day_start

if TYPE_CHECKING:
    from bidding.evaluate import GridLimits

PRICE_DA = "market.price_da_cny_per_mwh"
LOOKBACK_DAYS = 7


def _forecast(scenario: Scenario, frame, day: date, needed: dict[str, float | None]) -> ForecastSet:
    today = frame.loc[frame.index.date == day]
    series = []
    for sid, upper in needed.items():
        if sid == PRICE_DA:
            past = np.stack(
                [
                    frame.loc[frame.index.date == day - timedelta(days=k), sid].to_numpy()
                    for k in range(1, LOOKBACK_DAYS + 1)
                ]
            )
            past = np.where(np.isnan(past), np.nanmean(past), past)
            low, median, high = (np.percentile(past, q, axis=0) for q in (10, 50, 90))
        else:
            median = today[sid].interpolate(limit_direction="both").fillna(0.0).to_numpy(dtype=float)
            low, high = median * 0.9, median * 1.1
            if upper is not None:
                median, high = np.minimum(median, upper / 1.1), np.minimum(high, upper / 1.1)
        series.append(
            SeriesForecast(
                series_id=sid,
                asset_id=None if sid.startswith("market.") else sid.split(".")[0],
                quantity=sid.split(".", 1)[1],
                model="evaluate-metered-day+price-persistence",
                model_version="1",
                quantiles={
                    "0.1": low.round(4).tolist(),
                    "0.5": median.round(4).tolist(),
                    "0.9": high.round(4).tolist(),
                },
            )
        )
    issued = day_start(day) - timedelta(hours=14)
    return ForecastSet(
        interval_minutes=15,
        interval_starts=[ts.to_pydatetime() for ts in today.index],
        horizon="day_ahead",
        issued_at=issued,
        data_cutoff=issued,
        series=series,
    )


def _regulation_recorded(engine, park_id: str, day: date) -> bool:
    """Whether the store holds the day's regulation mileage prices (what the recorded-results
    adapter would clear regulation at)."""
    from bidding.recorded import SERIES
    from infra.timeseries import read

    frame = read(engine, park_id, [SERIES["regulation"]], day, day + timedelta(days=1), missing="nan")
    return bool(len(frame)) and not frame[SERIES["regulation"]].isna().any()


def without_regulation(scenario: Scenario) -> Scenario:
    """The scenario for a market that clears no regulation: holding regulation capacity earns
    nothing, so the offer values it at zero (as a trader would not offer into a market with no
    results) and the batteries stay free for energy."""
    market = scenario.market
    regulation = market.regulation.model_copy(update={"expected_mileage_price_cny_per_mw": 0.0})
    return scenario.model_copy(update={"market": market.model_copy(update={"regulation": regulation})})


def grid_limits(scenario: Scenario, batteries: list[Battery], setpoints: dict[str, np.ndarray]) -> GridLimits:
    """The grid headroom the batteries share, per grid node and at the park connection, with the
    park's other assets at the power the VPP dispatched them: the same physical limits the VPP's
    own set-points met."""
    from bidding.evaluate import GridLimits

    park = scenario.park
    battery_ids = {b.id for b in batteries}
    node_of = {a.id: a.connection for a in park.assets}
    T = len(next(iter(setpoints.values())))
    groups = []
    for g in park.grid:
        scopes = [[a for a in setpoints if node_of.get(a) == g.id]]
        if g.id == park.grid_connection:
            scopes.append(list(setpoints))
        for scope in scopes:
            members = tuple(i for i, b in enumerate(batteries) if b.id in scope)
            if not members:
                continue
            others = np.sum([setpoints[a] for a in scope if a not in battery_ids] or [np.zeros(T)], axis=0)
            groups.append((members, g.import_limit_mw + others, g.export_limit_mw - others))
    return GridLimits(tuple(groups))


def evaluate(park_id: str, first: date, last: date, progress=print) -> dict[str, object]:
    from aggregator.dispatch import disaggregate
    from aggregator.inputs import required_series
    from aggregator.offer import build_offer
    from aggregator.portfolio import ModelStore
    from bidding.evaluate import DayMargins, import_adder, margin, naive_rule, perfect_foresight, summarise
    from bidding.lifecycle import BidDesk, MarketClock, MemoryStore
    from bidding.recorded import RecordedResultsAdapter
    from gateway.run_day import _prepare_history
    from infra.db import make_engine, migrate
    from infra.registry import portfolio
    from infra.settings import get_settings
    from infra.timeseries import read

    url = get_settings().resolved_database_url
    migrate(url)
    engine = make_engine(url)
    scenario = portfolio(engine, park_id, last)
    _prepare_history(engine, scenario, last + timedelta(days=1), progress)
    batteries: list[Battery] = list(scenario.assets_of("battery"))
    adder = import_adder(scenario)
    models = ModelStore()
    days: list[DayMargins] = []
    skipped: list[str] = []
    no_regulation: list[str] = []
    day = first
    while day <= last:
        t0 = clock.perf_counter()
        scenario = portfolio(engine, park_id, day)
        if not _regulation_recorded(engine, park_id, day):
            scenario = without_regulation(scenario)
            no_regulation.append(day.isoformat())
        needed = required_series(scenario)
        frame = read(
            engine,
            park_id,
            list(needed),
            day - timedelta(days=LOOKBACK_DAYS),
            day + timedelta(days=1),
            missing="nan",
        )
        try:
            forecast = _forecast(scenario, frame, day, needed)
            offer = build_offer(scenario, forecast, forecast_message_id=f"evaluate-{day}", models=models)
            rules = scenario.market
            _, da = rules.market_for("day_ahead_energy")
            gate = da.gate_closure(day)
            market_clock = MarketClock(gate - timedelta(hours=2))
            desk = BidDesk(RecordedResultsAdapter(engine, park_id, rules), rules, market_clock, MemoryStore())
            bid_id = f"evaluate-{park_id}-{day}"
            desk.draft(offer.offer, f"evaluate-offer-{day}", bid_id)
            desk.submit(bid_id)
            market_clock.advance_to(gate)
            desk.close_gate(desk.bids[bid_id].market_id, day)
            results_at = da.results_local_time or time(17, 30)
            market_clock.advance_to(datetime.combine(gate.date(), results_at, tzinfo=MARKET_TZ))
            award = desk.collect(bid_id)[0]
            dispatch = disaggregate(
                scenario, forecast, award, award_message_id=f"evaluate-award-{day}", models=models
            )
        except Exception as exc:  # noqa: BLE001 - a day the chain cannot run is reported, not hidden
            skipped.append(f"{day}: {type(exc).__name__}: {exc}"[:300])
            progress(f"evaluate  {day} skipped: {skipped[-1]}")
            day += timedelta(days=1)
            continue
        price = np.asarray(award.clearing_price_cny_per_mwh)
        yesterday = (
            frame.loc[frame.index.date == day - timedelta(days=1), PRICE_DA]
            .interpolate(limit_direction="both")
            .to_numpy()
        )
        setpoints = dispatch.setpoints()
        dt = award.interval_minutes / 60
        limits = grid_limits(scenario, batteries, setpoints)
        vpp = sum(margin(b, setpoints[b.id], price, dt, adder) for b in batteries)
        perfect_mw = perfect_foresight(batteries, price, dt, adder, limits)
        perfect = sum(margin(b, perfect_mw[i], price, dt, adder) for i, b in enumerate(batteries))
        charge_cap, discharge_cap = limits.caps(batteries)
        naive = sum(
            margin(
                b,
                naive_rule(b, yesterday, dt, charge_cap=charge_cap[i], discharge_cap=discharge_cap[i]),
                price,
                dt,
                adder,
            )
            for i, b in enumerate(batteries)
        )
        days.append(DayMargins(day.isoformat(), vpp, perfect, naive))
        progress(
            f"evaluate  {day}: VPP {vpp:,.0f}  perfect foresight {perfect:,.0f}  naive {naive:,.0f} CNY "
            f"({clock.perf_counter() - t0:.1f} s)"
        )
        day += timedelta(days=1)
    out = summarise(days)
    out |= {
        "park": park_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "import_adder_cny_per_mwh": round(adder, 2),
        "batteries": [b.id for b in batteries],
        "skipped": skipped,
        "regulation_not_offered": (
            f"{len(no_regulation)} of {len(days) + len(skipped)} days: the recorded results hold no "
            "regulation prices, so the backtest market clears no regulation and the offer holds no "
            "capacity for it"
        ),
    }
    return out


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        park: str = typer.Option("datong", help="park id"),
        first: str = typer.Option(..., "--from", help="first market day, YYYY-MM-DD"),
        last: str = typer.Option(..., "--to", help="last market day, YYYY-MM-DD (inclusive)"),
        as_json: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
    ) -> None:
        """Backtest the chain over days: VPP margin vs perfect foresight vs a naive rule, per day and total."""
        try:
            d1, d2 = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError as exc:
            raise typer.BadParameter(f"--from/--to: {exc}") from exc
        if d2 < d1:
            raise typer.BadParameter("--to is before --from")
        _report(evaluate(park, d1, d2, progress=_err), as_json)

    @bench.command("market")
    def bench_market(
        days: int = typer.Option(30, min=1, help="backtest days ending on the default day"),
        as_json: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
    ) -> None:
        """VPP margin vs perfect-foresight optimum vs naive rule over Datong days; share captured."""
        from infra.settings import get_settings

        end = get_settings().default_day
        _report(evaluate("datong", end - timedelta(days=days - 1), end, progress=_err), as_json)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _report(figures: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    for row in figures["per_day"]:  # type: ignore[union-attr]
        typer.echo(
            f"{row['day']}  VPP {row['vpp_cny']:>12,.0f}  perfect {row['perfect_cny']:>12,.0f}  "
            f"naive {row['naive_cny']:>12,.0f}  captured {row['captured']}"
        )
    for key in (
        "days",
        "vpp_margin_cny",
        "perfect_foresight_margin_cny",
        "naive_margin_cny",
        "share_captured_total",
        "share_captured_median",
        "naive_share_captured_median",
        "days_vpp_beats_naive_fraction",
    ):
        typer.echo(f"{key:32s} {figures[key]}")
