"""All service workers and the outbox relay as threads of one process, over a real broker.

``run-day`` and ``serve`` use this; in production each worker can also run on its own
(``parkvpp worker NAME``). Workers join their consumer groups in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Engine

from gateway.services import WORKERS, make_worker
from infra.kafka import make_producer
from infra.worker import WorkerThread, abandon_producer, run_relay

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """A worker thread died or never joined its consumer group."""


class Pipeline:
    def __init__(self, engine: Engine, kafka_bootstrap: str, names: tuple[str, ...] = tuple(WORKERS)) -> None:
        self.engine = engine
        self.threads = [WorkerThread(make_worker(n, engine, kafka_bootstrap)) for n in names]
        self._relay_stop = threading.Event()
        self._relay_abandon = threading.Event()
        self._kafka_bootstrap = kafka_bootstrap
        self._relay_producer: KafkaProducer | None = None  # ours, so a failed run can abandon it
        self._relay_error: KafkaError | None = None
        self._relay = threading.Thread(target=self._run_relay, name="outbox-relay", daemon=True)

    def _run_relay(self) -> None:
        try:
            self._relay_producer = make_producer(self._kafka_bootstrap)
        except KafkaError as exc:  # reported by check_alive, where run-day asks the health watch why
            self._relay_error = exc
            return
        run_relay(
            self.engine,
            self._kafka_bootstrap,
            self._relay_stop,
            0.2,
            self._relay_abandon,
            self._relay_producer,
        )

    def __enter__(self) -> Pipeline:
        for thread in self.threads:
            thread.start()
        self._relay.start()
        return self

    def wait_ready(self, timeout_s: float = 60.0, watch: Callable[[], None] | None = None) -> None:
        """Block until every worker has its partitions (consumer group joined); ``watch`` is called
        while waiting, so a component that went away is reported before the worker it stalls."""
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            while not thread.ready_event.wait(0.2):
                if watch is not None:
                    watch()
                self.check_alive()
                if time.monotonic() > deadline:
                    raise PipelineError(
                        f"worker {thread.worker.group} did not join its consumer group in {timeout_s:.0f} s"
                    )

    def check_alive(self) -> None:
        if self._relay_error is not None:
            raise PipelineError(f"outbox relay could not start: {self._relay_error!r}")
        for thread in self.threads:
            if thread.error is not None or (thread.ident is not None and not thread.is_alive()):
                raise PipelineError(f"worker {thread.worker.group} stopped: {thread.error!r}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        failed = exc is not None
        if failed:  # don't wait on a broker that may be gone: the stored facts are published on the next run
            self._relay_abandon.set()
        self._relay_stop.set()
        self._relay.join(2 if failed else 30)
        if self._relay.is_alive() and self._relay_producer is not None:  # blocked on a broker that is gone
            abandon_producer(self._relay_producer)
        for thread in self.threads:
            thread.stop(1 if failed else 10)
