"""An enterprise user cannot reach another enterprise's data by any endpoint, id or filter.

Every route of the app is enumerated (API and pages); each is called as the cathode plant's
user with the cell plant's ids wherever a route takes an id. The answer is 403 or 404, or a
200 whose body names nothing of the cell plant (lists filtered by the query layer).
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from gateway.api import router as api_router
from gateway.web import router as web_router
from tests.gateway.conftest import World

OTHER = "cell_plant"
# Anything that identifies the cell plant: its id and its assets'.
FOREIGN = re.compile(r"cell_plant|pv_roof_cell|bess_cell|cell_interruptible|formation_batches|cell_bess")
BATTERY = {
    "id": "cell_bess_iso",
    "name": "Cell plant battery (isolation test)",
    "type": "battery",
    "enterprise": OTHER,
    "connection": "cell_plant_35kv",
    "power_mw": 10,
    "energy_mwh": 20,
    "charge_efficiency": 0.95,
    "discharge_efficiency": 0.95,
    "soc_min_fraction": 0.1,
    "soc_max_fraction": 0.9,
    "soc_initial_fraction": 0.5,
    "degradation_cny_per_mwh": 20,
    "source": "[assumption] test",
}


def _values(request_id: str) -> dict[str, str]:
    return {
        "park_id": "datong",
        "day": "2026-07-15",
        "start": "2026-07-15",
        "month": "2026-07",
        "account_id": OTHER,
        "request_id": request_id,
        "action": "withdraw",
        "period": "day",
        "username": "cell_user",
        "name": "report.html",
        "bid_id": "any-bid",
    }


def test_every_route_refuses_or_filters_another_enterprise(world: World) -> None:
    c = world.client
    made = c.post("/api/v1/parks/datong/enrolments", json=BATTERY, headers=world.login("cell_user"))
    assert made.status_code == 201, made.text
    values = _values(made.json()["request_id"])
    auth = world.login("cathode_user")
    checked = []
    for route in [*api_router.routes, *web_router.routes, *c.app.routes]:
        if not isinstance(route, APIRoute) or route.path.startswith("/api/v1/auth"):
            continue
        path = route.path.replace("{name:path}", "{name}")
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for method in sorted(route.methods - {"HEAD"}):
            query = {"enterprise_id": OTHER, "account": OTHER, "start": "2026-07-01", "end": "2026-08-01"}
            kwargs: dict = {"headers": auth, "params": query}
            if method == "POST":
                if path.endswith("/enrolments"):
                    kwargs["json"] = {**BATTERY, "id": "cell_bess_iso2"}
                elif path.endswith("/metering"):
                    kwargs["files"] = {
                        "file": (
                            "m.csv",
                            b"timestamp,series_id,value\n2026-07-14T00:00:00+08:00,bess_cell_plant.energy_mwh,1\n",
                        )
                    }
                elif "/reviews/" in path:
                    kwargs["json"] = {"state": "approved", "comment": ""}
                elif path.endswith("/amend"):
                    kwargs["json"] = {"price_shift_cny_per_mwh": 10, "reason": "test"}
                elif path == "/api/v1/users":
                    kwargs["json"] = {"username": "x_user", "password": "long-enough-pw", "role": "admin"}
                elif path.startswith("/web/") or path in ("/login", "/logout"):
                    kwargs["data"] = {
                        "park": "datong",
                        "spec": "{}",
                        "state": "approved",
                        "username": "a",
                        "password": "b",
                    }
                else:
                    kwargs["json"] = {"reason": "test"}
            if path in ("/login", "/logout"):
                continue
            r = c.request(method, url, **kwargs)
            checked.append((method, url, r.status_code))
            if r.status_code in (401, 403, 404, 405, 422, 303):
                if r.status_code == 422:
                    assert (
                        not FOREIGN.search(r.text.replace(BATTERY["id"], "")) or "cell_bess_iso2" in r.text
                    ), (method, url, r.text[:300])
                continue
            assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
            assert not FOREIGN.search(r.text), (method, url, FOREIGN.search(r.text).group(0), r.text[:300])
    urls = {u for _, u, _ in checked}
    assert f"/api/v1/parks/datong/days/2026-07-15/statements/{OTHER}" in urls
    assert len(checked) > 40
    # the ones that take the other enterprise's id are refused outright
    refused = {(m, u): s for m, u, s in checked}
    assert refused[("GET", f"/api/v1/parks/datong/days/2026-07-15/statements/{OTHER}")] == 404
    assert refused[("GET", f"/api/v1/parks/datong/enrolments/{values['request_id']}")] == 404
    assert refused[("POST", "/api/v1/parks/datong/enrolments")] == 403
    assert refused[("POST", "/api/v1/parks/datong/metering")] == 403
    assert refused[("GET", "/api/v1/parks/datong/days/2026-07-15/forecasts")] == 403
    for action in ("amend", "withdraw"):  # bids are park-wide: an enterprise user may not touch them
        assert refused[("POST", f"/api/v1/parks/datong/days/2026-07-15/bids/any-bid/{action}")] == 403


def test_own_data_is_visible(world: World) -> None:
    auth = world.login("cathode_user")
    sts = world.client.get("/api/v1/parks/datong/days/2026-07-15/statements", headers=auth).json()
    assert [s["account_id"] for s in sts] == ["cathode_plant"]
    dispatch = world.client.get("/api/v1/parks/datong/days/2026-07-15/dispatch", headers=auth).json()
    assert {a["enterprise_id"] for d in dispatch for a in d["assets"]} == {"cathode_plant"}
    events = world.client.get("/api/v1/parks/datong/days/2026-07-15/dr-events", headers=auth).json()
    assert events and set(events[0]["setpoints_mw"]) <= {
        "pv_roof_cathode",
        "bess_cathode_plant",
        "kiln_batches",
        "cathode_plant_load",
    }
    pdf = world.client.get(
        "/api/v1/parks/datong/days/2026-07-15/statements/cathode_plant/download?format=pdf&lang=zh",
        headers=auth,
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    csv = world.client.get(
        "/api/v1/parks/datong/months/2026-07/statements/cathode_plant/download", headers=auth
    )
    assert csv.status_code == 200 and "cathode_plant" in csv.text and not FOREIGN.search(csv.text)
