"""Per-chunk work (a cluster's or an enterprise's devices) run in parallel Ray tasks.

``map_chunks(fn, chunks, workers)`` returns ``[fn(chunk, shared) for chunk in chunks]`` in
order, whatever runs it: ``workers=1`` runs in this process (the sequential reference),
otherwise Ray tasks with at most ``workers`` in flight (``None``: every CPU of the Ray
cluster, :mod:`infra.ray`, which follows ``RAY_ADDRESS``). ``shared`` is put into Ray's
object store once, not copied into every task. ``fn`` must be a module-level function so
that another node can import it; results must not depend on which worker computed them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from infra.ray import cluster_cpus, ensure_ray

C = TypeVar("C")
R = TypeVar("R")


def _call(fn: Callable[[Any, Any], Any], chunk: Any, shared: Any) -> Any:
    return fn(chunk, shared)


def map_chunks(
    fn: Callable[[C, Any], R],
    chunks: Sequence[C],
    workers: int | None = None,
    shared: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``fn(chunk, shared)`` for every chunk, in order; ``progress(done, total)`` after each."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers: {workers} is not a positive number of workers")
    total = len(chunks)
    if workers == 1 or total <= 1:
        results = []
        for i, chunk in enumerate(chunks):
            results.append(fn(chunk, shared))
            if progress:
                progress(i + 1, total)
        return results
    ray = ensure_ray()
    limit = min(workers or cluster_cpus(), total)
    task = ray.remote(num_cpus=1, max_retries=1)(_call)
    shared_ref = ray.put(shared)
    pending: dict[Any, int] = {}
    out: dict[int, R] = {}
    following = 0
    while following < total or pending:
        while following < total and len(pending) < limit:
            pending[task.remote(fn, chunks[following], shared_ref)] = following
            following += 1
        done, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done[0])
        out[index] = ray.get(done[0])
        if progress:
            progress(len(out), total)
    return [out[i] for i in range(total)]
