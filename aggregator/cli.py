"""``parkvpp aggregate`` (the offer and its carbon trade-off) and ``parkvpp bench aggregator``.

Heavy imports (cvxpy, the model) happen inside the commands so ``parkvpp --help`` stays fast.
"""

from __future__ import annotations

from datetime import date

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("aggregate")(aggregate)
    bench.command("aggregator")(bench_aggregator)


def _parse_sweep(raw: str | None) -> list[float]:
    if not raw:
        return []
    try:
        prices = [float(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"{raw!r}: expected comma-separated CNY/tCO2 values like 0,70,150,300"
        ) from exc
    if any(p < 0 for p in prices):
        raise typer.BadParameter("carbon prices must be >= 0 CNY/tCO2")
    return prices


def aggregate(
    park: str = typer.Option(..., "--park", help="park id, e.g. datong"),
    day: str | None = typer.Option(
        None, "--date", help="market day (YYYY-MM-DD); default PARKVPP_DEFAULT_DAY"
    ),
    carbon_price_sweep: str | None = typer.Option(
        None,
        "--carbon-price-sweep",
        help="comma-separated internal carbon prices (CNY/tCO2) for the trade-off curve",
    ),
    solver: str | None = typer.Option(None, "--solver", help="ECOS (default), CLARABEL or HIGHS"),
) -> None:
    """Build the park's day-ahead offer from the stored day-ahead forecast and print it.

    With --carbon-price-sweep the offer is re-solved at each internal carbon price and the
    revenue / emissions trade-off is printed. Nothing is published (the worker does that).
    """
    from rich.console import Console

    from aggregator.errors import InfeasibleError, InputError, SolverFailed
    from aggregator.report import load_forecast, print_offer, print_sweep
    from infra.registry import open_portfolio
    from infra.scenario import ScenarioError
    from infra.settings import get_settings

    console = Console()
    settings = get_settings()
    sweep = _parse_sweep(carbon_price_sweep)
    try:
        market_day = date.fromisoformat(day) if day else settings.default_day
    except ValueError as exc:
        raise typer.BadParameter(f"--date {day!r}: expected YYYY-MM-DD") from exc
    chosen = (solver or settings.solver).upper()
    try:
        scenario = open_portfolio(settings.resolved_database_url, park, market_day)
        envelope = load_forecast(settings.resolved_database_url, park, market_day)
        if envelope is None:
            console.print(
                f"[red]No stored day-ahead forecast for park {park} on {market_day}[/red] in "
                f"{settings.resolved_database_url}.\nMake one first: [bold]parkvpp forecast issue --park {park} "
                f"--date {market_day}[/bold]"
            )
            raise typer.Exit(1)
        from aggregator.offer import build_offer
        from aggregator.portfolio import ModelStore
        from infra.contracts import ForecastSet

        models = ModelStore()  # the sweep re-solves the compiled model

        forecast = ForecastSet.from_envelope(envelope)
        console.print(
            f"forecast {envelope.message_id} issued {forecast.issued_at:%Y-%m-%d %H:%M}; solving with {chosen} ..."
        )
        result = build_offer(
            scenario,
            forecast,
            forecast_message_id=envelope.message_id,
            solver=chosen,
            allow_relaxed=True,
            models=models,
        )
        print_offer(console, scenario, result)
        if sweep:
            rows = []
            for price in sweep:
                console.print(f"  carbon price {price:g} CNY/tCO2 ...")
                rows.append(
                    build_offer(
                        scenario,
                        forecast,
                        forecast_message_id=envelope.message_id,
                        carbon_price_cny_per_tco2=price,
                        solver=chosen,
                        allow_relaxed=True,
                        models=models,
                    )
                )
            print_sweep(console, rows)
    except (ScenarioError, InputError, InfeasibleError, SolverFailed) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def bench_aggregator(
    json_output: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
    devices: int = typer.Option(10_000, "--devices", help="size of the generated flexible portfolio"),
    skip_full: bool = typer.Option(
        False, "--skip-full", help="skip the monolithic ECOS reference (no ratio)"
    ),
    heterogeneous: bool = typer.Option(
        False, "--heterogeneous", help="every device its own parameters instead of catalogue models"
    ),
    gap_target: float | None = typer.Option(
        None, "--gap-target", help="refine the clustering until the estimated objective gap is below this (%)"
    ),
    tradeoff: bool = typer.Option(
        False, "--tradeoff", help="also run every clustering resolution (gap / time curve)"
    ),
    bins: str | None = typer.Option(
        None,
        "--bins",
        help="clustering bins STATE,RATIO,WINDOW (default 40,24,24; the base of --gap-target/--tradeoff levels)",
    ),
) -> None:
    """Aggregated vs monolithic ECOS offer for a generated portfolio, plus Datong offer+dispatch time."""
    import json

    from aggregator.bench import run
    from aggregator.devices import Resolution

    if gap_target is not None and gap_target <= 0:
        raise typer.BadParameter("--gap-target must be > 0 (percent)")
    resolution = Resolution()
    if bins:
        try:
            resolution = Resolution(*(int(x) for x in bins.split(",")))
        except (TypeError, ValueError) as exc:
            raise typer.BadParameter(
                f"--bins {bins!r}: expected three positive integers like 4,5,16"
            ) from exc
        if len(bins.split(",")) != 3 or min(vars(resolution).values()) < 1:
            raise typer.BadParameter(f"--bins {bins!r}: expected three positive integers like 4,5,16")
    figures = run(
        devices=devices,
        full=not skip_full,
        progress=not json_output,
        heterogeneous=heterogeneous,
        gap_target_percent=gap_target,
        tradeoff=tradeoff,
        resolution=resolution,
    )
    if json_output:
        typer.echo(json.dumps(figures))
