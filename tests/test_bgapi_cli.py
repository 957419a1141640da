"""``pygatt --backend bgapi``: the command line over the simulated BLED112.

No dongle exists here: ``--simulate`` serves the simulated BLED112 of
pygatt.testing (a real socket opened by pyserial), and ``--port`` is tested with
a simulated dongle on a real pty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pygatt.testing import load_world
from pygatt.testing.sim.bgapi import SimulatedDongle
from tests.cli_helpers import HR, NAMELESS, run

pytestmark = [pytest.mark.simulator, pytest.mark.usefixtures("no_simulation_from_the_environment")]

REPO = Path(__file__).resolve().parent.parent


def test_scan(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--backend", "bgapi", "--simulate", "--json", "scan", "--timeout", "0.5")
    assert status == 0
    document = json.loads(out)
    assert document["adapter"].startswith("socket://127.0.0.1:")
    devices = {d["address"]: d for d in document["devices"]}
    assert devices[HR]["name"] == "Pulse HR" and devices[HR]["rssi"] == -58
    assert devices[HR]["packet_data"]["connectable_advertisement_packet"]["flags"] == "06"
    assert devices[NAMELESS]["name"] is None  # the backend says "" (as 5.0.0); JSON says null, as documented


def test_read_write_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--backend", "bgapi", "--simulate", "read", HR, "2a00")
    assert status == 0 and '"Pulse HR"' in out
    status, out, _ = run(capsys, "--backend", "bgapi", "--simulate", "--json", "write", HR, "2a39", "01")
    assert status == 0 and json.loads(out)["value"] == "01"
    status, out, err = run(capsys, "--backend", "bgapi", "--simulate", "read", HR, "2a25")
    assert (status, out) == (1, "")
    assert err.startswith("pygatt: error: read 0x") and "read_not_permitted (0x0402)" in err
    status, _, err = run(capsys, "--backend", "bgapi", "--simulate", "--random", "read", NAMELESS, "2a19")
    assert status == 0


def test_subscribe_count(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--backend", "bgapi", "--simulate", "--json", "subscribe", HR, "2a37", "--count", "3")
    assert status == 0
    values = [json.loads(line)["value"] for line in out.splitlines()]
    assert values == ["0048", "004a", "004c"]


def test_port_option(capsys: pytest.CaptureFixture[str]) -> None:
    dongle = SimulatedDongle(load_world("heart-rate"))
    try:
        pty = dongle.open_pty()
        status, out, _ = run(capsys, "--backend", "bgapi", "--port", pty, "--no-reset", "--json", "read", HR, "2a19")
        assert status == 0 and json.loads(out)["value"] == "5a"
    finally:
        dongle.close()


def test_simulated_dongle_from_the_environment_is_quiet(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PYGATT_SIMULATE`` with the BGAPI backend resets the simulated dongle, which comes back
    on a new socket every time by design: saying so on every command would be noise."""
    monkeypatch.setenv("PYGATT_SIMULATE", "heart-rate")
    status, out, err = run(capsys, "--backend", "bgapi", "--json", "read", HR, "2a19")
    assert (status, err) == (0, "")
    assert json.loads(out)["value"] == "5a"


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--port", "/dev/ttyACM0", "scan")
    assert status == 2 and err == "pygatt: error: --port is for --backend bgapi\n"
    status, _, err = run(capsys, "--backend", "bgapi", "--port", "/dev/ttyACM0", "--simulate", "scan")
    assert status == 2 and "exclude each other" in err
    status, _, err = run(capsys, "--backend", "other", "scan")
    assert status == 2 and "invalid choice" in err


def test_missing_port_is_a_not_connected_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--backend", "bgapi", "--port", str(tmp_path / "ttyACM9"), "--no-reset", "scan")
    assert status == 3 and "Could not open the BGAPI dongle after 10 attempts" in err


@pytest.fixture
def no_serial_ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [])
    yield


def test_no_dongle_exits_5(capsys: pytest.CaptureFixture[str], no_serial_ports: None) -> None:
    status, _, err = run(capsys, "--backend", "bgapi", "scan")
    assert status == 5 and "No BLED112 (USB 2458:0001) found; serial ports seen: none" in err


def test_demo_as_a_real_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYGATT_SIMULATE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pygatt", "--simulate", "--backend", "bgapi", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "$ pygatt subscribe C4:7C:8D:6A:3E:01 2a37 --count 3" in done.stdout
    assert "Pulse HR" in done.stdout and done.stderr == ""
