"""A park with many devices is offered and dispatched over virtual devices, and every real
device gets a feasible set-point (the production path of ``build_offer`` and ``disaggregate``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import aggregator.scale as scale
from aggregator.dispatch import check_setpoints, disaggregate
from aggregator.inputs import inputs_from_forecast, required_series
from aggregator.offer import build_offer, forecast_day
from aggregator.uncertainty import ENERGY_WINDOWS_H, window_energy
from gateway.scale.park import generated_park
from infra.scenario.loader import load_market, parse_scenario
from tests.aggregator.aggregator_tools import FLAT_LOAD, award_at_median, battery, forecast, small_park

HOURS = np.arange(96) / 4


@pytest.fixture
def many_devices(monkeypatch):
    """120 generated devices, pooled above 50 assets into at most 40 virtual devices."""
    return _many_devices(monkeypatch, 300 + 150 * np.sin(HOURS / 24 * 4 * np.pi))


def _many_devices(monkeypatch, price: np.ndarray, **market_rules: float):
    monkeypatch.setattr(scale, "POOL_ABOVE_ASSETS", 50)
    monkeypatch.setattr(scale, "VIRTUAL_DEVICE_BUDGET", 40)
    raw = generated_park(120)
    market = load_market(raw["market"]).model_copy(update=market_rules)
    scenario = parse_scenario(raw, market, "generated park")
    series = {}
    for sid, upper in required_series(scenario).items():
        if sid.startswith("market."):
            series[sid] = price
        elif sid.endswith("pv_mw"):
            series[sid] = 0.5 * upper * np.clip(np.sin((HOURS - 6) / 12 * np.pi), 0, None)
        else:
            asset = scenario.asset(sid.split(".")[0])
            size = getattr(asset, "baseline_mw", None) or 0.8 * asset.peak_mw
            series[sid] = size * (0.8 + 0.2 * np.sin(HOURS / 24 * 2 * np.pi))
    return scenario, forecast(series, spread=0.1)


def test_a_park_above_the_pooling_size_is_offered_and_dispatched_over_virtual_devices(many_devices):
    scenario, fc = many_devices
    offer = build_offer(scenario, fc, forecast_message_id="test")
    virtual = sum(fs.fleet.n for fs in offer.solution.fleets if fs.fleet.flexible)
    assert virtual <= 40 < 120
    assert all(s.startswith("v") for fs in offer.solution.fleets if fs.fleet.flexible for s in fs.fleet.ids)
    award = award_at_median(offer.offer, fc, "test")  # cleared at the forecast's median price
    result = disaggregate(scenario, fc, award, award_message_id="test")
    ids = {a.asset_id for a in result.dispatch.assets}
    assert ids == {a.id for a in scenario.park.assets}  # every real device, no virtual one
    assert result.problems == []
    inputs = inputs_from_forecast(scenario, fc, forecast_day(fc))
    assert check_setpoints(scenario, inputs, result.setpoints()) == []
    total = np.sum([a.power_mw for a in result.dispatch.assets], axis=0)
    assert np.allclose(total - np.asarray(award.cleared_mw), result.dispatch.deviation_mw, atol=1e-4)
    assert np.max(np.abs(result.dispatch.deviation_mw)) < 0.05 * np.max(np.abs(award.cleared_mw)) + 1e-3
    assert "virtual devices split back to 122 assets" in result.dispatch.notes[0]


def test_intraday_re_optimisation_of_a_pooled_park_is_refused_with_the_reason(many_devices):
    from aggregator.dispatch import reoptimise
    from aggregator.errors import InputError

    scenario, fc = many_devices
    with pytest.raises(InputError, match=r"pooled portfolio .* is not built"):
        reoptimise(
            scenario, fc, fc, None, None, award_message_id="x", state={}, from_time=fc.interval_starts[40]
        )


@pytest.mark.parametrize("direction", ["peak_cut", "valley_fill"])
def test_a_pooled_park_delivers_every_offered_demand_response_called_at_once(monkeypatch, direction):
    """Pooled batteries keep their members inside their own windows by lines in cumulative charge
    and discharge, not by the virtual state of charge: an offer read off that state promised
    energy the members do not have, and realigning pools offered power while idle. On a day whose
    prices hardly move (the batteries keep their charge for demand response), every offered
    interval is called at once; the minimum offer is lowered to this small park's size."""
    flat = 300 + 20 * np.sin(HOURS / 24 * 2 * np.pi)
    scenario, fc = _many_devices(monkeypatch, flat, vpp_min_capacity_mw=0.1, min_segment_mw=0.1)
    offer = build_offer(scenario, fc, forecast_message_id="test").offer
    sign = 1.0 if direction == "peak_cut" else -1.0
    called = np.array(
        [sum(d.capacity_mw for d in per if d.direction == direction) for per in offer.demand_response]
    )
    assert called.sum() > 0
    award = award_at_median(
        offer,
        fc,
        "test",
        demand_response_mw=(sign * called).tolist(),
        demand_response_price_cny_per_mwh=[500.0] * len(called),
    )
    result = disaggregate(scenario, fc, award, award_message_id="test")
    short = -sign * np.asarray(result.dispatch.deviation_mw)[called > 0]
    assert short.max() <= 1e-3, f"short of the called {direction} by up to {short.max():.3f} MW"
    assert result.problems == []
    inputs = inputs_from_forecast(scenario, fc, forecast_day(fc))
    assert check_setpoints(scenario, inputs, result.setpoints()) == []


