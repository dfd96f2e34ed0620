"""Fault drills: real parts broken on purpose, and what held.

Each drill runs the real system: ``parkvpp run-day`` as a subprocess with its own
``PARKVPP_RUN_DIR``, the embedded Kafka-protocol broker and Redis, SQLite (or PostgreSQL in a
fresh schema), then breaks one thing and checks the outcome against an undisturbed reference
run of the same park and day:

* **facts lost / duplicated / changed**: the stored facts (outbox rows by message id and
  payload digest, ledger entries by id and content) of the disturbed run after its resume,
  compared with the reference run's; payloads must be byte-identical;
* **tamper cases detected**: ``parkvpp ledger verify`` must fail on every tampered copy;
* **time to the true cause**: seconds from the fault until a message naming the component or
  the refused message was reported (a run's error line, the next run's recovery line, a
  dead-letter row, the verify verdict). The bar is 30 s.

The reference run is the winner of the concurrent-runs drill (two runs of a fresh database
started at once); online SQLite backups taken while it runs (after the history, after the
forecast) let later drills start mid-day without forecasting again. Only a representative
subset of stages is disturbed (``KILL_RUN_STAGES``, ``KILL_BROKER_STAGES``) so that
``parkvpp drill all`` stays within about 20 minutes on a quiet two-core machine (33 min measured
with the machine shared with other test runs, load average 10-13).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DRILLS = (
    "concurrent-runs",
    "kill-run",
    "kill-broker",
    "kill-worker",
    "tamper-ledger",
    "forged-messages",
    "malformed-messages",
)
KILL_RUN_STAGES = ("forecast", "offer", "awards", "delivery", "settlement")
KILL_BROKER_STAGES = ("history", "forecast", "offer", "awards", "delivery")
CAUSE_LIMIT_S = 30.0
FORECAST_KILL_DELAY_S = 8.0  # into the Ray forecast, so its worker processes are running
RUN_TIMEOUT_S = 900.0

# run-day's progress lines (gateway/commands.py prints "<elapsed>s <stage> ...").
STAGE_LINES = {
    "history": r"^\s*[\d.]+s history ",
    "workers": r"^\s*[\d.]+s workers ",
    "forecast": r"^\s*[\d.]+s forecast\s+running",
    "forecast-done": r"^\s*[\d.]+s forecast\s+done",
    "offer": r"^\s*[\d.]+s offer\s+done",
    "bids": r"^\s*[\d.]+s bids\s+done",
    "awards": r"^\s*[\d.]+s awards\s+done",
    "dispatch": r"^\s*[\d.]+s dispatch\s+done",
    "delivery": r"^\s*[\d.]+s delivery\s+done",
    "settlement": r"^\s*[\d.]+s settlement\s+done",
}
CLI = "import sys; sys.argv[0] = 'parkvpp'; from gateway.cli import main; main()"
CLEARED_ENV = (
    "PARKVPP_RUN_DIR",
    "PARKVPP_DATABASE_URL",
    "PARKVPP_KAFKA_BOOTSTRAP",
    "PARKVPP_REDIS_URL",
    "PARKVPP_KEYS_DIR",
    "PARKVPP_KEYS_GENERATE",
    "PARKVPP_LEDGER_KEY_FILE",
    "PARKVPP_LEDGER_PUBLIC_KEY_FILE",
    "PARKVPP_LEDGER_ANCHOR_DIR",
)
Progress = Callable[[str], None]


class DrillError(RuntimeError):
    """A drill could not be set up (not a finding about the system under test)."""


@dataclass
class Case:
    """One disturbance and what held."""

    drill: str
    case: str
    held: bool = True
    facts_lost: int | None = None
    facts_duplicated: int | None = None
    facts_changed: int | None = None
    tamper_detected: bool | None = None
    cause: str = ""
    cause_s: float | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.held = False
        self.problems.append(message)


# --- processes -------------------------------------------------------------------------------


def child_env(run_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(PARKVPP_RUN_DIR=str(run_dir), PYTHONUNBUFFERED="1", COLUMNS="250", NO_COLOR="1")
    env.update(extra)
    return env


class Command:
    """A ``parkvpp`` subprocess whose output lines are kept with their arrival time."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.exited_at: float | None = None
        self._log = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by the reader
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
            preexec_fn=_die_with_drill,
            cwd=log_path.parent,  # not the caller's folder: `python -c` puts the cwd first on sys.path
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self._log.write(line)
        self.proc.wait()
        self.exited_at = time.monotonic()
        self._log.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.exited_at is None

    def wait_line(self, pattern: str, timeout_s: float) -> float | None:
        """Arrival time of the first line matching ``pattern``; None if the process ended or time ran out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines
            for at, line in lines[seen:]:
                if regex.search(line):
                    return at
            seen = len(lines)
            if not self.running() and seen == len(self.lines):
                return None
            time.sleep(0.05)
        return None

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            return None
        self._reader.join(5)
        return self.proc.returncode

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def error_line(self) -> str:
        for _, line in reversed(self.lines):
            if line.startswith("error:"):
                return line
        return ""

    def stop(self) -> None:
        if self.running():
            self.proc.kill()
            self.wait(10)


def _die_with_drill() -> None:  # in the child between fork and exec: never outlive the drill
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_day_command(run_dir: Path, park: str, day: date, name: str, **env: str) -> Command:
    return Command(
        ["run-day", "--park", park, "--date", day.isoformat()],
        child_env(run_dir, **env),
        run_dir / f"{name}.log",
    )


def _ppid_map() -> dict[int, int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` with its command line."""
    parents = _ppid_map()
    found, frontier = {}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                try:
                    cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
                except OSError:
                    cmd = "?"
                found[child] = cmd
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def owned_work_dirs(pid: int) -> list[Path]:
    from infra.embedded import OWNER_FILE, WORK_DIR_PREFIX

    out = []
    for folder in Path(tempfile.gettempdir()).glob(WORK_DIR_PREFIX + "*"):
        with contextlib.suppress(OSError, ValueError):
            if int((folder / OWNER_FILE).read_text().strip()) == pid:
                out.append(folder)
    return out


