"""Settlement's commands: ``parkvpp settlement ...``, ``parkvpp ledger ...``, ``parkvpp carbon ...``
and ``parkvpp bench settlement``. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.settings import get_settings

settlement_app = typer.Typer(
    help="Settlement statements, daily and monthly reports, reviews and replay.", no_args_is_help=True
)
ledger_app = typer.Typer(
    help="The park carbon ledger: verify the hash chain, post carbon-asset entries, list entries.",
    no_args_is_help=True,
)
carbon_app = typer.Typer(
    help="Park carbon accounting: the annual park account and indicators for any period.",
    no_args_is_help=True,
)

Park = Annotated[str, typer.Option("--park", help="park id (a scenario, e.g. datong or chifeng)")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")]
FORMATS = ("html", "csv", "pdf")


class UsageError(ValueError):
    """A command-line value is malformed."""


def _day(value: str | None, name: str = "--day") -> date:
    if value is None:
        return get_settings().default_day
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {value!r} is not a date like 2026-07-15") from exc


def _month(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise UsageError(f"--month: {value!r} is not a month like 2026-07") from exc


def _formats(values: list[str] | None) -> tuple[str, ...]:
    chosen = tuple(values or FORMATS)
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise UsageError(f"--format: {', '.join(unknown)} unknown; choose from {', '.join(FORMATS)}")
    return chosen


@contextmanager
def _errors() -> Iterator[None]:
    """Known problems become one clear line and exit code 2, never a stack trace."""
    from infra.scenario import ScenarioError
    from settlement.carbon.activity import ActivityError
    from settlement.carbon.ledger import LedgerError
    from settlement.carbon.signing import SigningError
    from settlement.case import CaseError
    from settlement.facts import FactError
    from settlement.green import GreenRecordError
    from settlement.review import ReviewError
    from settlement.tariffs import TariffError

    try:
        yield
    except (
        UsageError,
        ScenarioError,
        ActivityError,
        LedgerError,
        FactError,
        ReviewError,
        SigningError,
        CaseError,
        TariffError,
        GreenRecordError,
        LookupError,
    ) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _engine() -> Any:
    from infra.db import make_engine, migrate

    url = get_settings().resolved_database_url
    migrate(url)
    return make_engine(url)


def _existing_engine() -> Any:
    """The configured database for reading only: never created, never migrated."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from infra.db import make_engine

    url = get_settings().resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).is_file():
            raise UsageError(
                f"database: {path or url} does not exist (set PARKVPP_DATABASE_URL or PARKVPP_RUN_DIR)"
            )
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    except Exception as exc:
        raise UsageError(
            f"database: cannot open {parsed.render_as_string(hide_password=True)} ({exc})"
        ) from exc
    if "carbon_ledger" not in tables:
        raise UsageError(
            f"database: {parsed.render_as_string(hide_password=True)} has no carbon ledger (not a parkvpp database?)"
        )
    return engine


def _registered_parks(conn: Any) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError

    from infra.registry.portfolio import parks

    try:
        return parks(conn)
    except SQLAlchemyError:
        return []


def _scenario(park: str, day: date | None = None) -> Any:
    """The park's portfolio from the registry on ``day`` (default: today's market day)."""
    from infra.registry import portfolio
    from infra.timeutil import now

    return portfolio(_engine(), park, day or now().date())


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*[str(v) for v in r])
    Console().print(table)


# --- settlement ---------------------------------------------------------------------------


@settlement_app.command("show")
def show(
    park: Park = "datong",
    day: Annotated[str | None, typer.Option(help="market day (default: the configured day)")] = None,
    as_json: Json = False,
) -> None:
    """The statements of a settled day: per account lines, total, emissions, carbon-adjusted revenue."""
    with _errors():
        from settlement.report import day_summary

        summary = day_summary(_engine(), park, _day(day), _scenario(park, _day(day)))
        if as_json:
            summary.pop("series")
            _print_json(summary)
            return
        _table(
            f"Settlement {park} {summary['day']} ({summary['review']['state']})",
            ["account", "total CNY", "tCO2", "carbon-adjusted CNY"],
            [
                [
                    a["account_id"],
                    f"{a['total_cny']:,.2f}",
                    f"{a['emissions_tco2']:.3f}",
                    f"{a['carbon_adjusted_revenue_cny']:,.2f}",
                ]
                for a in summary["accounts"]
            ],
        )
        ind = summary["indicators"]
        typer.echo(
            f"carbon per energy {ind['tco2_per_tce'] or 0:.4f} tCO2/tce ({ind['electricity_tce_basis']} basis): {ind['verdict']}; "
            f"clean share {100 * (ind['clean_energy_share'] or 0):.1f} %; measured share {100 * summary['measured_share']['park']:.1f} %"
        )
        for note in summary["notes"]:
            typer.echo(f"note: {note}")


