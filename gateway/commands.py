"""The gateway's own commands: run-day, worker, serve and scenario."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

console = Console(soft_wrap=True)


def _parse_day(value: str | None) -> date:
    if value is None:
        return get_settings().default_day
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--date {value!r}: expected YYYY-MM-DD, e.g. 2026-07-15") from exc


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def run_day_command(
    park: str = typer.Option(
        "datong", "--park", help="park scenario id (datong, chifeng, or one in PARKVPP_SCENARIO_DIRS)"
    ),
    day: str | None = typer.Option(
        None, "--date", help="delivery day YYYY-MM-DD [default: PARKVPP_DEFAULT_DAY, 2026-07-15]"
    ),
) -> None:
    """Run one market day end to end and write its run folder with the report.

    Stages: history, forecast, offer, bids, clearing, dispatch, delivery, settlement and
    carbon ledger, each a real service over Kafka.
    """
    from gateway.report import write_run_folder
    from gateway.run_day import RunDayError, run_day
    from infra.db import make_engine
    from infra.locks import LockBusy
    from infra.registry import RegistryError
    from infra.scenario import ScenarioError

    settings = get_settings()
    delivery_day = _parse_day(day)
    started = time.monotonic()

    def progress(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/] {message}")

    try:
        outcome = run_day(park, delivery_day, settings, progress)
        scenario = outcome.scenario
        folder = write_run_folder(outcome, scenario, make_engine(settings.resolved_database_url))
    except (ScenarioError, RegistryError) as exc:
        raise _fail(str(exc), 2) from exc
    except LockBusy as exc:
        raise _fail(str(exc), 3) from exc
    except RunDayError as exc:
        raise _fail(str(exc), 1) from exc
    progress(f"report    {folder / 'report.html'}")
    _print_summary(folder, scenario.park.name, delivery_day)
    console.print(f"done in {time.monotonic() - started:.1f} s")


def _print_summary(folder: Path, park_name: str, day: date) -> None:
    import json

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    table = Table(title=f"{park_name}, {day}: settlement")
    for header in ("account", "revenue CNY", "emissions tCO2", "carbon-adjusted CNY"):
        table.add_column(header, justify="left" if header == "account" else "right")
    for row in summary["accounts"]:
        table.add_row(
            row["account"],
            f"{row['total_cny']:,.2f}",
            f"{row['emissions_tco2']:,.2f}",
            f"{row['carbon_adjusted_revenue_cny']:,.2f}",
        )
    console.print(table)
    console.print(
        f"day-ahead position {summary['day_ahead_energy_mwh']:,.1f} MWh, metered {summary['metered_energy_mwh']:,.1f} MWh "
        "(net injection; negative = bought)"
    )


def worker_command(
    name: str = typer.Argument(
        ...,
        help="aggregator, bidding, exchange-simulator, delivery-simulator, settlement, "
        "forecast (scheduler) or relay (outbox publisher)",
    ),
) -> None:
    """Run one service worker in the foreground until Ctrl-C."""
    from gateway.services import WORKERS, make_worker
    from infra.db import make_engine, migrate
    from infra.embedded import local_services
    from infra.kafka import ensure_topics
    from infra.worker import run_relay, run_worker

    known = [*WORKERS, "forecast", "relay"]
    if name not in known:
        raise _fail(f"no worker named {name!r}; choose one of: {', '.join(known)}", 2)
    settings = get_settings()
    stop = threading.Event()
    with local_services(settings, redis=False) as endpoints:
        migrate(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        ensure_topics(endpoints.kafka_bootstrap)
        console.print(f"worker {name}: kafka {endpoints.kafka_bootstrap}; Ctrl-C stops it")
        try:
            if name == "relay":
                run_relay(engine, endpoints.kafka_bootstrap, stop)
            elif name == "forecast":
                from forecast.worker import run_scheduler
                from infra.scenario import available_parks

                run_scheduler(engine, available_parks(), stop)
            else:
                run_worker(make_worker(name, engine, endpoints.kafka_bootstrap), stop)
        except KeyboardInterrupt:
            stop.set()
            console.print(f"worker {name} stopped")


def serve_command(
    host: str = typer.Option("127.0.0.1", help="address to bind"),
    port: int = typer.Option(8000, help="port to bind"),
) -> None:
    """Run the HTTP gateway with every service worker and the outbox relay in one process."""
    import uvicorn

    from gateway.app import create_app
    from gateway.pipeline import Pipeline
    from infra.db import make_engine, migrate
    from infra.embedded import local_services
    from infra.kafka import ensure_topics

    settings = get_settings()
    with local_services(settings) as endpoints:
        migrate(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        ensure_topics(endpoints.kafka_bootstrap)
        # The app watches (/health, consumer lag) the very broker, Redis and database the workers use.
        served = settings.with_overrides(
            kafka_bootstrap=endpoints.kafka_bootstrap,
            redis_url=endpoints.redis_url,
            database_url=endpoints.database_url,
        )
        with Pipeline(engine, endpoints.kafka_bootstrap):
            console.print(
                f"gateway on http://{host}:{port} (OpenAPI at /docs); workers running; Ctrl-C stops"
            )
            uvicorn.run(create_app(served), host=host, port=port, log_level="warning")


scenario_app = typer.Typer(help="Park scenarios: list them and check a scenario file.", no_args_is_help=True)


@scenario_app.command("list")
def scenario_list() -> None:
    """List the parks this installation knows."""
    from infra.scenario import ScenarioError, available_parks, load_scenario

    broken = 0
    for park_id in available_parks():
        try:
            s = load_scenario(park_id)
        except ScenarioError as exc:
            broken += 1
            console.print(f"[red]{park_id:<10} invalid:[/] " + "; ".join(exc.problems), highlight=False)
            continue
        console.print(f"{park_id:<10} {s.version:<40} {len(s.park.assets)} assets  {s.park.name}")
    if broken:
        raise typer.Exit(2)


@scenario_app.command("check")
def scenario_check(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="park YAML file"),
) -> None:
    """Validate a park scenario file; every problem is listed with its asset and field."""
    from infra.scenario import ScenarioError, load_file

    try:
        s = load_file(path)
    except ScenarioError as exc:
        raise _fail(str(exc), 2) from exc
    console.print(
        f"[green]ok[/] {s.version}: {len(s.park.assets)} assets, {len(s.park.enterprises)} enterprises"
    )


def bench_gateway(
    facts: int = typer.Option(4, min=1, help="copies of the seeded day's facts behind each response"),
    seconds: float = typer.Option(3.0, min=0.5, help="measuring time per approach"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
) -> None:
    """Day view and statement download: requests/s and p99 with the gateway's auth layer and without it."""
    from gateway.bench import run

    run(facts, seconds, as_json)


def bench_scale(
    devices: int = typer.Option(100_000, "--devices", min=10, help="generated heterogeneous devices"),
    workers: int = typer.Option(2, "--workers", min=2, help="Ray workers of the parallel stages"),
    sequential: bool = typer.Option(
        True,
        "--sequential/--no-sequential",
        help="also run the parallel stages in-process for the Ray speed-up (--no-sequential: "
        "the day only, for very large parks)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
) -> None:
    """A whole market day for a generated park of many devices: per-stage times, peak memory,
    largest message and the Ray speed-up of the parallel stages (README: Scale)."""
    import json

    from gateway.scale.bench import run, summary

    figures = run(devices, workers, sequential)
    print(json.dumps(figures, indent=1) if as_json else summary(figures))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("gateway")(bench_gateway)
    bench.command("scale")(bench_scale)
    app.command("run-day")(run_day_command)
    app.command("worker")(worker_command)
    app.command("serve")(serve_command)
    app.add_typer(scenario_app, name="scenario")