def sigkill_and_check(command: Command, case: Case, grace_s: float = 20.0) -> float:
    """SIGKILL the command alone; fail the case for every child process still alive ``grace_s``
    after it (children that linger but exit within the grace are noted)."""
    children = descendants(command.pid)
    killed_at = time.monotonic()
    os.kill(command.pid, signal.SIGKILL)
    command.wait(10)
    deadline = time.monotonic() + grace_s
    left = dict(children)
    lingered = 0.0
    while left and time.monotonic() < deadline:
        left = {p: c for p, c in left.items() if _alive(p)}
        lingered = time.monotonic() - killed_at
        time.sleep(0.2)
    if not left and lingered > 2:
        case.notes.append(f"children of the killed run exited {lingered:.0f} s after it")
    if left:
        names = sorted({c.split(" ")[0].rsplit("/", 1)[-1] or "?" for c in left.values()})
        case.fail(f"{len(left)} child process(es) outlived the killed run: {', '.join(names)}")
        for pid in left:  # ours (children of the run we started): don't leave them running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return killed_at


# --- stored facts ----------------------------------------------------------------------------


def stored_facts(database_url: str, park: str | None, day: date | None) -> dict[str, str]:
    """Fingerprint of the stored facts: outbox message id -> schema and payload digest, ledger
    entry id -> digest of its business content. ``park``/``day`` None: the whole database."""
    from sqlalchemy import select

    from infra.db import make_engine
    from infra.db.tables import outbox
    from settlement.tables import carbon_ledger

    out: dict[str, str] = {}
    engine = make_engine(database_url)
    with engine.connect() as conn:
        q = select(outbox.c.message_id, outbox.c.schema_name, outbox.c.payload_sha256)
        lq = select(carbon_ledger)
        if park is not None:
            q = q.where(outbox.c.park_id == park, outbox.c.market_day == day)
            lq = lq.where(carbon_ledger.c.park_id == park, carbon_ledger.c.market_day == day)
        for message_id, schema, digest in conn.execute(q):
            out[message_id] = f"{schema}:{digest}"
        for row in conn.execute(lq):
            r = row._asdict()
            body = [
                r[k]
                for k in (
                    "kind",
                    "account_id",
                    "rule",
                    "factor_version",
                    "factors",
                    "activity",
                    "postings",
                    "memo",
                )
            ]
            out["ledger:" + r["entry_id"]] = "ledger:" + hashlib.sha256(json.dumps(body).encode()).hexdigest()
    return out


def compare_facts(case: Case, reference: dict[str, str], got: dict[str, str]) -> None:
    lost = sorted(reference.keys() - got.keys())
    extra = sorted(got.keys() - reference.keys())
    changed = sorted(k for k in reference.keys() & got.keys() if reference[k] != got[k])
    case.facts_lost, case.facts_duplicated, case.facts_changed = len(lost), len(extra), len(changed)
    if lost:
        kinds = sorted({reference[k].split(":")[0] for k in lost})
        case.fail(f"{len(lost)} fact(s) lost ({', '.join(kinds)})")
    if extra:
        case.fail(f"{len(extra)} fact(s) not in the reference run (duplicated or extra)")
    if changed:
        kinds = sorted({reference[k].split(":")[0] for k in changed})
        case.fail(f"{len(changed)} fact(s) differ from the reference run ({', '.join(kinds)})")


def run_statuses(database_url: str, park: str, day: date) -> list[str]:
    from sqlalchemy import select

    from infra.db import make_engine
    from infra.db.tables import runs

    with make_engine(database_url).connect() as conn:
        return list(
            conn.execute(
                select(runs.c.status)
                .where(runs.c.park_id == park, runs.c.market_day == day)
                .order_by(runs.c.started_at)
            ).scalars()
        )


def sqlite_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'parkvpp.sqlite').resolve()}"


def sqlite_backup(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, also while another process writes to it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


# --- the lab: work folder, reference run, snapshots ------------------------------------------


class Lab:
    """Where the drills run: one folder per case, the history cache, the reference and snapshots."""

    def __init__(self, root: Path, park: str, day: date, progress: Progress, postgres_url: str | None = None):
        from infra.settings import get_settings

        self.root, self.park, self.day, self.progress = root, park, day, progress
        self.postgres_url = postgres_url
        root.mkdir(parents=True, exist_ok=True)
        self.cache = root / "history-cache"
        source = get_settings().run_dir / "history"
        if not self.cache.exists():
            if source.is_dir():
                shutil.copytree(source, self.cache)
            else:
                self.cache.mkdir()
        self.reference: dict[str, str] | None = None
        self.reference_dir: Path | None = None
        self.snapshots: dict[str, Path] = {}

    def run_dir(self, name: str, snapshot: str | None = None) -> Path:
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "history").symlink_to(self.cache.resolve(), target_is_directory=True)
        if snapshot is not None:
            source = self.snapshots[snapshot]
            shutil.copy2(source / "parkvpp.sqlite", folder / "parkvpp.sqlite")
            shutil.copytree(source / "keys", folder / "keys")
        return folder

    def take_snapshot(self, name: str, run_dir: Path) -> None:
        target = self.root / "snapshots" / name
        shutil.rmtree(target, ignore_errors=True)
        sqlite_backup(run_dir / "parkvpp.sqlite", target / "parkvpp.sqlite")
        (target / "keys").mkdir(parents=True, exist_ok=True)  # keys are made on first use
        if (run_dir / "keys").is_dir():
            shutil.copytree(run_dir / "keys", target / "keys", dirs_exist_ok=True)
        self.snapshots[name] = target

    def ensure_reference(self) -> list[Case]:
        """The reference run, from an earlier drill in the same work folder if it finished there."""
        if self.reference is not None:
            return []
        marker = self.root / "reference" / "reference.json"
        snapshots = {n: self.root / "snapshots" / n for n in ("history", "forecast")}
        if marker.is_file() and all((p / "parkvpp.sqlite").is_file() for p in snapshots.values()):
            saved = json.loads(marker.read_text(encoding="utf-8"))
            if "facts" not in saved:  # written by an older drill: the facts alone
                saved = {
                    "facts": saved,
                    "case": asdict(Case("concurrent-runs", "sqlite", notes=["earlier run"])),
                }
            self.reference, case = saved["facts"], Case(**saved["case"])
            self.reference_dir, self.snapshots = marker.parent, snapshots
            self.progress(
                f"reference: reusing the reference run in {marker.parent} (concurrent-runs case as measured then)"
            )
            return [case]
        case = concurrent_runs_sqlite(self)
        marker.write_text(json.dumps({"facts": self.reference, "case": asdict(case)}), encoding="utf-8")
        return [case]


