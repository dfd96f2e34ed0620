"""A SIGKILLed command leaves no process behind, as Ray's agents did (issue 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

# The command: starts the reaper, then a child that starts a grandchild and outlives nothing on
# its own; the child dies with the command (PR_SET_PDEATHSIG), the grandchild would not.
COMMAND = """
import ctypes, signal, subprocess, sys, time
from infra.reaper import start_reaper
start_reaper()
child = subprocess.Popen(
    [sys.executable, "-c", "import subprocess, sys, time; "
     "g = subprocess.Popen(['sleep', '600']); print(g.pid, flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE,
    preexec_fn=lambda: ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL),
)
print(child.stdout.readline().decode().strip(), flush=True)
time.sleep(600)
"""


def _gone(pid: int, created: float, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != created or proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def test_grandchildren_of_a_sigkilled_command_are_ended() -> None:
    repo = Path(__file__).resolve().parents[2]
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND],
        stdout=subprocess.PIPE,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert command.stdout is not None
    grandchild = int(command.stdout.readline())
    created = psutil.Process(grandchild).create_time()
    time.sleep(1.5)  # the reaper has seen the grandchild
    command.send_signal(signal.SIGKILL)
    command.wait(10)
    try:
        assert _gone(grandchild, created, within_s=10), "the grandchild outlived the killed command"
    finally:
        if not _gone(grandchild, created, within_s=0):
            os.kill(grandchild, signal.SIGKILL)


def test_without_the_reaper_the_grandchild_would_outlive_it() -> None:
    """The drill's premise: PR_SET_PDEATHSIG alone does not reach grandchildren."""
    repo = Path(__file__).resolve().parents[2]
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND.replace("start_reaper()", "pass")],
        stdout=subprocess.PIPE,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert command.stdout is not None
    grandchild = int(command.stdout.readline())
    created = psutil.Process(grandchild).create_time()
    command.send_signal(signal.SIGKILL)
    command.wait(10)
    try:
        assert not _gone(grandchild, created, within_s=3)
    finally:
        os.kill(grandchild, signal.SIGKILL)
