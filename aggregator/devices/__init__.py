"""Device fleets that compose into the park model, and how a park scenario maps onto them."""

from __future__ import annotations

from aggregator.devices.base import Bands, Build, Fleet, FleetSolution, Part, Profiles, Soft
from aggregator.devices.cluster import Cluster, Resolution, Virtual
from aggregator.devices.compute import DataCentreFleet
from aggregator.devices.flexible import BatchFleet, EVFleetModel
from aggregator.devices.gas import GasFleet
from aggregator.devices.hydrogen import ElectrolyserFleet
from aggregator.devices.loads import FixedLoadFleet, InterruptibleFleet
from aggregator.devices.renewables import RenewableFleet
from aggregator.devices.storage import BatteryFleet
from aggregator.devices.thermal import HeatPumpFleet
from infra.scenario import Scenario

__all__ = [
    "FLEET_TYPES",
    "Bands",
    "BatchFleet",
    "BatteryFleet",
    "Build",
    "Cluster",
    "DataCentreFleet",
    "EVFleetModel",
    "ElectrolyserFleet",
    "FixedLoadFleet",
    "Fleet",
    "FleetSolution",
    "GasFleet",
    "HeatPumpFleet",
    "InterruptibleFleet",
    "Part",
    "Profiles",
    "RenewableFleet",
    "Resolution",
    "Soft",
    "Virtual",
    "fleets_for",
]

# Every fleet type, in the order the park model adds them.
FLEET_TYPES: tuple[type[Fleet], ...] = (
    RenewableFleet,
    BatteryFleet,
    HeatPumpFleet,
    EVFleetModel,
    BatchFleet,
    InterruptibleFleet,
    ElectrolyserFleet,
    DataCentreFleet,
    GasFleet,
    FixedLoadFleet,
)


def fleets_for(scenario: Scenario) -> list[Fleet]:
    """One fleet per asset type present in the park; parameters come from the scenario."""
    fleets = []
    for fleet_type in FLEET_TYPES:
        assets = scenario.assets_of(*fleet_type.asset_types)
        if assets:
            fleets.append(fleet_type.from_assets(assets, scenario.park))
    return fleets
