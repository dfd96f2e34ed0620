"""Leases and schema migration across processes: one run per park and day, prompt expiry, fencing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.db import make_engine, migrate
from infra.embedded import Endpoints
from infra.locks import LeaseLost, LockBusy, lease

MIGRATE = "import sys; from infra.db import migrate; migrate(sys.argv[1]); print('ok')"
HOLD = """
import sys, time
from infra.locks import lease
with lease(sys.argv[1], sys.argv[2], sys.argv[3] or None, ttl_s=3.0):
    print("held", flush=True)
    time.sleep(600)
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def test_concurrent_first_migrations_all_succeed(db_url: str) -> None:
    procs = [_python(MIGRATE, db_url) for _ in range(3)]
    outcomes = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outcomes]


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_a_lease_is_exclusive_and_ends_when_its_holder_is_killed(
    db_url: str, backend: str, services: Endpoints
) -> None:
    migrate(db_url)
    redis_url = services.redis_url if backend == "redis" else None
    name = f"run-day:test:{backend}:{os.getpid()}"
    holder = _python(HOLD, name, db_url, redis_url or "")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held", holder.stderr
        with (
            pytest.raises(LockBusy, match="already running elsewhere"),
            lease(name, db_url, redis_url, ttl_s=2),
        ):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10  # Redis leases lapse after ttl_s; the others at once
        while True:
            try:
                with lease(name, db_url, redis_url, ttl_s=2) as held:
                    held.check()
                    assert held.fence >= 2  # a new fencing token after the killed holder's
                break
            except LockBusy:
                assert time.monotonic() < deadline, "the killed holder's lease did not end"
                time.sleep(0.5)
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_later_holder_fences_off_an_earlier_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    migrate(url)
    with lease("fence-test", url) as first:
        first.check()
        from infra.locks import _next_fence  # a second acquisition, as after a lost Redis key

        _next_fence(make_engine(url), "fence-test")
        with pytest.raises(LeaseLost, match="superseded"):
            first.check()
