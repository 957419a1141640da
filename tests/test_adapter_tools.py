"""scan, kill, reset, clear_bond and get_rssi through real processes.

Each BlueZ tool is replaced (through ``tools=ToolCommands(...)``) by a small
shell script that prints what the real tool prints (as seen from BlueZ 5.66's
programs; tests/test_sim_vs_real_gatttool.py compares them) and records its
arguments, so the backend's process handling — pty, SIGINT, timeouts, exit
codes — runs for real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends.gatttool.tools import ToolCommands
from tests.helpers import ADDRESS

LESCAN = """#!/bin/sh
echo "$@" > "{log}"
trap 'exit 0' INT
echo "LE Scan ..."
echo "C4:7C:8D:6A:3E:01 (unknown)"
echo "C4:7C:8D:6A:3E:01 Pulse HR"
echo "5D:11:22:33:44:55 (unknown)"
while true; do sleep 0.02; done
"""


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body.format(log=tmp_path / f"{name}.args"))
    path.chmod(0o755)
    return str(path)


def args_of(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.args").read_text().strip()


def test_scan_returns_upstream_keys_and_stops_hcitool_with_sigint(tmp_path):
    backend = pygatt.GATTToolBackend(
        hci_device="hci1", tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", LESCAN)])
    )
    started = time.monotonic()
    devices = backend.scan(timeout=0.5)
    assert time.monotonic() - started < 2
    assert devices == [
        {"address": "C4:7C:8D:6A:3E:01", "name": "Pulse HR", "rssi": None},
        {"address": "5D:11:22:33:44:55", "name": None, "rssi": None},
    ]
    assert args_of(tmp_path, "hcitool") == "-i hci1 lescan"
    assert backend.filtered_scan("Pulse", timeout=0.3) == [devices[0]]


def test_a_second_scan_works_after_the_first(tmp_path):
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", LESCAN)]))
    assert len(backend.scan(timeout=0.3)) == 2
    assert len(backend.scan(timeout=0.3)) == 2


def test_kill_ends_a_running_scan_early(tmp_path):
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", LESCAN)]))
    result = {}
    thread = threading.Thread(target=lambda: result.update(devices=backend.scan(timeout=30)))
    started = time.monotonic()
    thread.start()
    time.sleep(0.4)
    backend.kill()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 3
    assert len(result["devices"]) == 2
    backend.kill()  # nothing running: no error


def test_scan_that_ignores_sigint_is_killed(tmp_path):
    stubborn = LESCAN.replace("trap 'exit 0' INT", "trap '' INT")
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", stubborn)]))
    started = time.monotonic()
    assert len(backend.scan(timeout=0.3)) == 2
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "stderr, error",
    [
        ("Set scan parameters failed: Operation not permitted", exceptions.PermissionDeniedError),
        ("Set scan parameters failed: Input/output error", exceptions.ToolError),
        ("Could not open device: No such device", exceptions.ToolError),
    ],
)
def test_scan_errors_quote_hcitool(tmp_path, stderr, error):
    failing = f'#!/bin/sh\necho "{stderr}" >&2\nexit 1\n'
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", failing)]))
    with pytest.raises(error) as info:
        backend.scan(timeout=5)
    assert stderr in str(info.value)
    if error is exceptions.PermissionDeniedError:
        assert "sudo" in str(info.value) or "setcap" in str(info.value)


def test_stop_during_a_scan_ends_it(tmp_path):
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", LESCAN)]))
    thread = threading.Thread(target=backend.scan, kwargs={"timeout": 30})
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    backend.stop()
    thread.join(3)
    assert not thread.is_alive() and time.monotonic() - started < 2


def test_btmgmt_scan_reports_rssi(tmp_path):
    btmgmt = """#!/bin/sh
