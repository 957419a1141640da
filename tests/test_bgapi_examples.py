"""examples/bgapi_heart_rate.py runs unchanged against the simulated BLED112 (PYGATT_SIMULATE)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.simulator


def run_example(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYGATT_SIMULATE="heart-rate")
    env["PYTHONPATH"] = str(EXAMPLES.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
    )


def test_bgapi_heart_rate_example() -> None:
    proc = run_example(str(EXAMPLES / "bgapi_heart_rate.py"), "Pulse HR", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Pulse HR: battery 90 %",
        "heart rate: 72 bpm",
        "heart rate: 74 bpm",
        "heart rate: 76 bpm",
    ]


def test_bgapi_example_reports_a_missing_device() -> None:
    proc = run_example(str(EXAMPLES / "bgapi_heart_rate.py"), "Nobody", "1")
    assert proc.returncode == 1 and "No device named 'Nobody'" in proc.stderr
