"""``pygatt --backend dbus``: the command line over the simulated BlueZ on a private dbus-daemon.

No adapter exists here: ``--simulate`` makes the D-Bus backend start a private
dbus-daemon and the simulated org.bluez of pygatt.testing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pygatt.testing.dbus_bus import PrivateBus
from tests.cli_helpers import HR, NAMELESS, run
from tests.dbus_sim import requires_daemon

pytestmark = [requires_daemon, pytest.mark.dbus, pytest.mark.usefixtures("no_simulation_from_the_environment")]

REPO = Path(__file__).resolve().parent.parent


def test_scan_with_advertising_data(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", "--json", "scan", "--timeout", "0.5")
    assert status == 0
    document = json.loads(out)
    devices = {d["address"]: d for d in document["devices"]}
    assert document["adapter"] == "hci0"
    assert devices[HR]["name"] == "Pulse HR" and devices[HR]["rssi"] == -58
    assert devices[NAMELESS]["name"] is None and devices[NAMELESS]["address_type"] == "random"


def test_discover_read_write_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", "--json", "discover", HR)
    assert status == 0
    handles = {c["uuid"]: c["value_handle"] for c in json.loads(out)["characteristics"]}
    assert handles["00002a19-0000-1000-8000-00805f9b34fb"] == 0x10
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", "read", HR, "2a19")
    assert status == 0 and out.startswith("5a")
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", "--json", "write", HR, "2a39", "01")
    assert status == 0 and json.loads(out)["value"] == "01"
    status, out, err = run(capsys, "--backend", "dbus", "--simulate", "read", HR, "2a25")
    assert (status, out) == (1, "")
    assert err.startswith("pygatt: error: ") and "Read not permitted" in err
    status, _, err = run(
        capsys, "--backend", "dbus", "--simulate", "--timeout", "0.5", "read", "00:11:22:33:44:55", "2a19"
    )
    assert status == 3 and "00:11:22:33:44:55" in err


def test_no_bluetoothd_exits_with_the_tool_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with PrivateBus() as bus:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        status, _, err = run(capsys, "--backend", "dbus", "scan", "--timeout", "0.2")
    assert status == 5 and "bluetoothd is not running" in err


def test_demo_as_a_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYGATT_SIMULATE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pygatt", "--simulate", "--backend", "dbus", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "Pulse HR" in done.stdout and "00 48" in done.stdout
