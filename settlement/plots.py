"""Report figures (matplotlib, headless): market and delivery, revenue waterfall, carbon."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def market_and_delivery(series: dict[str, Any], minutes: int, path: Path) -> Path:
    """Prices, award and delivery per interval (and demand response when awarded)."""
    plt = _pyplot()
    starts = [datetime.fromisoformat(s) for s in series["interval_starts"]]
    h = minutes / 60.0
    has_dr = any(series["dr_mw"])
    fig, axes = plt.subplots(3 if has_dr else 2, 1, figsize=(10, 8 if has_dr else 6), sharex=True)
    ax = axes[0]
    ax.step(starts, series["p_da_cny_per_mwh"], where="post", label="day-ahead price")
    ax.step(starts, series["p_rt_cny_per_mwh"], where="post", label="real-time price", alpha=0.8)
    ax.set_ylabel("CNY/MWh")
    ax.legend(loc="upper left")
    ax.set_title("Prices")
    ax = axes[1]
    ax.step(starts, series["q_da_mw"], where="post", label="day-ahead award Q_DA")
    ax.step(starts, series["q_rt_mw"], where="post", label="real-time schedule", linestyle="--")
    ax.step(starts, series["q_mlt_mw"], where="post", label="medium/long-term contracts", linestyle=":")
    ax.step(starts, np.asarray(series["actual_mwh"]) / h, where="post", label="metered (grid)", color="black")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("MW net injection")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Award and delivery")
    if has_dr:
        ax = axes[2]
        width = h / 24.0
        ax.bar(starts, np.abs(series["dr_mw"]), width=width, align="edge", alpha=0.4, label="DR award (MW)")
        ax.bar(
            starts,
            np.asarray(series["dr_delivered_mwh"]) / h,
            width=width,
            align="edge",
            alpha=0.8,
            label="DR delivered vs baseline (MW)",
        )
        ax.set_ylabel("MW")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("Demand response")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def waterfall(lines: list[tuple[str, float]], total: float, title: str, path: Path) -> Path:
    """Each revenue line as a step from zero to the total."""
    plt = _pyplot()
    shown = [(item, amount) for item, amount in lines if abs(amount) >= 0.005]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    running = 0.0
    for i, (_item, amount) in enumerate(shown):
        ax.bar(i, amount, bottom=running, color="tab:green" if amount >= 0 else "tab:red")
        running += amount
    ax.bar(len(shown), total, color="tab:blue")
    ax.set_xticks(
        range(len(shown) + 1), [item for item, _ in shown] + ["total"], rotation=35, ha="right", fontsize=8
    )
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("CNY")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def carbon_balance(ind: dict[str, Any], path: Path) -> Path:
    """Electricity by type, emissions by source, and the indicator against its band."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    types = ind["electricity_mwh"]
    ax = axes[0]
    bottom = 0.0
    for k in ("direct_green", "green_traded", "certificate_covered", "grid", "own_fossil"):
        v = types.get(k, 0.0)
        ax.bar(0, v, bottom=bottom, label=k)
        bottom += v
    ax.set_xticks([])
    ax.set_ylabel("MWh")
    ax.set_title("Electricity by type")
    ax.legend(fontsize=7)
    ax = axes[1]
    sources = ind["emissions_by_source_tco2"]
    ax.barh(list(sources) or ["none"], list(sources.values()) or [0.0])
    ax.set_xlabel("tCO2")
    ax.set_title("Emissions by source")
    ax.tick_params(axis="y", labelsize=7)
    ax = axes[2]
    value = ind["tco2_per_tce"] or 0.0
    ax.bar(["indicator"], [value], color="tab:red" if ind["verdict"] == "fail" else "tab:green")
    if ind["band"]:
        ax.axhline(ind["band"]["max_tco2_per_tce"], color="black", linestyle="--", label="band threshold")
        ax.legend(fontsize=7)
    ax.set_ylabel("tCO2/tce")
    ax.set_title(f"Carbon per energy ({ind['electricity_tce_basis']} basis): {ind['verdict']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def monthly_totals(
    days: list[str], totals: dict[str, list[float]], emissions: list[float], path: Path
) -> Path:
    """Daily totals per account and the park's daily emissions over a month."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    x = np.arange(len(days))
    width = 0.8 / max(len(totals), 1)
    for i, (account, values) in enumerate(totals.items()):
        axes[0].bar(x + i * width, values, width=width, label=account)
    axes[0].axhline(0, color="grey", linewidth=0.5)
    axes[0].set_ylabel("CNY")
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].set_title("Daily totals by account")
    axes[1].bar(x, emissions, color="tab:grey")
    axes[1].set_ylabel("tCO2")
    axes[1].set_title("Park emissions per day")
    axes[1].set_xticks(x, days, rotation=45, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
