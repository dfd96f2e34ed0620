"""Ray, started once per process: local Ray by default, a cluster when ``RAY_ADDRESS`` is set.

Local Ray uses ``PARKVPP_RAY_NUM_CPUS`` cores (default: all) and is shut down at exit; a
reaper (:mod:`infra.reaper`) ends the Ray processes a killed command leaves behind, so none
outlives the command that started it.

Ray starts its node processes with ``PR_SET_PDEATHSIG``, which fires when the *thread* that
started them ends, not the process. ``ensure_ray`` is called from worker threads (run-day's
forecast stage, service workers), so it starts Ray from a thread of its own that lives until
``shutdown_ray``; otherwise the second run-day of a process found its raylet killed.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from infra.reaper import start_reaper
from infra.settings import get_settings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
OBJECT_STORE_BYTES = 300 * 1024 * 1024  # history frames are a few MB; keep Ray's store small
_lock = threading.Lock()
_started_here = False
_release = threading.Event()  # set by shutdown_ray: the owner thread may end


def _init_on_owner_thread(init: Callable[[], Any]) -> None:
    """Run ``init`` on a thread that stays alive until ``shutdown_ray`` (see the module doc)."""
    done = threading.Event()
    failure: list[BaseException] = []

    def own() -> None:
        try:
            init()
        except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread below
            failure.append(exc)
            return
        finally:
            done.set()
        _release.wait()

    _release.clear()
    threading.Thread(target=own, name="ray-owner", daemon=True).start()
    done.wait()
    if failure:
        raise failure[0]


def ensure_ray() -> Any:
    """The initialised ``ray`` module (started on first use, reused afterwards)."""
    global _started_here
    import ray

    with _lock:
        if ray.is_initialized():
            return ray
        address = os.environ.get("RAY_ADDRESS")
        common: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address:
            log.info("connecting to the Ray cluster at %s", address)
            _init_on_owner_thread(lambda: ray.init(address=address, **common))
        else:
            cpus = get_settings().ray_num_cpus or os.cpu_count() or 1
            log.info("starting local Ray with %d CPUs", cpus)
            start_reaper()
            _init_on_owner_thread(
                lambda: ray.init(
                    num_cpus=cpus,
                    object_store_memory=OBJECT_STORE_BYTES,
                    _node_ip_address=LOOPBACK,  # local Ray listens on loopback only
                    **common,
                )
            )
        _started_here = True
        atexit.register(shutdown_ray)
    return ray


def shutdown_ray() -> None:
    """Stop Ray if this process started it (idempotent)."""
    global _started_here
    import ray

    with _lock:
        if _started_here and ray.is_initialized():
            ray.shutdown()
        _started_here = False
        _release.set()


def cluster_cpus() -> int:
    ray = ensure_ray()
    return int(ray.cluster_resources().get("CPU", 1))
