"""API v1 (``/api/v1``): every route declares its permission (an OAuth2 scope in the OpenAPI
document) and reads or changes data only through the query layer (:class:`gateway.access.Access`)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Body, File, Form, Path, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway import identity
from gateway.access import ROLE_PERMISSIONS, Access
from gateway.problems import Invalid, NotFound, TooMany, Unauthorized, responses
from gateway.security import access, principal_from
from infra.contracts import Settlement

T = TypeVar("T")
READ = responses(401, 403, 404, 422)
WRITE = responses(401, 403, 404, 409, 422)

router = APIRouter(prefix="/api/v1", responses=READ)

ParkId = Annotated[str, Path(description="park id, e.g. datong", max_length=200)]
Day = Annotated[date, Path(description="market day YYYY-MM-DD")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
MonthStr = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="month YYYY-MM")]


def _can(permission: str) -> Any:
    return Security(access, scopes=[permission])


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


def _page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    return {"items": items[offset : offset + limit], "total": len(items), "offset": offset, "limit": limit}


def _month(value: str) -> date:
    year, month = int(value[:4]), int(value[5:7])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise Invalid(
            f"month {value}: expected YYYY-MM within 2000-2100",
            [{"field": "path.month", "message": "bad month"}],
        )
    return date(year, month, 1)


# --- auth -----------------------------------------------------------------------------------------


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=200)


class Me(BaseModel):
    username: str
    role: str
    park_id: str | None
    enterprise_id: str | None
    display_name: str
    permissions: list[str]


@router.post(
    "/auth/token",
    response_model=Token,
    tags=["auth"],
    responses=responses(401, 422, 429),
    summary="Sign in (OAuth2 password flow)",
)
def token(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
) -> dict[str, Any]:
    """Exchange user name and password for a short-lived access token and a refresh token."""
    client = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    if not limiter.allowed(client, username):
        raise TooMany("too many failed sign-ins for this user from this address; wait a minute")
    try:
        return identity.login(request.app.state.engine, username, password)
    except identity.AuthError as exc:
        limiter.failed(client, username)
        raise Unauthorized(str(exc)) from exc


@router.post("/auth/refresh", response_model=Token, tags=["auth"], responses=responses(401, 422, 429))
def refresh(request: Request, body: RefreshIn) -> dict[str, Any]:
    """A new token pair for a valid refresh token; the refresh token used is spent."""
    client = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    if not limiter.allowed(client, "refresh"):
        raise TooMany("too many failed refreshes from this address; wait a minute")
    try:
        return identity.refresh(request.app.state.engine, body.refresh_token)
    except identity.AuthError as exc:
        limiter.failed(client, "refresh")
        raise Unauthorized(str(exc)) from exc


@router.post("/auth/logout", status_code=204, tags=["auth"], responses=responses(401, 422))
def logout(request: Request, body: LogoutIn, acc: Access = _can("parks:read")) -> Response:  # noqa: B008
    """End the session: the access token and the refresh token stop working now."""
    identity.logout(request.app.state.engine, acc.who, body.refresh_token)
    return Response(status_code=204)


@router.get("/auth/me", response_model=Me, tags=["auth"], responses=responses(401))
def me(request: Request) -> dict[str, Any]:
    from gateway.security import oauth2  # noqa: F401 - documented through the routes that use it

    who = principal_from(request, _bearer(request))
    return {
        "username": who.username,
        "role": who.role,
        "park_id": who.park_id,
        "enterprise_id": who.enterprise_id,
        "display_name": who.display_name,
        "permissions": sorted(ROLE_PERMISSIONS[who.role]),
    }


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


# --- users (admin) --------------------------------------------------------------------------------


class RoleName(StrEnum):
    admin = "admin"
    operator = "operator"
    trader = "trader"
    enterprise = "enterprise"
    auditor = "auditor"


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@\-]+$")
    password: str = Field(min_length=identity.MIN_PASSWORD, max_length=200)
    role: RoleName
    park_id: str | None = Field(default=None, max_length=64)
    enterprise_id: str | None = Field(default=None, max_length=64)
    display_name: str = Field(default="", max_length=200)


class UserOut(BaseModel):
    username: str
    role: str
    park_id: str | None
    enterprise_id: str | None
    display_name: str
    disabled: bool
    created_by: str
    created_at: Any


@router.get("/users", response_model=PageOf[UserOut], tags=["users"])
def users(acc: Access = _can("users:admin"), offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:  # noqa: B008
    acc.require("users:admin")
    return _page(identity.list_users(acc.engine), offset, limit)


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], responses=WRITE)
def add_user(body: NewUser, acc: Access = _can("users:admin")) -> dict[str, Any]:  # noqa: B008
    acc.require("users:admin")
    if body.park_id is not None:
        acc.park(body.park_id)
    try:
        return identity.add_user(
            acc.engine,
            body.username,
            body.password,
            body.role.value,
            actor=acc.who.username,
            park_id=body.park_id,
            enterprise_id=body.enterprise_id,
            display_name=body.display_name,
        )
    except identity.IdentityError as exc:
        raise Invalid(str(exc), [{"field": "body." + str(exc).split(":")[0], "message": str(exc)}]) from exc


@router.post("/users/{username}/disable", response_model=UserOut, tags=["users"], responses=WRITE)
def disable_user(
    username: Annotated[str, Path(max_length=64)],
    acc: Access = _can("users:admin"),  # noqa: B008
) -> dict[str, Any]:
    acc.require("users:admin")
    try:
        return identity.set_disabled(acc.engine, username, True, actor=acc.who.username)
    except identity.IdentityError as exc:
        raise NotFound(str(exc)) from exc


# --- parks, portfolio, enrolment --------------------------------------------------------------------


class ParkOut(BaseModel):
    id: str
    name: str
    market: str


class PortfolioOut(BaseModel):
    park_id: str
    day: date
    name: str
    version: str
    market: str
    enterprises: list[dict[str, Any]]
    assets: list[dict[str, Any]] = Field(description="technical data of each asset, as enrolled")


class EnrolmentOut(BaseModel):
    request_id: str
    park_id: str
    asset_id: str
    enterprise_id: str
    asset_type: str
    state: str
    submitted_by: str
    submitted_at: str | None
    decided_by: str | None
    decided_at: str | None
    active_from: date | None
    ended_from: date | None
    note: str | None
    spec: dict[str, Any]


class EnrolmentState(StrEnum):
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"
    withdrawn = "withdrawn"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    suspend = "suspend"
    withdraw = "withdraw"


class DecisionIn(BaseModel):
    reason: str | None = Field(
        default=None, max_length=1000, description="required to reject, suspend, withdraw"
    )
    from_day: date | None = Field(
        default=None, description="first market day it applies to (default: first open day)"
    )


@router.get("/parks", response_model=list[ParkOut], tags=["parks"])
def parks(acc: Access = _can("parks:read")) -> list[dict[str, Any]]:  # noqa: B008
    return acc.parks()


@router.get("/parks/{park_id}/portfolio", response_model=PortfolioOut, tags=["parks"])
def park_portfolio(
    park_id: ParkId,
    day: Annotated[date | None, Query(description="market day (default: the configured default day)")] = None,
    acc: Access = _can("parks:read"),  # noqa: B008
) -> dict[str, Any]:
    """The park's portfolio of a market day; an enterprise user sees its own enterprise and assets."""
    return acc.portfolio(park_id, day or acc.settings.default_day)


