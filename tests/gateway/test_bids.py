"""Amending and withdrawing a bid through the API: before the gate only, audited, traders only.

The gate is checked against the real clock (Asia/Shanghai), so the open bid is seeded for a day
three days from now and the closed one is the seeded 2026-07-15 (its gate passed long ago).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.seed import seed_day
from infra.contracts import Bid
from infra.db import make_engine
from infra.db.outbox import stored_envelopes
from infra.timeutil import now
from tests.gateway.conftest import DAY, PARK, World


@pytest.fixture(scope="module")
def open_day(world: World):
    day = now().date() + timedelta(days=3)
    seed_day(make_engine(world.url), PARK, day, through="bid")
    return day


def _bids(world: World, day, user: str = "trader_li") -> list[dict]:
    r = world.client.get(f"/api/v1/parks/{PARK}/days/{day}/bids", headers=world.login(user))
    assert r.status_code == 200, r.text
    return r.json()


def test_amend_then_withdraw_before_the_gate(world: World, open_day) -> None:
    (bid,) = _bids(world, open_day)
    assert bid["state"] == "submitted" and bid["revision"] == 0
    gate = (open_day - timedelta(days=1)).isoformat() + "T09:30:00+08:00"
    assert bid["gate_closure"] == gate
    trader = world.login("trader_li")
    url = f"/api/v1/parks/{PARK}/days/{open_day}/bids/{bid['message_id']}"

    r = world.client.post(
        f"{url}/amend", json={"price_shift_cny_per_mwh": 25, "reason": "evening peak"}, headers=trader
    )
    assert r.status_code == 200, r.text
    amended = r.json()
    assert amended["state"] == "amended" and amended["revision"] == 1
    assert amended["current_message_id"] != bid["message_id"]
    assert [t["event"] for t in amended["history"]] == ["validate", "submit", "amend"]
    assert amended["history"][-1]["note"] == "evening peak"
    # the revision is a bid fact with the new prices (through the province rules), naming the bid
    with make_engine(world.url).connect() as conn:
        revision = next(
            Bid.from_envelope(e)
            for e in stored_envelopes(conn, PARK, open_day, "bid")
            if e.message_id == amended["current_message_id"]
        )
    assert revision.amends == bid["message_id"] and revision.revision == 1 and not revision.withdrawn
    assert revision.energy[40].segments[0].price_cny_per_mwh == 225  # 200 + 25
    assert len(_bids(world, open_day)) == 1  # revisions are folded into their bid

    # the whole curve can be replaced too; the rules still apply (a wrong interval count is named)
    bad = world.client.post(
        f"{url}/amend",
        json={"energy": [{"base_mw": 0, "segments": []}], "reason": "typo"},
        headers=trader,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.energy", bad.text
    both = world.client.post(
        f"{url}/amend", json={"energy": [], "price_shift_cny_per_mwh": 1, "reason": "x"}, headers=trader
    )
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "body.energy"

    w = world.client.post(f"{url}/withdraw", json={"reason": "plant outage"}, headers=trader)
    assert w.status_code == 200, w.text
    assert w.json()["state"] == "withdrawn" and w.json()["revision"] == 2
    again = world.client.post(
        f"{url}/amend", json={"price_shift_cny_per_mwh": 1, "reason": "x"}, headers=trader
    )
    assert again.status_code == 409 and "withdrawn" in again.json()["detail"], again.text

    audit = world.client.get(
        "/api/v1/audit", params={"subject": f"bid:{bid['message_id']}"}, headers=world.login("auditor_wu")
    ).json()["items"]
    assert [e["action"] for e in audit] == ["bid.amended", "bid.withdrawn"]
    assert audit[0]["actor"] == "trader_li" and audit[0]["before"]["state"] == "submitted"
    assert audit[0]["after"]["reason"] == "evening peak" and audit[1]["after"]["state"] == "withdrawn"


def test_after_the_gate_the_answer_names_the_gate_time(world: World) -> None:
    (bid,) = _bids(world, DAY)
    assert bid["state"] == "awarded"
    url = f"/api/v1/parks/{PARK}/days/{DAY}/bids/{bid['message_id']}"
    trader = world.login("trader_li")
    for action, body in (
        ("amend", {"price_shift_cny_per_mwh": 5, "reason": "late"}),
        ("withdraw", {"reason": "late"}),
    ):
        r = world.client.post(f"{url}/{action}", json=body, headers=trader)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert r.headers["content-type"] == "application/problem+json"
        assert "gate closed at 2026-07-14T09:30:00+08:00" in problem["detail"], problem
        assert problem["errors"][0]["field"] == "path.bid_id"
    assert _bids(world, DAY)[0]["revision"] == 0  # nothing changed


def test_only_traders_change_bids_and_enterprises_see_none(world: World, open_day) -> None:
    bid_id = _bids(world, DAY)[0]["message_id"]
    url = f"/api/v1/parks/{PARK}/days/{DAY}/bids/{bid_id}"
    body = {"price_shift_cny_per_mwh": 5, "reason": "x"}
    for user in ("cathode_user", "op_anna", "auditor_wu"):
        r = world.client.post(f"{url}/amend", json=body, headers=world.login(user))
        assert r.status_code == 403, (user, r.text)
        r = world.client.post(f"{url}/withdraw", json={"reason": "x"}, headers=world.login(user))
        assert r.status_code == 403, (user, r.text)
    enterprise = world.login("cathode_user")
    assert world.client.get(url, headers=enterprise).status_code == 403
    assert world.client.get(f"/api/v1/parks/{PARK}/days/{DAY}/bids", headers=enterprise).status_code == 403
    unknown = world.client.get(f"/api/v1/parks/{PARK}/days/{DAY}/bids/nope", headers=world.login("trader_li"))
    assert unknown.status_code == 404


def test_trader_page_amends_and_withdraws(world: World) -> None:
    from fastapi.testclient import TestClient

    from tests.gateway.conftest import PASSWORD

    day = now().date() + timedelta(days=4)
    seed_day(make_engine(world.url), PARK, day, through="bid")
    page = TestClient(world.client.app)
    assert page.post("/login", data={"username": "trader_li", "password": PASSWORD}).status_code == 200
    html = page.get("/trader", params={"park": PARK, "day": str(day), "lang": "zh"}).text
    (bid,) = _bids(world, day)
    assert f'hx-post="/web/bids/{bid["message_id"]}/amend"' in html and "申报截止" in html
    form = {"park": PARK, "day": str(day), "reason": "峰段加价", "price_shift": "15"}
    amended = page.post(f"/web/bids/{bid['message_id']}/amend", data=form, params={"lang": "zh"})
    assert 'data-ok="yes"' in amended.text and "已修改" in amended.text, amended.text
    no_reason = page.post(f"/web/bids/{bid['message_id']}/withdraw", data={**form, "reason": " "})
    assert 'data-ok="no"' in no_reason.text
    withdrawn = page.post(f"/web/bids/{bid['message_id']}/withdraw", data={**form, "reason": "检修"})
    assert 'data-ok="yes"' in withdrawn.text, withdrawn.text
    assert _bids(world, day)[0]["state"] == "withdrawn"
    closed = page.post(
        f"/web/bids/{_bids(world, DAY)[0]['message_id']}/amend", data={**form, "day": str(DAY)}
    )
    assert 'data-ok="no"' in closed.text and "2026-07-14T09:30:00+08:00" in closed.text