def _timed(case: Case, t0: float) -> Case:
    case.seconds = round(time.monotonic() - t0, 1)
    return case


def _finish_check(lab: Lab, case: Case, command: Command, run_dir: Path, url: str | None = None) -> None:
    """A run that must complete: exit 0, no traceback, no run left running, same facts."""
    rc = command.wait(RUN_TIMEOUT_S)
    if rc != 0:
        case.fail(f"the rerun exited with {rc}: {command.error_line() or command.output()[-300:]}")
    if "Traceback" in command.output():
        case.fail("a traceback in the rerun's output")
    url = url or sqlite_url(run_dir)
    statuses = run_statuses(url, lab.park, lab.day)
    if "running" in statuses:
        case.fail(f"runs still marked running after the rerun: {statuses}")
    assert lab.reference is not None
    compare_facts(case, lab.reference, stored_facts(url, lab.park, lab.day))


# --- concurrent runs --------------------------------------------------------------------------


def _race(lab: Lab, run_dir: Path, env: dict[str, str]) -> tuple[Case, Command | None, Command | None]:
    """Two runs of the same park and day started at once: which one lost and how."""
    case = Case("concurrent-runs", "sqlite" if "PARKVPP_DATABASE_URL" not in env else "postgresql")
    runs = [run_day_command(run_dir, lab.park, lab.day, f"run-{i}", **env) for i in (1, 2)]
    started = min(r.started for r in runs)
    deadline = time.monotonic() + 300
    while all(r.running() for r in runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = [r for r in runs if not r.running()]
    if not done:
        case.fail("neither run exited within 300 s: the second run was not refused")
        return case, runs[0], None
    loser = done[0]
    winner = next(r for r in runs if r is not loser)
    out = loser.output()
    case.cause = loser.error_line()
    case.cause_s = round((loser.exited_at or time.monotonic()) - started, 1)
    if loser.proc.returncode != 3 or "already running" not in out:
        case.fail(
            f"the second run exited {loser.proc.returncode} without 'already running': {case.cause or out[-400:]}"
        )
    if "Traceback" in out:
        case.fail("a traceback in the refused run's output")
    if not winner.running() and winner.proc.returncode != 0:
        case.fail(f"both runs stopped; the first exited {winner.proc.returncode}: {winner.error_line()}")
        return case, None, loser
    return case, winner, loser


def concurrent_runs_sqlite(lab: Lab) -> Case:
    """The reference run: two runs of a fresh SQLite database at once; the winner runs undisturbed."""
    t0 = time.monotonic()
    lab.progress(
        "concurrent-runs: two runs of a fresh SQLite database started at once (the winner is the reference)"
    )
    run_dir = lab.run_dir("reference")
    case, winner, _ = _race(lab, run_dir, {})
    if winner is None:
        raise DrillError("the reference run failed: " + "; ".join(case.problems))
    for stage, pattern in (("history", STAGE_LINES["workers"]), ("forecast", STAGE_LINES["forecast-done"])):
        if winner.wait_line(pattern, RUN_TIMEOUT_S) is None:
            break
        lab.take_snapshot(stage, run_dir)
    rc = winner.wait(RUN_TIMEOUT_S)
    if rc != 0 or set(lab.snapshots) != {"history", "forecast"}:
        raise DrillError(f"the reference run failed ({rc}): {winner.error_line() or winner.output()[-600:]}")
    statuses = run_statuses(sqlite_url(run_dir), lab.park, lab.day)
    if statuses.count("done") != 1 or "running" in statuses:
        case.fail(f"runs journal after the race: {statuses} (expected one done, nothing running)")
    lab.reference = stored_facts(sqlite_url(run_dir), lab.park, lab.day)
    lab.reference_dir = run_dir
    case.notes.append(f"reference: {len(lab.reference)} stored facts and ledger entries")
    return _timed(case, t0)


def concurrent_runs_postgres(lab: Lab) -> Case:
    """Two runs at once on a fresh PostgreSQL schema: one runs, the other is refused; the
    winner is stopped (SIGTERM) once the race is decided and must not stay ``running``."""
    t0 = time.monotonic()
    assert lab.postgres_url
    lab.progress("concurrent-runs: two runs of a fresh PostgreSQL schema started at once")
    from infra.db.engine import scratch_schema

    with scratch_schema(lab.postgres_url, "drill") as url:
        run_dir = lab.run_dir("concurrent-postgres")
        case, winner, _ = _race(lab, run_dir, {"PARKVPP_DATABASE_URL": url})
        if winner is not None:
            if winner.wait_line(STAGE_LINES["history"], 300) is None:
                case.fail(f"the running run did not get past the history: {winner.error_line()}")
            winner.proc.send_signal(signal.SIGTERM)
            if winner.wait(60) is None:
                case.fail("the running run did not stop within 60 s of SIGTERM")
                winner.stop()
            statuses = run_statuses(url, lab.park, lab.day)
            if "running" in statuses:
                case.fail(f"a run stopped by SIGTERM is still marked running: {statuses}")
            case.notes.append(f"runs journal after SIGTERM of the winner: {statuses}")
    return _timed(case, t0)


# --- kill run-day -----------------------------------------------------------------------------


def kill_run(lab: Lab, stage: str, resume: bool = True) -> Case:
    """SIGKILL run-day at a stage; the rerun must clean up, mark it abandoned and resume.

    ``resume=False`` (a quicker test): once the rerun has recovered, it is stopped with SIGTERM
    instead of completing the day, and must stop cleanly too."""
    t0 = time.monotonic()
    case = Case("kill-run", stage)
    lab.progress(f"kill-run: SIGKILL run-day at {stage}")
    run_dir = lab.run_dir(f"kill-run-{stage}", "history" if stage == "forecast" else "forecast")
    run = run_day_command(run_dir, lab.park, lab.day, "killed")
    if run.wait_line(STAGE_LINES[stage], RUN_TIMEOUT_S) is None:
        case.fail(f"the run never reached {stage}: {run.error_line() or run.output()[-300:]}")
        run.stop()
        return _timed(case, t0)
    if stage == "forecast":
        time.sleep(FORECAST_KILL_DELAY_S)
    if not run.running():
        case.notes.append(f"the run ended before the kill (exit {run.proc.returncode})")
    folders = owned_work_dirs(run.pid)
    killed_at = sigkill_and_check(run, case)
    rerun = run_day_command(run_dir, lab.park, lab.day, "rerun")
    seen = rerun.wait_line(r"recover\s+\d+ earlier run", 300)
    if seen is None and rerun.wait_line(r"settled\s", 1) is None:
        case.fail("the rerun did not report the killed run as abandoned")
    elif seen is not None:
        case.cause = "recover: the killed run was marked abandoned by the rerun"
        case.cause_s = round(seen - killed_at, 1)
    if resume:
        _finish_check(lab, case, rerun, run_dir)
    else:
        children = descendants(rerun.pid)
        rerun.proc.send_signal(signal.SIGTERM)
        if rerun.wait(60) is None:
            case.fail("the rerun did not stop within 60 s of SIGTERM")
            rerun.stop()
        time.sleep(2)
        left = sorted({c.split(" ")[0].rsplit("/", 1)[-1] for p, c in children.items() if _alive(p)})
        if left:
            case.fail(f"processes outlived the rerun stopped by SIGTERM: {', '.join(left)}")
        if owned_work_dirs(rerun.pid):
            case.fail("the rerun stopped by SIGTERM left its temp folder")
        case.notes.append("rerun stopped by SIGTERM after its recovery (no resume)")
    statuses = run_statuses(sqlite_url(run_dir), lab.park, lab.day)
    if "running" in statuses:
        case.fail(f"runs still marked running: {statuses}")
    if "abandoned" not in statuses:
        case.fail(f"the killed run is not marked abandoned: {statuses}")
    left = [f for f in folders if f.exists()]
    if left:
        case.fail(
            f"temp folder(s) of the killed run still there after the rerun: {', '.join(map(str, left))}"
        )
    return _timed(case, t0)


# --- kill the broker --------------------------------------------------------------------------


def _start_broker(work_dir: Path, port: int | None = None) -> tuple[Any, str]:
    from infra.embedded import kafka_server

    server, bootstrap = kafka_server(work_dir, port)
    server.start()
    return server, bootstrap


def kill_broker(lab: Lab, stage: str) -> Case:
    """SIGKILL the broker at a stage: run-day must stop naming Kafka within 30 s; a rerun with
    the broker back completes with the reference facts."""
    from infra.embedded import free_port

    t0 = time.monotonic()
    case = Case("kill-broker", stage)
    lab.progress(f"kill-broker: SIGKILL the Kafka broker at {stage}")
    run_dir = lab.run_dir(f"kill-broker-{stage}", "history" if stage == "forecast" else "forecast")
    port = free_port()
    server, bootstrap = _start_broker(run_dir / "broker", port)
    try:
        run = run_day_command(run_dir, lab.park, lab.day, "disturbed", PARKVPP_KAFKA_BOOTSTRAP=bootstrap)
        if run.wait_line(STAGE_LINES[stage], RUN_TIMEOUT_S) is None:
            case.fail(f"the run never reached {stage}: {run.error_line() or run.output()[-300:]}")
            run.stop()
            return _timed(case, t0)
        if stage == "forecast":
            time.sleep(FORECAST_KILL_DELAY_S)
        killed_at = time.monotonic()
        server.process.kill()
        server.stop()
        rc = run.wait(300)
        if rc is None:
            case.fail("run-day did not stop within 300 s of the broker's death")
            run.stop()
        else:
            reported = run.wait_line(
                r"^error:", 0.1
            )  # when the cause was printed, not when the process ended
            case.cause = run.error_line() or (run.lines[-1][1] if run.lines else "")
            case.cause_s = round((reported or run.exited_at or time.monotonic()) - killed_at, 1)
            case.notes.append(
                f"exited {(run.exited_at or time.monotonic()) - killed_at:.0f} s after the kill"
            )
            if rc == 0:
                case.notes.append("the run finished before it needed the broker again")
                case.cause_s = None
            elif "kafka broker" not in case.cause.lower():
                case.fail(f"run-day stopped without naming the Kafka broker as the cause: {case.cause[:200]}")
            elif case.cause_s > CAUSE_LIMIT_S:
                case.fail(
                    f"Kafka was named {case.cause_s:.0f} s after the broker died (limit {CAUSE_LIMIT_S:.0f} s)"
                )
            if "Traceback" in run.output():
                case.fail("a traceback in the disturbed run's output")
        try:
            server, bootstrap = _start_broker(run_dir / "broker", port)
        except Exception:  # noqa: BLE001 - the old port may still be held: the broker comes back elsewhere
            server, bootstrap = _start_broker(run_dir / "broker")
        rerun = run_day_command(run_dir, lab.park, lab.day, "rerun", PARKVPP_KAFKA_BOOTSTRAP=bootstrap)
        _finish_check(lab, case, rerun, run_dir)
    finally:
        server.stop()
    return _timed(case, t0)


# --- kill a worker mid-message ----------------------------------------------------------------


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _count(engine: Any, park: str, day: date, schema: str, published: bool = False) -> int:
    from sqlalchemy import func, select

    from infra.db.tables import outbox

    q = (
        select(func.count())
        .select_from(outbox)
        .where(outbox.c.park_id == park, outbox.c.market_day == day, outbox.c.schema_name == schema)
    )
    if published:
        q = q.where(outbox.c.published_at.is_not(None))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def kill_worker(lab: Lab) -> Case:
    """SIGKILL the settlement worker (its own process) while it handles the day's metering;
    restarted, it settles the day exactly once, identical to the reference."""
    from sqlalchemy import update

    from gateway.pipeline import Pipeline
    from gateway.services import WORKERS
    from infra.db import make_engine, migrate
    from infra.db.tables import outbox
    from infra.kafka import ensure_topics

    t0 = time.monotonic()
    case = Case("kill-worker", "settlement mid-message")
    lab.progress("kill-worker: SIGKILL the settlement worker while it handles the metering")
    assert lab.reference is not None
    run_dir = lab.run_dir("kill-worker", "forecast")
    url = sqlite_url(run_dir)
    expected = sum(1 for v in lab.reference.values() if v.startswith("settlement:"))
    with _environ(PARKVPP_KEYS_DIR=str(run_dir / "keys"), PARKVPP_RUN_DIR=str(run_dir)):
        server, bootstrap = _start_broker(run_dir / "broker")
        try:
            migrate(url)
            engine = make_engine(url)
            ensure_topics(bootstrap)
            with engine.begin() as conn:  # as run-day's resume does: publish the stored facts again
                conn.execute(
                    update(outbox)
                    .where(outbox.c.park_id == lab.park, outbox.c.market_day == lab.day)
                    .values(published_at=None)
                )
            env = child_env(run_dir, PARKVPP_DATABASE_URL=url, PARKVPP_KAFKA_BOOTSTRAP=bootstrap)
            worker = Command(["worker", "settlement"], env, run_dir / "worker-1.log")
            others = tuple(n for n in WORKERS if n != "settlement")
            with Pipeline(engine, bootstrap, others) as pipeline:
                pipeline.wait_ready()
                deadline = time.monotonic() + 180
                while _count(engine, lab.park, lab.day, "metering", published=True) == 0:
                    if time.monotonic() > deadline or not worker.running():
                        case.fail(f"no metering was published in 180 s: {worker.output()[-300:]}")
                        worker.stop()
                        return _timed(case, t0)
                    time.sleep(0.02)
                time.sleep(0.25)  # one poll of the worker: it is fetching or applying the metering
                before = _count(engine, lab.park, lab.day, "settlement")
                sigkill_and_check(worker, case)
                case.notes.append(
                    "killed before the settlement was stored (mid-message)"
                    if before == 0
                    else f"killed after {before} settlement fact(s) were stored (before its offset commit)"
                )
                worker = Command(["worker", "settlement"], env, run_dir / "worker-2.log")
                deadline = time.monotonic() + 180
                while (
                    _count(engine, lab.park, lab.day, "settlement") < expected and time.monotonic() < deadline
                ):
                    time.sleep(0.2)
                time.sleep(3)  # anything duplicated would land now
                worker.proc.send_signal(signal.SIGINT)
                if worker.wait(30) is None:
                    worker.stop()
            compare_facts(case, lab.reference, stored_facts(url, lab.park, lab.day))
            letters = _dead_letter_rows(engine, 0)
            if letters:
                case.fail(f"{len(letters)} message(s) dead-lettered: {letters[0][2]}")
        finally:
            server.stop()
    return _timed(case, t0)


# --- forged and malformed messages --------------------------------------------------------------


@dataclass
class Injected:
    case: str
    topic: str
    value: bytes
    message_id: str | None = None  # for readable envelopes
    where: str = ""  # topic/partition/offset once sent


def _dead_letter_rows(engine: Any, after_id: int) -> list[tuple[int, str, str, str]]:
    from sqlalchemy import select

    from infra.db.tables import dead_letters

    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    dead_letters.c.id,
                    dead_letters.c.consumer,
                    dead_letters.c.message_id,
                    dead_letters.c.reason,
                )
                .where(dead_letters.c.id > after_id)
                .order_by(dead_letters.c.id)
            )
        ]


