"""Accuracy of an issued forecast against the day's recorded actuals, and the backtest table.

:func:`render_accuracy_html` gives the run report its forecast section: an HTML fragment
with both tables and PNG fan charts written next to it (referenced by relative name).
"""

from __future__ import annotations

import html
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from forecast.features import scenario_site
from forecast.history import read_history
from forecast.metrics import all_metrics
from forecast.series import scenario_series
from forecast.solar import sun_and_clearsky
from forecast.store import latest_issue, load_backtests
from infra.contracts import ForecastSet
from infra.db.outbox import stored_envelopes
from infra.scenario.model import Scenario

DONE_WHEN_SERIES = ("park.load_mw", "park.pv_mw", "park.wind_mw")
MIN_SKILL = 0.15  # the issue's acceptance bar: P50 beats seasonal naive by 15 % nMAE
COVERAGE_TARGET, COVERAGE_TOLERANCE = 0.80, 0.05
PLOT_SERIES = ("park.load_mw", "park.pv_mw", "park.wind_mw", "market.price_da_cny_per_mwh")


def backtest_rows(records: list[dict[str, Any]], horizon: str = "day_ahead") -> list[dict[str, Any]]:
    """One flat row per series from stored selections (see ``forecast.store.load_backtests``).

    ``horizon="intraday"`` reads the intraday replay kept with the day-ahead selection.
    """
    rows = []
    for rec in records:
        bt = rec["backtest"]
        sel = bt.get("intraday", {}) if horizon == "intraday" else bt.get("selected", {})
        naive = {} if horizon == "intraday" else bt.get("candidates", {}).get("seasonal_naive", {})
        rows.append(
            {
                "series_id": rec["series_id"],
                "model": rec["model"],
                "model_version": rec["model_version"],
                "issues": bt.get("origins"),
                "nmae": sel.get("nmae"),
                "naive_nmae": naive.get("nmae"),
                "skill": None if horizon == "intraday" else bt.get("skill_vs_naive"),
                "mae": sel.get("mae"),
                "rmse": sel.get("rmse"),
                "mape": sel.get("mape"),
                "pinball": sel.get("pinball"),
                "coverage_10_90": sel.get("coverage_10_90"),
                "accuracy": sel.get("accuracy"),
                "accuracy_by_day": [sel[k] for k in sorted(sel) if k.startswith("accuracy_day")],
                "candidates": {k: v.get("nmae") for k, v in bt.get("candidates", {}).items()},
                "hygiene": bt.get("hygiene", {}),
            }
        )
    return rows