@router.get("/parks/{park_id}/enrolments", response_model=PageOf[EnrolmentOut], tags=["enrolment"])
def enrolments(
    park_id: ParkId,
    state: EnrolmentState | None = None,
    enterprise_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    acc: Access = _can("enrolment:read"),  # noqa: B008
) -> dict[str, Any]:
    return _page(acc.enrolments(park_id, state.value if state else None, enterprise_id), offset, limit)


@router.post(
    "/parks/{park_id}/enrolments",
    response_model=EnrolmentOut,
    status_code=201,
    tags=["enrolment"],
    responses=WRITE,
)
def submit_enrolment(
    park_id: ParkId,
    spec: Annotated[
        dict[str, Any],
        Body(
            description="the asset as in a park template: id, name, type, enterprise, connection and the "
            "type's technical data; every problem is listed in `errors`",
            examples=[
                {
                    "id": "cell_bess_2",
                    "name": "Cell plant battery 2",
                    "type": "battery",
                    "enterprise": "cell_plant",
                    "connection": "cell_plant_35kv",
                    "power_mw": 20,
                    "energy_mwh": 40,
                    "charge_efficiency": 0.95,
                    "discharge_efficiency": 0.95,
                    "soc_min_fraction": 0.1,
                    "soc_max_fraction": 0.9,
                    "soc_initial_fraction": 0.5,
                    "degradation_cny_per_mwh": 20,
                    "source": "[assumption] enterprise request",
                }
            ],
        ),
    ],
    acc: Access = _can("enrolment:submit"),  # noqa: B008
) -> dict[str, Any]:
    return acc.submit_enrolment(park_id, spec)


