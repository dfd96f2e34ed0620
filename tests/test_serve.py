"""`parkvpp serve` and `parkvpp worker` as a user runs them: real process, real servers, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.embedded import free_port

PARKVPP = str(Path(sys.executable).with_name("parkvpp"))


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = {int(p) for p in out.split()}
    return children | {d for c in children for d in _descendants(c)}


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_serve_answers_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PARKVPP_RUN_DIR": str(tmp_path)}
    for key in ("PARKVPP_KAFKA_BOOTSTRAP", "PARKVPP_REDIS_URL", "PARKVPP_DATABASE_URL"):
        env.pop(key, None)
    added = subprocess.run(
        [PARKVPP, "users", "add", "first_admin", "--role", "admin", "--password-stdin"],
        input="a-long-password\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    proc = subprocess.Popen(
        [PARKVPP, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not answer within 90 s"
            time.sleep(0.3)
        token = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data={"username": "first_admin", "password": "a-long-password"},
            timeout=10,
        ).json()["access_token"]
        parks = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/parks", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        assert {p["id"] for p in parks} == {"datong", "chifeng"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/parks", timeout=5).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 200
        children = _descendants(proc.pid)
        assert len(children) >= 2, "embedded Kafka and Redis run as child processes"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in children)


def test_worker_rejects_an_unknown_name() -> None:
    result = subprocess.run([PARKVPP, "worker", "accountant"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no worker named 'accountant'; choose one of: aggregator, bidding" in result.stdout
