"""Bad input through the real `parkvpp` entry point: exit code 2, every problem named, no traceback.

Each case is one the reliability review found giving a traceback or a wrong success.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PARKVPP = str(Path(sys.executable).with_name("parkvpp"))


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PARKVPP_RUN_DIR": str(tmp_path / "runs"), **(env or {})}
    environment.pop("PARKVPP_DATABASE_URL", None)
    return subprocess.run(
        [PARKVPP, *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for text in expected:
        assert text in output, output


@pytest.fixture()
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "junk.yaml"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def test_out_of_range_dates_and_a_long_park_id_are_refused_before_anything_starts(tmp_path: Path) -> None:
    assert_refused(
        run(tmp_path, "run-day", "--date", "1900-01-01"), "--date 1900-01-01", "2000-01-01 to 2100-12-31"
    )
    assert_refused(run(tmp_path, "run-day", "--date=9999-12-31"), "--date 9999-12-31")
    assert_refused(run(tmp_path, "run-day", "--date", "tomorrow"), "expected a date YYYY-MM-DD")
    both = run(tmp_path, "run-day", "--park", "p" * 300, "--date", "9999-12-31")
    assert_refused(both, "(300 characters)", "a park id is 1-64", "--date 9999-12-31")  # all problems at once
    assert not (tmp_path / "runs" / "parkvpp.sqlite").exists()  # nothing was started or created


def test_binary_or_directory_files_are_refused_by_name(tmp_path: Path, binary: Path) -> None:
    assert_refused(run(tmp_path, "scenario", "check", str(binary)), "is a binary file, not text")
    assert_refused(
        run(tmp_path, "carbon", "account", "--activity", str(binary), "--park", "datong"), "is a binary file"
    )
    assert_refused(
        run(tmp_path, "carbon", "account", "--activity", str(tmp_path), "--park", "datong"), "directory"
    )
    assert_refused(run(tmp_path, "ingest", "meters", str(binary), "--park", "datong"), "not UTF-8")


def test_an_activity_file_reports_every_problem_and_refuses_infinite_numbers(tmp_path: Path) -> None:
    activity = tmp_path / "activity.yaml"
    activity.write_text(
        "park: Datong\nyear: 2025\nelectricity:\n  in:\n    grid: 1e400\n"
        "fuels:\n  - {fuel: natural_gas, quantity: -5, unit: m3}\n  - {fuel: unobtainium, quantity: 5, unit: t}\n",
        encoding="utf-8",
    )
    result = run(tmp_path, "carbon", "account", "--activity", str(activity), "--park", "datong")
    assert_refused(
        result,
        "electricity.in.grid: Input should be a finite number",
        "fuels[0].quantity",
        "fuels[1] (unobtainium): not a fuel",
    )
    assert "inf" not in result.stdout and "nan" not in result.stdout


def test_scenario_list_names_an_invalid_extra_file_and_still_lists_the_others(tmp_path: Path) -> None:
    extra = tmp_path / "extra" / "parks"
    extra.mkdir(parents=True)
    (extra / "broken.yaml").write_text("id: broken\nmarket: shanxi\n", encoding="utf-8")
    result = run(tmp_path, "scenario", "list", env={"PARKVPP_SCENARIO_DIRS": str(tmp_path / "extra")})
    assert_refused(result, "broken", "invalid", "datong", "chifeng")