def forged_messages(park: str, day: date) -> list[Injected]:
    """Forged bids and awards, built from the stored facts of the day (keys from PARKVPP_KEYS_DIR)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.contracts import Envelope, Topic, message_id
    from infra.signing import sign, signed_bytes

    from_store = _stored(park, day)
    bid, award = from_store["bid"], from_store["award"]
    other_day = day + timedelta(days=1)
    forged_bid_payload = {**bid.payload, "offer_message_id": str(uuid.uuid4())}
    forged = bid.model_copy(update={"payload": forged_bid_payload, "producer": None, "signature": None})

    def wrongly_signed(env: Envelope, producer: str) -> Envelope:
        body = env.model_copy(update={"producer": producer, "signature": None})
        signature = Ed25519PrivateKey.generate().sign(signed_bytes(body))
        return body.model_copy(update={"signature": base64.b64encode(signature).decode()})

    def on_day(env: Envelope, schema: str, key: str, payload: dict[str, Any]) -> Envelope:
        payload = {**payload, "interval_starts": [_next_day(t) for t in payload.get("interval_starts", [])]}
        return env.model_copy(
            update={
                "message_id": message_id(schema, park, other_day, key),
                "market_day": other_day,
                "payload": payload,
                "producer": None,
                "signature": None,
            }
        )

    big_award = {
        **award.payload,
        "bid_message_id": str(uuid.uuid4()),
        "cleared_mw": [500.0] * len(award.payload["cleared_mw"]),  # 12,000 MWh over a 96-interval day
    }
    cases = [
        ("unsigned bid with the predictable id", Topic.BIDS, forged),
        ("bid signed with a key that is not bidding's", Topic.BIDS, wrongly_signed(forged, "bidding")),
        ("bid signed by the wrong service (aggregator)", Topic.BIDS, sign(forged, "aggregator")),
        (
            "validly signed bid naming no stored offer",
            Topic.BIDS,
            sign(on_day(bid, "bid", "day_ahead", forged_bid_payload), "bidding"),
        ),
        (
            "stored bid id with different content, validly signed (conflict)",
            Topic.BIDS,
            sign(forged, "bidding"),
        ),
        (
            "unsigned 12,000 MWh award",
            Topic.AWARDS,
            award.model_copy(update={"payload": big_award, "producer": None, "signature": None}),
        ),
        (
            "validly signed 12,000 MWh award naming no stored bid",
            Topic.AWARDS,
            sign(on_day(award, "award", award.payload["market"], big_award), "exchange-simulator"),
        ),
    ]
    return [Injected(name, topic, env.to_json().encode(), env.message_id) for name, topic, env in cases]


def _next_day(iso: str) -> str:
    from datetime import datetime

    return (datetime.fromisoformat(iso) + timedelta(days=1)).isoformat()


def malformed_messages(topics: tuple[str, ...]) -> list[Injected]:
    from infra.worker import MAX_MESSAGE_BYTES

    kinds = [
        ("non-JSON text", b"this is not JSON {"),
        ("empty", b""),
        ("oversized", b"{" + b" " * (MAX_MESSAGE_BYTES + 1024) + b"}"),
        ("binary", os.urandom(512)),
        ("JSON that is not an envelope", b'{"hello": "world"}'),
        ("truncated envelope", b'{"schema": {"name": "bid", "version": 1}, "message_id": "'),
    ]
    return [Injected(f"{name} on {topic}", topic, value) for topic in topics for name, value in kinds]


def _stored(park: str, day: date) -> dict[str, Any]:
    from infra.db import make_engine
    from infra.db.outbox import stored_envelopes
    from infra.settings import get_settings

    with make_engine(
        os.environ.get("PARKVPP_DATABASE_URL") or get_settings().resolved_database_url
    ).connect() as conn:
        found = {s: stored_envelopes(conn, park, day, s) for s in ("bid", "award")}
    if not found["bid"] or not found["award"]:
        raise DrillError(f"no stored bid and award of {park} {day} to forge from")
    return {s: envs[0] for s, envs in found.items()}


def inject_and_check(
    drill: str, database_url: str, bootstrap: str, build: Callable[[], list[Injected]], wait_s: float = 60.0
) -> list[Case]:
    """With every worker running, send the messages straight to their topics; each must be
    dead-lettered (table and topic) by every consumer of its topic with a reason, and no stored
    fact may change."""
    from kafka import KafkaProducer

    from gateway.pipeline import Pipeline
    from infra.db import make_engine

    engine = make_engine(database_url)
    messages = build()
    before = stored_facts(database_url, None, None)
    last_letter = max((r[0] for r in _dead_letter_rows(engine, 0)), default=0)
    with Pipeline(engine, bootstrap) as pipeline:
        pipeline.wait_ready()
        consumers: dict[str, set[str]] = {}
        for thread in pipeline.threads:
            for topic in thread.worker.topics:
                consumers.setdefault(topic, set()).add(thread.worker.group)
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=32 * 1024 * 1024, acks="all")
        sent_at: dict[str, float] = {}
        send_errors: dict[str, str] = {}
        for m in messages:
            try:
                meta = producer.send(m.topic, value=m.value, key=b"drill").get(timeout=30)
                m.where = f"{meta.topic}/{meta.partition}/{meta.offset}"
                sent_at[m.case] = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - a broker that refuses junk has also kept it out
                send_errors[m.case] = f"{type(exc).__name__}: {exc}"
        producer.close()
        found: dict[str, dict[str, tuple[float, str]]] = {m.case: {} for m in messages}
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            # Forgeries may share a stored id: the i-th letter of a consumer for an id belongs to the
            # i-th message sent with that id (one partition, consumed in order).
            per_key: dict[tuple[str, str], list[str]] = {}
            for _, consumer, mid, reason in _dead_letter_rows(engine, last_letter):
                per_key.setdefault((consumer, mid), []).append(reason)
            rank: dict[str, int] = {}
            for m in messages:
                key = m.message_id or m.where[:64]
                index, rank[key] = rank.get(key, 0), rank.get(key, 0) + 1
                for (consumer, mid), reasons in per_key.items():
                    if mid in (m.message_id, m.where[:64]) and len(reasons) > index:
                        found[m.case].setdefault(consumer, (time.monotonic(), reasons[index]))
            if all(
                m.case in send_errors or consumers.get(m.topic, set()) <= set(found[m.case]) for m in messages
            ):
                break
            time.sleep(0.2)
        time.sleep(2)  # a message that was wrongly accepted would store its effects by now
        pipeline.check_alive()
    on_topic = _dead_letter_topic(bootstrap)
    after = stored_facts(database_url, None, None)
    cases = []
    for m in messages:
        case = Case(drill, m.case)
        if m.case in send_errors:
            case.cause = f"refused by the broker: {send_errors[m.case]}"
            case.notes.append("never reached a consumer")
            cases.append(case)
            continue
        expected = consumers.get(m.topic, set())
        missing = sorted(expected - set(found[m.case]))
        if missing:
            case.fail(
                f"not dead-lettered by {', '.join(missing)} within {wait_s:.0f} s (accepted or ignored)"
            )
        if found[m.case]:
            first = min(found[m.case].values())
            case.cause = first[1][:200]
            case.cause_s = round(max(v[0] for v in found[m.case].values()) - sent_at[m.case], 1)
            if any(not reason.strip() for _, reason in found[m.case].values()):
                case.fail("dead-lettered without a reason")
        keys = {m.where[:64], m.message_id or ""}
        published = [g for g in expected if (g, True) in {(c, k in keys) for c, k in on_topic}]
        if len(published) < len(expected):
            case.notes.append(
                f"on {('vpp.deadletters')} from {len(published)} of {len(expected)} consumer(s) "
                "(the table row stands; refusals inside a service are recorded in the table only)"
            )
        cases.append(case)
    if before != after:
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        kinds = sorted({(after.get(k) or before.get(k) or "?").split(":")[0] for k in changed})
        for case in cases:
            case.fail(
                f"stored facts changed while the messages were handled: {len(changed)} ({', '.join(kinds)})"
            )
    for case in cases:
        case.facts_lost = len(before.keys() - after.keys())
        case.facts_duplicated = len(after.keys() - before.keys())
        case.facts_changed = sum(1 for k in before.keys() & after.keys() if before[k] != after[k])
    return cases


def _dead_letter_topic(bootstrap: str) -> set[tuple[str, str]]:
    """(consumer, message id or source) of every letter on the dead-letter topic."""
    from kafka import KafkaConsumer, TopicPartition

    from infra.contracts import Topic

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    out = set()
    try:
        parts = consumer.partitions_for_topic(Topic.DEAD_LETTERS) or set()
        tps = [TopicPartition(Topic.DEAD_LETTERS, p) for p in parts]
        if not tps:
            return out
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=300).values():
                for r in records:
                    with contextlib.suppress(ValueError, TypeError):
                        letter = json.loads(r.value)
                        out.add((letter["consumer"], str(letter["message_id"])[:64]))
                        out.add((letter["consumer"], str(letter["source"])[:64]))
    finally:
        consumer.close()
    return out


@contextlib.contextmanager
def copy_of_run(source: Path, target: Path) -> Iterator[str]:
    """A copy of a finished run's folder (database, keys, ledger anchors) and its database URL;
    the ledger's checkpoints follow the database to its new path."""
    from infra.db import make_engine
    from settlement.carbon import signing

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    sqlite_backup(source / "parkvpp.sqlite", target / "parkvpp.sqlite")
    for sub in ("keys", "ledger-anchors"):
        if (source / sub).is_dir():
            shutil.copytree(source / sub, target / sub)
    url = sqlite_url(target)
    with make_engine(sqlite_url(source)).connect() as a, make_engine(url).connect() as b:
        old, new = signing.database_id(a), signing.database_id(b)
    anchors = target / "ledger-anchors"
    if (anchors / old).is_dir():
        (anchors / old).rename(anchors / new)
    yield url


