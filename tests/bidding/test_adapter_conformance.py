"""Every exchange adapter passes the same contract: the simulator and the recorded-results replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bidding.exchange import ExchangeAdapter
from bidding.recorded import RecordedResultsAdapter
from bidding.rules import make_bid
from infra.contracts import EnergyCurve, ExchangeRefusal, Offer, Segment
from infra.db import make_engine, migrate
from infra.scenario import load_scenario
from infra.timeseries.files import ingest
from infra.timeutil import MARKET_TZ, day_intervals
from sim.exchange import ExchangeSimulator, market_truth

DAY = date(2026, 7, 15)
GATE = datetime.combine(DAY - timedelta(days=1), time(9, 30), tzinfo=MARKET_TZ)
BEFORE, AFTER = GATE - timedelta(hours=2), GATE + timedelta(hours=8)


def _bid(quantity: float = 40.0):
    s = load_scenario("datong")
    curve = EnergyCurve(
        base_mw=-250, segments=[Segment(price_cny_per_mwh=p, quantity_mw=quantity) for p in (150, 300, 450)]
    )
    offer = Offer(
        interval_minutes=15,
        interval_starts=list(day_intervals(DAY, 15)),
        market="day_ahead",
        scenario_version="t",
        forecast_message_id="f",
        energy=[curve] * 96,
        expected_revenue_cny=0,
        expected_emissions_tco2=0,
    )
    return make_bid(offer, "offer", s.market)


@pytest.fixture(params=["simulator", "recorded"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExchangeAdapter]:
    s = load_scenario("datong")
    if request.param == "simulator":
        yield ExchangeSimulator(s)
        return
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    truth = market_truth(s, DAY)
    rows = ["timestamp,market,price"]
    for ts, row in truth.iterrows():
        rows.append(f"{ts.isoformat()},day_ahead,{row['market.price_da_cny_per_mwh']}")
        rows.append(f"{ts.isoformat()},real_time,{row['market.price_rt_cny_per_mwh']}")
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(rows) + "\n")
    ingest(engine, "datong", path, "prices", s)
    yield RecordedResultsAdapter(engine, "datong", s.market)
    engine.dispose()


def test_is_an_exchange_adapter(adapter: ExchangeAdapter) -> None:
    assert isinstance(adapter, ExchangeAdapter)


def test_submit_amend_close_results(adapter: ExchangeAdapter) -> None:
    assert adapter.submit(_bid(), "b1", BEFORE) == "open"
    assert adapter.amend("b1", _bid(80.0), BEFORE + timedelta(minutes=30)) == "open"
    assert adapter.status("b1", BEFORE) == "open"
    assert adapter.status("b1", AFTER) == "closed"
    awards = adapter.results("b1", AFTER)
    assert [a.market for a in awards] == ["day_ahead", "real_time"]
    assert awards[0].market_id == "shanxi.day_ahead" and awards[1].market_id == "shanxi.real_time"
    assert len(awards[0].cleared_mw) == 96
    assert adapter.status("b1", AFTER) == "cleared"
    assert adapter.results("b1", AFTER) == awards, "results are stable once cleared"
    assert min(awards[0].cleared_mw) >= -250 - 1e-6 and max(awards[0].cleared_mw) <= -250 + 240 + 1e-6


def test_late_submission_refused_naming_both_times(adapter: ExchangeAdapter) -> None:
    with pytest.raises(ExchangeRefusal) as err:
        adapter.submit(_bid(), "late", AFTER)
    assert err.value.code == "gate_closed"
    assert AFTER.isoformat() in str(err.value) and GATE.isoformat() in str(err.value)


def test_late_amend_and_withdraw_refused(adapter: ExchangeAdapter) -> None:
    adapter.submit(_bid(), "b2", BEFORE)
    for call in (lambda: adapter.amend("b2", _bid(60.0), GATE), lambda: adapter.withdraw("b2", GATE)):
        with pytest.raises(ExchangeRefusal) as err:
            call()
        assert err.value.code == "gate_closed" and GATE.isoformat() in str(err.value)
    assert adapter.status("b2", GATE) == "closed"


def test_withdraw_before_gate(adapter: ExchangeAdapter) -> None:
    adapter.submit(_bid(), "b3", BEFORE)
    assert adapter.withdraw("b3", BEFORE) == "withdrawn"
    assert adapter.status("b3", AFTER) == "withdrawn"
    assert adapter.results("b3", AFTER) == []
    with pytest.raises(ExchangeRefusal) as err:
        adapter.amend("b3", _bid(), BEFORE)
    assert err.value.code == "not_open"


def test_no_results_before_gate_and_unknown_bids(adapter: ExchangeAdapter) -> None:
    adapter.submit(_bid(), "b4", BEFORE)
    with pytest.raises(ExchangeRefusal) as err:
        adapter.results("b4", BEFORE)
    assert err.value.code == "not_closed"
    with pytest.raises(ExchangeRefusal) as err:
        adapter.status("nope", BEFORE)
    assert err.value.code == "unknown_bid"
    with pytest.raises(ExchangeRefusal):
        adapter.submit(_bid(), "b4", BEFORE)
