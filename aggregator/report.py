"""What ``parkvpp aggregate`` reads and prints: the stored forecast, the offer, the carbon trade-off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from rich.console import Console
from rich.table import Table

from aggregator.offer import OfferResult
from infra.contracts import Envelope, ForecastSet
from infra.db import connect, migrate
from infra.db.outbox import stored_envelopes
from infra.scenario import Scenario


def load_forecast(database_url: str, park_id: str, day: date) -> Envelope | None:
    """The latest stored day-ahead forecast of a park and day, or None."""
    migrate(database_url)
    with connect(database_url) as conn:
        envelopes = stored_envelopes(conn, park_id, day, ForecastSet.SCHEMA)
    day_ahead = [e for e in envelopes if e.payload.get("horizon") == "day_ahead"]
    return day_ahead[-1] if day_ahead else None


def print_offer(console: Console, scenario: Scenario, result: OfferResult) -> None:
    offer = result.offer
    console.print(
        f"[bold]Day-ahead offer, park {scenario.id}[/bold] ({offer.scenario_version}), "
        f"carbon price {result.carbon_price_cny_per_tco2:g} CNY/tCO2, {result.info.solver} {result.info.seconds:.2f} s"
    )
    for v in result.violations:
        console.print(f"[red]infeasible, relaxed: {v.describe()}[/red]")
    console.print(
        f"expected revenue {offer.expected_revenue_cny:,.0f} CNY (energy incl. contracts, regulation); "
        f"costs {result.expected_costs_cny:,.0f} CNY; emissions {offer.expected_emissions_tco2:,.1f} tCO2; "
        f"carbon-adjusted profit {result.carbon_adjusted_profit_cny:,.0f} CNY"
    )
    table = Table(title="hourly view (first interval of each hour)")
    for col in (
        "time",
        "base MW",
        "segments",
        "flex MW",
        "prices CNY/MWh",
        "reg MW @ CNY/MW",
        "DR peak-cut MW",
        "DR valley-fill MW",
    ):
        table.add_column(col, justify="right")
    per_hour = max(1, 60 // offer.interval_minutes)
    for t in range(0, len(offer.energy), per_hour):
        curve = offer.energy[t]
        prices = [s.price_cny_per_mwh for s in curve.segments]
        reg = offer.regulation[t] if offer.regulation else None
        dr = offer.demand_response[t] if offer.demand_response else []
        table.add_row(
            f"{offer.interval_starts[t]:%H:%M}",
            f"{curve.base_mw:,.1f}",
            str(len(curve.segments)),
            f"{sum(s.quantity_mw for s in curve.segments):,.1f}",
            f"{min(prices):g}-{max(prices):g}" if prices else "-",
            f"{reg.capacity_mw:,.1f} @ {reg.mileage_price_cny_per_mw:g}" if reg else "-",
            f"{sum(d.capacity_mw for d in dr if d.direction == 'peak_cut'):,.1f}",
            f"{sum(d.capacity_mw for d in dr if d.direction == 'valley_fill'):,.1f}",
        )
    console.print(table)
    if result.at_risk:
        console.print(
            f"[yellow]{len(result.at_risk)} intervals cannot keep headroom for the P10-P90 forecast range:[/yellow]"
        )
        for r in result.at_risk[:12]:
            console.print(f"  {r.interval_start}: {r.direction} short by {r.shortfall_mw:.2f} MW")
    else:
        console.print("the schedule keeps headroom for the P10-P90 forecast range in every interval")
    for note in result.notes:
        console.print(f"note: {note}")


def print_sweep(console: Console, results: Sequence[OfferResult]) -> None:
    table = Table(title="carbon price trade-off (expected values)")
    for col in (
        "carbon CNY/tCO2",
        "revenue CNY",
        "costs CNY",
        "profit CNY",
        "emissions tCO2",
        "carbon-adjusted CNY",
        "solve s",
    ):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r.carbon_price_cny_per_tco2:g}",
            f"{r.offer.expected_revenue_cny:,.0f}",
            f"{r.expected_costs_cny:,.0f}",
            f"{r.expected_profit_cny:,.0f}",
            f"{r.offer.expected_emissions_tco2:,.1f}",
            f"{r.carbon_adjusted_profit_cny:,.0f}",
            f"{r.info.seconds:.2f}",
        )
    console.print(table)