def message_drill(drill: str, run_dir: Path, work: Path, park: str, day: date) -> list[Case]:
    """Forged or malformed messages against a copy of a finished day."""
    from infra.contracts import Topic
    from infra.db import migrate
    from infra.kafka import ensure_topics

    t0 = time.monotonic()
    with copy_of_run(run_dir, work) as url:
        env = {
            "PARKVPP_KEYS_DIR": str(work / "keys"),
            "PARKVPP_RUN_DIR": str(work),
            "PARKVPP_DATABASE_URL": url,
        }
        with _environ(**env):
            server, bootstrap = _start_broker(work / "broker")
            try:
                migrate(url)
                ensure_topics(bootstrap)
                if drill == "forged-messages":
                    cases = inject_and_check(drill, url, bootstrap, lambda: forged_messages(park, day))
                else:
                    cases = inject_and_check(
                        drill, url, bootstrap, lambda: malformed_messages((Topic.BIDS, Topic.AWARDS))
                    )
            finally:
                server.stop()
    for c in cases:
        c.seconds = round((time.monotonic() - t0) / len(cases), 1)
    return cases


# --- tamper with the ledger -----------------------------------------------------------------------

TAMPER_CASES = (
    "appended forgery, head not moved",
    "last entry deleted with the head row",
    "last entry deleted, head moved back",
    "entry edited, rest of the chain and head re-hashed",
    "all rows deleted",
    "unknown --park",
    "database path that does not exist",
)


