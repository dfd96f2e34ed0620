"""Bidding's commands: its benchmark."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    @bench.command("bidding")
    def bench_bidding(
        offers: int = typer.Option(
            100, min=1, help="number of day-ahead offers (96 intervals, 14 segments each)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the figures as one JSON object"),
    ) -> None:
        """Rules engine against a model-per-step reference, and the exchange simulator's clearing rate."""
        from bidding.bench import run

        run(offers, as_json)