@settlement_app.command("daily")
def daily(
    park: Park = "datong",
    day: Annotated[str | None, typer.Option(help="market day (default: the configured day)")] = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="html, csv or pdf (repeatable; default all)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <run dir>/reports)")] = None,
) -> None:
    """Write the daily settlement report (HTML with plots, CSV, PDF) with its review state."""
    with _errors():
        from settlement.report import write_daily

        paths = write_daily(
            _engine(),
            _scenario(park, _day(day)),
            _day(day),
            out or get_settings().run_dir / "reports",
            _formats(fmt),
        )
        for p in paths:
            typer.echo(f"wrote {p}")


@settlement_app.command("monthly")
def monthly(
    month: Annotated[str, typer.Option(help="month like 2026-07")],
    park: Park = "datong",
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="html, csv or pdf (repeatable; default all)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <run dir>/reports)")] = None,
) -> None:
    """Write the monthly roll-up report (HTML with plots, CSV, PDF) with its review state."""
    with _errors():
        from settlement.report import write_monthly

        paths = write_monthly(
            _engine(),
            _scenario(park),
            _month(month),
            out or get_settings().run_dir / "reports",
            _formats(fmt),
        )
        for p in paths:
            typer.echo(f"wrote {p}")


@settlement_app.command("review")
def review(
    state: Annotated[
        str,
        typer.Option(help="submitted, approved (another user than the preparer), disputed or reopened"),
    ],
    park: Park = "datong",
    day: Annotated[str | None, typer.Option(help="review a daily report")] = None,
    month: Annotated[str | None, typer.Option(help="review a monthly report (like 2026-07)")] = None,
    comment: Annotated[str, typer.Option(help="why (required when disputed or reopened)")] = "",
    by: Annotated[str | None, typer.Option("--by", help="the user recording it (audited)")] = None,
    reviewer: Annotated[str | None, typer.Option(hidden=True, help="old name of --by")] = None,
) -> None:
    """Submit, approve (four eyes), dispute or reopen a daily or monthly settlement."""
    with _errors():
        from settlement.review import record_review

        if (day is None) == (month is None):
            raise UsageError("give exactly one of --day or --month")
        actor = by or reviewer
        if not actor:
            raise UsageError(
                "--by: name the user recording the review (approval needs another user than the preparer)"
            )
        period, start = ("day", _day(day)) if day else ("month", _month(month or ""))
        with _engine().begin() as conn:
            record_review(conn, park, period, start, state, comment, actor)
        typer.echo(f"{park} {period} {start}: {state} by {actor}" + (f" ({comment})" if comment else ""))


@settlement_app.command("correct")
def correct(
    file: Annotated[Path, typer.Argument(help="YAML correction file (see settlement/README.md)")],
    by: Annotated[str, typer.Option("--by", help="who records the correction (audited)")] = "operator",
    as_json: Json = False,
) -> None:
    """Correct meter readings or prices of a settled day: a new statement version with its difference."""
    with _errors():
        from settlement.corrections import apply_file

        outcome = apply_file(_engine(), file, by, _scenario)
        if as_json:
            _print_json(outcome)
            return
        typer.echo(
            f"{outcome['park_id']} {outcome['day']}: version {outcome['version']}"
            + (
                f", booked in {outcome['booked_month']} (the day is approved)"
                if outcome.get("booked_month")
                else ""
            )
        )
        for account, d in outcome["difference"]["accounts"].items():
            typer.echo(f"  {account}: {d['total_cny']:+,.2f} CNY, {d['tco2']:+.6f} tCO2")


