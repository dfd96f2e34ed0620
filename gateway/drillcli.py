"""``parkvpp drill NAME``: fault drills against the real parts (see gateway/drills.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True, stderr=True)

DEFAULT_POSTGRES = "postgresql+psycopg://127.0.0.1:5432/test"


def _postgres(choice: str) -> str | None:
    if choice == "off":
        return None
    url = os.environ.get("PARKVPP_TEST_POSTGRES_URL", DEFAULT_POSTGRES) if choice == "auto" else choice
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(
            url, connect_args={"connect_timeout": 3} if url.startswith("postgresql") else {}
        )
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL case is skipped and said so
        console.print(
            f"[yellow]PostgreSQL at {url} is not reachable ({type(exc).__name__}); its case is skipped"
        )
        return None
    return url


def drill_command(
    name: str = typer.Argument(
        ...,
        help="kill-broker, kill-run, kill-worker, concurrent-runs, tamper-ledger, forged-messages, "
        "malformed-messages, or all",
    ),
    park: str = typer.Option("datong", "--park", help="park of the drilled day"),
    day: str = typer.Option("2026-07-15", "--date", help="delivery day YYYY-MM-DD"),
    stages: str | None = typer.Option(
        None,
        "--stages",
        help="comma-separated stages for kill-run/kill-broker (default: a representative subset)",
    ),
    postgres: str = typer.Option(
        "auto", "--postgres", help="PostgreSQL server for the concurrent-runs case: auto, off, or a URL"
    ),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="where the drill folders go (default: a temp folder)"
    ),
    keep: bool = typer.Option(
        False, "--keep", help="keep the drill folders (kept anyway when a drill fails)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the results as one JSON object"),
) -> None:
    """Break real parts on purpose and report what held: facts lost or duplicated, tampering
    detected, and how long until the true cause was reported. Exit 1 when anything did not hold."""
    from gateway import drills

    try:
        delivery_day = date.fromisoformat(day)
    except ValueError as exc:
        raise typer.BadParameter(f"--date {day!r}: expected YYYY-MM-DD") from exc
    if name != "all" and name not in drills.DRILLS:
        console.print(f"[red]error:[/] no drill named {name!r}; choose from: {', '.join(drills.DRILLS)}, all")
        raise typer.Exit(2)
    root = work_dir or Path(tempfile.mkdtemp(prefix="parkvpp-drills-"))
    started = time.monotonic()

    def progress(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/] {message}")

    # The refusals the drills provoke are reported in the table; the client's chatter is noise here.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    logging.getLogger("infra.worker").setLevel(logging.CRITICAL)
    chosen = tuple(s.strip() for s in stages.split(",")) if stages else None
    lab = drills.Lab(root, park, delivery_day, progress, _postgres(postgres))
    try:
        cases = drills.run_drills(
            [name],
            lab,
            chosen or drills.KILL_RUN_STAGES,
            chosen or drills.KILL_BROKER_STAGES,
        )
    except drills.DrillError as exc:
        console.print(f"[red]error:[/] drill could not run: {exc} (folders kept in {root})")
        raise typer.Exit(2) from exc
    result = drills.as_json(cases)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_table(cases, result["summary"])
    held = result["summary"]["failed"] == 0
    if held and not keep and work_dir is None:
        shutil.rmtree(root, ignore_errors=True)
    else:
        console.print(f"drill folders: {root}")
    if not held:
        raise typer.Exit(1)


def _print_table(cases: list, s: dict) -> None:
    out = Console(soft_wrap=True, width=200)
    table = Table(title="fault drills")
    for header in ("drill", "case", "held", "lost", "dup", "tamper", "cause after", "cause / problems"):
        table.add_column(header, overflow="fold")
    for c in cases:
        table.add_row(
            c.drill,
            c.case,
            "yes" if c.held else "[red]NO[/]",
            "" if c.facts_lost is None else str(c.facts_lost),
            "" if c.facts_duplicated is None else str(c.facts_duplicated),
            "" if c.tamper_detected is None else ("detected" if c.tamper_detected else "[red]missed[/]"),
            "" if c.cause_s is None else f"{c.cause_s:.1f} s",
            "; ".join(c.problems)
            if c.problems
            else (c.cause[:90] + (f" ({'; '.join(c.notes)})" if c.notes else "")),
        )
    out.print(table)
    pct = "n/a" if s["tamper_detected_pct"] is None else f"{s['tamper_detected_pct']:g} %"
    out.print(
        f"{s['drills_run']} drills, {s['cases']} cases: {s['held']} held, {s['failed']} failed; "
        f"facts lost {s['facts_lost']}, duplicated {s['facts_duplicated']}, changed {s['facts_changed']}; "
        f"tamper cases detected {s['tamper_detected']}/{s['tamper_cases']} ({pct}); "
        f"slowest true cause {s['max_time_to_cause_s']} s ({s['causes_over_30_s']} over 30 s); {s['seconds']:.0f} s"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("drill")(drill_command)
