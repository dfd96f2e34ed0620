"""A client library's errors are one line on the console; ours keep their traceback."""

from __future__ import annotations

import logging

import pytest

from infra.logging_setup import setup_logging


def test_library_errors_lose_their_traceback_ours_keep_it(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        logging.getLogger("kafka.net.transport").exception("Error receiving network data closing socket")
        library = capsys.readouterr().err
        logging.getLogger("gateway.run_day").exception("our own failure")
        ours = capsys.readouterr().err
    assert "Error receiving network data" in library and "Traceback" not in library
    assert "our own failure" in ours and "Traceback" in ours