@settlement_app.command("case")
def case(
    file: Annotated[Path, typer.Argument(help="YAML settlement case (see settlement/README.md)")],
    as_json: Json = False,
) -> None:
    """Settle a small hand-written case with the production code; check its expected figures to the fen."""
    with _errors():
        from settlement.case import run_case

        outcome = run_case(file)
        if as_json:
            _print_json(outcome)
        else:
            typer.echo(
                f"case: {outcome['case']} ({outcome['intervals']} x {outcome['interval_minutes']} min)"
            )
            for acc in outcome["accounts"]:
                _table(
                    f"{acc['account_id']}: {acc['total_cny']:,.2f} CNY, {acc['emissions_tco2']:.6f} tCO2",
                    ["item", "CNY", "per interval"],
                    [
                        [item, f"{d['amount_cny']:,.2f}", ", ".join(f"{v:,.2f}" for v in d["intervals_cny"])]
                        for item, d in acc["lines"].items()
                    ],
                )
            e = outcome["economics"]
            typer.echo(
                f"market cost {e['market_cost_cny']:,.2f}; tariff bill {e['tariff_bill_cny']:,.2f}; "
                f"profit share paid {e['profit_share_paid_cny']:,.2f}; operator margin {e['operator_margin_cny']:,.2f}"
            )
            for m in outcome["mismatches"]:
                typer.secho(f"mismatch: {m}", fg="red")
            typer.echo(
                f"{outcome['expectations_checked']} expected figure(s) checked: "
                + (
                    "all match to the fen"
                    if not outcome["mismatches"]
                    else f"{len(outcome['mismatches'])} differ"
                )
            )
        if outcome["mismatches"]:
            raise typer.Exit(1)


@settlement_app.command("tariff")
def tariff(
    action: Annotated[str, typer.Argument(help="load or show")],
    file: Annotated[Path | None, typer.Argument(help="tariff YAML (load)")] = None,
    park: Park = "datong",
    by: Annotated[str, typer.Option("--by", help="who loads it (recorded)")] = "operator",
    day: Annotated[str | None, typer.Option(help="show the tariff in effect on this day")] = None,
) -> None:
    """Load a tariff version (never changed once stored) or show the one in effect on a day."""
    with _errors():
        from settlement.tariffs import load_tariff, read_tariff, tariff_for

        if action == "load":
            if file is None:
                raise UsageError("tariff load needs FILE")
            t, raw = read_tariff(file)
            with _engine().begin() as conn:
                new = load_tariff(conn, raw, by)
            typer.echo(
                f"tariff {t.park_id} {t.version} from {t.effective_from}: "
                + ("loaded" if new else "already stored")
            )
        elif action == "show":
            with _engine().connect() as conn:
                t = tariff_for(conn, park, _day(day))
            if t is None:
                typer.echo(f"{park} has no tariff on {_day(day)}: enterprises pay the day-ahead price")
                return
            typer.echo(f"{park} tariff {t.version} from {t.effective_from} ({t.source})")
            for months, periods in t.seasons:
                typer.echo(
                    f"  months {sorted(months)}: "
                    + "; ".join(f"{p.name} {list(p.hours)} {p.price_cny_per_mwh:g}" for p in periods)
                )
        else:
            raise UsageError("tariff: ACTION must be load or show")


@settlement_app.command("green")
def green(
    action: Annotated[str, typer.Argument(help="load")],
    file: Annotated[Path, typer.Argument(help="CSV of green-power trades and certificate records")],
    park: Park = "datong",
) -> None:
    """Load green-power trade confirmations and certificate records (all or nothing, idempotent)."""
    with _errors():
        from settlement.green import read_records, store_records

        if action != "load":
            raise UsageError("green: ACTION must be load")
        rows = read_records(file, park)
        with _engine().begin() as conn:
            n = store_records(conn, rows)
        typer.echo(f"{park}: {n} new record(s) of {len(rows)}")


@settlement_app.command("replay")
def replay(
    park: Park = "datong",
    day: Annotated[str | None, typer.Option(help="market day")] = None,
    as_json: Json = False,
) -> None:
    """Recompute a day from its stored facts and compare with the stored statements and ledger."""
    with _errors():
        from settlement.settle import replay_day

        report = replay_day(_engine(), _scenario(park, _day(day)), _day(day))
        if as_json:
            _print_json(
                {
                    "park_id": report.park_id,
                    "day": report.day.isoformat(),
                    "status": report.status,
                    "differences": report.differences,
                }
            )
        else:
            typer.echo(f"{report.park_id} {report.day}: {report.status}")
            for d in report.differences:
                typer.echo(f"  {d}")
        if not report.ok:
            raise typer.Exit(1)


# --- ledger --------------------------------------------------------------------------------


@ledger_app.command("verify")
def verify(
    park: Annotated[str | None, typer.Option("--park", help="one park (default: every park)")] = None,
    as_json: Json = False,
) -> None:
    """Check the hash chain, every signature, the signed head and the checkpoints outside the database.

    Exit 1 naming each problem (entry and rule); exit 2 for an unknown park or a missing database."""
    with _errors():
        from settlement.carbon.ledger import verify as verify_chain

        with _existing_engine().connect() as conn:
            checked, problems = verify_chain(conn, park, _registered_parks(conn))
        if as_json:
            _print_json({"checked": checked, "ok": not problems, "problems": [vars(p) for p in problems]})
        else:
            for p in problems:
                typer.secho(f"{p.park_id}: {p.kind}: {p.message}", fg="red")
            typer.echo(
                f"{checked} entries checked: "
                + ("the chain is intact" if not problems else f"{len(problems)} problem(s)")
            )
        if problems:
            raise typer.Exit(1)


