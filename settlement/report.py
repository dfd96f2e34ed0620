"""Daily and monthly settlement reports: summaries, HTML with plots, CSV and PDF.

``render_daily_html`` returns an HTML fragment whose images are written into ``out_dir``
and referenced by file name, so the fragment works in any page saved in that folder.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from infra.contracts import Settlement
from infra.registry import portfolio
from infra.scenario.model import Scenario
from settlement import plots, store
from settlement import versions as ver
from settlement.carbon.indicators import indicators
from settlement.day import ENTERPRISE_ITEMS, PARK_ACCOUNT, PARK_ITEMS
from settlement.review import month_end, review_state

ITEMS = (*PARK_ITEMS, *(i for i in ENTERPRISE_ITEMS if i not in PARK_ITEMS))


@lru_cache(maxsize=1)
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from infra.labels import bilingual

    env = Environment(loader=PackageLoader("settlement", "templates"), autoescape=select_autoescape(["j2"]))
    env.globals["label"] = bilingual
    return env


def _account(st: Settlement) -> dict[str, Any]:
    return {
        "account_id": st.account_id,
        "lines": {line.item: line.amount_cny for line in st.lines},
        "total_cny": st.total_cny,
        "emissions_tco2": st.emissions_tco2,
        "carbon_adjusted_revenue_cny": st.carbon_adjusted_revenue_cny,
    }


def _ordered(statements: list[Settlement]) -> list[Settlement]:
    return sorted(statements, key=lambda s: (s.account_id != PARK_ACCOUNT, s.account_id))


def _carbon_price(scenario: Scenario) -> tuple[float, str]:
    carbon = scenario.park.carbon
    source = carbon.field_sources.get("carbon_price_cny_per_tco2", carbon.source)
    return carbon.carbon_price_cny_per_tco2, source


def _offer_expected_emissions(conn: Any, park_id: str, day: date) -> float | None:
    """The offer model's expected emissions of the day (the last offer stored), if any."""
    from infra.db.outbox import stored_envelopes

    try:
        offers = stored_envelopes(conn, park_id, day, "offer")
    except Exception:  # noqa: BLE001 - no outbox table: nothing to reconcile with
        return None
    for env in reversed(offers):
        value = env.payload.get("expected_emissions_tco2")
        if value is not None:
            return float(value)
    return None


def emissions_reconciliation(
    carbon: dict[str, Any], offer_expected: float | None, scenario: Scenario
) -> dict[str, Any]:
    """From the offer model's expectation to the settled emissions, step by step.

    The offer model counts every MWh it expects to import at the grid factor (plus its fuel);
    settlement counts metered electricity by type under the park method: green-traded and
    certificate-covered imports at Ef = 0, grid imports at Ef, exports of other electricity as
    a credit at Ef, and the gas generators' fuel.
    """
    ef = float(carbon.get("grid_ef_tco2_per_mwh", scenario.park.carbon.grid_ef_tco2_per_mwh))
    elec = carbon.get("electricity_mwh", {})
    imported = float(carbon.get("imported_mwh", 0.0))
    zero_rated = float(elec.get("green_traded", 0.0)) + float(elec.get("certificate_covered", 0.0))
    grid = float(elec.get("grid", 0.0))
    export_other = float(carbon.get("exported_other_mwh", 0.0))
    fuel = float(carbon.get("fuel_tco2", 0.0))
    all_imports = imported * ef
    rows = [
        {
            "step": "metered imports, all at the grid factor (the offer model's basis)",
            "mwh": imported,
            "factor": ef,
            "tco2": all_imports,
        },
        {
            "step": "less green-traded and certificate-covered imports (Ef = 0)",
            "mwh": -zero_rated,
            "factor": ef,
            "tco2": -zero_rated * ef,
        },
        {
            "step": "less export of other electricity (credit)",
            "mwh": -export_other,
            "factor": ef,
            "tco2": -export_other * ef,
        },
        {"step": "plus fuel of the park's gas generators", "mwh": None, "factor": None, "tco2": fuel},
    ]
    settled = grid * ef - export_other * ef + fuel
    out: dict[str, Any] = {"rows": rows, "settled_tco2": settled, "grid_mwh": grid, "grid_factor": ef}
    if offer_expected is not None:
        out["offer_expected_tco2"] = offer_expected
        out["volume_difference_tco2"] = all_imports + fuel - offer_expected
        out["explanation"] = (
            f"offer expected {offer_expected:,.1f} t counting all expected imports at {ef} t/MWh; "
            f"metered imports at that factor give {all_imports + fuel:,.1f} t "
            f"({all_imports + fuel - offer_expected:+,.1f} t from volumes); zero-rating green-traded and "
            f"certificate-covered imports ({-zero_rated * ef:+,.1f} t) and the export credit "
            f"({-export_other * ef:+,.1f} t) give the settled {settled:,.1f} t"
        )
    else:
        out["explanation"] = "no offer stored for this day: nothing to reconcile with"
    return out


