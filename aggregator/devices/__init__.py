"""Device fleets that compose into the park model, and how a park scenario maps onto them."""

from __future__ import annotations

from aggregator.devices.base import Build, Fleet, Profiles, Soft
from aggregator.devices.gas import GasFleet
from aggregator.devices.hydrogen import ElectrolyserFleet
from aggregator.devices.loads import (
    BatchFleet,
    DataCentreFleet,
    EVFleetModel,
    FixedLoadFleet,
    InterruptibleFleet,
)
from aggregator.devices.renewables import RenewableFleet
from aggregator.devices.storage import BatteryFleet
from aggregator.devices.thermal import HeatPumpFleet
from infra.scenario import Scenario

__all__ = [
    "BatchFleet",
    "BatteryFleet",
    "Build",
    "DataCentreFleet",
    "EVFleetModel",
    "ElectrolyserFleet",
    "FixedLoadFleet",
    "Fleet",
    "GasFleet",
    "HeatPumpFleet",
    "InterruptibleFleet",
    "Profiles",
    "RenewableFleet",
    "Soft",
    "fleets_for",
]


def fleets_for(scenario: Scenario) -> list[Fleet]:
    """One fleet per asset type present in the park; parameters come from the scenario."""
    park = scenario.park
    makers = [
        (("pv", "wind"), lambda a: RenewableFleet.from_assets(a, park.carbon.green_certificate_price_cny)),
        (("battery",), BatteryFleet.from_assets),
        (("heat_pump",), HeatPumpFleet.from_assets),
        (("ev_fleet",), EVFleetModel.from_assets),
        (("shiftable_batch",), BatchFleet.from_assets),
        (("interruptible_load",), InterruptibleFleet.from_assets),
        (("electrolyser",), ElectrolyserFleet.from_assets),
        (("data_centre",), DataCentreFleet.from_assets),
        (("gas_generator",), lambda a: GasFleet.from_assets(a, park.carbon.fuels)),
        (("inflexible_load",), FixedLoadFleet.from_assets),
    ]
    fleets = []
    for types, make in makers:
        assets = scenario.assets_of(*types)
        if assets:
            fleets.append(make(assets))
    return fleets
