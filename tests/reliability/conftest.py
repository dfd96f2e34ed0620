"""The drill lab shared by the reliability tests: one undisturbed reference run per session.

The reference is the winner of two runs of a fresh SQLite database started at once (the
concurrent-runs drill); online backups taken while it runs let the other drills start after
the history or after the forecast instead of forecasting again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest

from gateway.drills import Case, Lab


@pytest.fixture(scope="session")
def drill_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    lab = Lab(
        tmp_path_factory.mktemp("drills"),
        "datong",
        date(2026, 7, 15),
        lambda m: print(f"{time.monotonic() - started:6.1f}s {m}"),
    )
    lab.reference_cases: list[Case] = lab.ensure_reference()  # type: ignore[attr-defined]
    yield lab