@router.get("/parks/{park_id}/enrolments/{request_id}", response_model=EnrolmentOut, tags=["enrolment"])
def enrolment(
    park_id: ParkId,
    request_id: Annotated[str, Path(max_length=64)],
    acc: Access = _can("enrolment:read"),  # noqa: B008
) -> dict[str, Any]:
    return acc.enrolment(park_id, request_id)


@router.post(
    "/parks/{park_id}/enrolments/{request_id}/{action}",
    response_model=EnrolmentOut,
    tags=["enrolment"],
    responses=WRITE,
)
def decide(
    park_id: ParkId,
    request_id: Annotated[str, Path(max_length=64)],
    action: Decision,
    body: DecisionIn | None = None,
    acc: Access = _can("enrolment:read"),  # noqa: B008
) -> dict[str, Any]:
    """approve / reject (operator, not the submitter: four eyes), suspend (operator), withdraw
    (operator, or the enterprise for its own request)."""
    body = body or DecisionIn()
    return acc.decide_enrolment(park_id, request_id, action.value, body.reason, body.from_day)


# --- market views -------------------------------------------------------------------------------------

FACTS_DOC = {
    200: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}
}


def _facts(acc: Access, park_id: str, day: date, schema: str) -> Response:
    return Response(acc.market_facts(park_id, day, schema), media_type="application/json")


@router.get(
    "/parks/{park_id}/days/{day}/forecasts", response_class=Response, responses=FACTS_DOC, tags=["market"]
)
def forecasts(park_id: ParkId, day: Day, acc: Access = _can("market:read")) -> Response:  # noqa: B008
    """Forecast sets of the day (P10/P50/P90 per series), as stored."""
    return _facts(acc, park_id, day, "forecast_set")


@router.get(
    "/parks/{park_id}/days/{day}/offers", response_class=Response, responses=FACTS_DOC, tags=["market"]
)
def offers(park_id: ParkId, day: Day, acc: Access = _can("market:read")) -> Response:  # noqa: B008
    return _facts(acc, park_id, day, "offer")


@router.get(
    "/parks/{park_id}/days/{day}/awards", response_class=Response, responses=FACTS_DOC, tags=["market"]
)
def awards(park_id: ParkId, day: Day, acc: Access = _can("market:read")) -> Response:  # noqa: B008
    return _facts(acc, park_id, day, "award")


class BidOut(BaseModel):
    message_id: str
    market: str | None
    produced_at: str
    intervals: int
    expected_revenue_cny: float | None
    adjustments: list[str]
    state: str = Field(
        description="the bid lifecycle: submitted, amended, withdrawn, closed (its gate passed), "
        "awarded (the market published its award)"
    )
    award_message_id: str | None
    gate_closure: str | None = Field(None, description="when amending and withdrawing stop (Asia/Shanghai)")
    revision: int = Field(0, description="0 as submitted, then one more per amendment or withdrawal")
    current_message_id: str | None = Field(None, description="the bid fact holding the current content")


