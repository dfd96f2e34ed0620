"""Commands of the data plane: parks in the registry, enrolment of assets, data ingestion.

``parkvpp park init|list``, ``parkvpp assets list|show|submit|approve|reject|suspend|withdraw``,
``parkvpp ingest meters|prices FILE.csv`` and ``parkvpp series list``. They act on the
database of ``PARKVPP_DATABASE_URL`` (default: the SQLite file under the run directory).

Who acts is given with ``--by`` (default: the login name). The gateway's authenticated API
replaces that with the signed-in user; the four-eyes rule is enforced in the registry either way.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

console = Console(soft_wrap=True)

park_app = typer.Typer(
    help="Parks in the registry: enter a park from its template, list parks.", no_args_is_help=True
)
assets_app = typer.Typer(
    help="Enrolment of flexible assets: submitted -> approved | rejected -> active from a day -> suspended | withdrawn.",
    no_args_is_help=True,
)
ingest_app = typer.Typer(
    help="Bring measured data into the time-series store (validated, idempotent).", no_args_is_help=True
)
series_app = typer.Typer(help="The time-series store's catalogue.", no_args_is_help=True)

Park = Annotated[str, typer.Option("--park", help="park id")]
By = Annotated[str | None, typer.Option("--by", help="who acts (default: your login name)")]
FromDay = Annotated[str | None, typer.Option("--from", help="first market day it applies to, YYYY-MM-DD")]
Reason = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]


def _engine() -> Any:
    from infra.db import make_engine, migrate

    url = get_settings().resolved_database_url
    migrate(url)
    return make_engine(url)


def _actor(by: str | None) -> str:
    actor = (by or getpass.getuser()).strip()
    if not actor or len(actor) > 64:
        raise typer.BadParameter(f"--by {actor[:80]!r}: give a name of 1-64 characters")
    return actor


def _day(value: str | None, option: str = "--from") -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} {value[:40]!r}: expected YYYY-MM-DD, e.g. 2026-07-16") from exc
    if not 2000 <= day.year <= 2100:
        raise typer.BadParameter(f"{option} {value}: the market calendar covers 2000-2100")
    return day


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn every rule broken into a one-line-per-problem message and exit code 2."""
    from infra.registry import RegistryError
    from infra.registry.enrolment import EnrolmentError
    from infra.scenario import ScenarioError
    from infra.timeseries import TimeSeriesError
    from infra.timeseries.files import IngestError

    try:
        yield
    except (RegistryError, EnrolmentError, ScenarioError, TimeSeriesError, IngestError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


@park_app.command("init")
def park_init(park: Park = "datong", by: By = None) -> None:
    """Enter a park into the registry from its template (parks/<id>.yaml); after that the registry is the truth."""
    from infra.registry import load_template

    with _errors():
        created = load_template(_engine(), park, _actor(by))
    console.print(
        f"park {park}: "
        + ("entered from its template" if created else "already in the registry; nothing changed")
    )


@park_app.command("list")
def park_list() -> None:
    """Parks in the registry, with their current number of assets."""
    from infra.registry import portfolio
    from infra.registry.portfolio import parks
    from infra.timeutil import now

    engine = _engine()
    with engine.connect() as conn:
        ids = parks(conn)
    if not ids:
        console.print("no park in the registry yet: `parkvpp park init --park datong` or `parkvpp run-day`")
    for park_id in ids:
        s = portfolio(engine, park_id, now().date())
        console.print(f"{park_id:<10} {s.version:<44} {len(s.park.assets)} assets  {s.park.name}")


def _enrolment_table(rows: list[Any], day: date) -> Table:
    table = Table("request", "asset", "type", "enterprise", "state", "submitted by", "decided by")
    for e in rows:
        table.add_row(
            e.request_id,
            e.asset_id,
            e.asset_type,
            e.enterprise_id,
            e.status_on(day),
            e.submitted_by,
            e.decided_by or "",
        )
    return table


@assets_app.command("list")
def assets_list(
    park: Park = "datong",
    state: Annotated[str | None, typer.Option(help="only requests in this state")] = None,
    enterprise: Annotated[str | None, typer.Option(help="only this enterprise's requests")] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="show states as on this market day (default: today)")
    ] = None,
) -> None:
    """The park's assets on a day and its enrolment requests."""
    from infra.registry import enrolment as en
    from infra.registry import portfolio
    from infra.timeutil import now

    with _errors():
        engine = _engine()
        on = _day(day, "--date") or now().date()
        scenario = portfolio(engine, park, on)
        rows = en.listing(engine, park, state, enterprise)
    table = Table(
        "asset", "type", "enterprise", "rated MW", title=f"{park} portfolio on {on} ({scenario.version})"
    )
    for a in scenario.park.assets:
        if enterprise is None or a.enterprise == enterprise:
            table.add_row(a.id, a.type, a.enterprise, f"{a.rated_mw:g}")
    console.print(table)
    console.print(_enrolment_table(rows, on) if rows else "no enrolment requests")


