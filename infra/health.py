"""Are the broker, Redis and the database reachable? Checked with a bounded retry budget.

A run or a worker that loses one of them stops within ``budget_s`` plus one check interval
and says which component failed and why, instead of waiting out a stage timeout and blaming
the service that produced nothing. Retries use tenacity (exponential backoff, bounded time).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, text
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_delay, wait_exponential


class ComponentDown(RuntimeError):
    """A component stayed unreachable for the whole retry budget; the message names it."""


@dataclass(frozen=True)
class Component:
    name: str
    check: Callable[[], None]  # raises when unreachable


def kafka_component(bootstrap: str) -> Component:
    def check() -> None:
        errors = []
        for server in bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                    return
            except OSError as exc:
                errors.append(f"{server}: {exc.__class__.__name__}: {exc.strerror or exc}")
        raise ConnectionError("; ".join(errors))

    return Component(f"Kafka broker at {bootstrap}", check)


def redis_component(url: str) -> Component:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return Component(f"Redis at {url}", lambda: client.ping() and None)


def database_component(engine: Engine) -> Component:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return Component(f"database {engine.url.render_as_string(hide_password=True).split('?')[0]}", check)


def ensure_up(components: list[Component], budget_s: float) -> None:
    """Return when every component answers; raise :class:`ComponentDown` naming the first that
    stays down for ``budget_s`` seconds."""
    for component in components:

        @retry(
            stop=stop_after_delay(budget_s),
            wait=wait_exponential(multiplier=0.25, max=2),
            retry=retry_if_exception_type(Exception),
            reraise=False,
        )
        def probe(c: Component = component) -> None:
            c.check()

        try:
            probe()
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise ComponentDown(
                f"{component.name} is unreachable ({type(cause).__name__}: {cause}); "
                f"retried for {budget_s:g} s"
            ) from cause