@ledger_app.command("post")
def post(
    file: Annotated[
        Path, typer.Argument(help="YAML file of carbon-asset transactions (see settlement/README.md)")
    ],
) -> None:
    """Post allowances, offsets, sinks or adjustments from a file (all or nothing)."""
    with _errors():
        from settlement.carbon.manual import post_manual, read_manual

        manual = read_manual(file)
        with _engine().begin() as conn:
            ids = post_manual(conn, _scenario(manual.park), manual)
        typer.echo(f"posted {len(ids)} transaction(s) for {manual.park}")


@ledger_app.command("show")
def show_ledger(
    park: Park = "datong",
    day: Annotated[str | None, typer.Option(help="one market day (default: all)")] = None,
    account: Annotated[str | None, typer.Option(help="only entries touching this holder")] = None,
    as_json: Json = False,
) -> None:
    """List ledger entries with their postings, rule and factor version."""
    with _errors():
        from settlement.carbon.ledger import entries, holds

        start = _day(day) if day else None
        end = date.fromordinal(start.toordinal() + 1) if start else None
        with _engine().connect() as conn:
            rows = entries(conn, park, start, end)
        if account:
            rows = [r for r in rows if any(holds(p.account, account) for p in r["postings"])]
        if as_json:
            _print_json([{**r, "postings": [p.as_list() for p in r["postings"]]} for r in rows])
            return
        for r in rows:
            typer.echo(
                f"#{r['position']} {r['market_day']} {r['kind']} {r['account_id']}  ({r['factor_version']}) {r['entry_id']}"
            )
            typer.echo(f"    rule: {r['rule']}" + (f"; factors: {r['factors']}" if r["factors"] else ""))
            for p in r["postings"]:
                typer.echo(f"    {p.account:<42} {p.book:<40} {p.quantity:>16,.6f} {p.unit}")
        typer.echo(f"{len(rows)} entries")


# --- carbon --------------------------------------------------------------------------------


@carbon_app.command("account")
def account(
    activity: Annotated[
        Path, typer.Option("--activity", help="activity-data YAML file (see settlement/README.md)")
    ],
    park: Annotated[
        str, typer.Option("--park", help="scenario whose carbon settings give the default factors")
    ] = "datong",
    as_json: Json = False,
) -> None:
    """The annual park carbon account (national park method) from an activity-data file."""
    with _errors():
        from settlement.carbon.activity import park_account, read_activity

        carbon = _scenario(park).park.carbon
        result = park_account(read_activity(activity, carbon), carbon, str(activity))
        data = result.to_dict()
        if as_json:
            _print_json(data)
            return
        _table(
            f"Park carbon account: {result.park} {result.year} (factors {result.factor_version})",
            ["term", "tCO2", "10^4 tCO2"],
            [[k, f"{v:,.3f}", f"{v / 1e4:,.6f}"] for k, v in result.terms_tco2.items()],
        )
        for name, v in result.separate_tco2.items():
            typer.echo(f"reported separately (not in E_park): {name} {v:,.3f} tCO2")
        _table("Energy use", ["part", "tce"], [[k, f"{v:,.3f}"] for k, v in result.energy_tce.items()])
        band = result.band
        typer.echo(
            f"electricity basis: {result.basis} ({result.kgce_per_kwh} kgce/kWh)\n"
            f"indicator: {result.indicator_tco2_per_tce or 0:.4f} tCO2/tce"
            + (
                f" against <= {band['max_tco2_per_tce']} for {band['min_annual_tce']:,.0f}+ tce/yr"
                if band
                else ""
            )
            + f": {result.verdict}"
        )
        if result.clean_energy_share is not None:
            typer.echo(f"clean-energy share: {100 * result.clean_energy_share:.1f} %")
        if result.direct_green_share is not None:
            typer.echo(f"direct green-supply share of electricity: {100 * result.direct_green_share:.1f} %")


