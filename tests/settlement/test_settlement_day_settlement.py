"""Hand-computed settlement of the tiny park: every revenue line, revenue sharing, carbon.

All expected figures are worked out by hand in the comments (h = 6 h per interval).
"""

from __future__ import annotations

import numpy as np
import pytest

from infra.contracts import Settlement
from settlement.day import PARK_ITEMS, settle_day
from tests.settlement.settlement_checks import assert_reconciles
from tests.settlement.settlement_tiny import ENERGY, tiny_baseline, tiny_facts, tiny_scenario


@pytest.fixture(scope="module")
def scenario():
    return tiny_scenario()


@pytest.fixture(scope="module")
def result(scenario):
    """The hand-computed day, with the planning top-up of certificates (settled days have none)."""
    return settle_day(scenario, tiny_facts(), tiny_baseline(), plan_top_up=True)


def statement(result, account: str) -> Settlement:
    return next(s for s in result.statements if s.account_id == account)


def line(st: Settlement, item: str):
    return next(x for x in st.lines if x.item == item)


def cny(ln) -> list[float]:
    """A line's interval amounts to the fen (the floats may sit a few ulps off)."""
    return [round(v, 2) for v in ln.interval_amount_cny]


def test_three_part_energy_by_hand(result) -> None:
    park = statement(result, "park")
    # Q_MLT = -5 MW all day, -2 MW green until 12:00: -5*6*300 - 2*6*350 = -13,200 (t0, t1), -9,000 (t2, t3).
    assert cny(line(park, "mlt_energy")) == [-13200.0, -13200.0, -9000.0, -9000.0]
    # (Q_DA - Q_MLT) * 6 * P_DA: (-8+7)*6*200, (-6+7)*6*300, (-4+5)*6*100, (-10+5)*6*500.
    assert cny(line(park, "day_ahead_energy")) == [-1200.0, 1800.0, 600.0, -15000.0]
    # (E - Q_DA*6) * P_RT: (-50+48)*220, (-30+36)*280, (-20+24)*90, (-66+60)*520.
    assert cny(line(park, "real_time_energy")) == [-440.0, 1680.0, 360.0, -3120.0]
    assert line(park, "mlt_energy").energy_mwh == pytest.approx(-7 * 6 * 2 - 5 * 6 * 2)


def test_deviation_charge_by_hand(result) -> None:
    # |E - Q_RT*6| = 2, 6, 4, 6; free band 5 % of 48, 36, 24, 60 = 2.4, 1.8, 1.2, 3.0;
    # excess 0, 4.2, 2.8, 3.0 x P_RT x 0.5 = 0, 588, 126, 780 (charged).
    assert cny(line(statement(result, "park"), "deviation_charge")) == [
        0.0,
        -588.0,
        -126.0,
        -780.0,
    ]


def test_regulation_mileage_k_capped_and_capacity_by_hand(result) -> None:
    park = statement(result, "park")
    # K0 = 0.2*(3*0.9 + 0.8 + 0.85) = 0.87; K1 = 0.2*(3 + 1 + 1) = 1.0 capped at k_cap 0.9.
    # mileage 24 x price 6: 144*0.87 = 125.28, 144*0.9 = 129.6.
    assert cny(line(park, "regulation_mileage")) == [125.28, 129.6, 0.0, 0.0]
    # capacity 2 MW x 6 h x 10 CNY/MW/h.
    assert cny(line(park, "regulation_capacity")) == [120.0, 120.0, 0.0, 0.0]


def test_demand_response_paid_at_capped_price(result) -> None:
    park = statement(result, "park")
    # award 4 MW x 6 h = 24 MWh; delivered = -66 - (-80) = 14 MWh >= 50 % of 24; price 1200 capped at 1000.
    assert cny(line(park, "demand_response")) == [0.0, 0.0, 0.0, 14000.0]
    assert line(park, "demand_response").energy_mwh == pytest.approx(14.0)
    assert line(park, "demand_response_penalty").amount_cny == 0.0


def test_demand_response_shortfall_pays_penalty_and_no_compensation(scenario) -> None:
    result = settle_day(scenario, tiny_facts(), tiny_baseline(grid_t3=-72.0))
    park = statement(result, "park")
    # delivered = -66 - (-72) = 6 MWh < 12 MWh: no compensation, penalty (0.5*24 - 6) * 1000 * 0.5 = 3,000.
    assert line(park, "demand_response").amount_cny == 0.0
    assert cny(line(park, "demand_response_penalty")) == [0.0, 0.0, 0.0, -3000.0]


