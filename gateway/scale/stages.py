"""The benchmark's per-chunk stages: module-level functions that run as Ray tasks.

Each takes one chunk (an enterprise's devices, or a dispatch chunk) and what every chunk
shares, opens its own database connection where it needs one, and returns plain values;
the result does not depend on which worker ran it (:func:`infra.parallel.map_chunks`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from forecast.models import fit_univariate, predict
from gateway.scale.history import HISTORY_DAYS
from infra.contracts import AssetMetering, Dispatch, Metering, SeriesForecast
from infra.db import make_engine
from infra.timeseries.metering import metering_series
from infra.timeseries.store import read, write
from sim.noise import ar1, rng

MODEL = "seasonal_naive"  # the forecast service's univariate baseline model, fitted per cluster
P10_P90 = (0.1, 0.9)


@dataclass(frozen=True)
class Cluster:
    """Series forecast together: their sum is forecast, each member gets its share of it."""

    name: str
    series: tuple[str, ...]
    upper: tuple[float | None, ...]


@dataclass(frozen=True)
class ForecastShared:
    database_url: str
    park_id: str
    day: date


def forecast_cluster(cluster: Cluster, shared: ForecastShared) -> list[SeriesForecast]:
    """A cluster's member forecasts: P50 of the sum by the forecast service's model, split by each
    member's share of the history; P10/P90 from the sum's day-to-day relative changes."""
    engine = make_engine(shared.database_url)
    try:
        frame = read(
            engine, shared.park_id, cluster.series, shared.day - timedelta(days=HISTORY_DAYS), shared.day
        )
    finally:
        engine.dispose()
    total = frame.sum(axis=1)
    per_day = 96
    rows = pd.date_range(
        total.index[-1] + (total.index[1] - total.index[0]),
        periods=per_day,
        freq=total.index[1] - total.index[0],
    )
    with warnings.catch_warnings():  # sktime announces a future default on every fit
        warnings.simplefilter("ignore", FutureWarning)
        median = np.clip(predict(fit_univariate(MODEL, total, per_day), rows, None, per_day), 0, None)
    days = total.to_numpy().reshape(-1, per_day)
    scale = np.maximum(np.abs(days[:-1]), 1e-9)
    change = (days[1:] - days[:-1]) / scale
    low, high = np.quantile(change, P10_P90, axis=0)
    share = frame.mean().to_numpy()
    share = share / max(float(share.sum()), 1e-12)
    out = []
    for name, s, upper in zip(cluster.series, share, cluster.upper, strict=True):
        p50 = median * s
        p10, p90 = np.clip(p50 * (1 + low), 0, None), np.maximum(p50 * (1 + high), p50)
        if upper is not None:
            p10, p50, p90 = (np.minimum(v, upper) for v in (p10, p50, p90))
        owner, quantity = name.split(".", 1)
        out.append(
            SeriesForecast(
                series_id=name,
                asset_id=None if owner == "market" else owner,
                quantity=quantity,
                model=f"{MODEL}-cluster",
                model_version=f"{cluster.name}-{len(cluster.series)}",
                quantiles={
                    "0.1": p10.round(5).tolist(),
                    "0.5": p50.round(5).tolist(),
                    "0.9": p90.round(5).tolist(),
                },
            )
        )
    return out


@dataclass(frozen=True)
class DeliveryShared:
    database_url: str
    park_id: str
    day: date
    seed: int
    truth: dict[str, list[float]]  # uncontrolled assets' actual injection MW (site load < 0, PV > 0)
    deviation_fraction: float


def deliver_chunk(dispatch: Dispatch, shared: DeliveryShared) -> tuple[Metering, int]:
    """Play out one dispatch chunk and store its meter readings; returns the chunk's metering and
    the number of readings written. Controlled devices follow their set-points with AR(1)
    tracking error; uncontrolled ones do what they did (the truth)."""
    hours = dispatch.interval_minutes / 60.0
    metered = []
    for sp in dispatch.assets:
        gen = rng(shared.seed, "scale-delivery", shared.day.isoformat(), sp.asset_id)
        truth = shared.truth.get(sp.asset_id)
        setpoint = np.asarray(sp.power_mw, dtype=float)
        if truth is not None:
            actual = np.asarray(truth, dtype=float)
            if sp.cap_mw:
                actual = np.minimum(actual, [np.inf if c is None else c for c in sp.cap_mw])
        else:
            actual = setpoint * (1.0 + ar1(gen, len(setpoint), shared.deviation_fraction, 0.8))
        metered.append(
            AssetMetering(
                asset_id=sp.asset_id,
                enterprise_id=sp.enterprise_id,
                energy_mwh=(actual * hours).round(6).tolist(),
            )
        )
    grid = np.sum([m.energy_mwh for m in metered], axis=0)
    metering = Metering(
        interval_minutes=dispatch.interval_minutes,
        interval_starts=dispatch.interval_starts,
        source="parkvpp-bench-scale-delivery",
        grid_energy_mwh=grid.round(6).tolist(),
        assets=metered,
        chunk=dispatch.chunk,
    )
    readings = metering_series(metering)
    readings.pop("park.grid_energy_mwh")  # a chunk's sum is not the park's meter
    engine = make_engine(shared.database_url)
    try:
        with engine.begin() as conn:
            write(conn, shared.park_id, readings, "bench-scale-metering")
    finally:
        engine.dispose()
    return metering, len(readings) * len(dispatch.interval_starts)
