"""Forecast-shaped inputs made from the simulator's history, for the benchmark and the tests.

The forecast service produces the real ``ForecastSet``; this stand-in takes the recorded
truth as the median and widens it by a fixed fraction into P10 and P90, so benchmarks and
tests exercise the aggregator without depending on a forecast model's accuracy.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from infra.contracts import ForecastSet, SeriesForecast
from infra.scenario import Scenario
from infra.timeutil import day_start
from sim.history import load_history

PRICE_DA = "market.price_da_cny_per_mwh"
_MEASURED = {
    "pv": "pv_mw",
    "wind": "wind_mw",
    "inflexible_load": "load_mw",
    "interruptible_load": "load_mw",
    "heat_pump": "heat_mw_th",
    "data_centre": "it_load_mw",
}


def forecastable_series(scenario: Scenario) -> dict[str, float | None]:
    """Every asset series the history holds and the day-ahead price, with generators' capacity as upper limit."""
    needed: dict[str, float | None] = {PRICE_DA: None}
    for a in scenario.park.assets:
        if a.type in _MEASURED:
            needed[f"{a.id}.{_MEASURED[a.type]}"] = a.capacity_mw * 1.1 if a.type in ("pv", "wind") else None
    return needed


def forecast_from_history(
    scenario: Scenario, day: date, spread_fraction: float = 0.1, horizon: str = "day_ahead"
) -> ForecastSet:
    """A day-ahead ForecastSet whose median is the simulated truth of ``day``."""
    history = load_history(scenario, day, day + timedelta(days=1), view="truth")
    needed = forecastable_series(scenario)
    series = []
    for sid, upper in needed.items():
        median = history[sid].to_numpy(dtype=float)
        if sid == PRICE_DA:
            width = spread_fraction * 2 * float(np.mean(np.abs(median)))
            low, high = median - width, median + width
        else:
            low, high = median * (1 - spread_fraction), median * (1 + spread_fraction)
            if upper is not None:
                high = np.minimum(high, upper / 1.1)
        series.append(
            SeriesForecast(
                series_id=sid,
                asset_id=sid.split(".")[0] if not sid.startswith("market.") else None,
                quantity=sid.split(".", 1)[1],
                model="history-truth",
                model_version="1",
                quantiles={
                    "0.1": low.round(4).tolist(),
                    "0.5": median.round(4).tolist(),
                    "0.9": high.round(4).tolist(),
                },
            )
        )
    issued = day_start(day) - timedelta(hours=14)
    return ForecastSet(
        interval_minutes=int((history.index[1] - history.index[0]).total_seconds() // 60),
        interval_starts=[ts.to_pydatetime() for ts in history.index],
        horizon=horizon,
        issued_at=issued,
        data_cutoff=issued,
        series=series,
    )
