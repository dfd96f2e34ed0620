"""Ray started from a thread outlives the thread (run-day's forecast stage starts it from one).

Ray's node processes die with the thread that started them (``PR_SET_PDEATHSIG``), so a
process whose first forecast ran on a worker thread lost its raylet when that thread ended,
and its next run-day died silently. A fresh interpreter is needed: this session's Ray may
already be running.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import threading, time
from infra.ray import ensure_ray, shutdown_ray

starter = threading.Thread(target=ensure_ray)
starter.start()
starter.join()
time.sleep(3)  # the raylet used to be killed as soon as the starting thread ended
ray = ensure_ray()
print("sum", sum(ray.get([ray.remote(lambda x: x * x).remote(i) for i in range(4)], timeout=60)))
shutdown_ray()
"""


def test_ray_started_on_a_finished_thread_still_runs_tasks() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PARKVPP_RAY_NUM_CPUS": "1", "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sum 14" in done.stdout
