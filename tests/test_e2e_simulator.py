"""The public API end to end: real pexpect, real pty, the simulated BlueZ programs.

No Bluetooth adapter exists on these machines; everything that needs a radio
runs here against :mod:`pygatt.testing`'s simulated peripheral instead.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Type

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends import BLEAddressType
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World, load_world
from pygatt.util import uuid16_to_uuid
from tests.helpers import wait_for

pytestmark = pytest.mark.simulator

HR_ADDRESS = "C4:7C:8D:6A:3E:01"
RANDOM_ADDRESS = "5D:2B:9F:11:04:7E"
HR = uuid16_to_uuid(0x2A37)
BATTERY = uuid16_to_uuid(0x2A19)


@pytest.fixture
def make_backend(tmp_path):
    backends = []
    threads = set(threading.enumerate())

    def make(world="heart-rate", **kwargs):
        if isinstance(world, World):
            world = str(world.write(tmp_path / f"world{len(backends)}.json"))
        backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(world), **kwargs)
        backend.start()
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        started = time.monotonic()
        backend.stop()
        assert time.monotonic() - started < 2
    assert wait_for(lambda: set(threading.enumerate()) <= threads, 2)


def sensor(**overrides):
    """A one-peripheral world based on the shipped heart-rate sensor."""
    world = load_world("heart-rate")
    for key, value in overrides.items():
        setattr(world.peripherals[0], key, value)
    return world


def test_scan_lists_named_and_unknown_devices(make_backend):
    devices = make_backend().scan(timeout=0.5)
    assert {d["address"]: d["name"] for d in devices} == {HR_ADDRESS: "Pulse HR", RANDOM_ADDRESS: None}


def test_scan_with_btmgmt_reports_rssi(make_backend):
    devices = {d["address"]: d for d in make_backend().scan(timeout=0.5, tool="btmgmt")}
    assert devices[HR_ADDRESS]["rssi"] == -58 and devices[RANDOM_ADDRESS]["address_type"] == "random"


def test_scan_permission_error(make_backend):
    world = load_world("heart-rate")
    world.adapter.scan_error = "permission"
    with pytest.raises(exceptions.PermissionDeniedError, match="Operation not permitted"):
        make_backend(world).scan(timeout=2)


def test_connect_public_and_random(make_backend):
    backend = make_backend()
    device = backend.connect(HR_ADDRESS, timeout=15)
    other = backend.connect(RANDOM_ADDRESS, address_type=BLEAddressType.random, timeout=15)
    assert device.char_read_handle(0x0003) == bytearray(b"Pulse HR")
    assert other.char_read_handle(0x0003) == bytearray([0x21])


def test_connect_with_wrong_address_type_fails_with_gatttools_words(make_backend):
    with pytest.raises(exceptions.NotConnectedError, match=r"Connection refused \(111\)"):
        make_backend().connect(RANDOM_ADDRESS)  # public by default: not reachable


def test_connect_to_absent_adapter_quotes_the_kernel(make_backend):
    world = load_world("heart-rate")
    world.adapter.present = False
    with pytest.raises(exceptions.NotConnectedError, match="Address family not supported"):
        make_backend(world).connect(HR_ADDRESS)


def test_discover_read_by_uuid_and_handle(make_backend):
    device = make_backend().connect(HR_ADDRESS)
    characteristics = device.discover_characteristics()
    assert len(characteristics) == 8
    assert characteristics[BATTERY].handle == 0x0010
    assert characteristics[BATTERY].descriptors == {uuid16_to_uuid(0x2902): 0x0011, uuid16_to_uuid(0x2901): 0x0012}
    assert device.char_read(BATTERY) == bytearray([0x5A])
    assert device.char_read("2A00") == bytearray(b"Pulse HR")
    assert device.char_read_handle(0x0012) == bytearray(b"Battery")


def test_read_not_permitted_and_invalid_handle(make_backend):
    device = make_backend().connect(HR_ADDRESS)
    with pytest.raises(exceptions.ReadNotPermittedError, match="0x0017"):
        device.char_read_handle(0x0017)
    with pytest.raises(exceptions.InvalidHandleError, match="0x0100"):
        device.char_read_handle(0x0100)
    with pytest.raises(exceptions.WriteNotPermittedError):
        device.char_write_handle(0x0003, b"\x00")


def test_write_with_and_without_response(make_backend):
    device = make_backend().connect(HR_ADDRESS)
    device.char_write("2a39", bytearray([0x01]))  # the control point is write-only
    with pytest.raises(exceptions.ReadNotPermittedError):
        device.char_read_handle(0x000D)
    device.char_write_handle(0x0011, b"\x01\x00", wait_for_response=False)
    assert device.char_read_handle(0x0011) == bytearray(b"\x01\x00")
    device.char_write_handle(0x0011, b"\x00\x00", wait_for_response=True)
    assert device.char_read_handle(0x0011) == bytearray(b"\x00\x00")


def test_subscribe_notifications_then_unsubscribe(make_backend):
    device = make_backend().connect(HR_ADDRESS)
    got = []
    device.subscribe(HR, callback=lambda handle, value: got.append((handle, bytes(value))))
    assert wait_for(lambda: len(got) == 5)
    assert got == [(0x0008, bytes.fromhex(v)) for v in ("0048", "004a", "004c", "004b", "0049")]
    device.unsubscribe(HR)
    assert device.char_read_handle(0x0009) == bytearray(b"\x00\x00")


def test_subscribe_indications(make_backend):
    device = make_backend().connect(HR_ADDRESS)
    got = []
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)), indication=True)
    assert device.char_read_handle(0x0009) == bytearray(b"\x02\x00")
    assert wait_for(lambda: len(got) == 5)


def test_mtu_exchange_and_long_values(make_backend):
    world = sensor()
    world.peripherals[0].services[1].characteristics.append(
        Characteristic("ff01", ["read", "write"], value=bytes(range(200)).hex())
    )
    device = make_backend(world).connect(HR_ADDRESS)
    handle = device.get_handle("ff01")
    assert device.char_read_long_handle(handle) == bytearray(range(200))  # longer than one packet at MTU 23
    device.char_write_long("ff01", bytes(300 * [7]))
    assert device.char_read_long("ff01") == bytearray(300 * [7])
    with pytest.raises(ValueError, match="MTU 23"):
        device.char_write_handle(handle, bytes(21), wait_for_response=False)
    assert device.exchange_mtu(100) == 100
    device.char_write_handle(handle, bytes(97), wait_for_response=False)
    assert device.char_read_handle(handle) == bytearray(97)
    with pytest.raises(exceptions.BLEError, match="once per connection"):
        device.exchange_mtu(120)


def test_slow_response_times_out_with_context_then_recovers(make_backend):
    device = make_backend(sensor(response_delay_s=0.6)).connect(HR_ADDRESS)
    with pytest.raises(exceptions.NotificationTimeout) as info:
        device.char_read_handle(0x0003, timeout=0.2)
    assert "char-read-hnd 0x0003" in str(info.value) and "char-read-hnd 0x0003" in info.value.gatttool_output
    assert device.char_read_handle(0x0010, timeout=3) == bytearray([0x5A])  # not the late 'Pulse HR'


def test_remote_disconnect_fires_callback_once_and_calls_fail(make_backend):
    device = make_backend(sensor(disconnect_after_ops=2)).connect(HR_ADDRESS)
    fired = []
    device.register_disconnect_callback(fired.append)
    device.char_read_handle(0x0003)
    device.char_read_handle(0x0003)
    assert wait_for(lambda: fired == [device])
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0003)
    time.sleep(0.1)
    assert fired == [device]


def test_auto_reconnect_resubscribes_after_a_drop(make_backend):
    backend = make_backend(sensor(disconnect_after_ops=3))
    device = backend.connect(HR_ADDRESS, auto_reconnect=True)
    drops, got = [], []
    device.register_disconnect_callback(drops.append)
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)))  # discovery 2 ops + CCCD = 3
    assert wait_for(lambda: drops == [device])
    assert wait_for(lambda: device.connected and len(got) >= 5, timeout=8)
    assert device.char_read_handle(0x0009) == bytearray(b"\x01\x00")  # CCCD written again after reconnecting


def test_gatttool_killed_mid_read(make_backend):
    backend = make_backend(sensor(response_delay_s=5))
    device = backend.connect(HR_ADDRESS)
    fired = []
    device.register_disconnect_callback(fired.append)
    threading.Timer(0.2, os.kill, (device.backend._links[device].session.pid, signal.SIGKILL)).start()
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0003, timeout=10)
    assert time.monotonic() - started < 2
    assert wait_for(lambda: fired == [device])


def test_several_devices_with_their_own_notifications(make_backend):
    world = World(
        peripherals=[
            Peripheral(
                address=f"AA:00:00:00:00:0{n}",
                name=f"Node {n}",
                services=[
                    Service(
                        "180d",
                        [
                            Characteristic(
                                "2a37",
                                ["notify"],
                                notify=NotifyStream(interval_s=0.01, count=20, values=[f"0{n}"]),
                            )
                        ],
                    )
                ],
            )
            for n in range(1, 4)
        ]
    )
    backend = make_backend(world)
    got = {n: [] for n in range(1, 4)}
    devices = {}
    for n in range(1, 4):
        devices[n] = backend.connect(f"AA:00:00:00:00:0{n}")
        devices[n].subscribe(HR, callback=lambda h, v, n=n: got[n].append(bytes(v)))
    assert wait_for(lambda: all(len(got[n]) == 20 for n in got))
    assert all(set(got[n]) == {bytes([n])} for n in got)
    devices[2].disconnect()
    assert devices[3].char_read_handle(0x0004) == bytearray(b"\x01\x00")
    with pytest.raises(exceptions.BLEError, match="Several devices"):
        backend.sendline("sec-level")


def test_fast_stream_arrives_complete_and_in_order(make_backend):
    world = sensor()
    world.peripherals[0].services[1].characteristics[0].notify = NotifyStream(interval_s=0, count=10_000, size=20)
    device = make_backend(world).connect(HR_ADDRESS)
    got = []
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)))
    assert wait_for(lambda: len(got) == 10_000, timeout=30)
    stream = world.peripherals[0].services[1].characteristics[0].notify
    assert got == [stream.value(n) for n in range(10_000)]


def test_reset_rssi_bond_and_clear_bond(make_backend):
    backend = make_backend()
    backend.reset()
    device = backend.connect(HR_ADDRESS)
    assert device.get_rssi() == -58
    device.bond()
    backend.clear_bond(HR_ADDRESS)
    backend.clear_bond(RANDOM_ADDRESS)  # no bond: nothing to do, no error


def test_the_adapter_named_by_its_address_works_with_every_program(make_backend):
    """gatttool, hcitool and hciconfig take an adapter's address as well as its hciN name
    (pygatt 5.0.0 passed ``hci_device`` on as given), and so do their simulations."""
    adapter_address = load_world("heart-rate").adapter.address
    backend = make_backend(hci_device=adapter_address.lower())  # start() resets it with hciconfig
    backend.reset()
    assert {d["address"] for d in backend.scan(timeout=0.5)} == {HR_ADDRESS, RANDOM_ADDRESS}  # hcitool lescan
    device = backend.connect(HR_ADDRESS)  # gatttool -i ADDRESS
    assert device.char_read_handle(0x0003) == bytearray(b"Pulse HR")
    assert device.get_rssi() == -58  # hcitool rssi


def test_another_adapters_address_is_no_such_device():
    backend = pygatt.GATTToolBackend(hci_device="00:1A:7D:DA:71:14", tools=ToolCommands.simulated("heart-rate"))
    with pytest.raises(exceptions.ToolError, match="No such device"):
        backend.scan(timeout=0.5)


def test_bond_failure_is_a_clear_error(make_backend):
    device = make_backend(sensor(sec_level_error="setsockopt(BT_SECURITY): Operation not permitted (1)")).connect(
        HR_ADDRESS
    )
    with pytest.raises(exceptions.GATTError, match="BT_SECURITY") as info:
        device.bond()
    assert not isinstance(info.value, exceptions.NotConnectedError)
    assert device.connected and device.char_read_handle(0x0003) == bytearray(b"Pulse HR")  # the link is still up


def test_reset_failure_quotes_hciconfig(make_backend):
    world = load_world("heart-rate")
    world.adapter.reset_error = "Can't init device hci0: Connection timed out (110)"
    with pytest.raises(exceptions.ToolError, match="Connection timed out"):
        make_backend(world).reset()


@pytest.mark.parametrize("backend", [pygatt.GATTToolBackend, pygatt.BGAPIBackend, pygatt.DBusBackend])
def test_a_bad_pygatt_simulate_world_is_refused_when_the_backend_is_built(monkeypatch, tmp_path, backend):
    """A missing or broken world is a ValueError from the constructor on every backend, before any
    program or bus runs (the GATTTool backend used to start a simulated gatttool that could not load
    it, and fail with a ToolError after waiting for its prompt; the D-Bus backend refused it only
    in start())."""
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for world, words in ((str(tmp_path / "missing.json"), "no world file"), (str(broken), "Expecting property name")):
        monkeypatch.setenv("PYGATT_SIMULATE", world)
        with pytest.raises(ValueError, match=words):
            backend()
    if backend is pygatt.DBusBackend:  # given as an argument, the same
        with pytest.raises(ValueError, match="no world file"):
            backend(simulate=str(tmp_path / "missing.json"))


@pytest.mark.parametrize("backend", [pygatt.GATTToolBackend, pygatt.BGAPIBackend, pygatt.DBusBackend])
def test_a_json_file_that_is_not_a_world_is_a_value_error_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: Type[Any]
) -> None:
    """docs/simulator.md: a world that cannot be loaded ("no such file or shipped name, or not a
    world") makes the backend's constructor raise ValueError. Valid JSON that is not laid out as a
    world (a misspelt key, a missing one, a list, a directory) used to escape as TypeError,
    KeyError, AttributeError or IsADirectoryError."""
    cases = {
        "misspelt.json": '{"peripherals": [{"adress": "AA:BB:CC:DD:EE:FF"}]}',
        "missing.json": '{"peripherals": [{"address": "AA:BB:CC:DD:EE:FF", "services": [{}]}]}',
        "list.json": "[1, 2]",
    }
    worlds = []
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        worlds.append(str(tmp_path / name))
    (tmp_path / "directory.json").mkdir()
    worlds.append(str(tmp_path / "directory.json"))
    for world in worlds:
        monkeypatch.setenv("PYGATT_SIMULATE", world)
        with pytest.raises(ValueError, match=re.escape(repr(world))):
            backend()
        with pytest.raises(ValueError):
            load_world(world)


def test_pygatt_simulate_environment_variable_points_unchanged_code_at_the_simulator(monkeypatch):
    monkeypatch.setenv("PYGATT_SIMULATE", "heart-rate")
    adapter = pygatt.GATTToolBackend()
    try:
        adapter.start()
        device = adapter.connect(HR_ADDRESS)
        assert device.char_read("00002a19-0000-1000-8000-00805f9b34fb") == bytearray([0x5A])
    finally:
        adapter.stop()