def day_summary(engine: Engine, park_id: str, day: date, scenario: Scenario | None = None) -> dict[str, Any]:
    """The figures of one settled park-day for a terminal summary table."""
    scenario = scenario or portfolio(engine, park_id, day)
    with engine.connect() as conn:
        record = store.day_record(conn, park_id, day)
        if record is None:
            raise LookupError(
                f"{park_id} {day} is not settled (settlement needs both awards and the metering)"
            )
        sts = _ordered([st for _, st in store.statements(conn, park_id, day)])
        review = review_state(conn, park_id, "day", day)
        month_review = review_state(conn, park_id, "month", day.replace(day=1))
        ind = indicators(conn, scenario, day, day + timedelta(days=1))
        offer = _offer_expected_emissions(conn, park_id, day)
        versions = [
            {"version": v["version"], "reason": v["reason"], "booked_month": v["booked_month"]}
            for v in ver.versions(conn, park_id, day)
        ]
    price, source = _carbon_price(scenario)
    version = int(record.get("version") or 1)
    return {
        "park_id": park_id,
        "day": day.isoformat(),
        "rules_version": record["rules_version"],
        "version": version,
        "latest_version": max([version] + [v["version"] for v in versions]),
        "versions": versions,
        "state": "approved" if "approved" in (review["state"], month_review["state"]) else review["state"],
        "review": review,
        "economics": record["record"].get("economics"),
        "tariff_version": record["record"].get("tariff_version"),
        "emissions_reconciliation": emissions_reconciliation(
            record["record"].get("carbon", {}), offer, scenario
        ),
        "accounts": [_account(st) for st in sts],
        "indicators": ind.to_dict(),
        "carbon_price_cny_per_tco2": price,
        "carbon_price_source": source,
        "measured_share": record["record"]["measured_share"],
        "notes": record["record"]["notes"],
        "series": record["record"]["series"],
        "interval_minutes": sts[0].interval_minutes,
    }


def month_summary(engine: Engine, scenario: Scenario, month_start: date) -> dict[str, Any]:
    """Roll-up of a month's daily statements (the monthly settlement)."""
    if month_start.day != 1:
        raise ValueError(f"month: {month_start} is not the first day of a month")
    end = month_end(month_start)
    with engine.connect() as conn:
        rows = store.statements(conn, scenario.id, month_start, end)
        days = store.settled_days(conn, scenario.id, month_start, end)
        review = review_state(conn, scenario.id, "month", month_start)
        ind = indicators(conn, scenario, month_start, end)
        adjustments = ver.booked_adjustments(conn, scenario.id, month_start)
        day_versions = {d.isoformat(): v for d, v in ver.current_versions(conn, scenario.id, days).items()}
    if not days:
        raise LookupError(f"{scenario.id} has no settled day in {month_start:%Y-%m}")
    accounts: dict[str, dict[str, Any]] = {}
    per_day: dict[str, dict[str, float]] = defaultdict(dict)
    emissions_by_day: dict[str, float] = defaultdict(float)
    for day, st in rows:
        acc = accounts.setdefault(
            st.account_id,
            {
                "account_id": st.account_id,
                "lines": defaultdict(int),
                "total_fen": 0,
                "emissions_tco2": 0.0,
                "adjusted_fen": 0,
            },
        )
        for line in st.lines:
            acc["lines"][line.item] += round(line.amount_cny * 100)
        acc["total_fen"] += round(st.total_cny * 100)
        acc["adjusted_fen"] += round(st.carbon_adjusted_revenue_cny * 100)
        acc["emissions_tco2"] += st.emissions_tco2
        per_day[st.account_id][day.isoformat()] = st.total_cny
        if st.account_id == PARK_ACCOUNT:
            emissions_by_day[day.isoformat()] = st.emissions_tco2
    out_accounts = [
        {
            "account_id": a["account_id"],
            "lines": {k: v / 100 for k, v in a["lines"].items()},
            "total_cny": a["total_fen"] / 100,
            "emissions_tco2": round(a["emissions_tco2"], 6),
            "carbon_adjusted_revenue_cny": a["adjusted_fen"] / 100,
        }
        for a in sorted(accounts.values(), key=lambda a: (a["account_id"] != PARK_ACCOUNT, a["account_id"]))
    ]
    all_days = [month_start + timedelta(days=i) for i in range((end - month_start).days)]
    price, source = _carbon_price(scenario)
    return {
        "park_id": scenario.id,
        "month": f"{month_start:%Y-%m}",
        "days": [d.isoformat() for d in days],
        "missing_days": [d.isoformat() for d in all_days if d not in days],
        "review": review,
        "state": review["state"],
        "day_versions": day_versions,
        "version": max(day_versions.values(), default=1),
        "adjustments": adjustments,
        "accounts": out_accounts,
        "per_day_totals": {k: dict(v) for k, v in per_day.items()},
        "park_emissions_by_day": dict(emissions_by_day),
        "indicators": ind.to_dict(),
        "carbon_price_cny_per_tco2": price,
        "carbon_price_source": source,
    }


