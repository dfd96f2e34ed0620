"""``parkvpp``: the one console command.

Services plug their own commands in: a service package with a ``cli`` module exposing
``register(app, bench)`` adds its command groups to ``app`` and its benchmark to ``bench``.
Heavy libraries (Ray, sktime, cvxpy) are imported inside commands so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import typer

from infra.logging_setup import setup_logging
from infra.settings import SettingsError, get_settings

SERVICE_CLIS = (
    "forecast.cli",
    "aggregator.cli",
    "bidding.cli",
    "settlement.cli",
    "gateway.commands",
    "gateway.dataplane",
    "gateway.usercli",
    "gateway.evaluate",
    "gateway.drillcli",
)

app = typer.Typer(
    name="parkvpp",
    help="parkvpp: virtual power plant and market bidding for a zero-carbon industrial park.\n\n"
    "Start with `parkvpp run-day --park datong`. Configuration comes from PARKVPP_* "
    "environment variables (see README.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench = typer.Typer(
    help="Benchmarks: each measures a service and the naive or peer approach side by side in one run "
    "and prints the ratio.",
    no_args_is_help=True,
)
app.add_typer(bench, name="bench")


# Benchmarks that read the demo park's history from the store (filled by the simulator if empty).
NEEDS_HISTORY = ("forecast", "aggregator")


@bench.callback()
def _bench_group(ctx: typer.Context) -> None:
    """Benchmarks of each service (a callback keeps ``bench`` a group even with one benchmark)."""
    if ctx.invoked_subcommand in NEEDS_HISTORY and "--help" not in sys.argv:
        from gateway.demo import ensure_demo_history

        ensure_demo_history()


@app.callback()
def _configure() -> None:
    try:
        setup_logging(get_settings().log_level)
    except SettingsError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _register_services() -> None:
    for module_name in SERVICE_CLIS:
        package = module_name.split(".")[0]
        if importlib.util.find_spec(package) and importlib.util.find_spec(module_name):
            importlib.import_module(module_name).register(app, bench)


_register_services()


def main() -> None:  # pragma: no cover - console entry point
    """Run a command; bad input exits 2 with every problem named, never with a traceback."""
    from infra.validation import InputError, argument_problems

    try:
        problems = argument_problems(sys.argv[1:])
        if problems:
            raise InputError(problems)
        app()
    except KeyboardInterrupt:
        logging.getLogger("parkvpp").warning("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, details in a file
        sys.exit(_report_failure(exc))


def _report_failure(exc: Exception) -> int:
    """Input errors exit 2 with their problems; anything else exits 1 with the cause, the
    traceback going to ``<run dir>/parkvpp-errors.log`` for whoever investigates."""
    import traceback

    from infra.registry import RegistryError
    from infra.scenario import ScenarioError
    from infra.validation import InputError

    if isinstance(exc, InputError | ScenarioError | RegistryError):
        typer.secho(f"error: {exc}", fg="red", err=True)
        return 2
    log_path = get_settings().run_dir / "parkvpp-errors.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc)) + "\n")
        where = f" (details in {log_path})"
    except OSError:
        where = ""
    typer.secho(f"error: {type(exc).__name__}: {str(exc)[:500]}{where}", fg="red", err=True)
    return 1
