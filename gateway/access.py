"""The query layer: every read and write of the API and the web pages goes through :class:`Access`.

An :class:`Access` is bound to one signed-in :class:`~gateway.identity.Principal`; tenant
isolation lives here, not in the routes, so no route, filter or page can reach around it:

* a user bound to a park sees only that park (any other park id: 404);
* an ``enterprise`` user sees only its own enterprise: its assets in the portfolio, its
  enrolment requests, its set-points in dispatch, its meters, its statement, its carbon account
  and ledger postings. Another enterprise's ids answer 404 (not found, so ids do not leak) and
  park-wide market data (forecasts, offers, bids, awards, the park statement, the run report,
  the audit log) answers 403;
* role permissions (:data:`PERMISSIONS`) are checked again here for every call, whatever the
  route declared.

Routes declare their permission for the OpenAPI document and check it early; the checks here
are the ones that hold.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from gateway.identity import Principal
from gateway.problems import Forbidden, Invalid, NotFound
from infra.contracts import Award, Dispatch, Envelope, Metering, Settlement
from infra.db.outbox import stored_envelopes, stored_json
from infra.registry import RegistryError, portfolio
from infra.registry import audit as audit_log
from infra.registry import enrolment as enrol
from infra.registry.tables import audit_log as audit_table
from infra.scenario import ScenarioError, available_parks
from infra.settings import Settings

PARK_ACCOUNT = "park"
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MARKET_SCHEMAS = ("forecast_set", "offer", "bid", "award")

# role -> permissions. ``enterprise`` permissions apply to the user's own enterprise only.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "parks:read",
            "enrolment:read",
            "enrolment:submit",
            "enrolment:decide",
            "enrolment:withdraw",
            "market:read",
            "dispatch:read",
            "metering:read",
            "metering:write",
            "statements:read",
            "review:read",
            "review:write",
            "carbon:read",
            "ledger:read",
            "audit:read",
            "reports:read",
            "health:read",
            "users:admin",
            "bids:write",
        }
    ),
    "operator": frozenset(
        {
            "parks:read",
            "enrolment:read",
            "enrolment:submit",
            "enrolment:decide",
            "enrolment:withdraw",
            "market:read",
            "dispatch:read",
            "metering:read",
            "metering:write",
            "statements:read",
            "review:read",
            "review:write",
            "carbon:read",
            "ledger:read",
            "reports:read",
            "health:read",
        }
    ),
    "trader": frozenset(
        {
            "parks:read",
            "enrolment:read",
            "market:read",
            "bids:write",
            "dispatch:read",
            "metering:read",
            "statements:read",
            "review:read",
            "carbon:read",
            "reports:read",
        }
    ),
    "auditor": frozenset(
        {
            "parks:read",
            "enrolment:read",
            "market:read",
            "dispatch:read",
            "metering:read",
            "statements:read",
            "review:read",
            "carbon:read",
            "ledger:read",
            "audit:read",
            "reports:read",
            "health:read",
        }
    ),
    "enterprise": frozenset(
        {
            "parks:read",
            "enrolment:read",
            "enrolment:submit",
            "enrolment:withdraw",
            "dispatch:read",
            "metering:read",
            "metering:write",
            "statements:read",
            "carbon:read",
        }
    ),
}
PERMISSIONS = sorted(set().union(*ROLE_PERMISSIONS.values()))


def allowed(principal: Principal, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(principal.role, frozenset())


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise NotFound(f"{what} {value[:64]!r}: no such {what} (ids are 1-64 letters, digits, . _ -)")
    return value


def check_day(day: date, what: str = "day") -> date:
    if not 2000 <= day.year <= 2100:
        raise Invalid(
            f"{what} {day}: the market calendar covers 2000-2100",
            [{"field": f"path.{what}", "message": "year must be within 2000-2100"}],
        )
    return day


@dataclass
class Page:
    items: list[Any]
    total: int
    offset: int
    limit: int


def paginate(items: list[Any], offset: int, limit: int) -> Page:
    return Page(items[offset : offset + limit], len(items), offset, limit)


class Access:
    """Everything the gateway reads or changes, on behalf of one principal."""

    def __init__(self, engine: Engine, settings: Settings, principal: Principal) -> None:
        self.engine = engine
        self.settings = settings
        self.who = principal

    # --- guards -------------------------------------------------------------------------------

    def require(self, permission: str) -> None:
        if not allowed(self.who, permission):
            raise Forbidden(f"role {self.who.role} may not {permission.replace(':', ' ')}")

    @property
    def tenant(self) -> str | None:
        """The enterprise the principal is confined to (None: not confined)."""
        return self.who.enterprise_id if self.who.is_enterprise else None

    def _not_enterprise(self, what: str) -> None:
        if self.who.is_enterprise:
            raise Forbidden(
                f"{what} is park-wide data; an enterprise user sees its own enterprise's data only"
            )

    def park(self, park_id: str) -> str:
        self.require("parks:read")
        check_id(park_id, "park")
        if park_id not in self.visible_parks():
            raise NotFound(f"park {park_id!r}: no such park")
        return park_id

    def visible_parks(self) -> list[str]:
        parks = available_parks()
        from infra.registry.portfolio import parks as registered

        with self.engine.connect() as conn:
            parks = sorted(set(parks) | set(registered(conn)))
        if self.who.park_id is not None:
            parks = [p for p in parks if p == self.who.park_id]
        return parks

    def account(self, account_id: str) -> str:
        """An account id the principal may see (its own enterprise, or anything when not confined)."""
        check_id(account_id, "account")
        if self.tenant is not None and account_id != self.tenant:
            raise NotFound(f"account {account_id!r}: no such account")
        return account_id

    def _portfolio(self, park_id: str, day: date) -> Any:
        try:
            return portfolio(self.engine, park_id, day)
        except (RegistryError, ScenarioError) as exc:
            raise NotFound(f"park {park_id!r} on {day}: {str(exc).splitlines()[0]}") from exc

    # --- parks and portfolio --------------------------------------------------------------------

    def parks(self) -> list[dict[str, Any]]:
        self.require("parks:read")
        out = []
        for park_id in self.visible_parks():
            s = self._portfolio(park_id, self.settings.default_day)
            out.append({"id": park_id, "name": s.park.name, "market": s.market.name})
        return out

    def portfolio(self, park_id: str, day: date) -> dict[str, Any]:
        self.park(park_id)
        s = self._portfolio(park_id, check_day(day))
        enterprises = [e.model_dump(include={"id", "name", "sector"}) for e in s.park.enterprises]
        assets = [a.model_dump(mode="json") for a in s.park.assets]
        if self.tenant is not None:
            enterprises = [e for e in enterprises if e["id"] == self.tenant]
            assets = [a for a in assets if a.get("enterprise") == self.tenant]
        return {
            "park_id": park_id,
            "day": day.isoformat(),
            "name": s.park.name,
            "version": s.version,
            "market": s.market.name,
            "enterprises": enterprises,
            "assets": assets,
        }

    def asset_owner(self, park_id: str, day: date, asset_id: str) -> str:
        s = self._portfolio(park_id, day)
        for a in s.park.assets:
            if a.id == asset_id:
                return a.enterprise
        raise NotFound(f"asset {asset_id!r}: no such asset in {park_id} on {day}")

    # --- enrolment ------------------------------------------------------------------------------

    @staticmethod
    def _enrolment_dict(e: enrol.Enrolment) -> dict[str, Any]:
        return {
            "request_id": e.request_id,
            "park_id": e.park_id,
            "asset_id": e.asset_id,
            "enterprise_id": e.enterprise_id,
            "asset_type": e.asset_type,
            "state": e.state,
            "submitted_by": e.submitted_by,
            "submitted_at": e.submitted_at.isoformat() if e.submitted_at else None,
            "decided_by": e.decided_by,
            "decided_at": e.decided_at.isoformat() if e.decided_at else None,
            "active_from": e.active_from.isoformat() if e.active_from else None,
            "ended_from": e.ended_from.isoformat() if e.ended_from else None,
            "note": e.note,
            "spec": e.spec,
        }

    def enrolments(
        self, park_id: str, state: str | None = None, enterprise_id: str | None = None
    ) -> list[dict[str, Any]]:
        self.require("enrolment:read")
        self.park(park_id)
        if state is not None and state not in enrol.STATES:
            raise Invalid(
                f"state {state[:20]!r}: must be one of {', '.join(enrol.STATES)}",
                [{"field": "query.state", "message": f"one of {', '.join(enrol.STATES)}"}],
            )
        if enterprise_id is not None:
            self.account(enterprise_id)
        scope = self.tenant or enterprise_id
        return [self._enrolment_dict(e) for e in enrol.listing(self.engine, park_id, state, scope)]

    def enrolment(self, park_id: str, request_id: str) -> dict[str, Any]:
        self.require("enrolment:read")
        self.park(park_id)
        check_id(request_id, "enrolment request")
        try:
            e = enrol.get(self.engine, request_id)
        except RegistryError as exc:
            raise NotFound(f"enrolment request {request_id!r}: no such request") from exc
        if e.park_id != park_id or (self.tenant is not None and e.enterprise_id != self.tenant):
            raise NotFound(f"enrolment request {request_id!r}: no such request")
        return self._enrolment_dict(e)

    def submit_enrolment(self, park_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        self.require("enrolment:submit")
        self.park(park_id)
        if self.tenant is not None and spec.get("enterprise") != self.tenant:
            raise Forbidden(
                f"enterprise {str(spec.get('enterprise'))[:64]!r}: you may enrol assets of {self.tenant} only"
            )
        try:
            e = enrol.submit(self.engine, park_id, spec, self.who.username)
        except enrol.EnrolmentError as exc:
            raise Invalid(
                f"enrolment for {park_id} is invalid: {len(exc.problems)} problem(s)",
                [_field_problem(p) for p in exc.problems],
            ) from exc
        except (RegistryError, ScenarioError, ValueError, TypeError, KeyError) as exc:
            raise Invalid(f"enrolment for {park_id} is invalid: {str(exc)[:300]}") from exc
        return self._enrolment_dict(e)

    def decide_enrolment(
        self, park_id: str, request_id: str, action: str, reason: str | None, from_day: date | None
    ) -> dict[str, Any]:
        self.enrolment(park_id, request_id)  # visibility first: another tenant's id is 404
        self.require("enrolment:withdraw" if action == "withdraw" else "enrolment:decide")
        if from_day is not None:
            check_day(from_day, "from")
        if action in ("reject", "suspend", "withdraw") and not (reason or "").strip():
            raise Invalid(f"{action} needs a reason", [{"field": "body.reason", "message": "required"}])
        try:
            if action == "approve":
                e = enrol.approve(self.engine, request_id, self.who.username, from_day)
            elif action == "reject":
                e = enrol.reject(self.engine, request_id, self.who.username, reason or "")
            elif action == "suspend":
                e = enrol.suspend(self.engine, request_id, self.who.username, reason or "", from_day)
            elif action == "withdraw":
                e = enrol.withdraw(self.engine, request_id, self.who.username, reason or "", from_day)
            else:
                raise Invalid(f"action {action!r} unknown")
        except enrol.EnrolmentError as exc:
            status = 409 if any("state is" in p or "four eyes" in p for p in exc.problems) else 422
            problem = (
                Invalid(str(exc).splitlines()[0], [_field_problem(p) for p in exc.problems])
                if status == 422
                else _conflict(exc)
            )
            raise problem from exc
        return self._enrolment_dict(e)

    # --- stored facts ---------------------------------------------------------------------------

    def _envelopes(self, park_id: str, day: date, schema: str) -> list[Envelope]:
        with self.engine.connect() as conn:
            return stored_envelopes(conn, park_id, day, schema)

    def market_facts(self, park_id: str, day: date, schema: str) -> str:
        """Forecasts, offers, bids, awards of a day as the stored envelope JSON array (verbatim)."""
        self.require("market:read")
        self.park(park_id)
        check_day(day)
        self._not_enterprise(schema)
        if schema not in MARKET_SCHEMAS:
            raise NotFound(f"{schema!r}: no such fact kind")
        with self.engine.connect() as conn:
            found = stored_json(conn, park_id, day, schema)
        return "[" + ",".join(found) + "]"

    def _stored_bids(self, park_id: str, day: date) -> list[Any]:
        self.require("market:read")
        self.park(park_id)
        check_day(day)
        self._not_enterprise("bids")
        from gateway.bids import load

        return load(self.engine, self._portfolio(park_id, day), park_id, day)

    def bids(self, park_id: str, day: date) -> list[dict[str, Any]]:
        """Bids with their lifecycle state (submitted, amended, withdrawn, closed once the gate passed,
        awarded once the market published an award for it), gate closure and revision."""
        from infra.timeutil import now

        at = now()
        return [b.summary(at) for b in self._stored_bids(park_id, day)]

    def _one_bid(self, park_id: str, day: date, bid_id: str) -> Any:
        check_id(bid_id, "bid")
        for b in self._stored_bids(park_id, day):
            if b.bid_id == bid_id:
                return b
        raise NotFound(f"bid {bid_id!r}: no such bid of {park_id} on {day}")

    def bid(self, park_id: str, day: date, bid_id: str) -> dict[str, Any]:
        """One bid with its stored lifecycle history."""
        from infra.timeutil import now

        b = self._one_bid(park_id, day, bid_id)
        return {**b.summary(now()), "history": b.history()}

    def change_bid(
        self,
        park_id: str,
        day: date,
        bid_id: str,
        action: str,
        reason: str,
        energy: list[dict[str, Any]] | None = None,
        price_shift: float | None = None,
    ) -> dict[str, Any]:
        """Amend (new curves) or withdraw a standing bid before its gate; audited. Bidding's
        lifecycle decides: after the gate or from a final state the answer is 409 naming why."""
        from gateway import bids as desk
        from infra.timeutil import now

        self.require("bids:write")
        stored = self._one_bid(park_id, day, bid_id)
        before = stored.summary(now())
        scenario = self._portfolio(park_id, day)

        def audit(conn: Any, env: Any) -> None:
            audit_log.record(
                conn,
                self.who.username,
                f"bid.{'amended' if action == 'amend' else 'withdrawn'}",
                park_id,
                f"bid:{bid_id}",
                before={k: before[k] for k in ("state", "revision", "current_message_id")},
                after={
                    "state": stored.life.state.value,
                    "revision": env.payload["revision"],
                    "current_message_id": env.message_id,
                    "reason": reason,
                },
            )

        try:
            if action == "amend":
                from infra.contracts import EnergyCurve

                if energy is None:
                    shift = float(price_shift or 0.0)
                    energy = [
                        {
                            "base_mw": c.base_mw,
                            "segments": [
                                {
                                    "price_cny_per_mwh": sg.price_cny_per_mwh + shift,
                                    "quantity_mw": sg.quantity_mw,
                                }
                                for sg in c.segments
                            ],
                        }
                        for c in stored.current.energy
                    ]
                curves = [EnergyCurve.model_validate(c) for c in energy]
                desk.amend(self.engine, scenario, stored, curves, reason, audit)
            else:
                desk.withdraw(self.engine, scenario, stored, reason, audit)
        except desk.GateClosed as exc:
            from gateway.problems import Conflict

            raise Conflict(
                f"{exc} (the gate is checked against the real clock, Asia/Shanghai)",
                [{"field": "path.bid_id", "message": f"gate closed at {exc.gate.isoformat()}"}],
            ) from exc
        except desk.IllegalTransition as exc:
            raise _conflict(exc) from exc
        except (desk.BidRejected, ValueError) as exc:
            raise Invalid(
                f"amendment of bid {bid_id} refused by the province rules: {str(exc)[:300]}",
                [{"field": "body.energy", "message": str(exc)[:300]}],
            ) from exc
        return self.bid(park_id, day, bid_id)

    def dispatch(self, park_id: str, day: date) -> list[dict[str, Any]]:
        """Dispatch of a day; an enterprise sees its own assets' set-points only (no park totals)."""
        self.require("dispatch:read")
        self.park(park_id)
        check_day(day)
        out = []
        for env in self._envelopes(park_id, day, "dispatch"):
            d = Dispatch.from_envelope(env)
            body = d.model_dump(mode="json")
            if self.tenant is not None:
                body["assets"] = [a for a in body["assets"] if a["enterprise_id"] == self.tenant]
                body.pop("deviation_mw", None)
                body.pop("regulation_mw", None)
                body["notes"] = []
            out.append({"message_id": env.message_id, "market_day": day.isoformat(), **body})
        return out

    def metering(self, park_id: str, day: date) -> list[dict[str, Any]]:
        """Metering of a day; an enterprise sees its own meters only (not the park's grid meter)."""
        self.require("metering:read")
        self.park(park_id)
        check_day(day)
        out = []
        for env in self._envelopes(park_id, day, "metering"):
            m = Metering.from_envelope(env)
            body = m.model_dump(mode="json")
            if self.tenant is not None:
                body["assets"] = [a for a in body["assets"] if a["enterprise_id"] == self.tenant]
                body["grid_energy_mwh"] = []
                body["regulation"] = None
            out.append({"message_id": env.message_id, "market_day": day.isoformat(), **body})
        return out

    def dr_events(self, park_id: str, day: date) -> list[dict[str, Any]]:
        """Demand-response events of a day (runs of intervals with a DR award) with the principal's set-points."""
        self.require("dispatch:read")
        self.park(park_id)
        check_day(day)
        dispatch = self.dispatch(park_id, day)
        setpoints = {a["asset_id"]: a["power_mw"] for d in dispatch for a in d["assets"]}
        events = []
        for env in self._envelopes(park_id, day, "award"):
            a = Award.from_envelope(env)
            dr = list(a.demand_response_mw or [])
            prices = list(a.demand_response_price_cny_per_mwh or [0.0] * len(dr))
            i = 0
            while i < len(dr):
                if abs(dr[i]) < 1e-9:
                    i += 1
                    continue
                j = i
                while j + 1 < len(dr) and (dr[j + 1] > 0) == (dr[i] > 0) and abs(dr[j + 1]) > 1e-9:
                    j += 1
                step = timedelta(minutes=a.interval_minutes)
                events.append(
                    {
                        "market": a.market,
                        "direction": "peak_cut" if dr[i] > 0 else "valley_fill",
                        "start": a.interval_starts[i].isoformat(),
                        "end": (a.interval_starts[j] + step).isoformat(),
                        "max_mw": max(abs(x) for x in dr[i : j + 1]),
                        "price_cny_per_mwh": max(prices[i : j + 1]) if prices else 0.0,
                        "setpoints_mw": {k: v[i : j + 1] for k, v in setpoints.items()},
                    }
                )
                i = j + 1
        return events

    # --- statements -----------------------------------------------------------------------------

    def statements(self, park_id: str, day: date) -> list[Settlement]:
        """The day's statements the principal may see (an enterprise: its own only)."""
        self.require("statements:read")
        self.park(park_id)
        check_day(day)
        out = []
        for env in self._envelopes(park_id, day, "settlement"):
            st = Settlement.from_envelope(env)
            if self.tenant is None or st.account_id == self.tenant:
                out.append(st)
        return sorted(out, key=lambda s: (s.account_id != PARK_ACCOUNT, s.account_id))

    def statement(self, park_id: str, day: date, account_id: str) -> Settlement:
        self.park(park_id)
        self.account(account_id)
        for st in self.statements(park_id, day):
            if st.account_id == account_id:
                return st
        raise NotFound(f"no statement of {account_id} for {park_id} on {day} (not settled yet?)")

    def month_statements(self, park_id: str, month: date) -> dict[str, Any]:
        """Per account: day totals of the month and the month's sums."""
        self.require("statements:read")
        self.park(park_id)
        check_day(month, "month")
        first = month.replace(day=1)
        end = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        accounts: dict[str, dict[str, Any]] = {}
        settled = []
        day = first
        while day < end:
            sts = self.statements(park_id, day)
            if sts:
                settled.append(day.isoformat())
            for st in sts:
                acc = accounts.setdefault(
                    st.account_id,
                    {
                        "account_id": st.account_id,
                        "total_cny": 0.0,
                        "emissions_tco2": 0.0,
                        "carbon_adjusted_revenue_cny": 0.0,
                        "days": {},
                    },
                )
                acc["total_cny"] += st.total_cny
                acc["emissions_tco2"] += st.emissions_tco2
                acc["carbon_adjusted_revenue_cny"] += st.carbon_adjusted_revenue_cny
                acc["days"][day.isoformat()] = st.total_cny
            day += timedelta(days=1)
        return {
            "park_id": park_id,
            "month": f"{first:%Y-%m}",
            "days_in_month": (end - first).days,
            "settled_days": settled,
            "accounts": sorted(
                accounts.values(), key=lambda a: (a["account_id"] != PARK_ACCOUNT, a["account_id"])
            ),
        }

    # --- settlement review ----------------------------------------------------------------------

    def review(self, park_id: str, period: str, start: date) -> dict[str, Any]:
        self.require("review:read")
        self.park(park_id)
        check_day(start, "start")
        from settlement.review import review_state

        with self.engine.connect() as conn:
            return review_state(conn, park_id, period, start)

    def record_review(
        self, park_id: str, period: str, start: date, state: str, comment: str
    ) -> dict[str, Any]:
        """Record a review action as the signed-in user; settlement's rules decide what is allowed
        (settled days, four eyes, immutability once approved, reasons to dispute or reopen)."""
        self.require("review:write")
        self.park(park_id)
        check_day(start, "start")
        from settlement import review as rv

        try:
            with self.engine.begin() as conn:
                before = rv.review_state(conn, park_id, period, start)
                rv.record_review(conn, park_id, period, start, state, comment, reviewer=self.who.username)
                after = rv.review_state(conn, park_id, period, start)
                if not hasattr(rv, "ACTIONS"):  # a settlement that does not audit reviews itself
                    audit_log.record(
                        conn,
                        self.who.username,
                        f"settlement.review.{state}",
                        park_id,
                        f"{period}:{start.isoformat()}",
                        before={"state": before["state"]},
                        after={"state": after["state"], "comment": comment},
                    )
        except rv.ReviewError as exc:
            message = str(exc)
            field = message.split(":", 1)[0]
            if field in ("state", "comment", "period", "month") and "cannot go from" not in message:
                raise Invalid(message, [{"field": f"body.{field}", "message": message}]) from exc
            raise _conflict(exc) from exc
        return after

    # --- carbon, ledger, audit ------------------------------------------------------------------

    def indicators(self, park_id: str, start: date, end: date, account: str | None) -> dict[str, Any]:
        self.require("carbon:read")
        self.park(park_id)
        check_day(start, "start")
        check_day(end, "end")
        if end <= start or (end - start).days > 366:
            raise Invalid(
                f"period [{start}, {end}) must be 1-366 days",
                [{"field": "query.end", "message": "after start, at most 366 days later"}],
            )
        account = account or self.tenant or PARK_ACCOUNT
        if account != PARK_ACCOUNT:
            self.account(account)
        elif self.tenant is not None:
            raise NotFound("account 'park': no such account")
        from settlement.carbon.indicators import indicators

        scenario = self._portfolio(park_id, start)
        with self.engine.connect() as conn:
            return {"account": account, **indicators(conn, scenario, start, end, account).to_dict()}

    def ledger(self, park_id: str, start: date, end: date) -> list[dict[str, Any]]:
        self.require("carbon:read")
        self.park(park_id)
        check_day(start, "start")
        check_day(end, "end")
        if self.tenant is None:
            self.require("ledger:read")
        from settlement.carbon.ledger import entries, holds

        with self.engine.connect() as conn:
            rows = entries(conn, park_id, start, end)
        out = []
        for r in rows:
            postings = [list(p.as_list()) for p in r["postings"]]
            if self.tenant is not None:
                mine = [p for p in postings if holds(p[0], self.tenant)]
                if not mine:
                    continue
                postings = mine
            out.append(
                {
                    "position": r.get("position"),
                    "entry_id": r.get("entry_id"),
                    "market_day": str(r.get("market_day")),
                    "kind": r.get("kind"),
                    "account_id": r.get("account_id") if self.tenant is None else self.tenant,
                    "rule": r.get("rule"),
                    "postings": [
                        {"account": p[0], "book": p[1], "unit": p[2], "quantity": p[3] / 1_000_000}
                        for p in postings
                    ],
                    "hash": r.get("hash") if self.tenant is None else None,
                }
            )
        return out

    def verify_ledger(self, park_id: str) -> dict[str, Any]:
        self.require("ledger:read")
        self.park(park_id)
        from settlement.carbon.ledger import verify

        try:
            with self.engine.connect() as conn:
                checked, problems = verify(conn, park_id, known_parks=self.visible_parks())
        except TypeError:  # settlement without known_parks
            with self.engine.connect() as conn:
                checked, problems = verify(conn, park_id)
        except ValueError as exc:  # no ledger key, unknown park: reported, never shown as intact
            return {"park_id": park_id, "entries_checked": 0, "ok": False, "problems": [str(exc)]}
        return {
            "park_id": park_id,
            "entries_checked": checked,
            "ok": not problems,
            "problems": [p._asdict() if hasattr(p, "_asdict") else str(p) for p in problems][:100],
        }

    def audit(self, park_id: str | None, subject: str | None = None) -> list[dict[str, Any]]:
        self.require("audit:read")
        if park_id is not None:
            self.park(park_id)
        query = select(audit_table).order_by(audit_table.c.seq)
        if park_id is not None:
            query = query.where(audit_table.c.park_id.in_([park_id, "*"]))
        if subject is not None:
            query = query.where(audit_table.c.subject == subject[:128])
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for r in rows:
            r["at"] = r["at"].isoformat()
            for k in ("before", "after"):
                r[k] = json.loads(r[k]) if r[k] else None
        return rows

    def record_audit(self, action: str, park_id: str, subject: str, before: Any, after: Any) -> None:
        with self.engine.begin() as conn:
            audit_log.record(conn, self.who.username, action, park_id, subject, before=before, after=after)

    # --- metering upload ------------------------------------------------------------------------

    def upload_meters(self, park_id: str, filename: str, content: bytes) -> dict[str, Any]:
        self.require("metering:write")
        self.park(park_id)
        from infra.timeseries.files import IngestError, ingest, parse_meter_rows
        from infra.timeutil import now

        if len(content) > 20 * 1024 * 1024:
            raise Invalid("file: at most 20 MB per upload", [{"field": "body.file", "message": "too large"}])
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", filename or "meters.csv")[:80]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / safe
            path.write_bytes(content)
            scenario = self._portfolio(park_id, now().date())
            try:
                readings, _ = parse_meter_rows(path)
            except (IngestError, ValueError) as exc:
                raise Invalid(str(exc).splitlines()[0], _ingest_errors(exc)) from exc
            if self.tenant is not None:
                own = {a.id for a in scenario.park.assets if a.enterprise == self.tenant}
                foreign = sorted({r.series for r in readings if r.series.split(".", 1)[0] not in own})
                if foreign:
                    raise Forbidden(
                        f"series {', '.join(foreign[:5])}: not meters of {self.tenant}'s assets; nothing stored"
                    )
            try:
                report = ingest(self.engine, park_id, path, "meters", scenario)
            except (IngestError, ValueError) as exc:
                raise Invalid(str(exc).splitlines()[0], _ingest_errors(exc)) from exc
        result = {
            "series": report.series,
            "days_written": report.days_written,
            "points_new": report.points_new,
            "points_corrected": report.points_corrected,
            "points_unchanged": report.points_unchanged,
        }
        self.record_audit("metering.upload", park_id, f"file:{safe}", None, result)
        return result

    def day_view(self, park_id: str, day: date) -> dict[str, Any]:
        """The trader's day at a glance: forecast bands, offer curves, bids, awards, deviations, money, carbon."""
        self.require("market:read")
        self.park(park_id)
        check_day(day)
        self._not_enterprise("the day view")
        return _day_view(self, park_id, day)

    # --- run report -----------------------------------------------------------------------------

    def report_file(self, park_id: str, day: date, name: str) -> Path:
        self.require("reports:read")
        self.park(park_id)
        check_day(day)
        self._not_enterprise("the run report")
        folder = (self.settings.run_dir / park_id / day.isoformat()).resolve()
        path = (folder / (name or "report.html")).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise NotFound(
                f"no report file {name or 'report.html'!r} for {park_id} on {day}; "
                f"run `parkvpp run-day --park {park_id} --date {day}`"
            )
        return path