def test_grid_import_tariff_and_storage_degradation(result) -> None:
    park = statement(result, "park")
    # imports 50 + 30 + 20 + 66 = 166 MWh x 80 CNY/MWh.
    assert cny(line(park, "grid_import_tariff")) == [-4000.0, -2400.0, -1600.0, -5280.0]
    # the battery (owned by fab) discharged 8 MWh at t3 x 40 CNY/MWh; fab bears it, the operator none.
    assert cny(line(park, "storage_degradation")) == [0.0, 0.0, 0.0, -320.0]
    assert line(statement(result, "fab"), "storage_degradation").amount_cny == -320.0
    assert line(statement(result, "op"), "storage_degradation").amount_cny == 0.0


def test_settlement_buys_no_certificates_it_has_no_record_of(scenario) -> None:
    result = settle_day(scenario, tiny_facts(), tiny_baseline())
    assert line(statement(result, "park"), "green_certificate_purchases").amount_cny == 0.0
    assert result.record["carbon"]["certificates_mwh"]["bought"] == 0.0


def test_green_certificates_bought_to_reach_the_clean_share_when_planning(scenario) -> None:
    result = settle_day(scenario, tiny_facts(), tiny_baseline(), plan_top_up=True)
    park = statement(result, "park")
    # direct green 42 MWh (PV, no export), green-traded min(import, 12) = 12 + 12 = 24 MWh;
    # consumption 166 + 42 + 6 (gas) = 214 MWh; 90 % target = 192.6; clean 66 -> buy 126.6 GEC
    # at 3 CNY = 379.80, spread over uncovered imports 38, 18, 20, 66 (of 142).
    purchases = line(park, "green_certificate_purchases")
    assert purchases.energy_mwh == pytest.approx(126.6)
    assert cny(purchases) == [-101.64, -48.14, -53.49, -176.53]
    assert purchases.amount_cny == -379.8
    assert line(park, "green_certificate_sales").amount_cny == 0.0


def test_own_surplus_certificates_cover_imports_before_buying(scenario) -> None:
    energy = ENERGY.copy()
    energy[0] = [0.0, 60.0, 50.0, 0.0]
    grid = [-50.0, 20.0, 18.0, -66.0]  # the grid meter is authoritative
    result = settle_day(scenario, tiny_facts(energy=energy, grid=grid), tiny_baseline(), plan_top_up=True)
    # exported green 20 + 18 = 38; imports 50 + 66, green-traded 12 (t0) -> uncovered 104 MWh.
    # Own surplus covers 38; consumption 116 + 110 + 6 - 38 = 194, clean 72 + 12 + 38 = 122 < 174.6:
    # buy 52.6 more; nothing is left to sell.
    certificates = result.record["carbon"]["certificates_mwh"]
    assert certificates["sold"] == 0.0
    assert certificates["bought"] == pytest.approx(52.6, abs=1e-6)
    assert certificates["cancelled_cover"] == pytest.approx(38.0 + 52.6, abs=1e-6)
    assert line(statement(result, "park"), "green_certificate_purchases").amount_cny == -157.8


def test_surplus_certificates_are_sold(scenario) -> None:
    energy = ENERGY.copy()
    energy[0] = [60.0, 60.0, 60.0, 60.0]
    result = settle_day(scenario, tiny_facts(energy=energy, grid=[10.0, 40.0, 30.0, 10.0]), tiny_baseline())
    sales = line(statement(result, "park"), "green_certificate_sales")
    # 90 MWh exported, all green, no imports to cover: 90 certificates sold at 3 CNY.
    assert sales.energy_mwh == pytest.approx(90.0)
    assert sales.amount_cny == 270.0
    assert line(statement(result, "park"), "green_certificate_purchases").amount_cny == 0.0