def _tamper(url: str, park: str, how: str) -> None:
    from sqlalchemy import delete, insert, select, update

    from infra.db import make_engine
    from settlement.carbon.ledger import compute_hash
    from settlement.tables import carbon_ledger, carbon_ledger_heads

    engine = make_engine(url)
    with engine.begin() as conn:
        rows = [
            r._asdict()
            for r in conn.execute(
                select(carbon_ledger)
                .where(carbon_ledger.c.park_id == park)
                .order_by(carbon_ledger.c.position)
            )
        ]
        if len(rows) < 3:
            raise DrillError(f"the ledger of {park} has {len(rows)} entries; tampering needs 3 or more")
        last = rows[-1]
        head = carbon_ledger_heads.c
        if how == "appended forgery, head not moved":
            forged = {**last, "position": last["position"] + 1, "entry_id": str(uuid.uuid4())}
            forged.update(prev_hash=last["entry_hash"], memo="forged", entry_key=str(uuid.uuid4()))
            forged["entry_hash"] = compute_hash(forged)
            conn.execute(insert(carbon_ledger).values(**forged))
        elif how.startswith("last entry deleted"):
            conn.execute(
                delete(carbon_ledger).where(
                    carbon_ledger.c.park_id == park, carbon_ledger.c.position == last["position"]
                )
            )
            if how.endswith("head row"):
                conn.execute(delete(carbon_ledger_heads).where(head.park_id == park))
            else:
                conn.execute(
                    update(carbon_ledger_heads)
                    .where(head.park_id == park)
                    .values(position=rows[-2]["position"], entry_hash=rows[-2]["entry_hash"])
                )
        elif how.startswith("entry edited"):
            k = len(rows) // 2
            rows[k]["memo"] = (rows[k]["memo"] or "") + " (edited)"
            prev = rows[k - 1]["entry_hash"]
            for r in rows[k:]:
                r["prev_hash"] = prev
                r["entry_hash"] = prev = compute_hash(r)
                conn.execute(
                    update(carbon_ledger)
                    .where(carbon_ledger.c.park_id == park, carbon_ledger.c.position == r["position"])
                    .values(memo=r["memo"], prev_hash=r["prev_hash"], entry_hash=r["entry_hash"])
                )
            conn.execute(update(carbon_ledger_heads).where(head.park_id == park).values(entry_hash=prev))
        elif how == "all rows deleted":
            conn.execute(delete(carbon_ledger).where(carbon_ledger.c.park_id == park))
            conn.execute(delete(carbon_ledger_heads).where(head.park_id == park))
        else:
            raise ValueError(how)


