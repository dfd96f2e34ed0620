"""Web pages: server-rendered Jinja with a little htmx, in Chinese and English.

One page per user group (trader, enterprise, operator, auditor), each reading through the same
query layer as the API (:class:`gateway.access.Access`), so a page can show no more than the
API would. Sign-in sets HttpOnly, SameSite=Strict cookies holding the access and refresh
tokens; an expired access token is refreshed on the next page. Actions (enrol, approve,
review) are htmx posts that answer with a fragment. Plots are plotly.js served locally.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import identity
from gateway.access import Access, allowed
from gateway.i18n import pick_lang as _pick_lang
from gateway.i18n import t
from gateway.problems import Problem
from gateway.security import ACCESS_COOKIE, REFRESH_COOKIE, principal_from

router = APIRouter(include_in_schema=False)
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "web"),
    autoescape=True,
)


def _num(value: float | None, digits: int = 1) -> str:
    """A number with thousands separators and no "-0.0"."""
    if value is None:
        return "–"
    rounded = round(float(value), digits)
    return f"{(rounded if rounded != 0 else 0.0):,.{digits}f}"


TEMPLATES.filters["num"] = _num
HOME = {
    "trader": "/trader",
    "enterprise": "/enterprise",
    "operator": "/operator",
    "auditor": "/auditor",
    "admin": "/operator",
}
ENROL_TEMPLATES: dict[str, dict[str, Any]] = {
    "interruptible_load": {
        "id": "",
        "name": "",
        "type": "interruptible_load",
        "enterprise": "",
        "connection": "",
        "baseline_mw": 10,
        "max_curtail_mw": 6,
        "max_duration_h": 2,
        "max_energy_mwh_per_day": 12,
        "cost_cny_per_mwh": 500,
        "notice_minutes": 30,
        "source": "enterprise enrolment request",
    },
    "battery": {
        "id": "",
        "name": "",
        "type": "battery",
        "enterprise": "",
        "connection": "",
        "power_mw": 10,
        "energy_mwh": 20,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "soc_min_fraction": 0.1,
        "soc_max_fraction": 0.9,
        "soc_initial_fraction": 0.5,
        "degradation_cny_per_mwh": 20,
        "source": "enterprise enrolment request",
    },
}


class _LoginNeeded(Exception):
    pass


def _lang(request: Request) -> str:
    return _pick_lang(
        request.query_params.get("lang"), request.cookies.get("lang"), request.headers.get("accept-language")
    )


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = _lang(request)
    html = TEMPLATES.get_template(template).render(
        t=lambda key: t(key, lang),
        lang=lang,
        other_lang="en" if lang == "zh" else "zh",
        path=request.url.path,
        query=request.url.query,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict")
    return response


def _result(request: Request, message: str, ok: bool = True) -> HTMLResponse:
    """The one-line answer an htmx form swaps in."""
    return _render(request, "fragment_result.html.j2", ok=ok, message=message, problems=[])


def _refused(request: Request, exc: Problem, limit: int | None = None) -> HTMLResponse:
    """A refusal from the access layer, with the problems it named (at most ``limit``)."""
    problems = [p["message"] for p in exc.errors][:limit]
    return _render(request, "fragment_result.html.j2", ok=False, message=exc.detail, problems=problems)


def _session(request: Request) -> tuple[Access, dict[str, str]]:
    """The signed-in user's query layer, refreshing an expired access token from the refresh cookie."""
    app = request.app
    new_cookies: dict[str, str] = {}
    try:
        who = principal_from(request, None)
    except Problem:
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh or not app.state.auth:
            raise _LoginNeeded from None
        try:
            tokens = identity.refresh(app.state.engine, refresh)
        except identity.AuthError:
            raise _LoginNeeded from None
        who = identity.verify_access(app.state.engine, tokens["access_token"])
        new_cookies = {ACCESS_COOKIE: tokens["access_token"], REFRESH_COOKIE: tokens["refresh_token"]}
    return Access(app.state.engine, app.state.settings, who), new_cookies


