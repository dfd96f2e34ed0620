"""Measuring ``parkvpp bench scale``: stage times, peak memory of the process tree, and the
comparison of a parallel stage with its in-process reference."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil

SAMPLE_S = 0.2  # memory sampling period


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def release(sample_period_s: float = SAMPLE_S) -> None:
    """Give what earlier stages dropped back to the system before the next one is measured:
    Python frees its objects, but glibc keeps the freed blocks of a million lists until
    trimmed, which would count against every later stage (and crowd the machine at 1,000,000
    devices)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    time.sleep(1.5 * sample_period_s)  # the sampler sees what is held now, not before the release


@contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """The largest memory of this process plus its children (Ray, the broker) while the block
    runs, in GiB: ``gib`` as proportional set size (PSS: a page shared by n processes, such as
    Ray's object store, counts 1/n in each, so the sum is the memory the tree really holds),
    ``rss_gib`` as the plain sum of resident sets (counts shared pages once per process, an
    overstatement kept for comparison); ``stage_gib`` (PSS) is the largest since a caller last
    set it to 0."""
    peak = {"gib": 0.0, "rss_gib": 0.0, "stage_gib": 0.0, "now_gib": 0.0, "period_s": SAMPLE_S}
    stop = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not stop.wait(peak["period_s"]):
            started = time.perf_counter()
            pss = rss = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child may end between listing and reading
                    info = p.memory_full_info()
                    pss, rss = pss + info.pss, rss + info.rss
            peak["gib"] = max(peak["gib"], pss / 2**30)
            peak["rss_gib"] = max(peak["rss_gib"], rss / 2**30)
            peak["stage_gib"] = max(peak["stage_gib"], pss / 2**30)
            peak["now_gib"] = pss / 2**30
            # Reading PSS walks every page table: at a million devices (16 GiB) one sample took
            # most of a core; keep the sampler under a tenth of one.
            peak["period_s"] = max(SAMPLE_S, 9 * (time.perf_counter() - started))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


class Stages:
    """Times each stage, takes its peak memory and prints both as it finishes."""

    def __init__(self, peak: dict[str, float], sequential: bool = True) -> None:
        self.sequential = sequential  # run the parallel stages' in-process references too
        self.seconds: dict[str, float] = {}
        self.peak_gib: dict[str, float] = {}
        self._peak = peak

    def run(self, name: str, work: Callable[[], Any]) -> Any:
        release(self._peak["period_s"])
        say(f"{name} ... (holding {self._peak['now_gib']:.2f} GiB)")
        self._peak["stage_gib"] = self._peak["now_gib"]  # a stage shorter than a sample holds at least this
        started = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - started, 3)
        self.peak_gib[name] = round(self._peak["stage_gib"], 2)
        say(f"  {name}: {self.seconds[name]:.2f} s, peak {self.peak_gib[name]:.2f} GiB")
        return result

    def reference(self, name: str, work: Callable[[], Any]) -> tuple[Any, float]:
        """A stage's sequential reference run: its result and seconds, not part of the day."""
        release(self._peak["period_s"])
        self._peak["stage_gib"] = self._peak["now_gib"]
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        self.peak_gib[f"{name}_sequential"] = round(self._peak["stage_gib"], 2)
        say(f"  {name} sequential reference: {seconds:.2f} s, peak {self._peak['stage_gib']:.2f} GiB")
        return result, seconds


def timed_both(
    stages: Stages, name: str, run: Callable[[int], Any], workers: int, fingerprint: Callable[[Any], str]
) -> tuple[Any, float | None]:
    """Run a parallel stage with ``workers`` Ray workers (timed as the stage), then with one
    worker in this process; both must agree (by ``digest``, so no second copy of 100,000
    devices' data is kept): ``fingerprint`` is :func:`digest` or :func:`settled_digest`. Returns the Ray run's result and the speed-up (None when the
    stages' sequential references are switched off)."""
    parallel = stages.run(name, lambda: run(workers))
    if not stages.sequential:
        return parallel, None
    expected = fingerprint(parallel)
    same, seconds = stages.reference(name, lambda: fingerprint(run(1)) == expected)
    if not same:
        raise RuntimeError(f"{name}: the Ray result differs from the sequential one")
    return parallel, round(seconds / stages.seconds[name], 2)


def digest(result: Any) -> str:
    """A digest of a stage result (a model, or tuples and lists of them and numbers): equal
    results, equal digests, without keeping a second copy of 100,000 devices' data."""
    sha = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for v in value:
                feed(v)
        elif hasattr(value, "model_dump_json"):
            sha.update(value.model_dump_json().encode())
        else:
            sha.update(repr(value).encode())

    feed(result)
    return sha.hexdigest()


def settled_digest(result: Any) -> str:
    """A digest of a settled day: its statements and every asset's amounts."""
    amounts = {item: fen.tolist() for item, fen in result.asset_amounts_fen.items()}
    return digest([result.statements, repr(sorted(amounts.items()))])
