"""One logging format for every command; chatty client libraries are kept quiet."""

from __future__ import annotations

import logging
import sys

QUIET = (
    "kafka",
    "urllib3",
    "alembic",
    "ray",
    "matplotlib",
    "numba",
    "cmdstanpy",
    "prophet",
)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, so a handler set up while
    a caller had replaced stderr (a test runner capturing output) never writes to a closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _NoLibraryTracebacks(logging.Filter):
    """A client library's own error (a broker that went away) stays one line on the console: its
    stack says nothing the health watch's named cause does not, and reads like a crash of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.split(".")[0] in QUIET:
            record.exc_info, record.exc_text = None, None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = _CurrentStderr()
    handler.addFilter(_NoLibraryTracebacks())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler], force=True)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