def _set_session(response: Response, cookies: dict[str, str]) -> Response:
    for name, value in cookies.items():
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            max_age=identity.REFRESH_DAYS * 86400 if name == REFRESH_COOKIE else identity.ACCESS_MINUTES * 60,
        )
    return response


def _page(request: Request, builder: Any) -> Response:
    try:
        acc, cookies = _session(request)
    except _LoginNeeded:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    try:
        response = builder(acc)
    except Problem as exc:
        response = _render(request, "error.html.j2", status=exc.status, user=acc.who, message=exc.detail)
    return _set_session(response, cookies)


def _park_day(acc: Access, park: str | None, day: str | None) -> tuple[str, date]:
    parks = acc.visible_parks()
    fallback = "datong" if "datong" in parks else (parks[0] if parks else "datong")
    chosen = park if park in parks else (acc.who.park_id or fallback)
    try:
        when = date.fromisoformat(day) if day else acc.settings.default_day
    except ValueError:
        when = acc.settings.default_day
    return chosen, when


# --- sign-in -------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return _render(
        request, "login.html.j2", user=None, next=next if next.startswith("/") else "/", error=None
    )


@router.post("/login")
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=200)] = "/",
) -> Response:
    client = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    if not limiter.allowed(client, username):
        return _render(request, "login.html.j2", 429, user=None, next=next, error="429")
    try:
        tokens = identity.login(request.app.state.engine, username, password)
    except identity.AuthError:
        limiter.failed(client, username)
        return _render(
            request, "login.html.j2", 401, user=None, next=next, error=t("wrong_login", _lang(request))
        )
    who = identity.verify_access(request.app.state.engine, tokens["access_token"])
    target = next if next.startswith("/") and next != "/" and not next.startswith("//") else HOME[who.role]
    return _set_session(
        RedirectResponse(target, status_code=303),
        {ACCESS_COOKIE: tokens["access_token"], REFRESH_COOKIE: tokens["refresh_token"]},
    )


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    try:
        acc, _ = _session(request)
        identity.logout(acc.engine, acc.who, request.cookies.get(REFRESH_COOKIE))
    except (_LoginNeeded, Problem):
        pass
    response.delete_cookie(ACCESS_COOKIE)
    response.delete_cookie(REFRESH_COOKIE)
    return response


@router.get("/")
def home(request: Request) -> Response:
    try:
        acc, cookies = _session(request)
    except _LoginNeeded:
        return RedirectResponse("/login", status_code=303)
    return _set_session(RedirectResponse(HOME[acc.who.role], status_code=303), cookies)


# --- trader ----------------------------------------------------------------------------------------


@router.get("/trader")
def trader(request: Request, park: str | None = None, day: str | None = None) -> Response:
    def build(acc: Access) -> Response:
        park_id, when = _park_day(acc, park, day)
        view = acc.day_view(park_id, when)
        pf = acc.portfolio(park_id, when)
        dispatch = acc.dispatch(park_id, when)
        return _render(
            request,
            "trader.html.j2",
            user=acc.who,
            park=park_id,
            day=when,
            prev_day=when - timedelta(days=1),
            next_day=when + timedelta(days=1),
            parks=acc.visible_parks(),
            view=view,
            view_json=json.dumps(view),
            portfolio=pf,
            setpoints=[a for d in dispatch for a in d["assets"]],
            can_bid=allowed(acc.who, "bids:write"),
        )

    return _page(request, build)


