"""The embedded broker and Redis are real servers that start and stop cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from infra.embedded import local_services
from infra.kafka import ensure_topics
from infra.settings import Settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def _child_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_start_serve_and_stop(tmp_path: Path) -> None:
    before = _child_pids()
    with local_services(Settings(run_dir=tmp_path)) as ep:
        ensure_topics(ep.kafka_bootstrap)
        assert redis.Redis.from_url(ep.redis_url).ping()
        children = _child_pids() - before
        assert len(children) == 2
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)


def test_servers_stop_when_the_block_raises(tmp_path: Path) -> None:
    before = _child_pids()
    with pytest.raises(RuntimeError, match="boom"), local_services(Settings(run_dir=tmp_path)):
        children = _child_pids() - before
        raise RuntimeError("boom")
    time.sleep(0.2)
    assert children and not any(_alive(pid) for pid in children)


def _as_from_a_shell() -> None:
    """The owner starts with default signal handling, as a command typed in a shell does: ignored or
    blocked signals are inherited through exec, and this test session's Ray threads may leave
    SIGINT so, which made the owner deaf to the Ctrl-C this test sends."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_no_orphans_when_the_owner_is_interrupted_or_killed(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) stops children in order; SIGKILL of the owner takes them down too."""
    script = (
        "import sys, time, pathlib\n"
        "from infra.embedded import local_services\n"
        "from infra.settings import Settings\n"
        f"with local_services(Settings(run_dir=pathlib.Path({str(tmp_path)!r}))):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    for sig in (signal.SIGINT, signal.SIGKILL):
        owner = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, preexec_fn=_as_from_a_shell
        )
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        out = subprocess.run(["pgrep", "-P", str(owner.pid)], capture_output=True, text=True).stdout
        children = {int(p) for p in out.split()}
        assert len(children) == 2
        owner.send_signal(sig)
        owner.wait(45)  # stopping two servers takes up to 2 x 5 s grace; generous under machine load
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), f"children left running after {sig.name}"


def test_configured_urls_start_nothing(tmp_path: Path) -> None:
    before = _child_pids()
    settings = Settings(run_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", redis_url="redis://127.0.0.1:6379/0")
    with local_services(settings) as ep:
        assert ep.kafka_bootstrap == "127.0.0.1:1" and ep.redis_url.endswith(":6379/0")
        assert _child_pids() == before
