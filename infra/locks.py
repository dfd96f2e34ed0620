"""Leases that keep one run per park and day, across processes and machines.

A lease is held while its owner lives and ends promptly when it dies:

* on a shared Redis (``PARKVPP_REDIS_URL`` set): a key with a short expiry that a background
  thread renews while the owner runs (a killed owner's lease lapses within ``ttl_s``);
* otherwise on the database: a PostgreSQL session advisory lock, or an exclusive ``flock`` on
  a file beside the SQLite database; the server or the kernel drops it when the holder dies.

Every acquisition takes a new fencing token (a counter in ``run_fences``); the holder checks
with :meth:`Lease.check` before it writes that no later holder has taken the lease since.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis
from sqlalchemy import Connection, Engine, select, text, update

from infra.db.engine import insert_ignore, make_engine
from infra.db.tables import run_fences
from infra.filelock import FileLockBusy, file_lock


class LockBusy(RuntimeError):
    """Another process holds the lease."""


class LeaseLost(RuntimeError):
    """The lease ended or a later holder took it: the holder must stop writing."""


def _next_fence(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        insert_ignore(conn, run_fences, [{"name": name, "fence": 0}], ["name"])
        conn.execute(update(run_fences).where(run_fences.c.name == name).values(fence=run_fences.c.fence + 1))
        return int(conn.execute(select(run_fences.c.fence).where(run_fences.c.name == name)).scalar_one())


def current_fence(conn: Connection, name: str) -> int:
    return int(
        conn.execute(select(run_fences.c.fence).where(run_fences.c.name == name)).scalar_one_or_none() or 0
    )


class Lease:
    """A held lease with its fencing token."""

    def __init__(self, name: str, engine: Engine, fence: int, backend: str) -> None:
        self.name, self.engine, self.fence, self.backend = name, engine, fence, backend
        self.lost_reason: str | None = None

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless this lease is still held and still the newest."""
        if self.lost_reason is None:
            with self.engine.connect() as conn:
                newest = current_fence(conn, self.name)
            if newest != self.fence:
                self.lost_reason = f"fencing token {self.fence} was superseded by {newest}"
        if self.lost_reason is not None:
            raise LeaseLost(f"lease {self.name} lost ({self.backend}): {self.lost_reason}")


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _postgres(engine: Engine, name: str) -> Iterator[None]:
    conn = engine.connect()
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(name)}).scalar_one()
        conn.commit()
        if not got:
            raise LockBusy(
                f"{name} is already running elsewhere (PostgreSQL advisory lock); wait for it to finish"
            )
        yield
    finally:
        conn.close()  # closing the session releases the advisory lock


def _lock_file(database_url: str, name: str) -> Path:
    path = Path(database_url.split("///", 1)[-1])
    safe = hashlib.sha256(name.encode()).hexdigest()[:16]
    return path.parent / ".locks" / f"{path.name}.{safe}.lock"


@contextlib.contextmanager
def _file(path: Path, name: str) -> Iterator[None]:
    try:
        with file_lock(path, blocking=False):
            yield
    except FileLockBusy as exc:
        raise LockBusy(
            f"{name} is already running elsewhere (lock file {path}); wait for it to finish"
        ) from exc


@contextlib.contextmanager
def _redis(url: str, name: str, ttl_s: float, lease: list[Lease]) -> Iterator[None]:
    r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    key, token = f"parkvpp:lease:{name}", uuid.uuid4().hex
    ttl_ms = int(ttl_s * 1000)
    if not r.set(key, token, nx=True, px=ttl_ms):
        raise LockBusy(f"{name} is already running elsewhere (Redis key {key}); wait for it to finish")
    stop = threading.Event()

    def renew() -> None:
        script = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
        while not stop.wait(ttl_s / 3):
            try:
                renewed = r.eval(script, 1, key, token, ttl_ms)
            except redis.RedisError as exc:
                renewed, why = 0, f"Redis unreachable while renewing: {exc}"
            else:
                why = "the Redis key expired or was taken by another holder"
            if not renewed:
                if lease:
                    lease[0].lost_reason = why
                return

    thread = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            r.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                1,
                key,
                token,
            )


@contextlib.contextmanager
def lease(
    name: str, database_url: str, shared_redis_url: str | None = None, ttl_s: float = 15.0
) -> Iterator[Lease]:
    """Hold lease ``name`` for the block, or raise :class:`LockBusy` at once if someone else does."""
    engine = make_engine(database_url)
    holder: list[Lease] = []
    if shared_redis_url:
        backend, ctx = "redis", _redis(shared_redis_url, name, ttl_s, holder)
    elif database_url.startswith("postgresql"):
        backend, ctx = "postgresql", _postgres(engine, name)
    else:
        backend, ctx = "file", _file(_lock_file(database_url, name), name)
    with ctx:
        holder.append(Lease(name, engine, _next_fence(engine, name), backend))
        yield holder[0]