@router.post("/web/bids/{bid_id}/{action}")
def bid_change(
    request: Request,
    bid_id: str,
    action: str,
    park: Annotated[str, Form()] = "",
    day: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    price_shift: Annotated[str, Form()] = "0",
) -> Response:
    """Amend (every price moved) or withdraw a bid from the trader page; the API's rules hold."""

    def build(acc: Access) -> Response:
        lang = _lang(request)
        try:
            when = date.fromisoformat(day)
            shift = float(price_shift or 0)
            if action not in ("amend", "withdraw"):
                raise ValueError(f"unknown action {action[:20]}")
            if not reason.strip():
                raise ValueError(t("reason", lang) + ": " + ("必填" if lang == "zh" else "required"))
            r = acc.change_bid(park, when, bid_id, action, reason.strip(), None, shift)
        except ValueError as exc:
            return _result(request, str(exc), ok=False)
        except Problem as exc:
            return _refused(request, exc)
        return _result(
            request, f"{bid_id[:8]}: {t(r['state'], lang)} · {t('revision', lang)} {r['revision']}"
        )

    return _page(request, build)


# --- enterprise --------------------------------------------------------------------------------------


@router.get("/enterprise")
def enterprise(request: Request, park: str | None = None, day: str | None = None) -> Response:
    def build(acc: Access) -> Response:
        park_id, when = _park_day(acc, park, day)
        pf = acc.portfolio(park_id, when)
        statements = acc.statements(park_id, when)
        month = acc.month_statements(park_id, when.replace(day=1))
        account = acc.tenant or "park"
        carbon = None
        if statements:
            try:
                carbon = acc.indicators(park_id, when, when + timedelta(days=1), acc.tenant)
            except Problem:
                carbon = None
        return _render(
            request,
            "enterprise.html.j2",
            user=acc.who,
            park=park_id,
            day=when,
            prev_day=when - timedelta(days=1),
            next_day=when + timedelta(days=1),
            portfolio=pf,
            enrolments=acc.enrolments(park_id),
            events=acc.dr_events(park_id, when),
            setpoints=[a for d in acc.dispatch(park_id, when) for a in d["assets"]],
            statements=statements,
            month=month,
            account=account,
            carbon=carbon,
            types=list(ENROL_TEMPLATES),
            template_json=json.dumps(_enrol_template(acc, pf, "interruptible_load"), indent=1),
            can_submit=allowed(acc.who, "enrolment:submit"),
        )

    return _page(request, build)


def _enrol_template(acc: Access, pf: dict[str, Any], kind: str) -> dict[str, Any]:
    spec = dict(ENROL_TEMPLATES.get(kind, ENROL_TEMPLATES["interruptible_load"]))
    spec["enterprise"] = acc.tenant or (pf["enterprises"][0]["id"] if pf["enterprises"] else "")
    own = [a for a in pf["assets"] if a.get("enterprise") == spec["enterprise"]]
    spec["connection"] = own[0]["connection"] if own else ""
    return spec


@router.get("/web/enrol-template")
def enrol_template(request: Request, kind: str = "interruptible_load", park: str | None = None) -> Response:
    def build(acc: Access) -> Response:
        park_id, when = _park_day(acc, park, None)
        spec = _enrol_template(acc, acc.portfolio(park_id, when), kind)
        return HTMLResponse(json.dumps(spec, indent=1))

    return _page(request, build)


@router.post("/web/enrolments")
def enrol_submit(request: Request, park: Annotated[str, Form()], spec: Annotated[str, Form()]) -> Response:
    def build(acc: Access) -> Response:
        try:
            body = json.loads(spec)
            if not isinstance(body, dict):
                raise ValueError("the asset must be a JSON object")
        except ValueError as exc:
            return _result(request, str(exc), ok=False)
        try:
            e = acc.submit_enrolment(park, body)
        except Problem as exc:
            return _refused(request, exc)
        return _result(request, f"{e['request_id']}: {e['asset_id']} {t('submitted', _lang(request))}")

    return _page(request, build)


@router.post("/web/metering")
async def metering_upload(request: Request, park: Annotated[str, Form()], file: UploadFile) -> Response:
    content = await file.read()

    def build(acc: Access) -> Response:
        try:
            r = acc.upload_meters(park, file.filename or "meters.csv", content)
        except Problem as exc:
            return _refused(request, exc, limit=20)
        return _result(
            request,
            f"{r['points_new']} new, {r['points_corrected']} corrected, {r['points_unchanged']} unchanged readings",
        )

    return _page(request, build)