class BidTransition(BaseModel):
    seq: int
    from_state: str
    event: str
    to_state: str
    at: str
    note: str


class BidDetail(BidOut):
    history: list[BidTransition] = Field(description="every lifecycle transition, oldest first")


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    price_cny_per_mwh: float = Field(ge=-100_000, le=100_000)
    quantity_mw: float = Field(ge=0, le=100_000)


class CurveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base_mw: float = Field(ge=-100_000, le=100_000)
    segments: list[SegmentIn] = Field(max_length=50)


class AmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    energy: list[CurveIn] | None = Field(
        None, max_length=300, description="the new offer curve of every interval of the day (replaces all)"
    )
    price_shift_cny_per_mwh: float | None = Field(
        None, ge=-3000, le=3000, description="or: move every segment price of the current curves by this much"
    )
    reason: str = Field(min_length=1, max_length=1000, description="why; kept in the audit log")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="why; kept in the audit log")


BidId = Annotated[str, Path(max_length=64, description="the bid's message id")]


@router.get("/parks/{park_id}/days/{day}/bids", response_model=list[BidOut], tags=["market"])
def bids(park_id: ParkId, day: Day, acc: Access = _can("market:read")) -> list[dict[str, Any]]:  # noqa: B008
    """Bids of the day with their lifecycle state, gate closure and revision."""
    return acc.bids(park_id, day)


@router.get("/parks/{park_id}/days/{day}/bids/{bid_id}", response_model=BidDetail, tags=["market"])
def bid(park_id: ParkId, day: Day, bid_id: BidId, acc: Access = _can("market:read")) -> dict[str, Any]:  # noqa: B008
    """One bid with every lifecycle transition."""
    return acc.bid(park_id, day, bid_id)


@router.post(
    "/parks/{park_id}/days/{day}/bids/{bid_id}/amend",
    response_model=BidDetail,
    tags=["market"],
    responses=WRITE,
)
def amend_bid(
    park_id: ParkId,
    day: Day,
    bid_id: BidId,
    body: AmendIn,
    acc: Access = _can("bids:write"),  # noqa: B008
) -> dict[str, Any]:
    """Amend a standing bid before its gate closes: new curves (`energy`) or every price moved
    (`price_shift_cny_per_mwh`), checked by the province rules. After the gate: 409 naming the
    gate time (the server's clock, Asia/Shanghai). Audited."""
    if (body.energy is None) == (body.price_shift_cny_per_mwh is None):
        raise Invalid(
            "give either energy (new curves) or price_shift_cny_per_mwh, not both and not neither",
            [{"field": "body.energy", "message": "exactly one of energy, price_shift_cny_per_mwh"}],
        )
    return acc.change_bid(
        park_id,
        day,
        bid_id,
        "amend",
        body.reason,
        [c.model_dump() for c in body.energy] if body.energy is not None else None,
        body.price_shift_cny_per_mwh,
    )


@router.post(
    "/parks/{park_id}/days/{day}/bids/{bid_id}/withdraw",
    response_model=BidDetail,
    tags=["market"],
    responses=WRITE,
)
def withdraw_bid(
    park_id: ParkId,
    day: Day,
    bid_id: BidId,
    body: WithdrawIn,
    acc: Access = _can("bids:write"),  # noqa: B008
) -> dict[str, Any]:
    """Withdraw a standing bid before its gate closes; after it, 409 naming the gate time. Audited."""
    return acc.change_bid(park_id, day, bid_id, "withdraw", body.reason, None, None)


