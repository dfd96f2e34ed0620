"""Operations: request ids in logs, Prometheus metrics, health of the parts, login rate limits.

* Every request gets an id (the client's ``X-Request-ID`` when it is sane, else a new one),
  returned in ``X-Request-ID``, put on every log record of the request and in problem details.
* ``/metrics`` (prometheus-client): request latency by route and status, the outbox backlog,
  consumer lag per group and topic (from the broker, when one is configured), dead letters per
  consumer, and the stage durations of each park's latest run.
* ``/health`` checks the database, Redis and the broker that are configured and answers 503
  naming the part that is down.
* Failed sign-ins are limited to 10 a minute per client address and user name (``limits``,
  moving window); the 11th attempt answers 429 even with the right password.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from infra.db.tables import dead_letters, outbox

log = logging.getLogger("parkvpp.gateway")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
LOGIN_LIMIT = RateLimitItemPerMinute(10)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        if not str(record.msg).startswith("[req "):
            record.msg = f"[req {record.request_id}] {record.msg}" if record.request_id != "-" else record.msg
        return True


class LoginLimiter:
    def __init__(self) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def allowed(self, client: str, username: str) -> bool:
        """False when this client failed to sign in as this user too often in the last minute."""
        return self.limiter.test(LOGIN_LIMIT, "login", client, username[:64].lower())

    def failed(self, client: str, username: str) -> None:
        self.limiter.hit(LOGIN_LIMIT, "login", client, username[:64].lower())


class _Collector:
    """Gauges computed at scrape time from the database (and the broker when configured)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lag_cache: tuple[float, list[tuple[str, str, int]]] = (0.0, [])

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        engine = self.app.state.engine
        backlog = GaugeMetricFamily(
            "parkvpp_outbox_unpublished", "facts stored but not yet published to Kafka"
        )
        dead = GaugeMetricFamily(
            "parkvpp_dead_letters", "messages refused by a consumer", labels=["consumer"]
        )
        try:
            with engine.connect() as conn:
                backlog.add_metric(
                    [],
                    conn.execute(
                        select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                    ).scalar_one(),
                )
                for consumer, n in conn.execute(
                    select(dead_letters.c.consumer, func.count()).group_by(dead_letters.c.consumer)
                ):
                    dead.add_metric([consumer], n)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("metrics: database unreachable")
        yield backlog
        yield dead
        lag = GaugeMetricFamily(
            "parkvpp_consumer_lag", "messages not yet consumed", labels=["group", "topic", "partition"]
        )
        for group, topic, partition, n in self._lags():
            lag.add_metric([group, topic, str(partition)], n)
        yield lag
        stages = GaugeMetricFamily(
            "parkvpp_stage_seconds", "stage durations of each park's latest run-day", labels=["park", "stage"]
        )
        for park, stage, seconds in _latest_stages(self.app.state.settings.run_dir):
            stages.add_metric([park, stage], seconds)
        yield stages

    def _lags(self) -> list[Any]:
        bootstrap = self.app.state.settings.kafka_bootstrap
        if not bootstrap:
            return []
        at, cached = self._lag_cache
        if time.monotonic() - at < 15:
            return cached
        found: list[Any] = []
        try:
            from kafka import KafkaAdminClient, KafkaConsumer

            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                for group_id, _ in [g[:2] for g in admin.list_consumer_groups()]:
                    offsets = admin.list_consumer_group_offsets(group_id)
                    ends = consumer.end_offsets(list(offsets))
                    for tp, meta in offsets.items():
                        found.append(
                            (group_id, tp.topic, tp.partition, max(ends.get(tp, 0) - meta.offset, 0))
                        )
            finally:
                consumer.close()
                admin.close()
        except Exception:  # noqa: BLE001 - lag is best effort; /health reports the broker
            log.warning("metrics: consumer lag unavailable from %s", bootstrap)
        self._lag_cache = (time.monotonic(), found)
        return found


def _latest_stages(run_dir: Path) -> list[tuple[str, str, float]]:
    latest: dict[str, tuple[float, dict[str, float]]] = {}
    for summary in Path(run_dir).glob("*/*/summary.json"):
        try:
            mtime = summary.stat().st_mtime
            park = summary.parent.parent.name
            if park not in latest or mtime > latest[park][0]:
                latest[park] = (
                    mtime,
                    json.loads(summary.read_text(encoding="utf-8")).get("stage_seconds", {}),
                )
        except (OSError, ValueError):
            continue
    return [(p, s, float(v)) for p, (_, stages) in sorted(latest.items()) for s, v in stages.items()]


def _tcp(address: str, timeout: float = 2.0) -> None:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
        pass


def health(app: FastAPI) -> tuple[bool, dict[str, str]]:
    """Each configured part: ``ok``, ``not configured`` or the reason it is down."""
    settings = app.state.settings
    parts: dict[str, str] = {}
    try:
        with app.state.engine.connect() as conn:
            conn.execute(text("select 1"))
        parts["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        parts["database"] = f"down: {type(exc).__name__}"
    if settings.redis_url:
        try:
            import redis

            redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            parts["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            parts["redis"] = f"down: {type(exc).__name__}"
    else:
        parts["redis"] = "not configured"
    if settings.kafka_bootstrap:
        try:
            for address in settings.kafka_bootstrap.split(","):
                _tcp(address.strip())
            parts["broker"] = "ok"
        except (OSError, ValueError) as exc:
            parts["broker"] = f"down: {type(exc).__name__}"
    else:
        parts["broker"] = "not configured"
    return all(v in ("ok", "not configured") for v in parts.values()), parts


def install(app: FastAPI) -> None:
    registry = CollectorRegistry()
    latency = Histogram(
        "parkvpp_http_request_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    registry.register(_Collector(app))
    app.state.metrics_registry = registry
    app.state.login_limiter = LoginLimiter()
    root = logging.getLogger("parkvpp")
    if not any(isinstance(f, _RequestIdFilter) for f in root.filters):
        root.addFilter(_RequestIdFilter())
    log.addFilter(_RequestIdFilter())

    @app.middleware("http")
    async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("x-request-id", "")
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex[:16]
        request.state.request_id = rid
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            latency.labels(request.method, template, str(status)).observe(time.perf_counter() - started)
            if status >= 500:
                log.error("%s %s -> %s", request.method, request.url.path, status)
            REQUEST_ID.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
