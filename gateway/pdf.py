"""Statement PDFs (a day or a month, one account) in Chinese or English.

Every PDF uses :func:`infra.fonts.cjk_font`: a TrueType CJK font from Debian
(``fonts-wqy-microhei``, installed by ``make test``/``make demo`` setup) embedded in the file;
without it reportlab's built-in Adobe CID font ``STSong-Light`` (not embedded; viewers supply it).
Labels come from :mod:`gateway.i18n`, so ``lang=zh`` gives Chinese headings, line items and states.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from gateway.i18n import t
from infra.contracts import Settlement
from infra.fonts import cjk_font

__all__ = ["cjk_font", "statement_pdf"]


def statement_pdf(
    title: str, rows: list[tuple[date, Settlement]], review: dict[str, Any] | None, lang: str = "en"
) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    lang = lang if lang in ("en", "zh") else "en"
    font = cjk_font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=15, leading=20)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    heading = t("statement", lang)
    story: list[Any] = [Paragraph(f"{heading} · {title}", h1), Spacer(1, 0.3 * cm)]
    if review is not None:
        state = review.get("state", "draft")
        text = f"{t('review_state', lang)}: {t(state, lang)}"
        if review.get("reviewer"):
            text += f" · {t('reviewer', lang)} {review['reviewer']} · {review.get('recorded_at') or ''}"
        if review.get("version") is not None:
            text += f" · {t('version', lang)} {review['version']}"
        story += [Paragraph(text, body), Spacer(1, 0.2 * cm)]
    data: list[list[str]] = [[t("day", lang), t("account", lang), t("item", lang), t("amount", lang)]]
    for day, st in rows:
        data.append([str(day), st.account_id, "", ""])
        for line in st.lines:
            data.append(["", "", t(line.item, lang), f"{line.amount_cny:,.2f}"])
        data.append(["", "", t("total", lang), f"{st.total_cny:,.2f}"])
        data.append(["", "", t("emissions_tco2", lang), f"{st.emissions_tco2:,.3f}"])
        data.append(["", "", t("carbon_adjusted_revenue", lang), f"{st.carbon_adjusted_revenue_cny:,.2f}"])
    table = Table(data, hAlign="LEFT", colWidths=[2.6 * cm, 3.4 * cm, 7 * cm, 3.6 * cm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("ALIGN", (3, 1), (3, -1), "RIGHT"),
            ]
        )
    )
    story.append(table)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=f"{heading} {title}").build(story)
    return buffer.getvalue()