echo "$@" > "{log}"
trap 'exit 0' INT
echo "Discovery started"
echo "hci0 type 6 discovering on"
echo "hci0 dev_found: C4:7C:8D:6A:3E:01 type LE Public rssi -58 flags 0x0000 AD flags 0x06 name Pulse HR"
while true; do sleep 0.02; done
"""
    backend = pygatt.GATTToolBackend(tools=ToolCommands(btmgmt=[script(tmp_path, "btmgmt", btmgmt)]))
    devices = backend.scan(timeout=0.4, tool="btmgmt")
    assert devices == [
        {"address": "C4:7C:8D:6A:3E:01", "name": "Pulse HR", "rssi": -58, "address_type": "public", "flags": 6}
    ]
    assert args_of(tmp_path, "btmgmt") == "--timeout 1 --index 0 find -l"
    with pytest.raises(ValueError, match="tool"):
        backend.scan(timeout=1, tool="bluetoothctl")


def test_reset_runs_hciconfig_reset(tmp_path):
    hciconfig = script(tmp_path, "hciconfig", '#!/bin/sh\necho "$@" > "{log}"\n')
    backend = pygatt.GATTToolBackend(hci_device="hci2", tools=ToolCommands(hciconfig=[hciconfig]))
    backend.reset()
    assert args_of(tmp_path, "hciconfig").endswith("hci2 reset")


def test_reset_that_hangs_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setattr("pygatt.backends.gatttool.adapter.TOOL_TIMEOUT_S", 0.5)
    hciconfig = script(tmp_path, "hciconfig", "#!/bin/sh\nexec sleep 30\n")
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hciconfig=[hciconfig]))
    started = time.monotonic()
    with pytest.raises(exceptions.ToolError, match="no answer"):
        backend.reset()
    assert time.monotonic() - started < 3


def test_clear_bond_removes_the_address_or_all(tmp_path):
    ctl = script(tmp_path, "bluetoothctl", '#!/bin/sh\necho "$@" > "{log}"\necho "Device has been removed"\n')
    backend = pygatt.GATTToolBackend(tools=ToolCommands(bluetoothctl=[ctl]))
    backend.clear_bond("c4:7c:8d:6a:3e:01")
    assert args_of(tmp_path, "bluetoothctl").endswith("remove C4:7C:8D:6A:3E:01")
    backend.clear_bond()
    assert args_of(tmp_path, "bluetoothctl").endswith("remove *")


def test_clear_bond_of_an_unknown_device_is_not_an_error(tmp_path):
    ctl = script(tmp_path, "bluetoothctl", '#!/bin/sh\necho "Device $2 not available"\nexit 1\n')
    pygatt.GATTToolBackend(tools=ToolCommands(bluetoothctl=[ctl])).clear_bond(ADDRESS)


def test_get_rssi_reads_hcitool_rssi(fake_spawn, tmp_path):
    hcitool = script(tmp_path, "hcitool", '#!/bin/sh\necho "$@" > "{log}"\necho "RSSI return value: -63"\n')
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[hcitool]))
    backend.start(reset_on_start=False)
    try:
        device = backend.connect(ADDRESS)
        assert device.get_rssi() == -63
        assert args_of(tmp_path, "hcitool") == f"-i hci0 rssi {ADDRESS}"
    finally:
        backend.stop()


def test_get_rssi_when_hcitool_cannot_says_why(fake_spawn, tmp_path):
    hcitool = script(tmp_path, "hcitool", '#!/bin/sh\necho "Not connected."\nexit 1\n')
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[hcitool]))
    backend.start(reset_on_start=False)
    try:
        with pytest.raises(exceptions.BLEError, match="Not connected"):
            backend.connect(ADDRESS).get_rssi()
    finally:
        backend.stop()


def test_missing_or_unrunnable_tools_are_tool_errors(tmp_path):
    not_executable = tmp_path / "hciconfig"
    not_executable.write_text("#!/bin/sh\n")
    for program in (str(tmp_path / "missing"), str(not_executable)):
        backend = pygatt.GATTToolBackend(tools=ToolCommands(hciconfig=[program], bluetoothctl=[program]))
        with pytest.raises(exceptions.ToolError, match="hciconfig|missing"):
            backend.reset()
        with pytest.raises(exceptions.ToolError):
            backend.clear_bond()


@pytest.mark.parametrize("bad", [None, 5, b"Pulse"])
def test_filtered_scan_refuses_a_filter_that_is_not_a_str_before_scanning(tmp_path, bad):
    # a filter that cannot be compared with a name failed only after the whole scan had run (or, when
    # no device answered, not at all); it is refused before hcitool starts
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[script(tmp_path, "hcitool", LESCAN)]))
    with pytest.raises(TypeError, match="name_filter"):
        backend.filtered_scan(bad, timeout=0.3)
    assert not (tmp_path / "hcitool.args").exists()


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_ends_an_hcitool_rssi_still_running(fake_spawn, tmp_path):
    # get_rssi's hcitool is given up to 5 s; stop() returned while it (and the caller) went on waiting
    pid_file = tmp_path / "hcitool.pid"
    hcitool = script(
        tmp_path, "hcitool", f'#!/bin/sh\necho $$ > "{pid_file}.tmp"; mv "{pid_file}.tmp" "{pid_file}"\nexec sleep 30\n'
    )
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[hcitool]))
    backend.start(reset_on_start=False)
    device = backend.connect(ADDRESS)
    errors = []

    def read_rssi():
        try:
            device.get_rssi()
        except exceptions.BLEError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read_rssi)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = int(pid_file.read_text())
        backend.stop()
        assert not _running(pid), "hcitool outlived stop()"
    finally:
        backend.stop()
        reader.join(10)
    assert errors
