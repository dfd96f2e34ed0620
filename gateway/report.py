"""The run folder: every fact of the day as JSON, an interval table, plots and report.html."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from gateway.i18n import t
from infra.contracts import Award, Bid, Dispatch, ForecastSet, Metering, Offer, Settlement
from infra.scenario import Scenario
from infra.timeseries import read

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _one(facts: dict[str, list], schema: str, cls: type, key: str | None = None) -> Any:
    for env in facts.get(schema, []):
        payload = cls.from_envelope(env)
        if key is None or getattr(payload, "market", None) == key:
            return payload
    raise LookupError(f"no {schema} fact{' for ' + key if key else ''} stored for this day")


def interval_table(facts: dict[str, list]) -> pd.DataFrame:
    da: Award = _one(facts, "award", Award, "day_ahead")
    rt: Award = _one(facts, "award", Award, "real_time")
    metering: Metering = _one(facts, "metering", Metering)
    hours = da.interval_minutes / 60.0
    table = pd.DataFrame(
        {
            "price_da_cny_per_mwh": da.clearing_price_cny_per_mwh,
            "price_rt_cny_per_mwh": rt.clearing_price_cny_per_mwh,
            "cleared_da_mw": da.cleared_mw,
            "metered_mw": np.asarray(metering.grid_energy_mwh) / hours,
        },
        index=pd.DatetimeIndex(da.interval_starts, name="interval_start"),
    )
    settlements = [Settlement.from_envelope(e) for e in facts.get("settlement", [])]
    for s in settlements:
        if s.account_id == "park":
            table["park_settlement_cny"] = s.interval_total_cny
    return table


def _plot_market(table: pd.DataFrame, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4))
    x = table.index
    ax.bar(x, table["metered_mw"], width=0.009, color="#9fb8d6", label="metered net injection (MW)")
    ax.step(x, table["cleared_da_mw"], where="post", color="#1f4e8c", label="day-ahead award (MW)")
    ax.set_ylabel("MW (+ export, - import)")
    ax2 = ax.twinx()
    ax2.plot(x, table["price_da_cny_per_mwh"], color="#c0392b", label="day-ahead price")
    ax2.plot(x, table["price_rt_cny_per_mwh"], color="#e67e22", alpha=0.7, label="real-time price")
    ax2.set_ylabel("CNY/MWh")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_offer(offer: Offer, scenario: Scenario, path: Path) -> None:
    """Supply curves across the whole offer price range: a price-taking interval is a vertical line."""
    plt = _plt()
    floor = scenario.market.offer_price_floor_cny_per_mwh
    cap = scenario.market.offer_price_cap_cny_per_mwh
    fig, ax = plt.subplots(figsize=(11, 4))
    starts = pd.DatetimeIndex(offer.interval_starts)
    for hour in (3, 10, 13, 19):
        i = int(np.argmin(np.abs(starts.hour + starts.minute / 60 - hour)))
        curve = offer.energy[i]
        prices = [floor] + [s.price_cny_per_mwh for s in curve.segments] + [cap]
        xs, ys = [], []
        for lo, hi in itertools.pairwise(prices):
            q = curve.quantity_at(lo)
            xs += [q, q]
            ys += [lo, hi]
        ax.plot(xs, ys, label=f"{starts[i]:%H:%M} ({len(curve.segments)} segments)")
    ax.set_xlabel("net injection at that price (MW; + export, - import)")
    ax.set_ylabel("day-ahead price (CNY/MWh)")
    ax.legend(title="interval", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_dispatch(dispatch: Dispatch, scenario: Scenario, path: Path) -> None:
    plt = _plt()
    by_type: dict[str, np.ndarray] = {}
    for sp in dispatch.assets:
        kind = scenario.asset(sp.asset_id).type
        by_type[kind] = by_type.get(kind, 0) + np.asarray(sp.power_mw)
    x = pd.DatetimeIndex(dispatch.interval_starts)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    kinds = sorted(by_type)
    colours = [plt.get_cmap("tab20")(i % 20) for i in range(len(kinds))]  # one colour per type, both sides
    ax.stackplot(x, *[np.clip(by_type[k], 0, None) for k in kinds], labels=kinds, colors=colours, alpha=0.85)
    ax.stackplot(x, *[np.clip(by_type[k], None, 0) for k in kinds], colors=colours, alpha=0.85)
    ax.plot(x, sum(by_type.values()), color="black", lw=1.2, label="park net")
    ax.set_ylabel("MW (+ generation/discharge, - consumption/charge)")
    ax.legend(fontsize=7, ncol=4, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_forecast(forecast: ForecastSet, scenario: Scenario, engine: Any, path: Path) -> None:
    plt = _plt()
    day = pd.Timestamp(forecast.interval_starts[0]).date()
    series = {s.series_id: s for s in forecast.series}
    wanted = [k for k in ("park.load_mw", "park.pv_mw", "park.wind_mw") if k in series]
    truth = read(engine, scenario.id, wanted, day, day + timedelta(days=1), missing="nan")
    fig, axes = plt.subplots(1, max(len(wanted), 1), figsize=(11, 3.2), squeeze=False)
    x = pd.DatetimeIndex(forecast.interval_starts)
    for ax, key in zip(axes[0], wanted, strict=False):
        q = series[key].quantiles
        ax.fill_between(x, q["0.1"], q["0.9"], alpha=0.3, label="P10-P90")
        ax.plot(x, q["0.5"], label="P50")
        if not truth[key].isna().all():
            ax.plot(x, truth[key].to_numpy(), color="black", lw=0.9, label="recorded")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def account_rows(facts: dict[str, list]) -> list[dict[str, Any]]:
    rows = []
    for env in facts.get("settlement", []):
        s = Settlement.from_envelope(env)
        rows.append(
            {
                "account": s.account_id,
                "total_cny": s.total_cny,
                "emissions_tco2": s.emissions_tco2,
                "carbon_adjusted_revenue_cny": s.carbon_adjusted_revenue_cny,
            }
        )
    return sorted(rows, key=lambda r: (r["account"] != "park", r["account"]))


def write_run_folder(outcome: Any, scenario: Scenario, engine: Any) -> Path:
    folder: Path = outcome.folder
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    (folder / "facts").mkdir(exist_ok=True)
    facts = outcome.facts
    for schema, envelopes in facts.items():
        (folder / "facts" / f"{schema}.json").write_text(
            json.dumps([json.loads(e.to_json()) for e in envelopes], indent=1), encoding="utf-8"
        )
    table = interval_table(facts)
    table.to_csv(folder / "intervals.csv")
    forecast: ForecastSet = _one(facts, "forecast_set", ForecastSet)
    offer: Offer = _one(facts, "offer", Offer)
    bid: Bid = _one(facts, "bid", Bid)
    dispatch: Dispatch = _one(facts, "dispatch", Dispatch)
    _plot_market(table, folder / "plots" / "market.png")
    _plot_offer(offer, scenario, folder / "plots" / "offer_curves.png")
    _plot_dispatch(dispatch, scenario, folder / "plots" / "dispatch.png")
    _plot_forecast(forecast, scenario, engine, folder / "plots" / "forecast.png")
    park_statement = next(
        (
            Settlement.from_envelope(e)
            for e in facts.get("settlement", [])
            if e.payload.get("account_id") == "park"
        ),
        None,
    )
    accounts = account_rows(facts)
    figures = _headline_figures(engine, scenario, outcome.day)
    summary = {
        "park_id": outcome.park_id,
        "market_day": outcome.day.isoformat(),
        "scenario_version": scenario.version,
        "already_settled": outcome.already_settled,
        "stage_seconds": outcome.stage_seconds,
        "accounts": accounts,
        "day_ahead_energy_mwh": float(table["cleared_da_mw"].sum() * offer.interval_minutes / 60),
        "metered_energy_mwh": float(table["metered_mw"].sum() * offer.interval_minutes / 60),
        "headline": {row["key"]: row["value"] for row in figures},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    html = TEMPLATES.get_template("run_report.html.j2").render(
        park=scenario.park,
        market=scenario.market,
        day=outcome.day,
        scenario_version=scenario.version,
        run_id=outcome.run_id,
        accounts=accounts,
        headline=figures,
        park_lines=park_statement.lines if park_statement else [],
        label=lambda key: f"{t(key, 'en')} · {t(key, 'zh')}",
        stage_seconds=outcome.stage_seconds,
        offer=offer,
        bid=bid,
        dispatch_notes=dispatch.notes,
        forecast_section=_service_section("forecast", engine, scenario, outcome.day, folder),
        settlement_section=_service_section("settlement", engine, scenario, outcome.day, folder),
    )
    (folder / "report.html").write_text(html, encoding="utf-8")
    return folder


# The report's headline figures: key, English and Chinese label, unit, format (gateway/headline.py says how).
HEADLINE = (
    (
        "margin_vs_not_bidding_cny",
        "VPP margin against not bidding",
        "虚拟电厂收益（相对不报价）",
        "CNY",
        "{:,.0f}",
    ),
    ("captured_spread_cny_per_mwh", "Captured day-ahead spread", "捕获日前价差", "CNY/MWh", "{:,.1f}"),
    ("available_spread_cny_per_mwh", "Available day-ahead spread", "日前最大价差", "CNY/MWh", "{:,.1f}"),
    ("deviation_share", "Deviation share of awarded energy", "偏差考核电量占比", "%", "{:.1%}"),
    ("regulation_revenue_cny", "Regulation revenue", "调频里程收入", "CNY", "{:,.0f}"),
    ("carbon_adjusted_cny", "Carbon-adjusted result", "碳调整后收益", "CNY", "{:,.0f}"),
)


def _headline_figures(engine: Any, scenario: Scenario, day: Any) -> list[dict[str, Any]]:
    """The day's headline figures with human labels, from settlement's day summary."""
    from gateway.headline import headline
    from settlement.report import day_summary

    try:
        values = headline(day_summary(engine, scenario.id, day, scenario))
    except LookupError:  # the day is not settled (a run that stopped early)
        return []
    rows = []
    for key, label_en, label_zh, unit, fmt in HEADLINE:
        value = values.get(key)
        shown = "n/a" if value is None else fmt.format(value)
        rows.append(
            {
                "key": key,
                "label": label_en,
                "label_zh": label_zh,
                "unit": unit,
                "value": value,
                "shown": shown,
            }
        )
    return rows


def _service_section(service: str, engine: Any, scenario: Scenario, day: Any, folder: Path) -> str:
    """HTML from a service's report function; it writes its plots under ``folder`` (the report's folder)."""
    if service == "forecast":
        from forecast.report import render_accuracy_html

        return render_accuracy_html(engine, scenario, day, folder)
    from settlement.report import render_daily_html

    return render_daily_html(engine, scenario, day, folder)
