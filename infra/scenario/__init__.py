"""Park scenarios: versioned YAML files with every asset, rule and carbon setting, validated."""

from infra.scenario.loader import ScenarioError, available_parks, load_file, load_scenario
from infra.scenario.model import MarketRules, Park, Scenario

__all__ = [
    "MarketRules",
    "Park",
    "Scenario",
    "ScenarioError",
    "available_parks",
    "load_file",
    "load_scenario",
]
