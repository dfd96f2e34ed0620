"""The benchmark park's history: Datong's simulated shapes, scaled to each generated device.

The simulator generates a year per asset, which does not scale to 100,000 devices; so every
device's baseline is a Datong series of its kind (interruptible auxiliaries, process load,
central PV, the day-ahead price) scaled to the device, with its own multiplicative noise.
``HISTORY_DAYS`` days before the market day go into the time-series store (the services'
one way to history); the market day itself is what happens (the delivery's truth).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from infra.scenario import Scenario
from infra.timeseries.store import write
from sim.history import load_history
from sim.noise import rng

HISTORY_DAYS = 7
NOISE_FRACTION = 0.05  # device-level variation around its shape (AR-free: meters are 15-minute means)
SHAPES = {  # benchmark asset type -> (Datong series giving the shape, its peak for scaling)
    "interruptible_load": "cell_interruptible.load_mw",
    "inflexible_load": "cell_plant_load.load_mw",
    "pv": "pv_central.pv_mw",
}
PRICE = "market.price_da_cny_per_mwh"


def device_frame(scenario: Scenario, datong: Scenario, day: date) -> pd.DataFrame:
    """Every forecast series of the park over the history window and the market day."""
    start = day - timedelta(days=HISTORY_DAYS)
    source = load_history(datong, start, day + timedelta(days=1), view="truth")
    columns: dict[str, np.ndarray] = {PRICE: source[PRICE].to_numpy()}
    for asset in scenario.park.assets:
        name = SHAPES.get(asset.type)
        if name is None:
            continue
        shape = source[name].to_numpy()
        shape = shape / max(float(shape.max()), 1e-9)
        size = {"interruptible_load": "baseline_mw", "inflexible_load": "peak_mw", "pv": "capacity_mw"}[
            asset.type
        ]
        noise = 1 + NOISE_FRACTION * rng(scenario.park.simulation.seed, "scale", asset.id).standard_normal(
            len(shape)
        )
        quantity = "pv_mw" if asset.type == "pv" else "load_mw"
        columns[f"{asset.id}.{quantity}"] = np.clip(getattr(asset, size) * shape * noise, 0, None).round(5)
    return pd.DataFrame(columns, index=source.index)


def store_history(engine: Engine, scenario: Scenario, frame: pd.DataFrame, day: date) -> int:
    """Write the days before ``day`` into the store; returns the number of values written."""
    past = frame[frame.index < pd.Timestamp(day, tz=frame.index.tz)]
    with engine.begin() as conn:
        write(conn, scenario.id, {c: past[c] for c in past.columns}, "bench-scale-history")
    return int(past.size)