def _field_problem(problem: str) -> dict[str, str]:
    head = problem.partition(":")[0]
    field = head.strip().split()[-1] if head.strip() else "body"
    return {"field": f"body.{field}"[:120], "message": problem}


def _ingest_errors(exc: Exception) -> list[dict[str, str]]:
    problems: Iterable[str] = getattr(exc, "problems", [str(exc)])
    return [{"field": p.split(":", 1)[0], "message": p} for p in problems]


def _conflict(exc: Exception) -> Exception:
    from gateway.problems import Conflict

    return Conflict(str(exc).replace("\n", " "))


def _day_view(acc: Access, park_id: str, day: date) -> dict[str, Any]:
    """The trader's day at a glance from stored facts (called through :meth:`Access.day_view`)."""
    from infra.contracts import ForecastSet, Offer

    view: dict[str, Any] = {"park_id": park_id, "day": day.isoformat(), "forecast": {}, "offer": None}
    forecasts = acc._envelopes(park_id, day, "forecast_set")
    if forecasts:
        f = ForecastSet.from_envelope(forecasts[-1])
        view["interval_starts"] = [t.isoformat() for t in f.interval_starts]
        for s in f.series:
            if s.series_id.startswith(("park.", "market.")):
                view["forecast"][s.series_id] = {k: s.quantiles.get(k) for k in ("0.1", "0.5", "0.9")}
    offers = acc._envelopes(park_id, day, "offer")
    if offers:
        o = Offer.from_envelope(offers[-1])
        view["offer"] = {
            "message_id": offers[-1].message_id,
            "market": o.market,
            "scenario_version": o.scenario_version,
            "forecast_message_id": o.forecast_message_id,
            "assets": [a.model_dump() for a in o.assets],
            "expected_revenue_cny": o.expected_revenue_cny,
            "interval_starts": [t.isoformat() for t in o.interval_starts],
            "curves": [
                {"base_mw": c.base_mw, "segments": [[s.price_cny_per_mwh, s.quantity_mw] for s in c.segments]}
                for c in o.energy
            ],
        }
    view["bids"] = acc.bids(park_id, day)
    view["awards"] = {}
    for env in acc._envelopes(park_id, day, "award"):
        a = Award.from_envelope(env)
        shown = {
            "interval_starts": [t.isoformat() for t in a.interval_starts],
            "cleared_mw": a.cleared_mw,
            "price_cny_per_mwh": a.clearing_price_cny_per_mwh,
            "regulation_mw": a.regulation_mw,
            "demand_response_mw": a.demand_response_mw,
        }
        if a.real_time_bid:  # a real-time bid's result covers its own intervals only
            view["awards"].setdefault("real_time_bids", []).append(shown)
        else:
            view["awards"][a.market] = shown
    view["deviation_mw"] = []
    meter = acc._envelopes(park_id, day, "metering")
    rt = view["awards"].get("real_time") or view["awards"].get("day_ahead")
    if meter and rt:
        m = Metering.from_envelope(meter[-1])
        hours = m.interval_minutes / 60
        metered = [x / hours for x in m.grid_energy_mwh]
        if len(metered) == len(rt["cleared_mw"]):
            view["deviation_mw"] = [round(x - y, 4) for x, y in zip(metered, rt["cleared_mw"], strict=True)]
        view["metered_mw"] = metered
    view["accounts"] = [
        {
            "account_id": st.account_id,
            "total_cny": st.total_cny,
            "emissions_tco2": st.emissions_tco2,
            "carbon_adjusted_revenue_cny": st.carbon_adjusted_revenue_cny,
            "lines": {ln.item: ln.amount_cny for ln in st.lines},
        }
        for st in acc.statements(park_id, day)
    ]
    view["headline"] = {}
    if view["accounts"]:
        try:
            from gateway.headline import headline
            from settlement.report import day_summary

            view["headline"] = headline(day_summary(acc.engine, park_id, day))
        except LookupError:
            pass
    return view