def _enterprise_sums(summary: dict[str, Any]) -> tuple[dict[str, float], bool]:
    fen: dict[str, int] = defaultdict(int)
    park = next(a for a in summary["accounts"] if a["account_id"] == PARK_ACCOUNT)
    for a in summary["accounts"]:
        if a["account_id"] == PARK_ACCOUNT:
            continue
        for item, amount in a["lines"].items():
            fen[item] += round(amount * 100)
        fen["__total__"] += round(a["total_cny"] * 100)
    reconciled = fen["__total__"] == round(park["total_cny"] * 100) and all(
        fen[item] == round(park["lines"].get(item, 0.0) * 100) for item in ITEMS
    )
    return {item: fen[item] / 100 for item in (*ITEMS, "__total__")}, reconciled


def _daily_images(summary: dict[str, Any], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"settlement-{summary['park_id']}-{summary['day']}"
    park = next(a for a in summary["accounts"] if a["account_id"] == PARK_ACCOUNT)
    names = {
        "market": f"{stem}-market.png",
        "waterfall": f"{stem}-waterfall.png",
        "carbon": f"{stem}-carbon.png",
    }
    plots.market_and_delivery(summary["series"], summary["interval_minutes"], out_dir / names["market"])
    plots.waterfall(
        list(park["lines"].items()),
        park["total_cny"],
        f"Park revenue {summary['day']}",
        out_dir / names["waterfall"],
    )
    plots.carbon_balance(summary["indicators"], out_dir / names["carbon"])
    return names


def render_daily_html(engine: Engine, scenario: Scenario, day: date, out_dir: Path) -> str:
    """HTML fragment of a day's settlement; its plots are written into ``out_dir``."""
    summary = day_summary(engine, scenario.id, day, scenario)
    sums, reconciled = _enterprise_sums(summary)
    return (
        _templates()
        .get_template("daily.html.j2")
        .render(
            s=summary,
            park_name=scenario.park.name,
            items=ITEMS,
            enterprise_sums=sums,
            reconciled=reconciled,
            images=_daily_images(summary, Path(out_dir)),
            ind=summary["indicators"],
        )
    )


def render_monthly_html(engine: Engine, scenario: Scenario, month_start: date, out_dir: Path) -> str:
    summary = month_summary(engine, scenario, month_start)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"settlement-{scenario.id}-{summary['month']}"
    days = summary["days"]
    totals = {acc: [v.get(d, 0.0) for d in days] for acc, v in summary["per_day_totals"].items()}
    park = next(a for a in summary["accounts"] if a["account_id"] == PARK_ACCOUNT)
    images = {
        "totals": f"{stem}-totals.png",
        "waterfall": f"{stem}-waterfall.png",
        "carbon": f"{stem}-carbon.png",
    }
    plots.monthly_totals(
        days, totals, [summary["park_emissions_by_day"].get(d, 0.0) for d in days], out_dir / images["totals"]
    )
    plots.waterfall(
        list(park["lines"].items()),
        park["total_cny"],
        f"Park revenue {summary['month']}",
        out_dir / images["waterfall"],
    )
    plots.carbon_balance(summary["indicators"], out_dir / images["carbon"])
    return (
        _templates()
        .get_template("monthly.html.j2")
        .render(
            m=summary, park_name=scenario.park.name, items=ITEMS, images=images, ind=summary["indicators"]
        )
    )


def page(title: str, body: str) -> str:
    from markupsafe import Markup

    return _templates().get_template("page.html.j2").render(title=title, body=Markup(body))


# --- CSV and PDF ---------------------------------------------------------------------------


def write_daily_csv(engine: Engine, park_id: str, day: date, path: Path) -> Path:
    """One row per account, line and interval, then a row per account and line with its total."""
    with engine.connect() as conn:
        sts = _ordered([st for _, st in store.statements(conn, park_id, day)])
    if not sts:
        raise LookupError(f"{park_id} {day} is not settled")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["market_day", "account_id", "item", "interval_start", "amount_cny", "energy_mwh"])
        for st in sts:
            for line in st.lines:
                for start, amount in zip(st.interval_starts, line.interval_amount_cny, strict=True):
                    w.writerow(
                        [day.isoformat(), st.account_id, line.item, start.isoformat(), f"{amount:.2f}", ""]
                    )
            for line in st.lines:
                w.writerow(
                    [
                        day.isoformat(),
                        st.account_id,
                        line.item,
                        "total",
                        f"{line.amount_cny:.2f}",
                        "" if line.energy_mwh is None else line.energy_mwh,
                    ]
                )
            w.writerow([day.isoformat(), st.account_id, "total", "total", f"{st.total_cny:.2f}", ""])
    return path


