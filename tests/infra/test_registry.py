"""The asset registry: templates entered once, the portfolio of a day, the enrolment lifecycle."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from infra.contracts import Award
from infra.db import make_engine, migrate
from infra.db.outbox import enqueue
from infra.registry import audit, load_template, portfolio
from infra.registry import enrolment as en
from infra.registry.enrolment import EnrolmentError
from infra.scenario import ScenarioError, load_scenario
from infra.timeseries import write
from infra.timeutil import day_intervals

DAY = date(2026, 7, 15)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Any:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate(url)
    return make_engine(url)


def battery(asset_id: str = "cell_bess_2", **changes: Any) -> dict[str, Any]:
    spec = {
        "id": asset_id,
        "name": "Cell plant battery 2",
        "type": "battery",
        "enterprise": "cell_plant",
        "connection": "substation_220kv",
        "power_mw": 10,
        "energy_mwh": 20,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.9,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 20,
        "source": "[assumption] enrolment test",
    }
    return spec | changes


def _settle_marker(engine: Any, day: date) -> None:
    """A stored fact on ``day``: from then on the registry may not change that day."""
    starts = list(day_intervals(day, 15))
    award = Award(
        interval_minutes=15,
        interval_starts=starts,
        market="day_ahead",
        bid_message_id="b",
        exchange="test",
        cleared_mw=[0.0] * 96,
        clearing_price_cny_per_mwh=[300.0] * 96,
    )
    with engine.begin() as conn:
        enqueue(conn, "vpp.awards", award.envelope("datong", day, "day_ahead"))


def test_template_is_entered_once_and_the_portfolio_equals_it(engine: Any) -> None:
    assert portfolio(engine, "datong", DAY) == load_scenario("datong")
    assert load_template(engine, "datong") is False
    with pytest.raises(ScenarioError, match=r"no park file nowhere\.yaml"):
        portfolio(engine, "nowhere", DAY)


def test_an_approved_asset_is_in_the_portfolio_from_its_first_day(engine: Any) -> None:
    _settle_marker(engine, DAY)
    request = en.submit(engine, "datong", battery(), "alice")
    assert request.state == "submitted"
    with pytest.raises(EnrolmentError, match="different person"):
        en.approve(engine, request.request_id, "alice")
    with pytest.raises(EnrolmentError, match="stored facts"):
        en.approve(engine, request.request_id, "bob", DAY)
    approved = en.approve(engine, request.request_id, "bob")
    assert approved.active_from == DAY + timedelta(days=1)
    assert approved.status_on(DAY) == f"approved (active from {DAY + timedelta(days=1)})"
    before, after = portfolio(engine, "datong", DAY), portfolio(engine, "datong", DAY + timedelta(days=1))
    assert "cell_bess_2" not in {a.id for a in before.park.assets}
    assert "cell_bess_2" in {a.id for a in after.park.assets}
    assert before.version == load_scenario("datong").version != after.version
    with engine.connect() as conn:
        actions = [e["action"] for e in audit.entries(conn, "datong", request.request_id)]
    assert actions == ["enrolment.submit", "enrolment.approved"]


def test_withdrawn_and_suspended_assets_leave_from_their_day(engine: Any) -> None:
    first = en.approve(engine, en.submit(engine, "datong", battery("bess_a"), "alice").request_id, "bob", DAY)
    second = en.approve(
        engine, en.submit(engine, "datong", battery("bess_b"), "alice").request_id, "bob", DAY
    )
    en.withdraw(engine, first.request_id, "carol", "sold", DAY + timedelta(days=2))
    en.suspend(engine, second.request_id, "carol", "maintenance", DAY + timedelta(days=3))
    ids = {
        d: {a.id for a in portfolio(engine, "datong", DAY + timedelta(days=d)).park.assets} for d in range(4)
    }
    assert {"bess_a", "bess_b"} <= ids[1]
    assert "bess_a" not in ids[2] and "bess_b" in ids[2]
    assert not {"bess_a", "bess_b"} & ids[3]
    with pytest.raises(EnrolmentError, match="state is withdrawn"):
        en.suspend(engine, first.request_id, "carol", "again")
    assert en.withdraw(engine, second.request_id, "carol", "gone").state == "withdrawn"


def test_a_bad_submission_names_every_problem_at_once(engine: Any) -> None:
    en.submit(engine, "datong", battery("taken"), "alice")
    spec = battery("taken", power_mw=-1, charge_efficiency=0.2, enterprise="nobody", connection="nowhere")
    with pytest.raises(EnrolmentError) as err:
        en.submit(engine, "datong", spec, "alice")
    text = str(err.value)
    for expected in (
        "power_mw: Input should be greater than 0",
        "charge_efficiency=0.2 is below 0.5",
        "enterprise 'nobody'",
        "connection 'nowhere'",
        "id 'taken' is already used",
    ):
        assert expected in text
    assert len(en.listing(engine, "datong")) == 1


def test_a_forecast_asset_needs_metered_history_before_it_goes_live(engine: Any) -> None:
    load = {
        "id": "new_workshop_load",
        "name": "New workshop",
        "type": "inflexible_load",
        "enterprise": "cell_plant",
        "connection": "substation_220kv",
        "peak_mw": 5,
        "load_factor": 0.7,
        "profile": "two_shift",
        "weekend_factor": 0.8,
        "holiday_factor": 0.6,
        "source": "[assumption] enrolment test",
    }
    request = en.submit(engine, "datong", load, "alice")
    with pytest.raises(EnrolmentError, match=r"new_workshop_load\.load_mw, which has 0 metered days"):
        en.approve(engine, request.request_id, "bob", DAY)
    index = pd.date_range(
        pd.Timestamp(DAY - timedelta(days=3), tz="Asia/Shanghai"), periods=3 * 96, freq="15min"
    )
    with engine.begin() as conn:
        write(conn, "datong", {"new_workshop_load.load_mw": pd.Series(3.0, index=index)}, "meter file", 15)
    assert en.approve(engine, request.request_id, "bob", DAY).state == "approved"
