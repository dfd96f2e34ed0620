"""The pages as people use them: Playwright driving Debian's chromium, offline, against a served gateway.

Logs in as each role; the trader's forecast chart has its P10/P50/P90 traces. An enterprise
enrols a battery and an operator (a different user) approves it; the next day's forecast is
stored and the **real aggregator worker** makes that day's offer from the portfolio that now
holds the battery, and the trader page of the next day shows the battery among the offer's
assets. A month whose every day is settled is submitted by one operator and approved by another
(the same operator's approval is refused; a month with unsettled days cannot be submitted). An
enterprise cannot open another enterprise's data by URL. Screenshots of every page type go to
``<run dir>/screenshots``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

from gateway.seed import seed_day, seed_days
from infra.contracts import Topic
from infra.db import make_engine
from infra.db.outbox import stored_envelopes
from infra.embedded import free_port
from infra.registry import portfolio
from tests.gateway.conftest import DAY, PARK, PASSWORD, World

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
NEXT = DAY + timedelta(days=1)
JUNE = date(2026, 6, 1)


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


@pytest.fixture(scope="module")
def settled_june(world: World) -> list[date]:
    """Every day of June 2026 settled (synthetic market facts, real settlement)."""
    return seed_days(make_engine(world.url), PARK, JUNE, date(2026, 6, 30))


@pytest.fixture(scope="module")
def daily_report(world: World) -> Path:
    """The run folder of the seeded day with report.html, as run-day writes it."""
    from gateway.report import write_run_folder

    engine = make_engine(world.url)
    with engine.connect() as conn:
        facts = {
            k: stored_envelopes(conn, PARK, DAY, k)
            for k in ("forecast_set", "offer", "bid", "award", "dispatch", "metering", "settlement")
        }
    outcome = SimpleNamespace(
        folder=world.run_dir / PARK / DAY.isoformat(),
        facts=facts,
        park_id=PARK,
        day=DAY,
        run_id="seeded",
        already_settled=False,
        stage_seconds={},
    )
    return write_run_folder(outcome, portfolio(engine, PARK, DAY), engine)


def _next_day_offer(world: World) -> None:
    """The forecast service's part is seeded; the offer is the aggregator worker's, unchanged."""
    from aggregator.worker import AggregatorWorker

    engine = make_engine(world.url)
    seed_day(engine, PARK, NEXT, through="forecast")
    with engine.connect() as conn:
        (forecast,) = stored_envelopes(conn, PARK, NEXT, "forecast_set")
    assert AggregatorWorker(engine, "127.0.0.1:9").apply(Topic.FORECASTS, forecast)
    with engine.connect() as conn:
        (offer,) = stored_envelopes(conn, PARK, NEXT, "offer")
    assert offer.producer == "aggregator" and offer.payload["forecast_message_id"] == forecast.message_id


def _plot_traces(page, element_id: str) -> int:
    page.wait_for_function(f"document.getElementById('{element_id}').data !== undefined", timeout=15000)
    return page.evaluate(f"document.getElementById('{element_id}').data.length")


def test_pages_for_every_role(
    server: str, world: World, settled_june: list[date], daily_report: Path
) -> None:
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

        # the trader's day: the forecast chart has P10-P90 bands and medians of load, PV and wind
        trader = login("trader_li")
        assert trader.url.endswith("/trader")
        assert _plot_traces(trader, "plot-forecast") == 9
        assert _plot_traces(trader, "plot-offer") >= 1 and _plot_traces(trader, "plot-awards") >= 2
        trader.screenshot(path=str(shots / "trader.png"), full_page=True)

        # an enterprise enrols a battery
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
        cell.reload()
        listed = cell.inner_text("#enrolments table")
        assert request_id in listed and "cell_bess_web" in listed and "submitted" in listed, listed
        cell.screenshot(path=str(shots / "enterprise.png"), full_page=True)
        # another enterprise's data by URL: refused
        other = cell.goto(f"{server}/api/v1/parks/datong/days/{DAY}/statements/cathode_plant")
        assert other is not None and other.status == 404
        market = cell.goto(f"{server}/trader?park=datong")
        assert market is not None and market.status == 403
        cell.goto(f"{server}/enterprise?park=datong&day={DAY}&lang=zh")
        zh = cell.content()
        assert "结算单" in zh and "碳账户" in zh and "cathode_plant" not in zh
        cell.screenshot(path=str(shots / "enterprise-zh.png"), full_page=True)

        # an operator (not the submitter) approves it: in the portfolio from the next day
        op = login("op_anna")
        assert op.url.endswith("/operator")
        op.click(f"#approve-{request_id}")
        op.wait_for_selector(f"#result-{request_id} .result")
        approved = op.inner_text(f"#result-{request_id}")
        assert "approved" in approved and str(NEXT) in approved, approved
        tomorrow = httpx.get(
            f"{server}/api/v1/parks/datong/portfolio?day={NEXT}", headers=world.login("trader_li")
        ).json()
        assert "cell_bess_web" in {a["id"] for a in tomorrow["assets"]}

        # the next day's offer, made by the aggregator from that portfolio, pools the battery
        _next_day_offer(world)
        trader.goto(f"{server}/trader?park=datong&day={NEXT}")
        assert trader.inner_text("#offer-portfolio") == tomorrow["version"]
        row = trader.locator("#offer-asset-cell_bess_web")
        assert row.count() == 1, trader.inner_text("#offer")
        assert "cell_plant" in row.inner_text()
        assert _plot_traces(trader, "plot-forecast") == 9 and _plot_traces(trader, "plot-offer") >= 1
        trader.locator("#offer").screenshot(path=str(shots / "trader-next-day-offer.png"))

        # a month is submitted only when every day is settled ...
        op.goto(f"{server}/operator?park=datong&day={DAY}")
        op.click("#submit-month")
        op.wait_for_selector("#month-result .result")
        assert "not settled" in op.inner_text("#month-result"), op.inner_text("#month-result")
        # ... June is: submitted by one operator, approved by another (four eyes)
        op.goto(f"{server}/operator?park=datong&day={JUNE}")
        assert op.inner_text("#month-settled") == "30/30"
        op.click("#submit-month")
        op.wait_for_selector("#month-result .result[data-ok=yes]")
        op.goto(f"{server}/operator?park=datong&day={JUNE}")
        assert op.get_attribute("#month-state", "data-state") == "submitted"
        op.click("#approve-month")
        op.wait_for_selector("#month-result .result")
        refused = op.inner_text("#month-result")
        assert "four eyes" in refused and op.get_attribute("#month-result .result", "data-ok") == "no", (
            refused
        )
        bo = login("op_bo")
        bo.goto(f"{server}/operator?park=datong&day={JUNE}")
        bo.click("#approve-month")
        bo.wait_for_selector("#month-result .result[data-ok=yes]")
        bo.goto(f"{server}/operator?park=datong&day={JUNE}&lang=zh")
        assert bo.get_attribute("#month-state", "data-state") == "approved"
        assert "已批准" in bo.inner_text("#month-state")
        assert "op_anna" in bo.inner_text("#month-history") and "op_bo" in bo.inner_text("#month-history")
        bo.screenshot(path=str(shots / "operator-month-review.png"), full_page=True)
        op.goto(f"{server}/operator?park=datong&day={DAY}")
        op.screenshot(path=str(shots / "operator.png"), full_page=True)

        auditor = login("auditor_wu")
        assert auditor.url.endswith("/auditor")
        content = auditor.content()
        assert "enrolment.approved" in content and "settlement.review" in content
        auditor.screenshot(path=str(shots / "auditor.png"), full_page=True)

        # the daily report with its headline panel and images that load
        trader.goto(f"{server}/trader?park=datong&day={DAY}")
        trader.click("#report-link")
        trader.wait_for_load_state("networkidle")
        images = trader.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert images and all(w > 0 for w in images), images
        trader.screenshot(path=str(shots / "report.png"), full_page=True)

        admin = login("admin")
        admin.goto(f"{server}/docs")
        admin.wait_for_selector(".swagger-ui", timeout=15000)
        admin.wait_for_selector(".opblock", timeout=15000)
        admin.screenshot(path=str(shots / "docs.png"))
        browser.close()
    names = {p.name for p in shots.glob("*.png")}
    assert {
        "trader.png",
        "trader-next-day-offer.png",
        "enterprise.png",
        "enterprise-zh.png",
        "operator.png",
        "operator-month-review.png",
        "auditor.png",
        "report.png",
        "docs.png",
    } <= names
