"""One logging format for every command; chatty client libraries are kept quiet."""

from __future__ import annotations

import logging

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


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
