"""``parkvpp forecast ...`` commands and ``parkvpp bench forecast``.

Heavy libraries (Ray, sktime) are imported inside the commands so ``parkvpp --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

forecast_app = typer.Typer(
    help="Probabilistic load, PV, wind and price forecasts (sktime on Ray).", no_args_is_help=True
)

PARK = typer.Option("--park", "-p", help="park scenario id, e.g. datong or chifeng")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _engine() -> Any:
    from infra.db import make_engine, migrate
    from infra.settings import get_settings

    url = get_settings().resolved_database_url
    migrate(url)
    return make_engine(url)


def _scenario(park: str, day: Any) -> Any:
    """The park's portfolio on ``day`` from the registry (entered from its template on first use)."""
    from infra.registry import RegistryError, open_portfolio
    from infra.scenario import ScenarioError
    from infra.settings import get_settings

    try:
        return open_portfolio(get_settings().resolved_database_url, park, day)
    except (ScenarioError, RegistryError) as exc:
        _fail(str(exc))


def _day(raw: str | None) -> Any:
    from infra.settings import get_settings
    from infra.timeutil import to_day

    if raw is None:
        return get_settings().default_day
    try:
        return to_day(raw)
    except ValueError:
        _fail(f"--date={raw!r}: expected a date like 2026-07-15")


def _publish_if_configured(engine: Any) -> None:
    from infra.db.outbox import relay
    from infra.kafka import ensure_topics, make_producer
    from infra.settings import get_settings

    bootstrap = get_settings().kafka_bootstrap
    if not bootstrap:
        typer.echo(
            "stored in the outbox; the relay publishes it on vpp.forecasts (set PARKVPP_KAFKA_BOOTSTRAP to publish now)"
        )
        return
    ensure_topics(bootstrap)
    producer = make_producer(bootstrap)
    try:
        typer.echo(f"published {relay(engine, producer)} message(s) to Kafka at {bootstrap}")
    finally:
        producer.close()


@forecast_app.command("issue")
def issue_cmd(
    park: Annotated[str, PARK],
    date: Annotated[
        str | None, typer.Option("--date", "-d", help="delivery day (default: PARKVPP_DEFAULT_DAY)")
    ] = None,
    horizon: Annotated[str, typer.Option(help="day_ahead, 72h or intraday")] = "day_ahead",
    issued_at: Annotated[
        str | None, typer.Option(help="issue time, ISO 8601 with offset (default: D-1 before gate closure)")
    ] = None,
) -> None:
    """Forecast every series of a park, store it and publish it on vpp.forecasts."""
    from forecast.config import horizon_spec
    from forecast.hygiene import HygieneError
    from forecast.service import ForecastError, issue_forecast
    from forecast.store import find_issue
    from infra.db.outbox import FactConflict
    from infra.timeutil import ensure_aware

    day = _day(date)
    scenario = _scenario(park, day)
    try:
        horizon_spec(horizon)
        when = ensure_aware(datetime.fromisoformat(issued_at), "--issued-at") if issued_at else None
    except ValueError as exc:
        _fail(str(exc))
    engine = _engine()
    try:
        envelope = issue_forecast(engine, scenario, day, horizon, when)
    except (ForecastError, HygieneError, FactConflict) as exc:
        _fail(str(exc))
    payload = envelope.payload
    issue = find_issue(engine, scenario.id, horizon, datetime.fromisoformat(payload["issued_at"]))
    typer.echo(
        f"{scenario.id} {horizon} forecast for {day}, issued {payload['issued_at']} (message {envelope.message_id})"
    )
    typer.echo(f"{'series':38} {'model':14} {'P10':>9} {'P50':>9} {'P90':>9}  (mean over the horizon)")
    for s in payload["series"]:
        q = s["quantiles"]
        mean = {k: sum(v) / len(v) for k, v in q.items()}
        typer.echo(
            f"{s['series_id']:38} {s['model']:14} {mean['0.1']:9.2f} {mean['0.5']:9.2f} {mean['0.9']:9.2f}"
        )
    failures = (issue or {}).get("failures") or {}
    for sid, reason in failures.items():
        typer.secho(f"FAILED {sid}: {reason}", fg="yellow")
    _publish_if_configured(engine)
    if failures:
        raise typer.Exit(1)