@carbon_app.command("indicators")
def indicators_cmd(
    start: Annotated[str, typer.Option(help="first market day")],
    end: Annotated[str, typer.Option(help="day after the last (half-open)")],
    park: Park = "datong",
    account: Annotated[str, typer.Option(help="park, an enterprise or <enterprise>/<asset>")] = "park",
    as_json: Json = False,
) -> None:
    """Carbon per unit energy with its band and verdict, clean and green shares, location-based scope 2."""
    with _errors():
        from settlement.carbon.indicators import indicators

        first, after = _day(start, "--start"), _day(end, "--end")
        if after <= first:
            raise UsageError(f"--end: {after} must be after --start {first} (the period is [start, end))")
        with _engine().connect() as conn:
            ind = indicators(conn, _scenario(park), first, after, account)
        data = ind.to_dict()
        if as_json:
            _print_json(data)
            return
        _table(
            f"Indicators {park} {account} [{first}, {after}): {ind.settled_days} settled day(s)",
            ["indicator", "value"],
            _indicator_rows(data),
        )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _indicator_rows(d: dict[str, Any]) -> list[list[str]]:
    band = d["band"]
    band_text = (
        f"<= {band['max_tco2_per_tce']} for {band['min_annual_tce']:,.0f}"
        + (f"-{band['max_annual_tce']:,.0f}" if band["max_annual_tce"] else "+")
        + " tce/yr"
        if band
        else "no band"
    )
    rows = [["emissions", f"{d['emissions_tco2']:,.3f} tCO2"]]
    rows += [[f"  {source}", f"{v:,.3f} tCO2"] for source, v in d["emissions_by_source_tco2"].items()]
    rows += [["electricity consumed", f"{sum(d['electricity_mwh'].values()):,.1f} MWh"]]
    rows += [[f"  {kind}", f"{v:,.1f} MWh"] for kind, v in d["electricity_mwh"].items() if v]
    if d["exported_mwh"]:
        rows.append(["electricity exported", f"{d['exported_mwh']:,.1f} MWh"])
    if d["heat_gj"]:
        rows += [[f"heat {kind}", f"{v:,.1f} GJ"] for kind, v in d["heat_gj"].items()]
    rows += [
        [
            "energy",
            f"{d['energy_tce']:,.2f} tce ({d['electricity_tce_basis']} basis, {d['kgce_per_kwh']} kgce/kWh; fuel {d['fuel_tce']:,.2f} tce)",
        ],
        [
            "carbon per unit energy",
            "n/a" if d["tco2_per_tce"] is None else f"{d['tco2_per_tce']:.4f} tCO2/tce",
        ],
        ["band (annualised use)", f"{band_text} ({(d['annualised_tce'] or 0):,.0f} tce/yr)"],
        ["verdict", d["verdict"]],
        [
            "clean-energy share",
            f"{_pct(d['clean_energy_share'])} (target {_pct(d['clean_energy_share_target'])})",
        ],
        [
            "direct green-supply share",
            f"{_pct(d['direct_green_share'])} (target {_pct(d['direct_green_share_target'])})",
        ],
        [
            "location-based scope 2",
            f"{d['location_scope2_tco2']:,.3f} tCO2 at {d['location_factor_tco2_per_mwh']} tCO2/MWh ({d['location_factor_year']})",
        ],
        ["removals (sinks)", f"{d['removals_tco2']:,.3f} tCO2"],
        ["offsets retired", f"{d['offsets_retired_tco2']:,.3f} tCO2"],
        ["factor version", d["factor_version"]],
    ]
    return rows


# --- registration --------------------------------------------------------------------------


def bench_command(
    as_json: Json = False,
    assets: Annotated[int, typer.Option(help="meters in the synthetic park")] = 10_000,
    days: Annotated[int, typer.Option(help="days settled")] = 30,
    naive_assets: Annotated[int, typer.Option(help="meters for the naive per-row run")] = 2_000,
) -> None:
    """Settle a month of a 10,000-meter park; rows per second against a naive per-row implementation."""
    from settlement.bench import run_bench

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    result = run_bench(assets=assets, days=days, naive_assets=naive_assets, progress=progress)
    if as_json:
        _print_json(result)
        return
    _table(
        "Settlement benchmark (rows = asset-intervals)",
        ["approach", "rows", "seconds", "rows/s"],
        [
            [
                "vectorised (production)",
                f"{result['rows']:,}",
                result["vectorised_seconds"],
                f"{result['vectorised_rows_per_s']:,}",
            ],
            [
                "naive per row",
                f"{result['naive_rows']:,}",
                result["naive_seconds"],
                f"{result['naive_rows_per_s']:,}",
            ],
        ],
    )
    typer.echo(
        f"speed-up (whole settlement): {result['speedup']}x; per-asset stage alone: {result['asset_stage_speedup']}x; "
        f"identical statements: {result['identical_statements']}; month under 60 s: {result['month_under_60_s']}"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(settlement_app, name="settlement")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(carbon_app, name="carbon")
    bench.command("settlement")(bench_command)