class DayView(BaseModel):
    park_id: str
    day: date
    interval_starts: list[str] = Field(default_factory=list)
    forecast: dict[str, dict[str, list[float] | None]]
    offer: dict[str, Any] | None = Field(
        description="the day's offer: curves, the portfolio version it was built for (scenario_version) "
        "and the assets it pools with what each brings (assets)"
    )
    bids: list[BidOut]
    awards: dict[str, dict[str, Any]]
    deviation_mw: list[float]
    metered_mw: list[float] = Field(default_factory=list)
    accounts: list[dict[str, Any]]
    headline: dict[str, float | None]


@router.get("/parks/{park_id}/days/{day}", response_model=DayView, tags=["market"])
def day_view(park_id: ParkId, day: Day, acc: Access = _can("market:read")) -> dict[str, Any]:  # noqa: B008
    """The trader's day at a glance: forecast bands, offer curves, bids, awards, deviations, money and carbon."""
    return acc.day_view(park_id, day)


# --- dispatch, DR, metering --------------------------------------------------------------------------


class DREvent(BaseModel):
    market: str
    direction: str
    start: str
    end: str
    max_mw: float
    price_cny_per_mwh: float
    setpoints_mw: dict[str, list[float]]


class UploadOut(BaseModel):
    series: int
    days_written: int
    points_new: int
    points_corrected: int
    points_unchanged: int


@router.get("/parks/{park_id}/days/{day}/dispatch", response_model=list[dict[str, Any]], tags=["dispatch"])
def dispatch(park_id: ParkId, day: Day, acc: Access = _can("dispatch:read")) -> list[dict[str, Any]]:  # noqa: B008
    """Set-points of the day; an enterprise sees its own assets only."""
    return acc.dispatch(park_id, day)


@router.get("/parks/{park_id}/days/{day}/dr-events", response_model=list[DREvent], tags=["dispatch"])
def dr_events(park_id: ParkId, day: Day, acc: Access = _can("dispatch:read")) -> list[dict[str, Any]]:  # noqa: B008
    """Demand-response events (awarded runs of intervals) with the caller's asset set-points."""
    return acc.dr_events(park_id, day)


@router.get("/parks/{park_id}/days/{day}/metering", response_model=list[dict[str, Any]], tags=["metering"])
def metering(park_id: ParkId, day: Day, acc: Access = _can("metering:read")) -> list[dict[str, Any]]:  # noqa: B008
    return acc.metering(park_id, day)


@router.post("/parks/{park_id}/metering", response_model=UploadOut, tags=["metering"], responses=WRITE)
async def upload_metering(
    park_id: ParkId,
    file: Annotated[UploadFile, File(description="CSV: timestamp,series_id,value[,quality]")],
    acc: Access = _can("metering:write"),  # noqa: B008
) -> dict[str, Any]:
    """Store a meter file: all rows checked, stored whole or not at all (problems by row in `errors`)."""
    content = await file.read()
    return acc.upload_meters(park_id, file.filename or "meters.csv", content)


# --- statements -------------------------------------------------------------------------------------


class Format(StrEnum):
    csv = "csv"
    pdf = "pdf"


class MonthOut(BaseModel):
    park_id: str
    month: str
    days_in_month: int
    settled_days: list[str]
    accounts: list[dict[str, Any]]


DOWNLOAD_DOC = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "the statement as a file",
    }
}


@router.get("/parks/{park_id}/days/{day}/statements", response_model=list[Settlement], tags=["statements"])
def statements(park_id: ParkId, day: Day, acc: Access = _can("statements:read")) -> list[Settlement]:  # noqa: B008
    """Statements of a settled day: the park and every enterprise; an enterprise sees its own."""
    return acc.statements(park_id, day)


AccountId = Annotated[str, Path(max_length=200, description="park or an enterprise id")]


@router.get(
    "/parks/{park_id}/days/{day}/statements/{account_id}", response_model=Settlement, tags=["statements"]
)
def statement(
    park_id: ParkId,
    day: Day,
    account_id: AccountId,
    acc: Access = _can("statements:read"),  # noqa: B008
) -> Settlement:
    return acc.statement(park_id, day, account_id)