@assets_app.command("show")
def assets_show(
    request_id: Annotated[str, typer.Argument(help="enrolment request id, e.g. ENR-000001")],
) -> None:
    """One enrolment request with its technical data and its history."""
    from infra.registry import audit
    from infra.registry import enrolment as en
    from infra.timeutil import now

    with _errors():
        engine = _engine()
        e = en.get(engine, request_id)
        with engine.connect() as conn:
            history = audit.entries(conn, e.park_id, request_id)
    console.print(
        f"{e.request_id}: asset {e.asset_id} ({e.asset_type}) of {e.enterprise_id} in park {e.park_id}"
    )
    console.print(f"state: {e.status_on(now().date())}" + (f" — {e.note}" if e.note else ""))
    console.print(yaml.safe_dump(e.spec, sort_keys=False, allow_unicode=True).rstrip())
    for h in history:
        console.print(f"  {h['at']:%Y-%m-%d %H:%M} {h['actor']:<12} {h['action']}")


def _read_spec(path: Path) -> Any:
    if not path.is_file():
        raise typer.BadParameter(f"{path}: not a file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{path}: not UTF-8 text; an enrolment file is YAML") from exc
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc


@assets_app.command("submit")
def assets_submit(
    path: Annotated[
        Path, typer.Argument(help="YAML file with the asset (id, name, type, enterprise, connection, ...)")
    ],
    park: Park = "datong",
    by: By = None,
) -> None:
    """Submit an asset for enrolment; every problem with it is listed at once."""
    from infra.registry import enrolment as en

    spec = _read_spec(path)
    with _errors():
        e = en.submit(_engine(), park, spec, _actor(by))
    console.print(
        f"{e.request_id}: {e.asset_id} submitted by {e.submitted_by}; an operator approves it with "
        f"`parkvpp assets approve {e.request_id}`"
    )


@assets_app.command("approve")
def assets_approve(request_id: str, by: By = None, from_day: FromDay = None) -> None:
    """Approve a request (a different person from the submitter); the asset is in the portfolio from --from."""
    from infra.registry import enrolment as en

    with _errors():
        e = en.approve(_engine(), request_id, _actor(by), _day(from_day))
    console.print(f"{e.request_id}: {e.asset_id} approved by {e.decided_by}, active from {e.active_from}")


@assets_app.command("reject")
def assets_reject(request_id: str, reason: Reason, by: By = None) -> None:
    """Reject a submitted request."""
    from infra.registry import enrolment as en

    with _errors():
        e = en.reject(_engine(), request_id, _actor(by), reason)
    console.print(f"{e.request_id}: rejected by {e.decided_by}: {reason}")


@assets_app.command("suspend")
def assets_suspend(request_id: str, reason: Reason, by: By = None, from_day: FromDay = None) -> None:
    """Take an approved asset out of the portfolio from --from (default: the first day without facts)."""
    from infra.registry import enrolment as en

    with _errors():
        e = en.suspend(_engine(), request_id, _actor(by), reason, _day(from_day))
    console.print(f"{e.request_id}: {e.asset_id} suspended from {e.ended_from}")


