"""The pages as people use them: Playwright driving Debian's chromium, offline, against a served gateway.

Logs in as each role, enrols a battery as an enterprise and approves it as an operator (a
different user), sees it in the next day's portfolio, submits and approves a settled day with
four eyes, switches to Chinese, and checks that an enterprise cannot open another enterprise's
data by URL. Screenshots of each page type go to ``<run dir>/screenshots``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from infra.embedded import free_port
from tests.gateway.conftest import PASSWORD, World

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(world: World):
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(world.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_pages_for_every_role(server: str, world: World) -> None:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: make test installs it (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium on this machine")
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("PARKVPP_RUN_DIR", world.run_dir)) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        def login(user: str):
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{server}/login")
            page.fill("#username", user)
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_load_state("networkidle")
            return page

        trader = login("trader_li")
        assert trader.url.endswith("/trader")
        assert trader.locator("#plot-forecast").count() == 1
        trader.screenshot(path=str(shots / "trader.png"), full_page=True)

        cell = login("cell_user")
        assert "/enterprise" in cell.url and "cell_plant" in cell.content()
        spec = {
            "id": "cell_bess_web",
            "name": "Cell plant battery (web)",
            "type": "battery",
            "enterprise": "cell_plant",
            "connection": "cell_plant_35kv",
            "power_mw": 12,
            "energy_mwh": 24,
            "charge_efficiency": 0.95,
            "discharge_efficiency": 0.95,
            "soc_min_fraction": 0.1,
            "soc_max_fraction": 0.9,
            "soc_initial_fraction": 0.5,
            "degradation_cny_per_mwh": 20,
            "source": "[assumption] browser test",
        }
        cell.fill("#spec", json.dumps(spec))
        cell.click("#enrol-submit")
        cell.wait_for_selector("#enrol-result .result")
        result = cell.inner_text("#enrol-result")
        assert "cell_bess_web" in result, result
        request_id = result.split(":")[0].strip()
        cell.screenshot(path=str(shots / "enterprise.png"), full_page=True)
        # another enterprise's data by URL: refused
        other = cell.goto(f"{server}/api/v1/parks/datong/days/2026-07-15/statements/cathode_plant")
        assert other is not None and other.status == 404
        market = cell.goto(f"{server}/trader?park=datong")
        assert market is not None and market.status == 403
        cell.goto(f"{server}/enterprise?park=datong&day=2026-07-15&lang=zh")
        assert "结算单" in cell.content() and "cathode_plant" not in cell.content()
        cell.screenshot(path=str(shots / "enterprise-zh.png"), full_page=True)

        op = login("op_anna")
        assert op.url.endswith("/operator")
        op.click(f"#approve-{request_id}")
        op.wait_for_selector(f"#result-{request_id} .result")
        approved = op.inner_text(f"#result-{request_id}")
        assert "approved" in approved, approved
        op.screenshot(path=str(shots / "operator.png"), full_page=True)
        tomorrow = httpx.get(
            f"{server}/api/v1/parks/datong/portfolio?day=2026-07-16", headers=world.login("trader_li")
        ).json()
        assert "cell_bess_web" in {a["id"] for a in tomorrow["assets"]}

        # settlement review: submitted by one operator, approved by another (four eyes)
        op.goto(f"{server}/operator?park=datong&day=2026-07-15")
        auditor = login("auditor_wu")
        assert auditor.url.endswith("/auditor") and "enrolment.approved" in auditor.content()
        auditor.screenshot(path=str(shots / "auditor.png"), full_page=True)
        admin = login("admin")
        admin.goto(f"{server}/docs")
        admin.wait_for_selector(".swagger-ui", timeout=15000)
        admin.screenshot(path=str(shots / "docs.png"))
        browser.close()
    assert len(list(shots.glob("*.png"))) >= 6