@router.get(
    "/parks/{park_id}/days/{day}/statements/{account_id}/download",
    response_class=Response,
    responses=DOWNLOAD_DOC,
    tags=["statements"],
)
def statement_download(
    park_id: ParkId,
    day: Day,
    account_id: AccountId,
    format: Format = Format.csv,
    lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en",
    acc: Access = _can("statements:read"),  # noqa: B008
) -> Response:
    st = acc.statement(park_id, day, account_id)
    review = acc.review(park_id, "day", day) if _may(acc, "review:read") else None
    name = f"statement-{park_id}-{day}-{account_id}"
    if format == Format.csv:
        return _csv_response(_statement_csv([(day, st)], review), name)
    from gateway.pdf import statement_pdf

    pdf = statement_pdf(f"{park_id} {day}", [(day, st)], review, lang)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


@router.get("/parks/{park_id}/months/{month}/statements", response_model=MonthOut, tags=["statements"])
def month_statements(
    park_id: ParkId,
    month: MonthStr,
    acc: Access = _can("statements:read"),  # noqa: B008
) -> dict[str, Any]:
    return acc.month_statements(park_id, _month(month))


@router.get(
    "/parks/{park_id}/months/{month}/statements/{account_id}/download",
    response_class=Response,
    responses=DOWNLOAD_DOC,
    tags=["statements"],
)
def month_download(
    park_id: ParkId,
    month: MonthStr,
    account_id: AccountId,
    format: Format = Format.csv,
    lang: Annotated[str, Query(pattern="^(en|zh)$")] = "en",
    acc: Access = _can("statements:read"),  # noqa: B008
) -> Response:
    first = _month(month)
    acc.park(park_id)
    acc.account(account_id)
    summary = acc.month_statements(park_id, first)
    rows = []
    for d in summary["settled_days"]:
        day = date.fromisoformat(d)
        rows += [(day, st) for st in acc.statements(park_id, day) if st.account_id == account_id]
    if not rows:
        raise NotFound(f"no statement of {account_id} for {park_id} in {month}")
    review = acc.review(park_id, "month", first) if _may(acc, "review:read") else None
    name = f"statement-{park_id}-{month}-{account_id}"
    if format == Format.csv:
        return _csv_response(_statement_csv(rows, review), name)
    from gateway.pdf import statement_pdf

    pdf = statement_pdf(f"{park_id} {month}", rows, review, lang)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


