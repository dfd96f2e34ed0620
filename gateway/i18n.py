"""Words of the web pages and reports in English and Chinese, with units.

Chinese market terms follow the Shanxi rules' usage: 中长期 (medium/long-term contracts), 日前
(day-ahead), 实时 (real-time), 偏差考核 (deviation assessment), 调频里程 (regulation mileage),
需求响应 (demand response), 碳排放 (carbon emissions).
"""

from __future__ import annotations

from infra.labels import LINE_ITEMS

LANGS = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    **LINE_ITEMS,
    # series
    "park.load_mw": {"en": "Park load (MW)", "zh": "园区负荷（兆瓦）"},
    "park.pv_mw": {"en": "Park PV (MW)", "zh": "园区光伏（兆瓦）"},
    "park.wind_mw": {"en": "Park wind (MW)", "zh": "园区风电（兆瓦）"},
    "market.price_da_cny_per_mwh": {
        "en": "Day-ahead price forecast (CNY/MWh)",
        "zh": "日前电价预测（元/兆瓦时）",
    },
    "market.price_rt_cny_per_mwh": {
        "en": "Real-time price forecast (CNY/MWh)",
        "zh": "实时电价预测（元/兆瓦时）",
    },
    "day_ahead": {"en": "Day-ahead", "zh": "日前"},
    "real_time": {"en": "Real-time", "zh": "实时"},
    "mlt": {"en": "Medium/long-term", "zh": "中长期"},
    # headline
    "margin_vs_not_bidding_cny": {
        "en": "VPP margin vs not bidding (CNY)",
        "zh": "相对不报价的虚拟电厂增益（元）",
    },
    "energy_arbitrage_cny": {
        "en": "of which day-ahead/real-time arbitrage (CNY)",
        "zh": "其中日前/实时价差收益（元）",
    },
    "captured_spread_cny_per_mwh": {"en": "Captured spread (CNY/MWh)", "zh": "捕获价差（元/兆瓦时）"},
    "available_spread_cny_per_mwh": {"en": "Day's price spread (CNY/MWh)", "zh": "当日日前价差（元/兆瓦时）"},
    "deviation_share": {"en": "Deviation share (偏差 %)", "zh": "偏差率（%）"},
    "regulation_revenue_cny": {"en": "Regulation revenue (CNY)", "zh": "调频收益（元）"},
    "carbon_adjusted_cny": {"en": "Carbon-adjusted result (CNY)", "zh": "碳调整后收益（元）"},
    "total_cny": {"en": "Park settlement total (CNY)", "zh": "园区结算合计（元）"},
    # page words
    "app": {"en": "parkvpp — park virtual power plant", "zh": "parkvpp 园区虚拟电厂"},
    "sign_in": {"en": "Sign in", "zh": "登录"},
    "sign_out": {"en": "Sign out", "zh": "退出"},
    "username": {"en": "User name", "zh": "用户名"},
    "password": {"en": "Password", "zh": "密码"},
    "wrong_login": {"en": "Wrong user name or password.", "zh": "用户名或密码错误。"},
    "trader": {"en": "Trader", "zh": "交易员"},
    "enterprise": {"en": "Enterprise", "zh": "企业"},
    "operator": {"en": "Operator", "zh": "运营人员"},
    "auditor": {"en": "Auditor", "zh": "审计人员"},
    "admin": {"en": "Administrator", "zh": "管理员"},
    "day_at_a_glance": {"en": "The day at a glance", "zh": "当日概览"},
    "forecast": {"en": "Forecast with P10–P90 band", "zh": "预测（P10–P90 区间）"},
    "offer_curves": {"en": "Offer curves", "zh": "报价曲线"},
    "bids": {"en": "Bids", "zh": "申报"},
    "awards": {"en": "Awards", "zh": "中标结果"},
    "deviations": {"en": "Real-time deviations (MW)", "zh": "实时偏差（兆瓦）"},
    "money_carbon": {"en": "Money and carbon", "zh": "收益与碳排放"},
    "headline": {"en": "Headline", "zh": "关键指标"},
    "state": {"en": "State", "zh": "状态"},
    "market": {"en": "Market", "zh": "市场"},
    "account": {"en": "Account", "zh": "账户"},
    "assets": {"en": "Assets", "zh": "资产"},
    "enrolments": {"en": "Enrolment requests", "zh": "资源注册申请"},
    "enrol_load": {"en": "Enrol a flexible asset", "zh": "注册可调节资源"},
    "submit": {"en": "Submit", "zh": "提交"},
    "approve": {"en": "Approve", "zh": "批准"},
    "reject": {"en": "Reject", "zh": "驳回"},
    "dr_events": {"en": "Demand response events and set-points", "zh": "需求响应事件与调度指令"},
    "statements": {"en": "Statements", "zh": "结算单"},
    "monthly": {"en": "Monthly statement", "zh": "月度结算单"},
    "carbon_account": {"en": "Carbon account", "zh": "碳账户"},
    "downloads": {"en": "Downloads", "zh": "下载"},
    "enrolment_queue": {"en": "Enrolment queue", "zh": "注册审批队列"},
    "review_queue": {"en": "Settlement review queue", "zh": "结算审核队列"},
    "indicators": {"en": "Park indicators", "zh": "园区指标"},
    "ledger_status": {"en": "Carbon ledger verification", "zh": "碳账本校验"},
    "service_health": {"en": "Service health", "zh": "服务健康状态"},
    "audit_log": {"en": "Audit log", "zh": "审计日志"},
    "ledger": {"en": "Carbon ledger", "zh": "碳账本"},
    "no_data": {"en": "Nothing stored for this day yet.", "zh": "当日暂无数据。"},
    "day": {"en": "Day", "zh": "日期"},
    "month": {"en": "Month", "zh": "月份"},
    "submit_month": {"en": "Submit month for approval", "zh": "提交本月结算审批"},
    "reopened": {"en": "reopened", "zh": "已重新打开"},
    "approve_month": {"en": "Approve month", "zh": "批准本月结算"},
    "dispute": {"en": "Dispute", "zh": "提出异议"},
    "reopen": {"en": "Reopen", "zh": "重新打开"},
    "comment": {"en": "Comment", "zh": "备注"},
    "ok": {"en": "ok", "zh": "正常"},
    "when": {"en": "When", "zh": "时间"},
    "who": {"en": "Who", "zh": "操作人"},
    "what": {"en": "What", "zh": "操作"},
    "subject": {"en": "Subject", "zh": "对象"},
    "settled_days": {"en": "settled days", "zh": "已结算天数"},
    "language": {"en": "中文", "zh": "English"},
    "asset_id": {"en": "Asset id", "zh": "资产编号"},
    "asset_type": {"en": "Type", "zh": "类型"},
    "power_mw": {"en": "Power (MW)", "zh": "功率（兆瓦）"},
    "energy_mwh": {"en": "Energy (MWh)", "zh": "能量（兆瓦时）"},
    "report": {"en": "Daily report", "zh": "日报"},
    "emissions": {"en": "Carbon emissions (tCO2)", "zh": "碳排放（吨二氧化碳）"},
    "clean_share": {"en": "Clean-energy share", "zh": "清洁能源占比"},
    "tco2_per_tce": {"en": "Carbon per unit energy (tCO2/tce)", "zh": "单位能耗碳排放（吨二氧化碳/吨标煤）"},
    "review_state": {"en": "Review state", "zh": "审核状态"},
    "statement": {"en": "Settlement statement", "zh": "结算单"},
    "reviewer": {"en": "reviewer", "zh": "审核人"},
    "version": {"en": "version", "zh": "版本"},
    "item": {"en": "Item", "zh": "项目"},
    "amount": {"en": "Amount", "zh": "金额"},
    "draft": {"en": "draft", "zh": "草稿"},
    "approved": {"en": "approved", "zh": "已批准"},
    "disputed": {"en": "disputed", "zh": "有异议"},
    "submitted": {"en": "submitted", "zh": "已提交"},
    "rejected": {"en": "rejected", "zh": "已驳回"},
    "awarded": {"en": "awarded", "zh": "已中标"},
}


def t(key: str, lang: str) -> str:
    """The word for ``key`` in ``lang``; an unknown key shows as itself (never a blank)."""
    entry = TEXT.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["en"]


def pick_lang(query: str | None, cookie: str | None, accept: str | None) -> str:
    for value in (query, cookie):
        if value in LANGS:
            return value  # type: ignore[return-value]
    return "zh" if accept and accept.lower().startswith("zh") else "en"
