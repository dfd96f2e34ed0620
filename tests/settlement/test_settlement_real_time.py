"""Real-time bids settled on the real-time grid (Shanxi 5 minutes): a hand-computed case and the rules
of the grid (later bid stands, no bid = today's meter-grid settlement)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from infra.scenario import load_scenario
from settlement.case import build_case, run_case
from settlement.day import settle_day
from settlement.realtime import real_time_amounts, real_time_grid

CASE = Path(__file__).parent / "cases" / "real_time_five_minute.yaml"


def test_five_minute_case_matches_the_hand_arithmetic() -> None:
    """Two 15-minute meter intervals (00:00, 00:15), Shanxi rules (free band 5 %, penalty 0.5, tariff
    80 CNY/MWh). Day-ahead -10 MW at 300. Whole-day real-time prices 320 and 340 (held on 5 min).
    A real-time bid cleared 00:05-00:30: -12, -12 MW at 330 and -11, -11, -11 MW at 350, 360, 360.
    Meter -3.0 and -2.7 MWh, spread evenly: -1.0 and -0.9 MWh per 5 minutes. h = 1/12 h, so
    Q_DA h = -0.8333, Q_RT h = -1.0 (-12 MW) and -0.9167 (-11 MW).

    5-min | Q_RT | P_RT | real_time_energy (E - Q_DA h) P_RT | = cleared change + remaining  | deviation
    00:00 | -10  | 320  | -0.1667 x 320 = -53.33             |   0      + -53.33             | |D| 0.1667 - band 0.0417 = 0.125 x 320 x 0.5 = -20.00
    00:05 | -12  | 330  | -0.1667 x 330 = -55.00             | -55.00   +   0                | D = 0
    00:10 | -12  | 330  | -55.00                             | -55.00   +   0                | 0
    00:15 | -11  | 350  | -0.0667 x 350 = -23.33             | -29.17   +   5.83             | D 0.0167 inside band 0.0458: 0
    00:20 | -11  | 360  | -0.0667 x 360 = -24.00             | -30.00   +   6.00             | 0
    00:25 | -11  | 360  | -24.00                             | -30.00   +   6.00             | 0

    Meter interval 00:00: real_time_energy -163.33, deviation -20.00 (without the bid, on the 15-minute
    grid: (-3.0 + 2.5) x 320 = -160.00 and (0.5 - 0.125) x 320 x 0.5 = -60.00: re-declaring the position
    in real time cut the deviation charge by 40). Meter interval 00:15: -71.33 and 0.
    Day-ahead -750 each, tariff -240 and -216: park -2,210.66; fab energy_supply -900 - 810 = -1,710;
    op -500.66. Cleared change -199.17 (= -55 x 2 - 29.17 - 30 x 2), remaining deviation -35.50.
    """
    outcome = run_case(CASE)
    assert outcome["mismatches"] == []
    assert outcome["expectations_checked"] == 8
    scenario, facts, baseline, tariff = build_case(yaml.safe_load(CASE.read_text()))
    record = settle_day(scenario, facts, baseline, tariff=tariff).record["real_time"]
    assert record["interval_minutes"] == 5 and record["bid_intervals"] == 5
    assert record["cleared_change_cny"] == -199.17
    assert record["remaining_deviation_cny"] == -35.5


def test_a_later_bid_replaces_an_earlier_one_where_they_overlap() -> None:
    q_da = np.array([-10.0, -10.0])
    p_day = np.repeat([320.0, 340.0], 3)
    early = (1, np.full(5, -12.0), np.full(5, 330.0), "early")  # 00:05-00:30
    late = (3, np.full(3, -9.0), np.full(3, 400.0), "late")  # 00:15-00:30, made later
    grid = real_time_grid(5, 15, q_da, p_day, [late, early])  # arrival order does not matter
    assert grid.q_rt_mw.tolist() == [-10, -12, -12, -9, -9, -9]
    assert grid.p_rt_cny_per_mwh.tolist() == [320, 330, 330, 400, 400, 400]
    assert grid.bid_message_ids == ("early", "late")


def test_without_bid_intervals_the_meter_grid_amounts_stand() -> None:
    """A meter interval no bid touches is left to the meter-grid settlement (zero here), so a day
    without real-time bids settles exactly as before."""
    rules = load_scenario("datong").market
    grid = real_time_grid(5, 15, np.array([-10.0, -10.0]), np.repeat([320.0, 340.0], 3), [])
    rt = real_time_amounts(rules, grid, np.array([-10.0, -10.0]), np.array([-3.0, -2.7]), np.zeros(2))
    assert not rt.covered.any()
    assert rt.real_time_energy_cny.tolist() == [0.0, 0.0] and rt.deviation_charge_cny.tolist() == [0.0, 0.0]