# --- operator ------------------------------------------------------------------------------------------


@router.get("/operator")
def operator(request: Request, park: str | None = None, day: str | None = None) -> Response:
    def build(acc: Access) -> Response:
        park_id, when = _park_day(acc, park, day)
        from gateway.ops import health

        ok, parts = health(request.app)
        month_start = when.replace(day=1)
        month = acc.month_statements(park_id, month_start)
        days = []
        for d in month["settled_days"]:
            review = acc.review(park_id, "day", date.fromisoformat(d))
            days.append({"day": d, "state": review["state"], "reviewer": review["reviewer"]})
        indicators = None
        if month["settled_days"]:
            first = date.fromisoformat(month["settled_days"][0])
            last = date.fromisoformat(month["settled_days"][-1]) + timedelta(days=1)
            indicators = acc.indicators(park_id, first, last, "park")
        return _render(
            request,
            "operator.html.j2",
            user=acc.who,
            park=park_id,
            day=when,
            prev_day=when - timedelta(days=1),
            next_day=when + timedelta(days=1),
            queue=acc.enrolments(park_id, "submitted"),
            recent=[e for e in acc.enrolments(park_id) if e["state"] != "submitted"][-10:],
            month=month,
            month_review=acc.review(park_id, "month", month_start),
            month_start=month_start,
            days=days,
            indicators=indicators,
            ledger=acc.verify_ledger(park_id),
            health_ok=ok,
            health=parts,
            can_decide=allowed(acc.who, "enrolment:decide"),
            can_review=allowed(acc.who, "review:write"),
        )

    return _page(request, build)


@router.post("/web/enrolments/{request_id}/{action}")
def enrol_decide(
    request: Request,
    request_id: str,
    action: str,
    park: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    def build(acc: Access) -> Response:
        if action not in ("approve", "reject"):
            return _result(request, f"unknown action {action[:20]}", ok=False)
        try:
            e = acc.decide_enrolment(park, request_id, action, reason or None, None)
        except Problem as exc:
            return _refused(request, exc)
        when = f" · {e['active_from']}" if e["active_from"] else ""
        return _result(request, f"{e['request_id']}: {t(e['state'], _lang(request))}{when}")

    return _page(request, build)


@router.post("/web/reviews/{period}/{start}")
def review_submit(
    request: Request,
    period: str,
    start: str,
    park: Annotated[str, Form()],
    state: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
) -> Response:
    def build(acc: Access) -> Response:
        try:
            when = date.fromisoformat(start)
            if period not in ("day", "month"):
                raise ValueError(period)
            r = acc.record_review(park, period, when, state, comment)
        except ValueError as exc:
            return _result(request, f"bad review: {exc}", ok=False)
        except Problem as exc:
            return _result(request, exc.detail, ok=False)
        return _result(request, f"{period} {start}: {t(r['state'], _lang(request))} · {r['reviewer']}")

    return _page(request, build)


# --- auditor -------------------------------------------------------------------------------------------


@router.get("/auditor")
def auditor(
    request: Request, park: str | None = None, day: str | None = None, offset: Annotated[int, Query(ge=0)] = 0
) -> Response:
    def build(acc: Access) -> Response:
        park_id, when = _park_day(acc, park, day)
        entries = acc.audit(park_id)
        ledger = acc.ledger(park_id, when.replace(day=1), when + timedelta(days=1))
        return _render(
            request,
            "auditor.html.j2",
            user=acc.who,
            park=park_id,
            day=when,
            audit=list(reversed(entries))[offset : offset + 100],
            audit_total=len(entries),
            offset=offset,
            ledger=ledger[-200:],
            ledger_total=len(ledger),
            check=acc.verify_ledger(park_id),
        )

    return _page(request, build)