@pytest.fixture(scope="module")
def evening_peak():
    """60 batteries and a 10 MW load (+-20 %) pooled above 50 assets, an evening price peak, the
    offer, and what each battery can still deliver after a dispatch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scale, "POOL_ABOVE_ASSETS", 50)
        rng = np.random.default_rng(3)
        batteries = [
            battery(
                f"b{i}",
                energy_mwh=round(float(rng.uniform(0.5, 0.7)), 3),
                soc_initial_fraction=round(float(rng.uniform(0.4, 0.6)), 3),
            )
            for i in range(60)
        ]
        scenario = small_park([FLAT_LOAD, *batteries])
        price = 300 + 900 * ((HOURS >= 18) & (HOURS < 21))
        fc = forecast({f"{FLAT_LOAD['id']}.load_mw": 10.0, "market.price_da_cny_per_mwh": price}, spread=0.2)
        offer = build_offer(scenario, fc, forecast_message_id="test")

        def dispatched(award):
            """The dispatch, and the energy (MWh) the real batteries could still deliver at each
            interval's end, from their own set-points, efficiencies and floors."""
            result = disaggregate(scenario, fc, award, award_message_id="test")
            power = {a.asset_id: np.asarray(a.power_mw) for a in result.dispatch.assets}
            usable = np.zeros(96)
            for b in batteries:
                p = power[b["id"]]
                flow = 0.95 * np.maximum(-p, 0) - np.maximum(p, 0) / 0.95
                soc = b["energy_mwh"] * b["soc_initial_fraction"] + np.cumsum(flow * 0.25)
                usable += 0.95 * (soc - b["soc_min_fraction"] * b["energy_mwh"])
            return result, usable

        yield fc, offer, dispatched


# 10 MW +- 20 % (P10-P90), errors persisting for hours: the energy a 4 h window needs
NEEDED_4H = window_energy(np.full((1, 96), 2.0), 0.25, max(ENERGY_WINDOWS_H))
EVENING = (HOURS >= 18) & (HOURS < 21)


def test_a_pooled_offer_keeps_the_energy_for_hours_of_forecast_error(evening_peak):
    """Pooled batteries used to be offered empty into an evening peak, 6.6 MWh short of what
    four hours of load above its median would need (aggregator/README.md "Pooled parks in
    production"). They now hold that energy and still sell the peak with the rest."""
    fc, offer, dispatched = evening_peak
    assert offer.solution.fleet("battery").fleet.n < 60  # pooled
    assert offer.energy_at_risk == [] and offer.at_risk == []
    result, usable = dispatched(award_at_median(offer.offer, fc, "test"))
    assert result.problems == []
    assert np.min(usable - NEEDED_4H) >= -0.01, "the real batteries must hold the window energy"
    sold = sum(np.sum(np.maximum(a.power_mw, 0)[EVENING]) for a in result.dispatch.assets) * 0.25
    assert sold > 10.0, "the batteries still sell at the evening peak"


def test_a_pooled_dispatch_reports_the_energy_an_award_takes_from_its_batteries(evening_peak):
    """The dispatch delivers its award before it keeps energy; an award that sells more in the
    evening than the offer did leaves the batteries short, and the notes say by how much."""
    fc, offer, dispatched = evening_peak
    award = award_at_median(offer.offer, fc, "test")
    pushed = award.model_copy(update={"cleared_mw": (np.asarray(award.cleared_mw) + 1.5 * EVENING).tolist()})
    result, usable = dispatched(pushed)
    assert np.max(np.abs(result.dispatch.deviation_mw)) < 1e-3  # delivered
    missing = np.max(NEEDED_4H - usable)
    assert missing > 1.0
    note = next(n for n in result.dispatch.notes if "energy for a 4 h forecast error upward" in n)
    assert float(re.search(r"short by up to ([0-9.]+) MWh", note).group(1)) == pytest.approx(
        missing, rel=0.02
    )
