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

from pygatt.testing import World
from pygatt.testing.dbus_bus import PrivateBus
from tests.cli_helpers import HR, NAMELESS, run
from tests.dbus_sim import INDICATE, requires_daemon, world_dict

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


def test_subscribe_indicate_says_bluez_used_notifications(capsys: pytest.CaptureFixture[str]) -> None:
    """2a37 offers notifications only: BlueZ's StartNotify enables them whatever --indicate asks,
    so the output calls the values notifications."""
    argv = ["--backend", "dbus", "--simulate", "--json", "subscribe", HR, "2a37", "--count", "2", "--indicate"]
    status, out, _ = run(capsys, *argv)
    values = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [v["value"] for v in values] == ["0048", "004a"]
    assert [v["kind"] for v in values] == ["notification", "notification"]
    status, out, err = run(capsys, *argv[:-3], "--timeout", "1", "--count", "50", "--indicate")
    assert status == 4 and err.endswith(" of 50 notifications arrived within 1 s\n"), err


def test_subscribe_says_bluez_used_indications(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A characteristic that offers indications only gets indications from StartNotify, with or
    without --indicate, and the output says so."""
    data = world_dict()
    indicated = data["peripherals"][0]["services"][2]["characteristics"][1]
    assert indicated["uuid"] == INDICATE
    indicated["notify"] = {"trigger": "subscribe", "interval_s": 0.02, "count": 3, "values": ["01", "02", "03"]}
    world = str(World.from_dict(data).write(tmp_path / "world.json"))
    for extra in ([], ["--indicate"]):
        argv = ["--backend", "dbus", "--simulate", world, "--json", "subscribe", HR, INDICATE, "--count", "3"]
        status, out, _ = run(capsys, *argv, *extra)
        values = [json.loads(line) for line in out.splitlines()]
        assert status == 0 and [v["value"] for v in values] == ["01", "02", "03"]
        assert [v["kind"] for v in values] == ["indication"] * 3, extra


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


def test_a_name_with_control_characters_is_printed_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A device's name is whatever it advertises: an escape sequence or a line break in it must not
    reach the terminal (or fake a row of the table); ``--json`` keeps the name as it is."""
    data = world_dict()
    data["peripherals"][0]["name"] = "Pulse\x1b[2J\nHR"
    world = str(World.from_dict(data).write(tmp_path / "world.json"))
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", world, "scan", "--timeout", "0.5")
    assert status == 0 and "\x1b" not in out
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:]}
    assert rows[HR].split()[0] == "Pulse\\x1b[2J\\nHR"
    status, out, _ = run(capsys, "--backend", "dbus", "--simulate", world, "--json", "scan", "--timeout", "0.5")
    names = {d["address"]: d["name"] for d in json.loads(out)["devices"]}
    assert status == 0 and names[HR] == "Pulse\x1b[2J\nHR"
