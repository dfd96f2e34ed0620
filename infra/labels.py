"""Human labels, in English and Chinese, of what settlement statements carry.

Shared by every writer of statements and reports (the gateway's pages and statement PDFs,
settlement's report PDFs), so a line item reads the same everywhere. Chinese market terms
follow the Shanxi rules' usage: 中长期, 日前, 实时, 偏差考核, 调频里程, 需求响应, 碳排放.
"""

from __future__ import annotations

LINE_ITEMS: dict[str, dict[str, str]] = {
    "mlt_energy": {"en": "Medium/long-term contracts (CNY)", "zh": "中长期合约电费（元）"},
    "day_ahead_energy": {"en": "Day-ahead energy (CNY)", "zh": "日前电能量（元）"},
    "real_time_energy": {"en": "Real-time energy (CNY)", "zh": "实时电能量（元）"},
    "deviation_charge": {"en": "Deviation charge (CNY)", "zh": "偏差考核费用（元）"},
    "regulation_mileage": {"en": "Regulation mileage (CNY)", "zh": "调频里程补偿（元）"},
    "regulation_capacity": {"en": "Regulation capacity (CNY)", "zh": "调频容量补偿（元）"},
    "demand_response": {"en": "Demand response (CNY)", "zh": "需求响应补偿（元）"},
    "demand_response_penalty": {"en": "Demand response penalty (CNY)", "zh": "需求响应考核（元）"},
    "grid_import_tariff": {"en": "Grid import tariff (CNY)", "zh": "电网购电输配费（元）"},
    "storage_degradation": {"en": "Storage degradation (CNY)", "zh": "储能损耗成本（元）"},
    "green_certificate_sales": {"en": "Green certificate sales (CNY)", "zh": "绿证出售（元）"},
    "green_certificate_purchases": {"en": "Green certificate purchases (CNY)", "zh": "绿证购买（元）"},
    "energy_supply": {"en": "Energy supply (CNY)", "zh": "供电电费（元）"},
    "flexibility_payment": {"en": "Flexibility payment (CNY)", "zh": "灵活性收益分成（元）"},
    "total": {"en": "Total (CNY)", "zh": "合计（元）"},
    "emissions_tco2": {"en": "Carbon emissions (tCO2)", "zh": "碳排放（吨二氧化碳）"},
    "carbon_adjusted_revenue": {"en": "Carbon-adjusted result (CNY)", "zh": "碳调整后收益（元）"},
}


def label(key: str, lang: str) -> str:
    """The label of ``key`` in ``lang`` (``en`` or ``zh``); an unknown key shows as itself."""
    entry = LINE_ITEMS.get(key)
    return key if entry is None else entry.get(lang) or entry["en"]


def bilingual(key: str) -> str:
    """``English · 中文`` for reports read by both."""
    entry = LINE_ITEMS.get(key)
    return key if entry is None else f"{entry['en']} · {entry['zh']}"
