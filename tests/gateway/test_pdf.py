"""Every PDF the suite writes carries Chinese text in an embedded CJK font: the statement
downloads (a day and a month, ``lang=zh``) and settlement's daily and monthly report PDFs."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader

from infra.db import make_engine
from infra.registry import portfolio
from tests.gateway.conftest import DAY, PARK, World


def _text_and_fonts(data: bytes) -> tuple[str, dict[str, bool]]:
    """All text of the PDF and, per font used, whether the font program is in the file."""
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    fonts: dict[str, bool] = {}
    for page in reader.pages:
        for font in page["/Resources"].get("/Font", {}).values():
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")] + [
                d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])
            ]
            embedded = any(
                d is not None and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
            fonts[str(font["/BaseFont"])] = embedded
    return text, fonts


def _assert_embedded_cjk(fonts: dict[str, bool]) -> None:
    cjk = {name: ok for name, ok in fonts.items() if "Helvetica" not in name and "Times" not in name}
    assert cjk, f"no CJK font in the PDF: {fonts}"
    assert all(cjk.values()), f"a font is named but not embedded (install fonts-wqy-microhei): {fonts}"


def test_statement_pdfs_in_chinese_embed_their_font(world: World) -> None:
    auth = world.login("op_anna")
    base = f"/api/v1/parks/{PARK}"
    for url in (
        f"{base}/days/{DAY}/statements/cathode_plant/download?format=pdf&lang=zh",
        f"{base}/months/{DAY:%Y-%m}/statements/park/download?format=pdf&lang=zh",
    ):
        r = world.client.get(url, headers=auth)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", (url, r.text[:200])
        text, fonts = _text_and_fonts(r.content)
        for label in ("结算单", "审核状态", "日期", "账户", "合计（元）", "碳排放（吨二氧化碳）"):
            assert label in text, (url, label, text[:400])
        assert "total" not in text.lower() and "emissions_tco2" not in text, text[:400]
        _assert_embedded_cjk(fonts)
    # the English download says it in English
    english, _ = _text_and_fonts(
        world.client.get(
            f"{base}/days/{DAY}/statements/cathode_plant/download?format=pdf&lang=en", headers=auth
        ).content
    )
    assert "Settlement statement" in english and "Total (CNY)" in english and "合计" not in english


def test_settlement_report_pdfs_are_bilingual_with_an_embedded_font(world: World, tmp_path: Path) -> None:
    from settlement.report import write_daily, write_monthly

    engine = make_engine(world.url)
    scenario = portfolio(engine, PARK, DAY)
    daily = write_daily(engine, scenario, DAY, tmp_path, ("pdf",))
    monthly = write_monthly(engine, scenario, DAY.replace(day=1), tmp_path, ("pdf",))
    for path in [*daily, *monthly]:
        text, fonts = _text_and_fonts(path.read_bytes())
        for label in (
            "结算报告",
            "审核状态",
            "账户",
            "合计（元）",
            "日前电能量（元）",
            "Day-ahead energy (CNY)",
        ):
            assert label in text, (path.name, label, text[:400])
        assert "park: day_ahead_energy" not in text
        _assert_embedded_cjk(fonts)
