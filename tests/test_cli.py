"""The pygatt command line, in-process and as a real subprocess, against the simulator and real BlueZ."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest

from pygatt.cli import main

HR = "C4:7C:8D:6A:3E:01"


def run(*argv):
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_scan_table_and_json():
    status, out = run("--simulate", "scan", "--timeout", "0.5")
    assert status == 0
    assert f"{HR}  Pulse HR" in out and "5D:2B:9F:11:04:7E  (unknown)" in out and "2 device(s) found" in out
    status, out = run("scan", "--simulate", "--json", "--tool", "btmgmt", "--timeout", "0.5")
    devices = {d["address"]: d for d in json.loads(out)}
    assert status == 0 and devices[HR]["rssi"] == -58 and devices[HR]["name"] == "Pulse HR"


def test_discover_lists_characteristics_with_names():
    status, out = run("--simulate", "discover", HR)
    assert status == 0
    assert "0x0008  00002a37-0000-1000-8000-00805f9b34fb  Heart Rate Measurement" in out
    assert "0x0010  00002a19-0000-1000-8000-00805f9b34fb  Battery Level" in out
    assert "8 characteristic(s)" in out
    status, out = run("--simulate", "--json", "discover", HR)
    found = {c["uuid"][4:8]: c for c in json.loads(out)["characteristics"]}
    assert found["2a19"]["handle"] == 0x10 and "00002902-0000-1000-8000-00805f9b34fb" in found["2a19"]["descriptors"]


def test_read_by_uuid_and_handle():
    assert run("--simulate", "read", HR, "2a19") == (0, "5a  (90)\n")
    assert run("--simulate", "read", HR, "0x0003") == (0, "50 75 6c 73 65 20 48 52  (Pulse HR)\n")
    status, out = run("--simulate", "--json", "read", HR, "2a19")
    assert status == 0 and json.loads(out)["value"] == "5a"


def test_write_with_and_without_response():
    assert run("--simulate", "write", HR, "0x0011", "0100") == (0, "written\n")
    assert run("--simulate", "write", HR, "2a39", "01", "--no-response") == (0, "written\n")


def test_subscribe_count():
    status, out = run("--simulate", "subscribe", HR, "2a37", "--count", "3")
    assert status == 0 and out.splitlines() == ["0x0008  00 48", "0x0008  00 4a", "0x0008  00 4c"]
    status, out = run("--simulate", "--json", "subscribe", HR, "2a37", "--count", "2", "--indicate")
    assert [json.loads(line)["value"] for line in out.splitlines()] == ["0048", "004a"]


def test_subscribe_wait_gives_up_with_timeout_status(capsys):
    status, _ = run("--simulate", "subscribe", HR, "2a37", "--count", "50", "--wait", "0.5")
    assert status == 4 and "notifications within" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["read", "11:22:33:44:55", "2a19"],
        ["read", HR, "zz"],
        ["write", HR, "2a19", "0x1g"],
        ["bogus"],
        ["read", HR + "\nexit", "2a19"],
        [],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert run("--simulate", *argv)[0] == 2


def test_ble_error_exit_1(capsys):
    status, _ = run("--simulate", "read", HR, "0x0017")
    assert status == 1 and "Attribute can't be read" in capsys.readouterr().err


def test_not_connected_exit_3_in_simulation(capsys):
    status, _ = run("--simulate", "read", "5D:2B:9F:11:04:7E", "2a19")  # a random address, asked as public
    assert status == 3 and "Connection refused (111)" in capsys.readouterr().err


def test_demo_shows_discovery_reads_and_notifications():
    status, out = run("--simulate", "demo")
    assert status == 0
    assert "$ pygatt discover C4:7C:8D:6A:3E:01" in out and "Battery Level" in out
    assert "5a  (90)" in out and out.rstrip().endswith("0x0008  00 4c")


def run_subprocess(*argv: str) -> subprocess.CompletedProcess:
    """``python -m pygatt ARGV`` as a real process, no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "pygatt", *argv], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )


def test_real_subprocess_python_m_pygatt():
    proc = run_subprocess("--simulate", "--json", "read", HR, "2a00")
    assert proc.returncode == 0, proc.stderr
    assert bytes.fromhex(json.loads(proc.stdout)["value"]) == b"Pulse HR"


bluez = pytest.mark.skipif(shutil.which("gatttool") is None, reason="BlueZ's gatttool is not installed")


@pytest.mark.bluez
@bluez
def test_real_gatttool_connect_failure_exit_3():
    proc = run_subprocess("read", "11:22:33:44:55:66", "2a19")
    assert proc.returncode == 3, proc.stderr
    assert "pygatt: error: connect 11:22:33:44:55:66 failed:" in proc.stderr


@pytest.mark.bluez
@bluez
def test_real_hcitool_scan_without_adapter_exit_5():
    proc = run_subprocess("scan", "--timeout", "2")
    assert proc.returncode == 5, proc.stderr
    assert "hcitool" in proc.stderr