def write_assets_csv(engine: Engine, park_id: str, day: date, path: Path) -> Path:
    """Per-asset settlement: one row per asset, item and interval (whole fen shown in CNY)."""
    with engine.connect() as conn:
        ids, amounts = store.asset_amounts(conn, park_id, day)
        record = store.day_record(conn, park_id, day)
        starts = store.statements(conn, park_id, day)[0][1].interval_starts
    assets = record["record"]["assets"] if record else {}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["market_day", "asset_id", "enterprise_id", "item", "interval_start", "amount_cny"])
        for item, fen in amounts.items():
            for i, asset in enumerate(ids):
                enterprise = assets.get(asset, {}).get("enterprise", "")
                for start, value in zip(starts, fen[i].tolist(), strict=True):
                    w.writerow(
                        [day.isoformat(), asset, enterprise, item, start.isoformat(), f"{value / 100:.2f}"]
                    )
    return path


def write_monthly_csv(summary: dict[str, Any], path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["month", "account_id", "item", "amount_cny", "emissions_tco2", "carbon_adjusted_revenue_cny"]
        )
        for a in summary["accounts"]:
            for item, amount in a["lines"].items():
                w.writerow([summary["month"], a["account_id"], item, f"{amount:.2f}", "", ""])
            w.writerow(
                [
                    summary["month"],
                    a["account_id"],
                    "total",
                    f"{a['total_cny']:.2f}",
                    a["emissions_tco2"],
                    f"{a['carbon_adjusted_revenue_cny']:.2f}",
                ]
            )
        for account, days in summary["per_day_totals"].items():
            for d, total in sorted(days.items()):
                w.writerow([d, account, "day_total", f"{total:.2f}", "", ""])
    return path


