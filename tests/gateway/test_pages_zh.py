"""The Chinese pages of every role say everything in Chinese: no table header is a raw key
(``snake_case``) or an untranslated English word."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from tests.gateway.conftest import DAY, PARK, PASSWORD, World

SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
ENGLISH_WORD = re.compile(r"^[A-Za-z][a-z]+( [a-z]+)*$")  # "name", "from", "Direction", "first 8 intervals"
ALLOWED = {"#", "MW", "MWh", "CNY", "CNY/MWh", "tCO2"}
PAGES = {
    "trader_li": ["/trader"],
    "cell_user": ["/enterprise"],
    "op_anna": ["/operator", "/enterprise", "/trader"],
    "auditor_wu": ["/auditor", "/operator", "/trader"],
}


class Headers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "th":
            self._in, self._text = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._in:
            self.headers.append(" ".join(self._text.split()))
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data


def _signed_in(world: World, user: str) -> TestClient:
    client = TestClient(world.client.app)
    r = client.post("/login", data={"username": user, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def test_chinese_pages_have_no_raw_keys_in_table_headers(world: World) -> None:
    checked = 0
    for user, paths in PAGES.items():
        client = _signed_in(world, user)
        for path in paths:
            r = client.get(path, params={"park": PARK, "day": str(DAY), "lang": "zh"})
            assert r.status_code == 200, (user, path, r.status_code)
            parser = Headers()
            parser.feed(r.text)
            assert parser.headers, (user, path)
            for text in parser.headers:
                if not text or text in ALLOWED or re.fullmatch(r"[\d.,\-–]+", text):
                    continue
                assert not SNAKE.match(text), (user, path, text)
                assert not ENGLISH_WORD.match(text), (user, path, text)
                checked += 1
    assert checked > 60


def test_enterprise_carbon_account_and_events_are_translated(world: World) -> None:
    page = _signed_in(world, "cell_user").get(
        "/enterprise", params={"park": PARK, "day": str(DAY), "lang": "zh"}
    )
    html = page.text
    carbon = html[html.index('id="carbon-table"') :]
    carbon = carbon[: carbon.index("</table>")]
    for label in (
        "碳排放（吨二氧化碳）",
        "绿电直供（兆瓦时）",
        "单位能耗碳排放",
        "清洁能源占比",
        "基于位置的范围二排放",
    ):
        assert label in carbon, label
    for raw in ("settled_days", "emissions_tco2", "location_factor_year", "clean_energy_share_target"):
        assert raw not in carbon, raw
    assert "削峰" in html and "peak_cut" not in html  # the demand-response event's direction
    assert "储能" in html and ">battery<" not in html  # asset types
