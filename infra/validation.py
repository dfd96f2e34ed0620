"""The rules every command-line argument and input file meets, in one place.

A broken rule raises :class:`InputError` with every problem at once, each naming the
argument or file (and row or field) and the rule; the ``parkvpp`` entry point prints them
and exits with code 2, never with a traceback.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

PARK_ID = re.compile(r"^[a-z0-9_]{1,64}$")
FIRST_MARKET_DAY = date(2000, 1, 1)  # the market calendar and the weather years cover this span
LAST_MARKET_DAY = date(2100, 12, 31)
MAX_INPUT_FILE_BYTES = 512 * 1024 * 1024


class InputError(ValueError):
    """Input that breaks a rule; ``problems`` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems) if len(problems) == 1 else "\n  - " + "\n  - ".join(problems))


def park_id_problem(value: str, what: str = "--park") -> str | None:
    if not PARK_ID.match(value or ""):
        shown = value if len(value) <= 40 else value[:40] + f"... ({len(value)} characters)"
        return f"{what} {shown!r}: a park id is 1-64 lower-case letters, digits or _"
    return None


def market_day_problem(value: str, what: str = "--date") -> str | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return f"{what} {value[:40]!r}: expected a date YYYY-MM-DD, e.g. 2026-07-15"
    if not FIRST_MARKET_DAY <= day <= LAST_MARKET_DAY:
        return f"{what} {value}: market days from {FIRST_MARKET_DAY} to {LAST_MARKET_DAY} are supported"
    return None


def month_problem(value: str, what: str = "--month") -> str | None:
    if not re.fullmatch(r"\d{4}-\d{2}", value or ""):
        return f"{what} {value[:40]!r}: expected a month YYYY-MM, e.g. 2026-07"
    return market_day_problem(value + "-01", what)


def text_file_problem(path: Path, what: str = "file") -> str | None:
    """Why ``path`` is not a readable UTF-8 text file of sensible size, or None."""
    try:
        if not path.exists():
            return f"{what} {path}: no such file"
        if path.is_dir():
            return f"{what} {path}: is a directory, not a file"
        size = path.stat().st_size
        if size > MAX_INPUT_FILE_BYTES:
            return f"{what} {path}: {size:,} bytes is larger than {MAX_INPUT_FILE_BYTES:,}"
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as exc:
        return f"{what} {path}: cannot be read ({exc.strerror or exc})"
    if b"\x00" in head:
        return f"{what} {path}: is a binary file, not text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end < len(head) - 4:  # a multi-byte character cut at the buffer's end is fine
            return f"{what} {path}: is not UTF-8 text (byte {exc.start})"
    return None


def finite_problem(value: object, what: str, low: float = -math.inf, high: float = math.inf) -> str | None:
    """Numbers must be finite and inside their physical range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{what}: {value!r} is not a number"
    if not math.isfinite(value):
        return f"{what}: {value!r} is not a finite number"
    if not low <= value <= high:
        return f"{what}: {value:g} is outside [{low:g}, {high:g}]"
    return None


# Options whose values follow these rules wherever they appear on a command line.
ARGUMENT_RULES = {
    "--park": park_id_problem,
    "-p": park_id_problem,
    "--date": market_day_problem,
    "-d": market_day_problem,
    "--day": market_day_problem,
    "--from": market_day_problem,
    "--to": market_day_problem,
    "--month": month_problem,
}


def argument_problems(argv: list[str]) -> list[str]:
    """Every broken rule among the command line's common options (``--opt value`` or ``--opt=value``)."""
    problems = []
    for i, arg in enumerate(argv):
        name, eq, inline = arg.partition("=")
        rule = ARGUMENT_RULES.get(name)
        if rule is None:
            continue
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        if value is not None and not value.startswith("--"):
            problem = rule(value, name)
            if problem:
                problems.append(problem)
    return problems