def write_pdf(title: str, summary: dict[str, Any], images: list[Path], path: Path) -> Path:
    """A printable report in English and Chinese: review state, statements table, indicators,
    plots and notes, in a font with Chinese glyphs (embedded when a TrueType CJK font is installed)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from infra.fonts import cjk_font
    from infra.labels import bilingual

    font = cjk_font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=22)
    normal = ParagraphStyle("normal", fontName=font, fontSize=9, leading=13)
    review = summary["review"]
    state = summary.get("state", review["state"])
    story: list[Any] = [Paragraph(f"{title} · 结算报告", h1)]
    text = (
        f"Version 版本 {summary.get('version', 1)} · review state 审核状态: "
        f"<b>{state} {REVIEW_STATES_ZH.get(state, '')}</b>"
    )
    if review.get("reviewer"):
        text += f" · by 审核人 {review['reviewer']} at {review['recorded_at']}"
    if review.get("comment"):
        text += f": {review['comment']}"
    story += [Paragraph(text, normal), Spacer(1, 0.3 * cm)]
    header = [
        "Account 账户",
        bilingual("total"),
        bilingual("emissions_tco2"),
        bilingual("carbon_adjusted_revenue"),
    ]
    data = [header] + [
        [
            a["account_id"],
            f"{a['total_cny']:,.2f}",
            f"{a['emissions_tco2']:.3f}",
            f"{a['carbon_adjusted_revenue_cny']:,.2f}",
        ]
        for a in summary["accounts"]
    ]
    park = next(a for a in summary["accounts"] if a["account_id"] == PARK_ACCOUNT)
    data += [
        [f"park 园区: {bilingual(item)}", f"{amount:,.2f}", "", ""] for item, amount in park["lines"].items()
    ]
    table = Table(data, hAlign="LEFT", repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
            ]
        )
    )
    story += [table, Spacer(1, 0.3 * cm)]
    ind = summary["indicators"]
    for basis, b in ind.get("by_basis", {}).items():
        story.append(
            Paragraph(
                f"{basis} basis 折标口径 ({b['kgce_per_kwh']} kgce/kWh): {b['energy_tce']:,.1f} tce, "
                f"{b['tco2_per_tce'] or 0:.4f} tCO2/tce: {b['verdict']}"
                + (" (the park's basis 园区采用)" if basis == ind["electricity_tce_basis"] else ""),
                normal,
            )
        )
    rec = summary.get("emissions_reconciliation")
    if rec:
        story.append(Paragraph(f"Emissions 碳排放: {rec['explanation']}.", normal))
    story.append(
        Paragraph(
            f"Carbon per unit energy 单位能耗碳排放 {ind['tco2_per_tce'] or 0:.4f} tCO2/tce "
            f"({ind['electricity_tce_basis']} basis): <b>{ind['verdict']}</b>; clean-energy share 清洁能源占比 "
            f"{100 * (ind['clean_energy_share'] or 0):.1f} %; direct green 绿电直供 "
            f"{100 * (ind['direct_green_share'] or 0):.1f} %; location-based scope 2 基于位置的范围二排放 "
            f"{ind['location_scope2_tco2']:.1f} tCO2 ({ind['location_factor_year']} factor).",
            normal,
        )
    )
    for img in images:
        story += [Spacer(1, 0.3 * cm), Image(str(img), width=24 * cm, height=11 * cm, kind="proportional")]
    for note in summary.get("notes", []):
        story.append(Paragraph(f"Note 说明: {note}", normal))
    SimpleDocTemplate(str(path), pagesize=landscape(A4), title=title).build(story)
    return path


REVIEW_STATES_ZH = {
    "draft": "草稿",
    "submitted": "已提交",
    "approved": "已批准",
    "disputed": "有异议",
    "reopened": "已重新打开",
}


def write_daily(
    engine: Engine, scenario: Scenario, day: date, out_dir: Path, formats: tuple[str, ...]
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"settlement-{scenario.id}-{day}"
    written = []
    if "html" in formats:
        body = render_daily_html(engine, scenario, day, out_dir)
        path = out_dir / f"{stem}.html"
        path.write_text(page(f"Settlement {scenario.id} {day}", body), encoding="utf-8")
        written.append(path)
    if "csv" in formats:
        written.append(write_daily_csv(engine, scenario.id, day, out_dir / f"{stem}.csv"))
        written.append(write_assets_csv(engine, scenario.id, day, out_dir / f"{stem}-assets.csv"))
    if "pdf" in formats:
        summary = day_summary(engine, scenario.id, day, scenario)
        images = [out_dir / n for n in _daily_images(summary, out_dir).values()]
        written.append(
            write_pdf(f"Settlement {scenario.park.name}, {day}", summary, images, out_dir / f"{stem}.pdf")
        )
    return written


def write_monthly(
    engine: Engine, scenario: Scenario, month_start: date, out_dir: Path, formats: tuple[str, ...]
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"settlement-{scenario.id}-{month_start:%Y-%m}"
    written = []
    if "html" in formats:
        body = render_monthly_html(engine, scenario, month_start, out_dir)
        path = out_dir / f"{stem}.html"
        path.write_text(page(f"Settlement {scenario.id} {month_start:%Y-%m}", body), encoding="utf-8")
        written.append(path)
    summary = month_summary(engine, scenario, month_start)
    if "csv" in formats:
        written.append(write_monthly_csv(summary, out_dir / f"{stem}.csv"))
    if "pdf" in formats:
        if "html" not in formats:
            render_monthly_html(engine, scenario, month_start, out_dir)
        images = [out_dir / f"{stem}-{k}.png" for k in ("totals", "waterfall", "carbon")]
        written.append(
            write_pdf(
                f"Monthly settlement {scenario.park.name}, {month_start:%Y-%m}",
                summary,
                images,
                out_dir / f"{stem}.pdf",
            )
        )
    return written
