"""The aggregator's Kafka entry point: forecasts in, offers and dispatches out.

* day-ahead ``ForecastSet`` -> ``Offer`` (market ``day_ahead``) on ``vpp.offers``, storing the
  forecast it was built on;
* day-ahead ``Award`` -> ``Dispatch`` (key ``day_ahead``) on ``vpp.dispatch``;
* intraday ``ForecastSet`` after a dispatch -> re-optimised ``Dispatch`` (key ``intraday`` and
  the forecast's issue time) on ``vpp.dispatch``, re-planning the intervals from then on, and in
  the same transaction the real-time ``Offer`` of that schedule (market ``real_time``, the
  intervals whose rolling gate is still open; :mod:`aggregator.realtime`) on ``vpp.offers``;
* ``Award`` of a real-time bid -> ``Dispatch`` (key ``real_time`` and the award) re-planned to
  deliver its ``Q_RT`` (``realtime.followed_award``: each day-ahead interval the mean of its
  real-time intervals) from the first interval it changes, with the latest forecast.

Infeasible days still get an offer or dispatch: the relaxed model's answer, with the broken
constraint families logged (and, for dispatches, written into the notes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, Engine, Row, insert, select

from aggregator.contributions import with_contributions
from aggregator.dispatch import DispatchResult, disaggregate, reoptimise
from aggregator.errors import InputError
from aggregator.offer import build_offer, forecast_day
from aggregator.portfolio import ModelStore
from aggregator.realtime import followed_award, real_time_offer
from aggregator.tables import aggregator_dispatches, aggregator_offers
from infra.contracts import Award, Dispatch, Envelope, ForecastSet, Offer, Topic
from infra.db.outbox import enqueue, enqueue_message, stored_message
from infra.registry import portfolio
from infra.scenario import Scenario
from infra.settings import get_settings
from infra.timeutil import now
from infra.worker import MessageContext, Worker

log = logging.getLogger(__name__)


class AggregatorWorker(Worker):
    group = "aggregator"
    topics = (Topic.FORECASTS, Topic.AWARDS)

    def __init__(self, engine: Engine, kafka_bootstrap: str) -> None:
        super().__init__(engine, kafka_bootstrap)
        # This worker's compiled models: re-solved for every day of the same park structure.
        self.models = ModelStore()

    def handle(self, ctx: MessageContext) -> None:
        env = ctx.envelope
        if env.schema_.name == ForecastSet.SCHEMA:
            forecast = ForecastSet.from_envelope(env)
            if forecast.horizon == "day_ahead":
                self._offer(ctx, forecast)
            elif forecast.horizon == "intraday":
                self._intraday(ctx, forecast)
        elif env.schema_.name == Award.SCHEMA:
            award = Award.from_envelope(env)
            if award.market == "day_ahead":
                self._dispatch(ctx, award)
            elif award.real_time_bid:
                self._follow_real_time(ctx, award)

    @property
    def solver(self) -> str:
        return get_settings().solver

    def _offer(self, ctx: MessageContext, forecast: ForecastSet) -> None:
        env = ctx.envelope
        day = forecast_day(forecast)
        with self.engine.connect() as conn:
            existing = _offer_row(conn, env.park_id, day)
        if existing is not None:
            log.warning(
                "aggregator: park %s %s already has day-ahead offer %s; forecast %s not offered again",
                env.park_id,
                day,
                existing.offer_message_id,
                env.message_id,
            )
            with ctx.transaction():
                pass  # recorded as applied; nothing else to store
            return
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        result = build_offer(
            scenario,
            forecast,
            forecast_message_id=env.message_id,
            solver=self.solver,
            allow_relaxed=True,
            models=self.models,
        )
        for v in result.violations:
            log.error("aggregator: offer %s %s relaxed: %s", env.park_id, day, v.describe())
        offer = with_contributions(result.offer, scenario, result.solution)
        offer_env = offer.envelope(env.park_id, day, "day_ahead")
        with ctx.transaction() as conn:
            conn.execute(
                insert(aggregator_offers).values(
                    offer_message_id=offer_env.message_id,
                    park_id=env.park_id,
                    market_day=day,
                    market="day_ahead",
                    forecast_message_id=env.message_id,
                    scenario_version=scenario.version,
                    carbon_price_cny_per_tco2=result.carbon_price_cny_per_tco2,
                    forecast_envelope=env.to_json(),
                    summary=result.summary(),
                    created_at=now(),
                )
            )
            enqueue(conn, Topic.OFFERS, offer_env)
        log.info(
            "aggregator: offer %s %s: expected revenue %.0f CNY, emissions %.1f t, %.2f s",
            env.park_id,
            day,
            result.offer.expected_revenue_cny,
            result.offer.expected_emissions_tco2,
            result.info.seconds,
        )

    def _dispatch(self, ctx: MessageContext, award: Award) -> None:
        env = ctx.envelope
        with self.engine.connect() as conn:
            row = _offer_row(conn, env.park_id, env.market_day)
        if row is None:
            raise InputError(
                f"award {env.message_id}: no day-ahead offer of park {env.park_id} for {env.market_day} is stored, "
                "so there is no forecast to split the award against"
            )
        forecast = ForecastSet.from_envelope(Envelope.from_json(row.forecast_envelope))
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        result = disaggregate(
            scenario,
            forecast,
            award,
            award_message_id=env.message_id,
            carbon_price_cny_per_tco2=row.carbon_price_cny_per_tco2,
            solver=self.solver,
            allow_relaxed=True,
            models=self.models,
        )
        self._store(ctx, result.dispatch, result.state, env)

    def _intraday(self, ctx: MessageContext, latest: ForecastSet) -> None:
        env = ctx.envelope
        day = self._day_so_far(env.park_id, env.market_day)
        if day is None:
            log.info(
                "aggregator: intraday forecast %s: no dispatch for %s %s yet, nothing to re-plan",
                env.message_id,
                env.park_id,
                env.market_day,
            )
            return
        starts = pd.DatetimeIndex(day.previous.interval_starts)
        if latest.issued_at >= starts[-1]:
            return
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        result = self._replan(scenario, day, latest, latest.issued_at, day.last.award_message_id)
        first = starts[int(starts.searchsorted(latest.issued_at))].to_pydatetime()
        rt_offer = real_time_offer(
            scenario,
            day.day_ahead_offer,
            day.day_ahead_award,
            result.dispatch,
            at=latest.issued_at,
            forecast_message_id=env.message_id,
        )
        extra = []
        if rt_offer is not None:  # the message id is fixed by park, day and re-optimisation time
            extra.append(
                rt_offer.envelope(env.park_id, env.market_day, "real_time", latest.issued_at.isoformat())
            )
        key = ("intraday", latest.issued_at.isoformat())
        self._store(
            ctx, result.dispatch, result.state, day.position_envelope, key, first, env.to_json(), extra
        )

    def _follow_real_time(self, ctx: MessageContext, award: Award) -> None:
        """A real-time bid cleared: re-plan so the assets deliver its ``Q_RT`` instead of the old position."""
        env = ctx.envelope
        day = self._day_so_far(env.park_id, env.market_day)
        if day is None:
            raise InputError(
                f"real-time award {env.message_id}: park {env.park_id} has no dispatch for {env.market_day} to change"
            )
        position, first_index = followed_award(day.position, award)
        starts = pd.DatetimeIndex(day.previous.interval_starts)
        first = starts[first_index].to_pydatetime()
        scenario = portfolio(self.engine, env.park_id, env.market_day)
        result = self._replan(scenario, day, day.forecast, first, env.message_id, position)
        position_env = position.envelope(env.park_id, env.market_day, "position", env.message_id)
        forecast_env = day.last.forecast_envelope
        self._store(
            ctx,
            result.dispatch,
            result.state,
            position_env,
            ("real_time", env.message_id),
            first,
            forecast_env,
        )

    def _day_so_far(self, park_id: str, market_day: date) -> _DaySoFar | None:
        """The day's offer, day-ahead award and latest dispatch, or None before the first dispatch."""
        with self.engine.connect() as conn:
            offer = _offer_row(conn, park_id, market_day)
            rows = conn.execute(
                select(aggregator_dispatches)
                .where(
                    aggregator_dispatches.c.park_id == park_id,
                    aggregator_dispatches.c.market_day == market_day,
                )
                .order_by(aggregator_dispatches.c.created_at)
            ).all()
            if offer is None or not rows:
                return None
            previous, day_ahead_offer = (
                stored_message(conn, rows[-1].dispatch_message_id),
                stored_message(conn, offer.offer_message_id),
            )
        if previous is None or day_ahead_offer is None:
            return None
        last = rows[-1]
        return _DaySoFar(
            offer_row=offer,
            last=last,
            previous=Dispatch.from_envelope(previous),
            day_ahead_offer=Offer.from_envelope(day_ahead_offer),
            day_ahead_award=Award.from_envelope(Envelope.from_json(rows[0].award_envelope)),
            position_envelope=Envelope.from_json(last.award_envelope),
            forecast=ForecastSet.from_envelope(
                Envelope.from_json(last.forecast_envelope or offer.forecast_envelope)
            ),
        )

    def _replan(
        self,
        scenario: Scenario,
        day: _DaySoFar,
        latest: ForecastSet,
        from_time: datetime,
        award_message_id: str,
        position: Award | None = None,
    ) -> DispatchResult:
        return reoptimise(
            scenario,
            ForecastSet.from_envelope(Envelope.from_json(day.offer_row.forecast_envelope)),
            latest,
            position or day.position,
            day.previous,
            award_message_id=award_message_id,
            state=dict(day.last.state),
            from_time=from_time,
            carbon_price_cny_per_tco2=day.offer_row.carbon_price_cny_per_tco2,
            solver=self.solver,
            allow_relaxed=True,
            models=self.models,
        )

    def _store(
        self,
        ctx: MessageContext,
        dispatch: Dispatch,
        state: dict[str, float],
        position_env: Envelope,
        key: tuple[str, ...] = ("day_ahead",),
        first: datetime | None = None,
        forecast_json: str | None = None,
        offers: list[Envelope] | None = None,
    ) -> None:
        """Store and publish a dispatch (``key``: day_ahead, intraday or real_time) delivering the
        position in ``position_env`` from ``first`` on (with the real-time ``offers`` made from it)."""
        env = ctx.envelope
        kind = key[0]
        with ctx.transaction() as conn:
            # chunks and a manifest when the set-points of every asset do not fit one message
            dispatch_id = enqueue_message(conn, Topic.DISPATCH, dispatch, env.park_id, env.market_day, *key)
            conn.execute(
                insert(aggregator_dispatches).values(
                    dispatch_message_id=dispatch_id,
                    park_id=env.park_id,
                    market_day=env.market_day,
                    kind=kind,
                    from_interval=first,
                    award_message_id=dispatch.award_message_id,
                    award_envelope=position_env.to_json(),
                    state=state,
                    created_at=now(),
                    forecast_envelope=forecast_json,
                )
            )
            for offer_env in offers or []:
                enqueue(conn, Topic.OFFERS, offer_env)
        for offer_env in offers or []:
            rt = Offer.from_envelope(offer_env)
            log.info(
                "aggregator: real-time offer %s %s: %d intervals of %d min from %s",
                env.park_id,
                env.market_day,
                len(rt.energy),
                rt.interval_minutes,
                rt.interval_starts[0].isoformat(),
            )
        if dispatch.notes:
            log.info(
                "aggregator: dispatch %s %s %s notes: %s",
                env.park_id,
                env.market_day,
                kind,
                "; ".join(dispatch.notes),
            )


@dataclass(frozen=True)
class _DaySoFar:
    """What the aggregator has done for a park-day: what an intraday step or a real-time award re-plans from."""

    offer_row: Row
    last: Row  # the latest dispatch row
    previous: Dispatch  # its set-points
    day_ahead_offer: Offer
    day_ahead_award: Award
    position_envelope: Envelope  # the award position the latest dispatch delivers
    forecast: ForecastSet  # the forecast it was planned with

    @property
    def position(self) -> Award:
        return Award.from_envelope(self.position_envelope)


def _offer_row(conn: Connection, park_id: str, day: date) -> Row | None:
    return conn.execute(
        select(aggregator_offers).where(
            aggregator_offers.c.park_id == park_id,
            aggregator_offers.c.market_day == day,
            aggregator_offers.c.market == "day_ahead",
        )
    ).first()