def _may(acc: Access, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(acc.who.role, frozenset())


def _statement_csv(rows: list[tuple[date, Settlement]], review: dict[str, Any] | None) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    if review is not None:
        w.writerow(
            [
                "# review state",
                review.get("state"),
                review.get("reviewer") or "",
                review.get("recorded_at") or "",
            ]
        )
    w.writerow(["day", "account", "item", "amount_cny", "energy_mwh"])
    for day, st in rows:
        for line in st.lines:
            w.writerow(
                [
                    day,
                    st.account_id,
                    line.item,
                    f"{line.amount_cny:.2f}",
                    "" if line.energy_mwh is None else f"{line.energy_mwh:.4f}",
                ]
            )
        w.writerow([day, st.account_id, "total", f"{st.total_cny:.2f}", ""])
        w.writerow([day, st.account_id, "emissions_tco2", f"{st.emissions_tco2:.4f}", ""])
        w.writerow(
            [day, st.account_id, "carbon_adjusted_revenue", f"{st.carbon_adjusted_revenue_cny:.2f}", ""]
        )
    return out.getvalue()


def _csv_response(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


# --- settlement review --------------------------------------------------------------------------------


class Period(StrEnum):
    day = "day"
    month = "month"


class ReviewOut(BaseModel):
    state: str
    comment: str
    reviewer: str
    recorded_at: str | None
    history: list[dict[str, Any]]


class ReviewIn(BaseModel):
    state: str = Field(
        max_length=32,
        description="the state to record: approved, disputed or draft (reopen); "
        "the settlement rules decide which moves are allowed",
    )
    comment: str = Field(default="", max_length=2000, description="why; required to dispute or reopen")


@router.get("/parks/{park_id}/reviews/{period}/{start}", response_model=ReviewOut, tags=["review"])
def review(park_id: ParkId, period: Period, start: Day, acc: Access = _can("review:read")) -> dict[str, Any]:  # noqa: B008
    return acc.review(park_id, period.value, start)


@router.post(
    "/parks/{park_id}/reviews/{period}/{start}", response_model=ReviewOut, tags=["review"], responses=WRITE
)
def record_review(
    park_id: ParkId,
    period: Period,
    start: Day,
    body: ReviewIn,
    acc: Access = _can("review:write"),  # noqa: B008
) -> dict[str, Any]:
    """Record a review as the signed-in user (the reviewer can no longer be any name)."""
    return acc.record_review(park_id, period.value, start, body.state, body.comment)


# --- carbon, ledger, audit ----------------------------------------------------------------------------


class LedgerCheck(BaseModel):
    park_id: str
    entries_checked: int
    ok: bool
    problems: list[Any]


class AuditEntry(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    park_id: str
    subject: str
    before: Any
    after: Any


@router.get("/parks/{park_id}/carbon/indicators", response_model=dict[str, Any], tags=["carbon"])
def carbon_indicators(
    park_id: ParkId,
    start: date,
    end: date,
    account: Annotated[
        str | None, Query(max_length=64, description="park or an enterprise (default: yours)")
    ] = None,
    acc: Access = _can("carbon:read"),  # noqa: B008
) -> dict[str, Any]:
    """Zero-carbon park indicators over market days [start, end) for the park or one enterprise."""
    return acc.indicators(park_id, start, end, account)


@router.get("/parks/{park_id}/carbon/ledger", response_model=PageOf[dict[str, Any]], tags=["carbon"])
def ledger(
    park_id: ParkId,
    start: date,
    end: date,
    offset: Offset = 0,
    limit: Limit = 100,
    acc: Access = _can("carbon:read"),  # noqa: B008
) -> dict[str, Any]:
    """Ledger entries of [start, end); an enterprise sees its own postings only."""
    return _page(acc.ledger(park_id, start, end), offset, limit)


@router.get("/parks/{park_id}/carbon/ledger/verify", response_model=LedgerCheck, tags=["carbon"])
def ledger_verify(park_id: ParkId, acc: Access = _can("ledger:read")) -> dict[str, Any]:  # noqa: B008
    """Recompute the ledger's hash chain and name every edited, deleted or reordered entry."""
    return acc.verify_ledger(park_id)


@router.get("/audit", response_model=PageOf[AuditEntry], tags=["audit"])
def audit(
    park_id: Annotated[str | None, Query(max_length=200)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    acc: Access = _can("audit:read"),  # noqa: B008
) -> dict[str, Any]:
    """The append-only audit log: who changed what, when, before and after (newest last)."""
    return _page(acc.audit(park_id, subject), offset, limit)


# --- run report -----------------------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,200}$")


@router.get(
    "/parks/{park_id}/days/{day}/report/",
    response_class=FileResponse,
    tags=["reports"],
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def run_report(park_id: ParkId, day: Day, acc: Access = _can("reports:read")) -> FileResponse:  # noqa: B008
    """The run folder's report.html; its images are served beside it (relative links work)."""
    return FileResponse(acc.report_file(park_id, day, "report.html"), media_type="text/html")


@router.get(
    "/parks/{park_id}/days/{day}/report/{name:path}",
    response_class=FileResponse,
    tags=["reports"],
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
def run_report_file(
    park_id: ParkId,
    day: Day,
    name: Annotated[str, Path(max_length=200)],
    acc: Access = _can("reports:read"),  # noqa: B008
) -> FileResponse:
    if not _SAFE_NAME.match(name) or ".." in name:
        raise NotFound(f"no report file {name[:80]!r}")
    return FileResponse(acc.report_file(park_id, day, name))