def test_revenue_sharing_by_hand(result) -> None:
    fab, kiln, op = statement(result, "fab"), statement(result, "kiln"), statement(result, "op")
    # fab (fixed_plus_share): energy at the day's mean price 275: bat1 -4, 0, 0, 8 and load -30, -40, -20, -50.
    assert cny(line(fab, "energy_supply")) == [-9350.0, -11000.0, -5500.0, -11550.0]
    # kiln (time-of-use): -16*200, -20*300, -12*100, -30*500.
    assert cny(line(kiln, "energy_supply")) == [-3200.0, -6000.0, -1200.0, -15000.0]
    # Flexibility at t3: delivered vs baseline bat1 8, load_fab 10, load_kiln 2, gas1 6 (operator) = 26 MWh;
    # DR revenue 14,000. bat1: 50*8 + 0.6*(8/26*14000) = 2984.62; load_fab: 500 + 0.6*(10/26*14000) = 3730.77.
    # Regulation revenue (245.28, 249.6) goes to the only battery: 0.6 x -> 147.17, 149.76.
    assert cny(line(fab, "flexibility_payment")) == [147.17, 149.76, 0.0, 6715.39]
    assert line(fab, "flexibility_payment").energy_mwh == pytest.approx(18.0)
    # kiln: 0.5 * (2/26*14000) = 538.46.
    assert cny(line(kiln, "flexibility_payment")) == [0.0, 0.0, 0.0, 538.46]
    # The operator is the counterparty of both internal lines.
    assert line(op, "energy_supply").amount_cny == 37400.0 + 25400.0
    assert line(op, "flexibility_payment").amount_cny == -(7012.32 + 538.46)
    assert fab.total_cny == -30707.68
    assert kiln.total_cny == -24861.54


def test_park_total_and_reconciliation_to_the_fen(result) -> None:
    park = statement(result, "park")
    # -44,400 - 13,800 - 1,520 - 1,494 + 254.88 + 240 + 14,000 - 13,280 - 320 - 379.80
    assert park.total_cny == -60698.92
    assert statement(result, "op").total_cny == -5129.70
    assert_reconciles(result.statements)


def test_carbon_attribution_and_adjusted_revenue(result) -> None:
    park, fab, kiln, op = (statement(result, a) for a in ("park", "fab", "kiln", "op"))
    # grid (non-green) imports 166 - 24 - 126.6 = 15.4 MWh x 0.8325 = 12.8205 t; gas 6 MWh / 0.4 = 54 GJ x 56.1 t/TJ = 3.0294 t.
    assert park.emissions_tco2 == pytest.approx(15.8499, abs=1e-6)
    # Per interval: grid electricity is 15.4/142 of the uncovered imports 38, 18, 20, 66 MWh,
    # shared by who consumed in that interval: fab 34 of 50 (battery charging 4 + load 30),
    # 40 of 60, 20 of 32, 50 of 80 (the battery discharges); kiln the rest.
    grid_t = [u * 15.4 / 142 for u in (38, 18, 20, 66)]
    fab_share, kiln_share = (34 / 50, 40 / 60, 20 / 32, 50 / 80), (16 / 50, 20 / 60, 12 / 32, 30 / 80)
    fab_grid = sum(g * f for g, f in zip(grid_t, fab_share, strict=True))
    kiln_grid = sum(g * f for g, f in zip(grid_t, kiln_share, strict=True))
    assert fab.emissions_tco2 == pytest.approx(0.8325 * fab_grid, abs=2e-6)
    assert kiln.emissions_tco2 == pytest.approx(0.8325 * kiln_grid, abs=2e-6)
    by_t = result.record["carbon"]["by_interval"]
    assert by_t["electricity_mwh"]["grid"] == pytest.approx(grid_t, abs=1e-6)
    assert sum(by_t["grid_emissions_tco2"]) == pytest.approx(12.8205, abs=1e-6)
    assert op.emissions_tco2 == pytest.approx(3.0294, abs=1e-6)
    assert fab.emissions_tco2 + kiln.emissions_tco2 + op.emissions_tco2 == pytest.approx(
        park.emissions_tco2, abs=1e-9
    )
    # total - 70 CNY/t x 15.8499 t + 3 CNY x (42 + 24 + 126.6) MWh green = -60,698.92 - 1,109.49 + 577.80.
    assert park.carbon_adjusted_revenue_cny == -61230.61


@pytest.mark.parametrize("seed", range(12))
def test_random_days_reconcile_to_the_fen(scenario, seed: int) -> None:
    gen = np.random.default_rng(seed)
    energy = ENERGY + gen.normal(0, 3.3, ENERGY.shape)
    energy[0] = np.abs(energy[0])
    facts = tiny_facts(
        energy=energy, grid=list(energy.sum(axis=0) + gen.normal(0, 2, 4)), dr_mw=list(gen.normal(0, 3, 4))
    )
    result = settle_day(scenario, facts, tiny_baseline(grid_t3=float(gen.normal(-70, 10))))
    assert_reconciles(result.statements)
    assert {ln.item for ln in statement(result, "park").lines} == set(PARK_ITEMS)
