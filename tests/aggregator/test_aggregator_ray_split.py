"""Disaggregation of virtual devices as Ray tasks: the same set-points whatever runs it.

One worker runs in-process (the reference); two Ray workers, or a two-node Ray cluster that
the test starts on loopback and names in ``RAY_ADDRESS``, must give identical arrays.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aggregator.bench_data import generate_portfolio
from aggregator.scale import aggregate
from tests.aggregator.aggregator_tools import solve_offer

ROOT = Path(__file__).resolve().parents[2]
T, DT = 96, 0.25

SPLIT = """
import hashlib, sys
import numpy as np
from tests.aggregator.test_aggregator_ray_split import split_digest
print("digest", split_digest(int(sys.argv[1])))
"""


def _pooled():
    from infra.scenario import load_scenario

    carbon = load_scenario("datong").park.carbon
    load = np.full(T, 120.0)
    pv = 40 * np.clip(np.sin((np.arange(T) / 4 - 6) / 12 * np.pi), 0, None)
    portfolio, profiles = generate_portfolio(300, load, pv, carbon, heterogeneous=True)
    pooled = aggregate(portfolio, profiles, T, DT)
    return pooled, solve_offer(pooled.virtual, pooled.profiles)


def split_digest(workers: int) -> str:
    """SHA-256 of every fleet's split set-points (kind order, exact bytes)."""
    pooled, solution = _pooled()
    points = pooled.split(solution, workers=workers)
    digest = hashlib.sha256()
    for kind in sorted(points):
        digest.update(kind.encode() + np.ascontiguousarray(points[kind]).tobytes())
    return digest.hexdigest()


def test_the_dispatch_split_is_identical_with_one_and_two_ray_workers():
    pooled, solution = _pooled()
    one = pooled.split(solution, workers=1)
    two = pooled.split(solution, workers=2)
    assert sorted(one) == sorted(two) and len(one) >= 4
    for kind in one:
        assert np.array_equal(one[kind], two[kind]), kind
    # the split delivers the virtual schedule: nothing lost between workers
    assert np.allclose(sum(p.sum(axis=1) for p in two.values()), solution.injection, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_node(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    ray = str(Path(sys.executable).with_name("ray"))
    return subprocess.Popen(
        [
            ray,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            "--disable-usage-stats",
            "--object-store-memory=200000000",
            *args,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the test stops exactly this node
    )


def _stop(node: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(node.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_two_node_ray_cluster_named_in_ray_address_gives_the_same_split(tmp_path):
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    temp_dir = Path("/tmp") / f"rt{os.getpid()}"  # Ray's socket paths must stay short
    head = _ray_node(
        [
            "--head",
            f"--port={port}",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
        ],
        env,
    )
    nodes = [head]
    try:
        time.sleep(8)
        nodes.append(_ray_node([f"--address=127.0.0.1:{port}"], env))
        address = f"127.0.0.1:{port}"
        status = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = subprocess.run(
                [str(Path(sys.executable).with_name("ray")), "status", f"--address={address}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ).stdout
            if "2.0/2.0 CPU" in status or "0.0/2.0 CPU" in status:
                break
            time.sleep(2)
        assert "2.0 CPU" in status, status
        done = subprocess.run(
            [sys.executable, "-c", SPLIT, "2"],
            cwd=ROOT,
            env={**env, "RAY_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"digest {split_digest(1)}" in done.stdout
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp_dir, ignore_errors=True)
