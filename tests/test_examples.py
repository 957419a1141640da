"""Every script in examples/ runs against the simulator with one command, as the docs say."""

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


def test_scan_example():
    proc = run_example(str(EXAMPLES / "scan.py"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "C4:7C:8D:6A:3E:01  Pulse HR",
        "5D:2B:9F:11:04:7E  (unknown)",
        "2 device(s)",
    ]
    filtered = run_example(str(EXAMPLES / "scan.py"), "Pulse")
    assert filtered.stdout.splitlines() == ["C4:7C:8D:6A:3E:01  Pulse HR", "1 device(s)"]


def test_read_battery_example():
    proc = run_example(str(EXAMPLES / "read_battery.py"), "Pulse HR")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Pulse HR (C4:7C:8D:6A:3E:01): battery 90 %\n"


def test_read_battery_example_reports_a_missing_device():
    proc = run_example(str(EXAMPLES / "read_battery.py"), "Nobody")
    assert proc.returncode == 1 and "No device named 'Nobody'" in proc.stderr


def test_heart_rate_example():
    proc = run_example(str(EXAMPLES / "heart_rate.py"), "Pulse HR", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["heart rate: 72 bpm", "heart rate: 74 bpm", "heart rate: 76 bpm"]


# -- the BGAPI example, against the simulated BLED112 ---------------------------------


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
