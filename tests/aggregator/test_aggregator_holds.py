"""A pooled offer's holds (aggregator/holds.py): raised holds that no schedule can
meet must not lose the offer; the previous holds are restored and their schedule kept."""

from __future__ import annotations

import numpy as np

import aggregator.scale as scale
from aggregator.holds import Holds
from aggregator.offer import build_offer
from tests.aggregator.aggregator_tools import FLAT_LOAD, battery, forecast, small_park

HOURS = np.arange(96) / 4
EVENING = (HOURS >= 18) & (HOURS < 21)


def _park(power_mw: float = 1.0, energy_mwh: float = 2.0):
    """Eight batteries and a 10 MW load (+-20 %), an evening price peak."""
    batteries = [battery(f"b{i}", power_mw=power_mw, energy_mwh=energy_mwh) for i in range(8)]
    price = 300 + 900 * EVENING
    fc = forecast({f"{FLAT_LOAD['id']}.load_mw": 10.0, "market.price_da_cny_per_mwh": price}, spread=0.2)
    return small_park([FLAT_LOAD, *batteries]), fc


def test_holds_no_schedule_can_meet_are_undone_and_the_offer_kept(monkeypatch):
    monkeypatch.setattr(scale, "POOL_ABOVE_ASSETS", 5)
    scenario, fc = _park()
    monkeypatch.setattr("aggregator.holds.HOLD_ROUNDS", 0)
    plain = build_offer(scenario, fc, forecast_message_id="test")
    assert plain.solution.info.solves == 1

    def impossible(self, short):
        """Every battery asked to keep 1,000 MWh (it has 2): infeasible for the solver."""
        previous = [
            (p.params["hold_up"].value.copy(), p.params["hold_down"].value.copy()) for p in self.parts
        ]
        for p in self.parts:
            p.params["hold_up"].value = np.full(p.params["hold_up"].shape, 1000.0)
        return previous

    monkeypatch.setattr("aggregator.holds.HOLD_ROUNDS", 3)
    monkeypatch.setattr(Holds, "_raise", impossible)
    offer = build_offer(scenario, fc, forecast_message_id="test")
    assert offer.solution.info.solves == 3  # the first, the infeasible one, the restored one
    assert offer.solution.info.status == "optimal"
    assert np.allclose(offer.solution.injection, plain.solution.injection, atol=1e-4)
    assert [c.model_dump() for c in offer.offer.energy] == [c.model_dump() for c in plain.offer.energy]


def test_a_pooled_offer_keeps_headroom_its_batteries_would_sell(monkeypatch):
    """Batteries with energy to spare but little power discharged at full power into the evening
    peak, leaving no headroom for a load above its median; the pooled offer now holds it back."""
    monkeypatch.setattr(scale, "POOL_ABOVE_ASSETS", 5)
    scenario, fc = _park(power_mw=0.5, energy_mwh=4.0)
    monkeypatch.setattr("aggregator.holds.HOLD_ROUNDS", 0)
    plain = build_offer(scenario, fc, forecast_message_id="test")
    assert {r.direction for r in plain.at_risk} >= {"up"}, "the peak should take all the batteries' power"
    monkeypatch.setattr("aggregator.holds.HOLD_ROUNDS", 3)
    offer = build_offer(scenario, fc, forecast_message_id="test")
    assert offer.at_risk == [] and offer.energy_at_risk == []
    battery = offer.solution.fleet("battery")
    sold = np.maximum(battery.power, 0.0)[:, :, EVENING].sum(axis=1) * 0.25  # (K, evening) MWh
    assert sold.sum(axis=1).min() > 1.0, "they still sell at the peak, within the headroom"
