"""A tiny park for hand-computed settlement: 4 intervals of 6 h, three enterprises, five assets.

Enterprises: ``op`` (the operator), ``fab`` (fixed price 50 CNY/MWh plus 60 % share, so its
energy is priced at the day's mean price) and ``kiln`` (time-of-use plus 50 % share).
Assets: ``pv1`` (op), ``gas1`` (op), ``bat1`` (fab, 40 CNY/MWh degradation), ``load_fab``,
``load_kiln``. Contracts: -5 MW all day at 300, green -2 MW from 00:00 to 12:00 at 350.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from infra.scenario import load_scenario
from infra.scenario.loader import parse_market, parse_scenario
from infra.scenario.model import Scenario
from infra.timeutil import day_intervals
from settlement.baseline import Baseline
from settlement.facts import MEASURED, DayFacts

DAY = date(2026, 7, 15)  # a Wednesday
H = 6.0
SRC = "[assumption] test"


def tiny_market(**changes: Any) -> Any:
    base = load_scenario("datong").market.model_dump(mode="json")
    base.update(
        id="tinymarket",
        day_ahead_interval_minutes=360,
        real_time_interval_minutes=360,
        grid_import_tariff_cny_per_mwh=80,
        field_sources={},
    )
    # the additive (Shaanxi) K formula, computed by hand in the tests
    base["regulation"].update(
        k_cap=0.9, capacity_price_cny_per_mw_h=10, k_formula="additive", field_sources={}
    )
    base["demand_response"].update(baseline_days=3, field_sources={})
    base["deviation"]["field_sources"] = {}
    base.update(changes)
    return parse_market(base, "tinymarket")


def tiny_scenario(**market_changes: Any) -> Scenario:
    datong = load_scenario("datong").park.model_dump(mode="json")
    raw = {
        "id": "tiny",
        "name": "Tiny test park",
        "province": "Shanxi",
        "version": "1",
        "timezone": "Asia/Shanghai",
        "market": "tinymarket",
        "source": SRC,
        "choices": [],
        "location": datong["location"],
        "simulation": datong["simulation"],
        "carbon": datong["carbon"],
        "grid": [
            {"id": "node", "voltage_kv": 35, "import_limit_mw": 200, "export_limit_mw": 200, "source": SRC}
        ],
        "enterprises": [
            {"id": "op", "name": "Operator", "sector": "energy", "contract": None, "source": SRC},
            {
                "id": "fab",
                "name": "Fab",
                "sector": "x",
                "source": SRC,
                "contract": {
                    "kind": "fixed_plus_share",
                    "fixed_price_cny_per_mwh": 50,
                    "share_fraction": 0.6,
                },
            },
            {
                "id": "kiln",
                "name": "Kiln",
                "sector": "x",
                "source": SRC,
                "contract": {"kind": "tou_plus_share", "share_fraction": 0.5},
            },
        ],
        "contracts": [
            {"id": "base", "quantity_mw": -5, "price_cny_per_mwh": 300, "green": False, "source": SRC},
            {
                "id": "green",
                "quantity_mw": -2,
                "price_cny_per_mwh": 350,
                "green": True,
                "hours": [0, 12],
                "source": SRC,
            },
        ],
        "assets": [
            {
                "id": "pv1",
                "type": "pv",
                "name": "PV",
                "enterprise": "op",
                "connection": "node",
                "capacity_mw": 10,
                "kind": "central",
                "tilt_deg": 30,
                "azimuth_deg": 180,
                "system_loss_fraction": 0.14,
                "source": SRC,
            },
            {
                "id": "gas1",
                "type": "gas_generator",
                "name": "Gas",
                "enterprise": "op",
                "connection": "node",
                "capacity_mw": 5,
                "min_load_fraction": 0.3,
                "electric_efficiency": 0.4,
                "fuel": "natural_gas",
                "annual_fuel_budget_units": 1e6,
                "source": SRC,
            },
            {
                "id": "bat1",
                "type": "battery",
                "name": "Battery",
                "enterprise": "fab",
                "connection": "node",
                "power_mw": 5,
                "energy_mwh": 10,
                "charge_efficiency": 0.95,
                "discharge_efficiency": 0.95,
                "soc_min_fraction": 0.1,
                "soc_max_fraction": 0.95,
                "soc_initial_fraction": 0.5,
                "degradation_cny_per_mwh": 40,
                "source": SRC,
            },
            {
                "id": "load_fab",
                "type": "inflexible_load",
                "name": "Fab load",
                "enterprise": "fab",
                "connection": "node",
                "peak_mw": 20,
                "load_factor": 0.8,
                "profile": "three_shift",
                "weekend_factor": 1,
                "holiday_factor": 1,
                "source": SRC,
            },
            {
                "id": "load_kiln",
                "type": "inflexible_load",
                "name": "Kiln load",
                "enterprise": "kiln",
                "connection": "node",
                "peak_mw": 10,
                "load_factor": 0.8,
                "profile": "three_shift",
                "weekend_factor": 1,
                "holiday_factor": 1,
                "source": SRC,
            },
        ],
    }
    return parse_scenario(raw, tiny_market(**market_changes), "tiny")


# Asset order: pv1, gas1, bat1, load_fab, load_kiln (MWh per 6-h interval).
ENERGY = np.array(
    [
        [0.0, 30.0, 12.0, 0.0],
        [0.0, 0.0, 0.0, 6.0],
        [-4.0, 0.0, 0.0, 8.0],
        [-30.0, -40.0, -20.0, -50.0],
        [-16.0, -20.0, -12.0, -30.0],
    ]
)
BASELINE = np.array(
    [
        [0.0, 30.0, 12.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [-30.0, -40.0, -20.0, -60.0],
        [-16.0, -20.0, -12.0, -32.0],
    ]
)


def tiny_facts(
    energy: np.ndarray = ENERGY,
    grid: list[float] | None = None,
    dr_mw: list[float] | None = None,
    dr_price: float = 1200.0,
    regulation: bool = True,
) -> DayFacts:
    starts = list(day_intervals(DAY, 360).to_pydatetime())
    grid_mwh = np.asarray(grid if grid is not None else energy.sum(axis=0), dtype=float)
    return DayFacts(
        park_id="tiny",
        day=DAY,
        interval_minutes=360,
        interval_starts=starts,
        q_da_mw=np.array([-8.0, -6.0, -4.0, -10.0]),
        p_da_cny_per_mwh=np.array([200.0, 300.0, 100.0, 500.0]),
        q_rt_mw=np.array([-8.0, -6.0, -4.0, -10.0]),
        p_rt_cny_per_mwh=np.array([220.0, 280.0, 90.0, 520.0]),
        regulation_mw=np.array([2.0, 2.0, 0.0, 0.0]) if regulation else np.zeros(4),
        regulation_price_cny_per_mw=np.array([6.0, 6.0, 0.0, 0.0]) if regulation else np.zeros(4),
        dr_mw=np.asarray(dr_mw if dr_mw is not None else [0.0, 0.0, 0.0, 4.0]),
        dr_price_cny_per_mwh=np.full(4, dr_price),
        grid_mwh=grid_mwh,
        asset_ids=("pv1", "gas1", "bat1", "load_fab", "load_kiln"),
        metered_mwh=energy.copy(),
        quality=np.full(energy.shape, MEASURED, dtype=np.int8),
        mileage_mw=np.array([24.0, 24.0, 0.0, 0.0]) if regulation else None,
        k_inputs=(
            np.array([0.9, 1.0, 1.0, 1.0]),
            np.array([0.8, 1.0, 1.0, 1.0]),
            np.array([0.85, 1.0, 1.0, 1.0]),
        )
        if regulation
        else None,
        source_message_ids=("da-id", "rt-id", "metering-id"),
    )


def tiny_baseline(grid_t3: float = -80.0, assets: np.ndarray = BASELINE) -> Baseline:
    grid = np.array([-50.0, -30.0, -20.0, grid_t3])
    return Baseline(
        grid, assets.copy(), {"target": DAY.isoformat(), "n_days": 3, "sources": {}, "meters": []}
    )
