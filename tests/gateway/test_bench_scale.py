"""``parkvpp bench scale``: a whole market day for a generated park, with messages under the
chunk limit, a consumer group sharing the dispatch and the parallel stages agreeing with the
sequential ones (the benchmark raises if they differ)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 2000  # above aggregator.scale.POOL_ABOVE_ASSETS, and over the market's 5 MW minimum offer
CHUNK_BYTES = 65536  # small chunks, so this small park's dispatch is split


@pytest.mark.slow
def test_bench_scale_runs_a_market_day_in_chunks_shared_by_a_consumer_group(postgres_url, tmp_path):
    env = {
        **os.environ,
        "PARKVPP_DATABASE_URL": postgres_url,
        "PARKVPP_RUN_DIR": str(tmp_path),
        "PARKVPP_MESSAGE_CHUNK_BYTES": str(CHUNK_BYTES),
        "PARKVPP_RAY_NUM_CPUS": "2",
        "RAY_AUTH_MODE": "disabled",
    }
    env.pop("PARKVPP_KAFKA_BOOTSTRAP", None)
    parkvpp = str(Path(sys.executable).with_name("parkvpp"))
    done = subprocess.run(
        [parkvpp, "bench", "scale", "--devices", str(DEVICES), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    f = json.loads(done.stdout)
    assert set(f["stage_seconds"]) == {
        "registry", "history", "forecast", "offer", "bid", "clear",
        "disaggregate", "dispatch", "delivery_metering", "metering", "settlement",
    }  # fmt: skip
    assert f["virtual_devices"] < DEVICES
    assert f["market_scale"] == 1.0  # 2,000 devices fit the province's bidding space
    assert f["dispatch_max_deviation_mw"] < 0.01  # the award is delivered
    # The pooled offer keeps the energy for hours of forecast error (its holds, aggregator/holds.py).
    assert (
        f["offer_solves"] >= 1
        and f["offer_energy_at_risk_max_mwh"] <= 0.01
        and f["offer_intervals_at_risk"] == 0
    )
    assert f["dispatch_chunks"] >= 2 and f["largest_message_bytes"] <= CHUNK_BYTES
    assert f["dispatch_whole_bytes"] > CHUNK_BYTES
    assert all(share > 0 for share in f["dispatch_consumer_shares"])  # the group shared the chunks
    assert f["metering_chunks"] >= 2 and all(share > 0 for share in f["metering_consumer_shares"])
    assert f["metered_values"] == (DEVICES + 2) * 96  # every device and the site metered into the store
    assert f["settlement_statements"] >= 2
    assert set(f["ray_speedup"]) == {"forecast", "delivery_metering", "settlement"}
    assert 0 < f["peak_memory_gib"] < 8
    assert "forecast sequential reference" in done.stderr  # progress on stderr
