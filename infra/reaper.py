"""Nothing a command started outlives it, even when the command is SIGKILLed.

A killed process cannot clean up. Its direct children started with ``PR_SET_PDEATHSIG`` die
with it, but grandchildren do not: Ray's DashboardAgent and RuntimeEnvAgent, started by the
raylet, are re-parented to init and live on. :func:`start_reaper` starts a small sidecar
(``python -m infra.reaper PID``) in its own session that keeps a list of the process's
descendants (psutil) and, once the process is gone, terminates those still alive (same pid and
start time, so a reused pid is never touched), killing any that ignore SIGTERM after a grace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil

POLL_S = 0.5
GRACE_S = 3.0

_lock = threading.Lock()
_started: subprocess.Popen[bytes] | None = None


def start_reaper() -> None:
    """Watch this process (once per process); the sidecar exits after reaping."""
    global _started
    with _lock:
        if _started is not None and _started.poll() is None:
            return
        _started = subprocess.Popen(
            [sys.executable, "-m", "infra.reaper", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or a group kill of the command must not take it first
        )


def _descendants(root: psutil.Process) -> dict[int, float]:
    found: dict[int, float] = {}
    for child in root.children(recursive=True):
        try:
            found[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return found


def _same(pid: int, created: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return proc if proc.create_time() == created and proc.is_running() else None
    except psutil.Error:
        return None


def reap(pid: int, poll_s: float = POLL_S, grace_s: float = GRACE_S) -> list[int]:
    """Follow ``pid``'s descendants until it dies, then end those still alive; returns their pids."""
    me = os.getpid()
    known: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
            known.update(_descendants(root))
            known.pop(me, None)
            known = {p: c for p, c in known.items() if _same(p, c) is not None}
            time.sleep(poll_s)
    except psutil.Error:
        pass
    left = [proc for p, c in known.items() if (proc := _same(p, c)) is not None]
    for proc in left:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(left, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue
    return [proc.pid for proc in left]


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap(int(sys.argv[1]))
