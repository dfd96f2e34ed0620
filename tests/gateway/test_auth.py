"""Sign-in, token refresh and rotation, logout, disabled users, login rate limit, problem details."""

from __future__ import annotations

from gateway import identity
from infra.db import make_engine
from tests.gateway.conftest import PASSWORD, World

PROBLEM = "application/problem+json"


def test_password_flow_refresh_rotation_and_logout(world: World) -> None:
    c = world.client
    r = c.post("/api/v1/auth/token", data={"username": "trader_li", "password": PASSWORD})
    assert r.status_code == 200
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = c.get("/api/v1/auth/me", headers=auth).json()
    assert me["role"] == "trader" and "market:read" in me["permissions"]
    again = c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 200
    replay = c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401 and replay.headers["content-type"].startswith(PROBLEM)
    new = again.json()
    new_auth = {"Authorization": f"Bearer {new['access_token']}"}
    assert (
        c.post(
            "/api/v1/auth/logout", json={"refresh_token": new["refresh_token"]}, headers=new_auth
        ).status_code
        == 204
    )
    assert c.get("/api/v1/parks", headers=new_auth).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401


def test_wrong_password_missing_token_and_tampered_token(world: World) -> None:
    c = world.client
    bad = c.post("/api/v1/auth/token", data={"username": "trader_li", "password": "nope-nope-nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "wrong user name or password"
    nobody = c.post("/api/v1/auth/token", data={"username": "ghost", "password": PASSWORD})
    assert nobody.status_code == 401 and nobody.json()["detail"] == bad.json()["detail"]
    missing = c.get("/api/v1/parks")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    body = missing.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body) and body["status"] == 401
    token = world.login("admin")["Authorization"]
    assert c.get("/api/v1/parks", headers={"Authorization": token[:-3] + "abc"}).status_code == 401


def test_disabled_user_is_out_at_once(world: World) -> None:
    engine = make_engine(world.url)
    identity.add_user(engine, "temp_trader", PASSWORD, "trader", actor="test")
    auth = world.login("temp_trader")
    assert world.client.get("/api/v1/parks", headers=auth).status_code == 200
    identity.set_disabled(engine, "temp_trader", True, actor="admin")
    assert world.client.get("/api/v1/parks", headers=auth).status_code == 401
    r = world.client.post("/api/v1/auth/token", data={"username": "temp_trader", "password": PASSWORD})
    assert r.status_code == 401
    audit = world.client.get(
        "/api/v1/audit?subject=user:temp_trader", headers=world.login("auditor_wu")
    ).json()
    assert [e["action"] for e in audit["items"]] == ["user.add", "user.disable"]
    assert all("password" not in str(e) for e in audit["items"])


def test_passwords_are_argon2_hashes(world: World) -> None:
    with make_engine(world.url).connect() as conn:
        user = identity.get_user(conn, "admin")
    assert user["password_hash"].startswith("$argon2id$") and PASSWORD not in user["password_hash"]


def test_login_is_rate_limited(world: World) -> None:
    engine = make_engine(world.url)
    identity.add_user(engine, "victim", PASSWORD, "trader", actor="test")
    codes = [
        world.client.post(
            "/api/v1/auth/token", data={"username": "victim", "password": "wrong-guess-x"}
        ).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    right = world.client.post("/api/v1/auth/token", data={"username": "victim", "password": PASSWORD})
    assert right.status_code == 429  # even the right password waits out the minute


def test_validation_names_the_field_and_long_ids_are_404(world: World) -> None:
    auth = world.login("admin")
    r = world.client.get("/api/v1/parks/datong/days/15-07-2026/dispatch", headers=auth)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "path.day"
    long_id = world.client.get("/api/v1/parks/" + "x" * 300 + "/portfolio", headers=auth)
    assert long_id.status_code in (404, 422) and long_id.json()["status"] == long_id.status_code
    r = world.client.get("/api/v1/parks/datong/enrolments?limit=0", headers=auth)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


def test_enrolment_four_eyes_over_the_api(world: World) -> None:
    c = world.client
    spec = {
        "id": "cell_bess_api",
        "name": "Cell plant battery (API)",
        "type": "battery",
        "enterprise": "cell_plant",
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
    bad = c.post(
        "/api/v1/parks/datong/enrolments", json={**spec, "power_mw": -1}, headers=world.login("cell_user")
    )
    assert bad.status_code == 422 and any("power_mw" in e["message"] for e in bad.json()["errors"])
    foreign = c.post(
        "/api/v1/parks/datong/enrolments",
        json={**spec, "enterprise": "cathode_plant"},
        headers=world.login("cell_user"),
    )
    assert foreign.status_code == 403
    made = c.post("/api/v1/parks/datong/enrolments", json=spec, headers=world.login("op_anna"))
    assert made.status_code == 201, made.text
    rid = made.json()["request_id"]
    same = c.post(f"/api/v1/parks/datong/enrolments/{rid}/approve", headers=world.login("op_anna"))
    assert same.status_code == 409 and "four eyes" in same.json()["detail"]
    assert (
        c.post(f"/api/v1/parks/datong/enrolments/{rid}/approve", headers=world.login("cell_user")).status_code
        == 403
    )
    ok = c.post(f"/api/v1/parks/datong/enrolments/{rid}/approve", headers=world.login("op_bo"))
    assert ok.status_code == 200 and ok.json()["state"] == "approved" and ok.json()["decided_by"] == "op_bo"


def test_docs_work_offline_and_health_metrics_request_ids(world: World) -> None:
    c = world.client
    docs = c.get("/docs").text
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert c.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert "redoc.standalone.js" in c.get("/redoc").text
    spec = c.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"
    assert c.get("/health").json()["database"] == "ok"
    r = c.get("/api/v1/parks", headers={**world.login("admin"), "X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    metrics = c.get("/metrics").text
    assert 'parkvpp_http_request_seconds_count{method="GET",route="/api/v1/parks",status="200"}' in metrics
    assert "parkvpp_outbox_unpublished" in metrics and "parkvpp_dead_letters" in metrics