def _verify(work: Path, park: str, database_url: str | None = None) -> tuple[int | None, str, float]:
    env = child_env(work, **({"PARKVPP_DATABASE_URL": database_url} if database_url else {}))
    t0 = time.monotonic()
    command = Command(["ledger", "verify", "--park", park, "--json"], env, work / "verify.log")
    rc = command.wait(120)
    return rc, command.output(), round(time.monotonic() - t0, 1)


def _verdict(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("error:"):
            return line
    with contextlib.suppress(ValueError):
        start = output.index("{")
        found = json.loads(output[start:])
        if found.get("problems"):
            p = found["problems"][0]
            return f"{len(found['problems'])} problem(s); first: {p['kind']}: {p['message']}"[:300]
        return f"intact ({found.get('checked')} entries checked)"
    return output.strip().splitlines()[-1][:300] if output.strip() else ""


def tamper_ledger(run_dir: Path, work: Path, park: str) -> list[Case]:
    """Every way of tampering from issue 12, each on its own copy of the finished run's ledger."""
    cases = []
    t0 = time.monotonic()
    control = Case("tamper-ledger", "untouched copy (control)")
    with copy_of_run(run_dir, work / "control"):
        rc, out, control.cause_s = _verify(work / "control", park)
    control.cause = _verdict(out)
    if rc != 0:
        control.fail(f"ledger verify fails on the untouched ledger (exit {rc}): {control.cause}")
    cases.append(_timed(control, t0))
    for i, how in enumerate(TAMPER_CASES):
        t0 = time.monotonic()
        case = Case("tamper-ledger", how)
        folder = work / f"case-{i}"
        with copy_of_run(run_dir, folder) as url:
            if how == "unknown --park":
                rc, out, took = _verify(folder, "no_such_park")
            elif how == "database path that does not exist":
                missing = folder / "missing" / "parkvpp.sqlite"
                rc, out, took = _verify(folder, park, f"sqlite:///{missing}")
                if missing.exists() or missing.parent.exists():
                    case.fail(f"ledger verify created {missing}")
            else:
                _tamper(url, park, how)
                rc, out, took = _verify(folder, park)
        case.cause, case.cause_s = _verdict(out), took
        case.tamper_detected = rc not in (0, None) and "Traceback" not in out
        if not case.tamper_detected:
            case.fail(f"not detected: ledger verify exited {rc}: {case.cause}")
        elif how in ("unknown --park", "database path that does not exist") and rc != 2:
            case.fail(f"expected exit 2 (usage error), got {rc}: {case.cause}")
        cases.append(_timed(case, t0))
    return cases


# --- running drills ---------------------------------------------------------------------------------


def run_drills(
    names: list[str],
    lab: Lab,
    kill_run_stages: tuple[str, ...] = KILL_RUN_STAGES,
    kill_broker_stages: tuple[str, ...] = KILL_BROKER_STAGES,
) -> list[Case]:
    """Run the named drills (``all`` for every one) one after the other."""
    wanted = list(DRILLS) if "all" in names else names
    unknown = [n for n in wanted if n not in DRILLS]
    if unknown:
        raise DrillError(f"no drill named {', '.join(unknown)}; choose from: {', '.join(DRILLS)}, all")
    cases = lab.ensure_reference()
    assert lab.reference_dir is not None
    for name in wanted:
        if name == "concurrent-runs":
            if lab.postgres_url:
                cases.append(concurrent_runs_postgres(lab))
        elif name == "kill-run":
            cases += [kill_run(lab, s) for s in kill_run_stages]
        elif name == "kill-broker":
            cases += [kill_broker(lab, s) for s in kill_broker_stages]
        elif name == "kill-worker":
            cases.append(kill_worker(lab))
        elif name == "tamper-ledger":
            lab.progress("tamper-ledger: every tampering on its own copy of the reference ledger")
            cases += tamper_ledger(lab.reference_dir, lab.root / "tamper", lab.park)
        else:
            lab.progress(f"{name}: injected straight into the topics with kafka-python")
            cases += message_drill(name, lab.reference_dir, lab.root / name, lab.park, lab.day)
    return cases


def summary(cases: list[Case]) -> dict[str, Any]:
    tamper = [c for c in cases if c.tamper_detected is not None]
    causes = [c.cause_s for c in cases if c.cause_s is not None and c.drill not in ("tamper-ledger",)]
    return {
        "drills_run": len({c.drill for c in cases}),
        "cases": len(cases),
        "held": sum(c.held for c in cases),
        "failed": sum(not c.held for c in cases),
        "facts_lost": sum(c.facts_lost or 0 for c in cases),
        "facts_duplicated": sum(c.facts_duplicated or 0 for c in cases),
        "facts_changed": sum(c.facts_changed or 0 for c in cases),
        "tamper_cases": len(tamper),
        "tamper_detected": sum(bool(c.tamper_detected) for c in tamper),
        "tamper_detected_pct": round(100 * sum(bool(c.tamper_detected) for c in tamper) / len(tamper), 1)
        if tamper
        else None,
        "max_time_to_cause_s": max(causes) if causes else None,
        "causes_over_30_s": sum(1 for s in causes if s > CAUSE_LIMIT_S),
        "seconds": round(sum(c.seconds for c in cases), 1),
    }


def as_json(cases: list[Case]) -> dict[str, Any]:
    return {"summary": summary(cases), "cases": [asdict(c) for c in cases]}