def done_when(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's acceptance checks on park load, PV and wind."""
    by_id = {r["series_id"]: r for r in rows}
    checks = []
    for sid in DONE_WHEN_SERIES:
        r = by_id.get(sid)
        if r is None:
            continue
        skill, cov = r.get("skill"), r.get("coverage_10_90")
        checks.append(
            {
                "what": f"{sid}: P50 skill vs seasonal naive {(skill or 0):.0%} (>= {MIN_SKILL:.0%})",
                "ok": skill is not None and skill >= MIN_SKILL,
            }
        )
        checks.append(
            {
                "what": f"{sid}: 10-90 % band coverage {(cov or 0):.1%} (80 % +/- 5 points)",
                "ok": cov is not None and abs(cov - COVERAGE_TARGET) <= COVERAGE_TOLERANCE + 1e-9,
            }
        )
    return checks


def _issued_set(engine: Engine, scenario: Scenario, day: date, message_id: str) -> ForecastSet | None:
    with engine.connect() as conn:
        for env in stored_envelopes(conn, scenario.id, day, ForecastSet.SCHEMA):
            if env.message_id == message_id:
                return ForecastSet.from_envelope(env)
    return None


def accuracy_rows(scenario: Scenario, fs: ForecastSet, actuals: pd.DataFrame) -> list[dict[str, Any]]:
    specs = {s.series_id: s for s in scenario_series(scenario)}
    index = pd.DatetimeIndex(fs.interval_starts)
    site = scenario_site(scenario)
    clear = sun_and_clearsky(*site, index)["clearsky_ghi"].to_numpy() if site is not None else None
    rows = []
    for s in fs.series:
        spec = specs.get(s.series_id)
        if spec is None or s.series_id not in actuals:
            continue
        actual = actuals[s.series_id].reindex(index).to_numpy(dtype=float)
        if not np.isfinite(actual).any():
            continue
        quantiles = {float(q): np.asarray(v, dtype=float) for q, v in s.quantiles.items()}
        daylight = clear > 0 if clear is not None else None
        m = all_metrics(spec.kind, actual, quantiles, spec.capacity, daylight)
        rows.append({"series_id": s.series_id, "model": s.model, **m})
    return rows


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value * 100:.1f} %" if pct else f"{value:,.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="forecast-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _plot(fs: ForecastSet, actuals: pd.DataFrame, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [s for s in fs.series if s.series_id in PLOT_SERIES]
    if not chosen:
        return False
    index = pd.DatetimeIndex(fs.interval_starts).tz_localize(None)
    fig, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.4 * len(chosen)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, s in zip(axes, chosen, strict=True):
        q = {float(k): np.asarray(v) for k, v in s.quantiles.items()}
        levels = sorted(q)
        ax.fill_between(
            index,
            q[levels[0]],
            q[levels[-1]],
            alpha=0.15,
            color="tab:blue",
            label=f"P{levels[0] * 100:g}-P{levels[-1] * 100:g}",
        )
        if 0.1 in q and 0.9 in q:
            ax.fill_between(index, q[0.1], q[0.9], alpha=0.3, color="tab:blue", label="P10-P90")
        ax.plot(index, q[0.5], color="tab:blue", lw=1.5, label="P50")
        if s.series_id in actuals:
            ax.plot(
                index,
                actuals[s.series_id].reindex(pd.DatetimeIndex(fs.interval_starts)).to_numpy(),
                color="black",
                lw=1,
                label="recorded",
            )
        ax.set_title(f"{s.series_id} ({s.model})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def render_accuracy_html(engine: Engine, scenario: Scenario, delivery_day: date, out_dir: Path) -> str:
    """HTML fragment: accuracy of the day's day-ahead forecast, the backtest table, fan charts."""
    out_dir = Path(out_dir)
    parts = [
        f'<section class="forecast-accuracy"><h2>Forecasts: {html.escape(scenario.id)} {delivery_day}</h2>'
    ]
    issue = latest_issue(engine, scenario.id, delivery_day, "day_ahead")
    if issue is None:
        parts.append("<p>No day-ahead forecast was issued for this day.</p></section>")
        return "".join(parts)
    fs = _issued_set(engine, scenario, delivery_day, issue["message_id"])
    parts.append(
        f"<p>Issued {issue['issued_at'].isoformat()} (data cut-off {issue['data_cutoff'].isoformat()}), "
        f"models selected as of {issue['selected_as_of'].isoformat()}; message {html.escape(issue['message_id'])}.</p>"
    )
    if issue["failures"]:
        items = "".join(
            f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in issue["failures"].items()
        )
        parts.append(f"<p>Series left out of the forecast:</p><ul>{items}</ul>")
    if fs is not None:
        names = [s.series_id for s in fs.series]
        actuals = read_history(engine, scenario, names, delivery_day, delivery_day + timedelta(days=1))
        acc = accuracy_rows(scenario, fs, actuals)
        parts.append("<h3>Accuracy against the recorded day</h3>")
        parts.append(
            _table(
                [
                    "series",
                    "model",
                    "MAE",
                    "RMSE",
                    "nMAE",
                    "MAPE",
                    "pinball",
                    "10-90 % coverage",
                    "accuracy 1-RMSE/cap",
                ],
                [
                    [
                        r["series_id"],
                        r["model"],
                        _fmt(r.get("mae")),
                        _fmt(r.get("rmse")),
                        _fmt(r.get("nmae"), True),
                        _fmt(r.get("mape"), True),
                        _fmt(r.get("pinball")),
                        _fmt(r.get("coverage_10_90"), True),
                        _fmt(r.get("accuracy"), True),
                    ]
                    for r in acc
                ],
            )
        )
        png = out_dir / f"forecast_{scenario.id}_{delivery_day}.png"
        if _plot(fs, actuals, png):
            parts.append(f'<p><img src="{png.name}" alt="day-ahead fan charts with recorded actuals"></p>')
    rows = backtest_rows(load_backtests(engine, scenario.id, "day_ahead", issue["selected_as_of"]))
    if rows:
        parts.append(f"<h3>Backtest ({rows[0]['issues']} day-ahead issues before the selection)</h3>")
        parts.append(
            _table(
                [
                    "series",
                    "model",
                    "nMAE",
                    "seasonal naive nMAE",
                    "skill",
                    "MAE",
                    "RMSE",
                    "MAPE",
                    "pinball",
                    "10-90 % coverage",
                    "accuracy",
                ],
                [
                    [
                        r["series_id"],
                        r["model"],
                        _fmt(r["nmae"], True),
                        _fmt(r["naive_nmae"], True),
                        _fmt(r["skill"], True),
                        _fmt(r["mae"]),
                        _fmt(r["rmse"]),
                        _fmt(r["mape"], True),
                        _fmt(r["pinball"]),
                        _fmt(r["coverage_10_90"], True),
                        _fmt(r["accuracy"], True),
                    ]
                    for r in rows
                ],
            )
        )
        checks = done_when(rows)
        items = "".join(f"<li>{'ok' if c['ok'] else 'MISSED'}: {html.escape(c['what'])}</li>" for c in checks)
        parts.append(f"<ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)
