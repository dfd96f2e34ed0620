"""Redis access: a client from a URL and a lock that keeps one run per park and day."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import redis


class LockBusy(RuntimeError):
    """Another process holds the lock."""


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


@contextlib.contextmanager
def exclusive(r: redis.Redis, name: str, ttl_s: int = 1800) -> Iterator[None]:
    """Hold ``lock:{name}`` for the duration of the block; fail fast if someone else holds it."""
    token = uuid.uuid4().hex
    key = f"parkvpp:lock:{name}"
    if not r.set(key, token, nx=True, ex=ttl_s):
        raise LockBusy(f"{name} is already running elsewhere (Redis key {key}); wait for it to finish")
    try:
        yield
    finally:
        # Release only our own lock (compare-and-delete).
        r.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
            1,
            key,
            token,
        )