@assets_app.command("withdraw")
def assets_withdraw(request_id: str, reason: Reason, by: By = None, from_day: FromDay = None) -> None:
    """End an enrolment; an asset in the portfolio drops out from --from."""
    from infra.registry import enrolment as en

    with _errors():
        e = en.withdraw(_engine(), request_id, _actor(by), reason, _day(from_day))
    when = f" from {e.ended_from}" if e.ended_from else ""
    console.print(f"{e.request_id}: {e.asset_id} withdrawn{when}")


def _ingest(path: Path, park: str, kind: str, interval_minutes: int | None) -> None:
    from infra.registry import portfolio
    from infra.timeseries.files import ingest
    from infra.timeutil import now

    with _errors():
        engine = _engine()
        report = ingest(engine, park, path, kind, portfolio(engine, park, now().date()), interval_minutes)
    console.print(f"{path}: {report.describe()}")


@ingest_app.command("meters")
def ingest_meters(
    path: Annotated[
        Path, typer.Argument(help="CSV: timestamp (ISO 8601 with offset), series_id, value[, quality]")
    ],
    park: Park = "datong",
    interval_minutes: Annotated[
        int | None,
        typer.Option(help="interval of new series (default: the file's smallest step)", min=1, max=1440),
    ] = None,
) -> None:
    """Store a meter file: every row checked, all problems listed, stored whole or not at all."""
    _ingest(path, park, "meters", interval_minutes)


@ingest_app.command("prices")
def ingest_prices(
    path: Annotated[Path, typer.Argument(help="CSV: timestamp (ISO 8601 with offset), market, price")],
    park: Park = "datong",
    interval_minutes: Annotated[
        int | None, typer.Option(help="interval of new price series", min=1, max=1440)
    ] = None,
) -> None:
    """Store published market prices (day_ahead, real_time in CNY/MWh; regulation in CNY/MW)."""
    _ingest(path, park, "prices", interval_minutes)


@series_app.command("list")
def series_list(park: Park = "datong") -> None:
    """Every stored series of the park with its unit, interval and the days it covers."""
    from infra.timeseries import catalogue, coverage

    with _errors():
        engine = _engine()
        entries = catalogue(engine, park)
        spans = coverage(engine, park, [e.name for e in entries])
    table = Table("series", "unit", "interval", "first day", "last day", "days")
    for e in entries:
        first, last, n = spans.get(e.name, (None, None, 0))
        table.add_row(e.name, e.unit, f"{e.interval_minutes} min", str(first or ""), str(last or ""), str(n))
    console.print(table)


def bench_timeseries(
    series: Annotated[int, typer.Option(min=1, help="number of series")] = 1000,
    days: Annotated[int, typer.Option(min=1, max=3660, help="days of 15-minute data per series")] = 365,
    naive_series: Annotated[
        int, typer.Option(min=0, help="series in the naive long table (0: skip it)")
    ] = 100,
    postgres: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server URL (default: PARKVPP_TEST_POSTGRES_URL or 127.0.0.1:5432/test)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as one JSON object")] = False,
) -> None:
    """The time-series store against pandas read_sql of a long table, on PostgreSQL and SQLite."""
    import json
    import sys

    from infra.timeseries.bench import run

    def say(message: str) -> None:
        print(message, file=sys.stderr if as_json else sys.stdout, flush=True)

    figures = run(series, days, postgres, min(naive_series, series), say)
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for name in ("postgresql", "sqlite"):
        if name in figures:
            f = figures[name]
            line = (
                f"{name}: store writes {f['store_write_rows_per_s']:,.0f} rows/s, "
                f"reads {f['store_read_rows_per_s']:,.0f} rows/s"
            )
            if "naive_read_sql_rows_per_s" in f:
                line += (
                    f"; pandas read_sql of a long table {f['naive_read_sql_rows_per_s']:,.0f} rows/s, "
                    f"ratio {f['read_speedup_vs_read_sql']:.1f}x"
                )
            console.print(line)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("timeseries")(bench_timeseries)
    app.add_typer(park_app, name="park")
    app.add_typer(assets_app, name="assets")
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(series_app, name="series")
