"""The REAL BlueZ programs (Debian's bluez package) on a machine without an adapter.

These machines have no Bluetooth adapter and no Bluetooth in the kernel, so
every real tool fails; what is tested is that each failure reaches the user as
the right exception, quoting the tool, fast, and with nothing left running.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends.gatttool.tools import ToolCommands

pytestmark = [
    pytest.mark.bluez,
    pytest.mark.skipif(
        shutil.which("gatttool") is None, reason="BlueZ's gatttool is not installed (apt-get install bluez)"
    ),
]


def children_of_this_process():
    """PIDs of live child processes (zombies excluded), read from /proc."""
    mine = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == mine and fields[0] != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def real_backend():
    backend = pygatt.GATTToolBackend(tools=ToolCommands())
    yield backend
    backend.stop()


def test_real_gatttool_starts_and_stops_leaving_nothing(real_backend):
    threads = set(threading.enumerate())
    real_backend.start(reset_on_start=False)
    pid = real_backend._pool.spare.pid
    assert pid in children_of_this_process()
    started = time.monotonic()
    real_backend.stop()
    assert time.monotonic() - started < 2
    assert pid not in children_of_this_process()
    assert set(threading.enumerate()) <= threads


def test_real_gatttool_connect_without_adapter_raises_not_connected_quoting_gatttool(real_backend):
    real_backend.start(reset_on_start=False)
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError) as info:
        real_backend.connect("11:22:33:44:55:66", timeout=5)
    assert time.monotonic() - started < 5
    message = str(info.value)
    # no Bluetooth in the kernel here: the socket cannot even be created
    assert "socket(SEQPACKET, L2CAP)" in message or "connect to 11:22:33:44:55:66" in message
    # the process survives a failed connect and is reused
    assert real_backend._pool.spare is not None and real_backend._pool.spare.alive


def test_real_gatttool_reset_on_start_warns_and_goes_on(real_backend, caplog):
    if shutil.which("hciconfig") is None:
        pytest.skip("hciconfig is not installed")
    real_backend.start()  # reset_on_start=True, the pygatt default
    assert "Could not reset hci0" in caplog.text
    assert real_backend._pool.spare.alive


def test_real_hciconfig_reset_fails_with_its_words(real_backend):
    with pytest.raises(exceptions.ToolError, match="hciconfig") as info:
        real_backend.reset()
    assert info.value.returncode not in (0, None)
    assert info.value.output  # hciconfig's own message is kept


def test_real_hcitool_scan_fails_fast_with_its_words(real_backend):
    started = time.monotonic()
    with pytest.raises(exceptions.ToolError) as info:
        real_backend.scan(timeout=5)
    assert time.monotonic() - started < 4
    assert "hcitool" in str(info.value) and info.value.output
    assert children_of_this_process() == []


def test_real_bluetoothctl_remove_abort_becomes_bleerror(real_backend):
    if shutil.which("bluetoothctl") is None:
        pytest.skip("bluetoothctl is not installed")
    started = time.monotonic()
    with pytest.raises(exceptions.BLEError, match="bluetoothctl"):
        real_backend.clear_bond("11:22:33:44:55:66")
    assert time.monotonic() - started < 6


def test_real_hcitool_rssi_without_adapter_is_a_bleerror(real_backend):
    # get_rssi needs a connection, which cannot be made here: the hcitool call itself is checked
    from pygatt.backends.gatttool import external

    with pytest.raises(exceptions.ToolError):
        external.run_tool(["hcitool", "-i", "hci0", "rssi", "11:22:33:44:55:66"], 5, "get_rssi")