@forecast_app.command("backtest")
def backtest_cmd(
    park: Annotated[str, PARK],
    date: Annotated[
        str | None,
        typer.Option(
            "--date", "-d", help="delivery day whose selection to run (default: PARKVPP_DEFAULT_DAY)"
        ),
    ] = None,
    horizon: Annotated[
        str, typer.Option(help="day_ahead, 72h or intraday (replayed hourly with the day-ahead models)")
    ] = "day_ahead",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Rolling-origin backtest and model selection per series: accuracy, skill and band coverage."""
    from forecast.config import ForecastConfig
    from forecast.report import backtest_rows, done_when
    from forecast.service import ForecastError, default_issued_at, select_models, selection_as_of

    if horizon not in ("day_ahead", "72h", "intraday"):
        _fail(f"--horizon={horizon!r}: must be day_ahead, 72h or intraday")
    day = _day(date)
    scenario = _scenario(park, day)
    cfg = ForecastConfig.from_env()
    as_of = selection_as_of(default_issued_at(scenario, day, cfg), cfg.reselect_days)
    try:
        records = select_models(_engine(), scenario, as_of.to_pydatetime(), horizon, cfg)
    except ForecastError as exc:
        _fail(str(exc))
    rows = backtest_rows(records, horizon)
    checks = done_when(rows) if horizon == "day_ahead" else []
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "park": scenario.id,
                    "horizon": horizon,
                    "selected_as_of": as_of.isoformat(),
                    "series": rows,
                    "checks": checks,
                },
                default=str,
            )
        )
        return
    what = (
        f"issues replayed hourly over the {cfg.backtest_days} days"
        if horizon == "intraday"
        else f"{cfg.backtest_days} issues"
    )
    typer.echo(f"{scenario.id} {horizon} backtest: {what} before {as_of.isoformat()}")
    header = f"{'series':38} {'model':12} {'nMAE':>7} {'naive':>7} {'skill':>6} {'MAE':>8} {'RMSE':>8} {'MAPE':>6} {'pinball':>8} {'cov80':>6} {'acc':>6}"
    typer.echo(header)
    for r in rows:
        typer.echo(
            f"{r['series_id']:38} {r['model']:12} {_pct(r['nmae'])} {_pct(r['naive_nmae'])} {_pct(r['skill'], 6)} "
            f"{_num(r['mae'])} {_num(r['rmse'])} {_pct(r.get('mape'), 6)} {_num(r['pinball'])} {_pct(r['coverage_10_90'], 6)} {_pct(r.get('accuracy'), 6)}"
        )
    for r in rows:
        if r.get("accuracy_by_day"):
            days = ", ".join(f"day {i + 1} {a:.1%}" for i, a in enumerate(r["accuracy_by_day"]))
            typer.echo(f"{r['series_id']:38} accuracy 1 - RMSE/capacity by lead day: {days}")
    for check in checks:
        mark = "ok  " if check["ok"] else "MISS"
        typer.echo(f"[{mark}] {check['what']}")


def _pct(value: float | None, width: int = 7) -> str:
    return f"{value * 100:{width - 1}.1f}%" if value is not None else " " * (width - 1) + "-"


def _num(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else "       -"


KIND = typer.Option(
    help="auto, pv, wind, load or generic (auto: PV when the series sits at a floor at night)"
)
LAT = typer.Option(help="site latitude (PV: pvlib clear-sky features)")
LON = typer.Option(help="site longitude")


def _site(
    latitude: float | None, longitude: float | None, altitude: float
) -> tuple[float, float, float] | None:
    if (latitude is None) != (longitude is None):
        _fail("--latitude and --longitude: give both or neither")
    return None if latitude is None or longitude is None else (latitude, longitude, altitude)


@forecast_app.command("file")
def file_cmd(
    input_csv: Annotated[
        Path,
        typer.Argument(help="CSV with timestamp (ISO 8601 with offset), value, optional exogenous columns"),
    ],
    horizon: Annotated[int, typer.Option(help="number of intervals to forecast after the last value")],
    out: Annotated[Path, typer.Option(help="output CSV: timestamp and one column per quantile (q0.5, ...)")],
    quantiles: Annotated[str, typer.Option(help="comma-separated levels, must include 0.5")] = "0.1,0.5,0.9",
    kind: Annotated[str, KIND] = "auto",
    latitude: Annotated[float | None, LAT] = None,
    longitude: Annotated[float | None, LON] = None,
    altitude: Annotated[float, typer.Option(help="site altitude in metres")] = 0.0,
    capacity: Annotated[float | None, typer.Option(help="rated capacity: the upper physical bound")] = None,
) -> None:
    """Forecast any meter series from a CSV file (model chosen by backtest on the file itself)."""
    from forecast.config import parse_quantiles
    from forecast.filecast import forecast_file
    from forecast.hygiene import HygieneError

    if kind not in ("auto", "pv", "wind", "load", "generic"):
        _fail(f"--kind={kind!r}: must be auto, pv, wind, load or generic")
    try:
        levels = parse_quantiles(quantiles, "--quantiles")
    except ValueError as exc:
        _fail(str(exc))
    site = _site(latitude, longitude, altitude)
    try:
        result = forecast_file(input_csv, horizon, levels, kind, site, capacity)  # type: ignore[arg-type]
    except HygieneError as exc:
        _fail(f"{input_csv}: {exc}")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out, index=False)
    choice = result.result.choice
    ratio = choice.ratio_vs_persistence.get(choice.model + ("+debias" if choice.debias else ""), 1.0)
    low, high = choice.spread.get(choice.model, (ratio, ratio))
    typer.echo(
        f"{len(result.table)} x {result.interval_minutes}-minute intervals -> {out}; {result.result.kind} series, "
        f"model {choice.model}{' (bias-corrected)' if choice.debias else ''}: backtest MAE {ratio:.2f} x persistence "
        f"over {len(choice.origins)} daily origins (per-origin P10-P90 {low:.2f}-{high:.2f})"
    )
    others = ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(choice.ratio_vs_persistence.items(), key=lambda kv: kv[1])
    )
    typer.echo(f"candidates (MAE / persistence): {others}")
    for model, why in choice.reasons.items():
        typer.echo(f"not used: {model}: {why}")
    if result.hygiene:
        typer.echo("data hygiene: " + ", ".join(f"{k}={v}" for k, v in result.hygiene.items()))


@forecast_app.command("backtest-file")
def backtest_file_cmd(
    input_csv: Annotated[Path | None, typer.Argument(help="a meter CSV (as for `forecast file`)")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="a real series shipped in a wheel (gb_pv, serf_east_pv, pvdaq50_pv, taylor_load) or 'all'"
        ),
    ] = None,
    horizon_days: Annotated[int, typer.Option(help="days forecast per origin (1 = day-ahead, 3 = 72 h)")] = 1,
    eval_days: Annotated[int, typer.Option(help="daily origins scored")] = 25,
    kind: Annotated[str, KIND] = "auto",
    latitude: Annotated[float | None, LAT] = None,
    longitude: Annotated[float | None, LON] = None,
    altitude: Annotated[float, typer.Option(help="site altitude in metres")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Replay the published forecast at daily origins: P50 MAE against persistence, the 7-day
    profile mean and CLIPER, P10-P90 coverage and (72 h) accuracy per lead day."""
    from forecast.hygiene import HygieneError
    from forecast.meter import MeterError
    from forecast.realdata import LONG_SERIES, SERIES, RealDataError, backtest_real

    if (input_csv is None) == (dataset is None):
        _fail("give a meter CSV or --dataset (one of them)")
    results = []
    try:
        if dataset is not None:
            names = list(LONG_SERIES) if dataset == "all" else [dataset]
            for name in names:
                if name not in SERIES:
                    _fail(f"--dataset={name!r}: must be one of {', '.join(SERIES)} or all")
                results.append(backtest_real(name, eval_days, horizon_days))
        else:
            results.append(
                _backtest_csv(input_csv, horizon_days, eval_days, kind, _site(latitude, longitude, altitude))
            )
    except (RealDataError, MeterError, HygieneError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"series": [r.as_dict() for r in results]}, default=str))
        return
    typer.echo(
        f"{'series':14} {'kind':5} {'origins':>7} {'P50/pers':>9} {'P50/prof7':>9} {'P50/CLIPER':>10} {'cov10-90':>8} {'outside':>7}  models"
    )
    for r in results:
        typer.echo(
            f"{r.name:14} {r.kind:5} {r.origins:7d} {r.ratio['persistence']:9.3f} {r.ratio['profile7']:9.3f} "
            f"{r.ratio['cliper']:10.3f} {r.coverage_10_90:8.1%} {r.outside_bounds:7d}  {r.models}"
        )
        if r.accuracy_by_day:
            days = ", ".join(f"day {i + 1} {a:.1%}" for i, a in enumerate(r.accuracy_by_day))
            typer.echo(f"{'':14} accuracy 1 - RMSE/capacity: {days}")


def _backtest_csv(path: Path, horizon_days: int, eval_days: int, kind: str, site: Any) -> Any:
    from forecast.filecast import read_meter_csv
    from forecast.hygiene import HygieneReport, clean_values, regularise
    from forecast.meter import backtest_meter

    data = read_meter_csv(path)
    report = HygieneReport("value")
    raw, minutes = regularise(data["value"].dropna(), report, data.attrs["offset_changes"])
    y, _ = clean_values(raw, "value", minutes, 0.0 if kind == "load" else None, None, 0.0, report)
    return backtest_meter(y, horizon_days * 1440 // minutes, eval_days, kind=kind, site=site, name=path.name)


def bench_cmd(
    series: Annotated[int, typer.Option(help="number of 15-minute series")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Day-ahead quantile forecasts for many series: sequential vs Ray in the same process."""
    from forecast.bench import BenchDataError, run_bench

    try:
        result = run_bench(series, progress=not as_json)
    except BenchDataError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result))
        return
    for line in result["lines"]:
        typer.echo(line)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
    bench.command("forecast")(bench_cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(forecast_app())
