"""Scripts written for pygatt 5.0.0, and the usage examples of its API description, run unchanged.

What is checked here (issue 10):

* the usage examples call the backend without a device (``adapter.char_read(uuid, timeout=2)``);
  pygatt 5.0.0 itself took the connected device first (``adapter.char_read(device, uuid)``,
  or ``connected_device=device``). Both work, for every backend method that acts on a device;
  with no device connected the call raises NotConnectedError saying so, with several a BLEError
  naming them, and nothing reaches gatttool before the device is known;
* ``GATTToolBackend.reconnect(device, timeout=5.0)``, ``BLEAddressType(1)``;
* a ``GATTToolBLEDevice`` built directly over a mock backend, as users' unit tests do;
* ``connect(timeout=t)``, ``discover_characteristics(timeout=t)`` and ``reconnect(timeout=t)`` are
  each one deadline for the whole call;
* starting gatttool from a process that already runs threads does not fork that process, so
  Python >= 3.12 shows no DeprecationWarning (on 3.11, where CI runs, Python does not warn at
  all: the test also checks that no fork happens, which holds on every version).

No Bluetooth adapter exists here: the tests that need a radio run the simulated BlueZ programs
of :mod:`pygatt.testing` through a real pty, the rest use the mocked gatttool child of
``tests/fake_child.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List
from unittest import mock

import pytest

import pygatt
from pygatt.backends import BLEAddressType, Characteristic
from pygatt.backends.gatttool.device import GATTToolBLEDevice
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.exceptions import BLEError, GATTError, NotConnectedError, NotificationTimeout
from pygatt.testing import Characteristic as SimCharacteristic
from pygatt.testing import Service, World, load_world
from pygatt.util import uuid16_to_uuid
from tests.fake_child import FakeGatttool
from tests.helpers import ADDRESS, FakeFactory, wait_for

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).parent / "compat_scripts"
HR = "C4:7C:8D:6A:3E:01"  # the shipped world's heart-rate sensor (public address)
OTHER = "5D:2B:9F:11:04:7E"  # the shipped world's second peripheral (random address)
BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"
HEART_RATE = uuid16_to_uuid(0x2A37)
SCRATCH = "0000ff01-0000-1000-8000-00805f9b34fb"  # a read/write characteristic added to both peripherals
BOND_REFUSED = "setsockopt(BT_SECURITY): Operation not permitted (1)"
NONE_CONNECTED = r"(?i)\bno\b.*\bconnected\b|\bnot connected\b"


# -- 5.0.0-style scripts, run unchanged in a fresh interpreter -------------------------------


def run_script(name: str, world: str = "heart-rate") -> List[str]:
    """Run a script from tests/compat_scripts against the simulator, as a user would run it.

    DeprecationWarnings are errors, as in a user's test suite run with ``-W error``.
    """
    env = dict(os.environ, PYGATT_SIMULATE=world, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", str(SCRIPTS / name)],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


@pytest.mark.simulator
def test_seed_usage_examples_run_unchanged():
    assert run_script("seed_usage.py") == [
        "battery: 90",
        "characteristics: 8",
        "written: 0100",
        "handle read: Pulse HR",
    ]


@pytest.mark.simulator
def test_500_style_script_runs_unchanged():
    assert run_script("upstream_500_style.py") == [
        "address types: public random 1",
        "reconnect delay: 1.0",
        "batteries: 90 33",
        "name: Pulse HR",
        "keyword: 33",
        "cccd: 0100",
        "discovered: 8 1",
        "mtu: 64",
        "after reconnect: 90",
        "not connected after disconnect",
        "mock got the device first: True",
        "mock device disconnected",
    ]


# -- BLEAddressType ------------------------------------------------------------------------------


def test_address_type_values_are_500s():
    assert BLEAddressType(1) is BLEAddressType.public and BLEAddressType(2) is BLEAddressType.random
    assert BLEAddressType.public.value == 1 and BLEAddressType.random.value == 2


# -- the simulator: two peripherals connected through one backend --------------------------------


def two_device_world() -> World:
    """The shipped world, with a read/write characteristic on both peripherals, and a second
    peripheral that refuses to raise its security level (so bond() shows which device it reached).
    """
    world = load_world("heart-rate")
    hr, other = world.peripherals
    hr.services.append(Service("ffe0", [SimCharacteristic("ff01", ["read", "write"], value=bytes(range(40)).hex())]))
    other.services.append(
        Service("ffe0", [SimCharacteristic("ff01", ["read", "write"], value=bytes(range(100, 140)).hex())])
    )
    other.sec_level_error = BOND_REFUSED
    return world


@pytest.fixture
def simulated(tmp_path) -> Iterator[Callable[..., pygatt.GATTToolBackend]]:
    """Start GATTTool backends on the simulated BlueZ programs; all are stopped afterwards."""
    backends: List[pygatt.GATTToolBackend] = []
    threads = set(threading.enumerate())

    def make(world: Any = None) -> pygatt.GATTToolBackend:
        world = world if world is not None else two_device_world()
        path = world.write(tmp_path / f"world{len(backends)}.json")
        backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(str(path)))
        backend.start(reset_on_start=False)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.stop()
    assert wait_for(lambda: set(threading.enumerate()) <= threads, 3), "threads outlived the backends"


@pytest.fixture
def two(simulated):
    backend = simulated()
    device = backend.connect(HR)
    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    return backend, device, other


def expected_value(device: Any, n: int, size: int) -> bytearray:
    """A value unique to this device and this call, so a read-back shows where a write went."""
    base = 0x10 if device.address == HR else 0x80
    return bytearray((base + n + i) % 256 for i in range(size))


class Case:
    """How to call one backend method and how to check that it acted on the intended device."""

    def __init__(
        self,
        kwargs: Callable[[Any, int], Dict[str, Any]],
        check: Callable[[Any, int, Callable[[], Any]], None],
    ) -> None:
        self.kwargs = kwargs  # (device, n) -> the method's arguments after the device, by 5.0.0's names
        self.check = check  # (device, n, call) -> runs call, asserts it acted on device


def _check_equal(value_of: Callable[[Any], Any]) -> Callable[[Any, int, Callable[[], Any]], None]:
    def check(device: Any, n: int, call: Callable[[], Any]) -> None:
        assert call() == value_of(device), device.address

    return check


def _check_written(size: int, long: bool) -> Callable[[Any, int, Callable[[], Any]], None]:
    def check(device: Any, n: int, call: Callable[[], Any]) -> None:
        call()
        handle = device.get_handle(SCRATCH)
        got = device.char_read_long_handle(handle) if long else device.char_read_handle(handle)
        assert got == expected_value(device, n, size), device.address

    return check


def _check_discovered(device: Any, n: int, call: Callable[[], Any]) -> None:
    found = call()
    assert all(isinstance(c, Characteristic) for c in found.values())
    assert uuid.UUID(BATTERY) in found and uuid.UUID(SCRATCH) in found
    assert (HEART_RATE in found) == (device.address == HR), device.address  # only the sensor has heart rate


def _check_bonded(device: Any, n: int, call: Callable[[], Any]) -> None:
    if device.address == HR:
        assert call() is None
    else:
        with pytest.raises(GATTError, match="BT_SECURITY"):
            call()
    assert device.connected


CASES: Dict[str, Case] = {
    "char_read": Case(
        lambda d, n: {"uuid": BATTERY, "timeout": 2},
        _check_equal(lambda d: bytearray([0x5A if d.address == HR else 0x21])),
    ),
    "char_read_handle": Case(
        lambda d, n: {"handle": 0x0003, "timeout": 4},
        _check_equal(lambda d: bytearray(b"Pulse HR" if d.address == HR else b"\x21")),
    ),
    "char_read_long": Case(
        lambda d, n: {"uuid": SCRATCH},
        _check_equal(lambda d: bytearray(range(40)) if d.address == HR else bytearray(range(100, 140))),
    ),
    "char_read_long_handle": Case(
        lambda d, n: {"handle": 0x0003},
        _check_equal(lambda d: bytearray(b"Pulse HR" if d.address == HR else b"\x21")),
    ),
    "char_write_handle": Case(
        lambda d, n: {
            "handle": d.get_handle(SCRATCH),
            "value": expected_value(d, n, 2),
            "wait_for_response": True,
            "timeout": 5,
        },
        _check_written(2, long=False),
    ),
    "char_write_long": Case(
        lambda d, n: {"uuid": SCRATCH, "value": expected_value(d, n, 60)},
        _check_written(60, long=True),
    ),
    "char_write_long_handle": Case(
        lambda d, n: {"handle": d.get_handle(SCRATCH), "value": expected_value(d, n, 60)},
        _check_written(60, long=True),
    ),
    "discover_characteristics": Case(lambda d, n: {"timeout": 5}, _check_discovered),
    "bond": Case(lambda d, n: {}, _check_bonded),
    "get_rssi": Case(lambda d, n: {}, _check_equal(lambda d: -58 if d.address == HR else -81)),
}


def assert_names_both(error: BaseException) -> None:
    message = str(error)
    assert HR in message and OTHER in message, message


@pytest.mark.simulator
@pytest.mark.parametrize("name", list(CASES))
def test_backend_method_device_first_and_device_less(two, name):
    backend, device, other = two
    case = CASES[name]
    method = getattr(backend, name)
    n = 0
    for target in (other, device):  # device first: positional, device=, connected_device=
        n += 1
        args = case.kwargs(target, n)
        case.check(target, n, lambda: method(target, *args.values()))  # noqa: B023 - called at once
        n += 1
        args = case.kwargs(target, n)
        case.check(target, n, lambda: method(device=target, **args))  # noqa: B023
        n += 1
        args = case.kwargs(target, n)
        case.check(target, n, lambda: method(connected_device=target, **args))  # noqa: B023

    args = case.kwargs(device, 0)
    with pytest.raises(BLEError) as several:  # no device given, two connected: which one?
        method(*args.values())
    assert_names_both(several.value)

    other.disconnect()  # now the one connected device is used, as in the usage examples
    n += 1
    args = case.kwargs(device, n)
    case.check(device, n, lambda: method(*args.values()))
    n += 1
    args = case.kwargs(device, n)
    case.check(device, n, lambda: method(**args))

    device.disconnect()
    with pytest.raises(NotConnectedError, match=NONE_CONNECTED):
        method(*args.values())


@pytest.mark.simulator
def test_exchange_mtu_device_first_and_device_less(two):
    backend, device, other = two
    assert backend.exchange_mtu(other, 100, 2) == 100
    assert backend.exchange_mtu(connected_device=device, mtu=64, timeout=2) == 64
    device.char_write_handle(device.get_handle(SCRATCH), bytes(61), wait_for_response=False)  # fits MTU 64 now
    with pytest.raises(BLEError) as several:
        backend.exchange_mtu(80)
    assert_names_both(several.value)
    other.disconnect()
    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    assert backend.exchange_mtu(device=other, mtu=80) == 80
    other.disconnect()
    device.disconnect()
    device = backend.connect(HR)
    assert backend.exchange_mtu(72, timeout=2) == 72  # the usage examples' form: the one connected device
    device.disconnect()
    with pytest.raises(NotConnectedError, match=NONE_CONNECTED):
        backend.exchange_mtu(72)


@pytest.mark.simulator
def test_disconnect_device_first_and_device_less(two):
    backend, device, other = two
    backend.disconnect(other)
    assert not other.connected and device.connected
    with pytest.raises(NotConnectedError):
        other.char_read_handle(0x0003)
    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    backend.disconnect(connected_device=other)
    assert not other.connected and device.connected
    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    backend.disconnect(device=other)
    assert not other.connected and device.connected

    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    with pytest.raises(BLEError) as several:
        backend.disconnect()
    assert_names_both(several.value)
    assert device.connected and other.connected  # nothing was disconnected
    other.disconnect()
    backend.disconnect()
    assert not device.connected
    with pytest.raises(NotConnectedError, match=NONE_CONNECTED):
        backend.disconnect()


@pytest.mark.simulator
def test_reconnect_after_the_link_dropped_resubscribes(simulated):
    world = load_world("heart-rate")
    world.peripherals[0].disconnect_after_ops = 3  # the peripheral drops the link after its third answer
    backend = simulated(world)
    device = backend.connect(HR)  # auto_reconnect=False: only reconnect() brings it back
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    device.subscribe(HEART_RATE, callback=lambda handle, value: None)  # discovery (2) + CCCD write (1)
    assert wait_for(lambda: len(drops) == 1)
    assert not device.connected

    for n, reconnect in enumerate(
        (
            lambda: backend.reconnect(device, timeout=5.0),
            lambda: backend.reconnect(connected_device=device, timeout=5.0),
            lambda: backend.reconnect(device=device),
        ),
        start=2,
    ):
        reconnect()  # resubscribes: one CCCD write
        assert device.connected
        assert device.char_read_handle(0x0009) == bytearray(b"\x01\x00")  # the CCCD was written again
        device.char_read_handle(0x0003)  # the third answer: the link drops again
        assert wait_for(lambda: len(drops) == n)  # noqa: B023 - called at once


@pytest.mark.simulator
def test_reconnect_device_less(simulated):
    backend = simulated()
    with pytest.raises(NotConnectedError, match=NONE_CONNECTED):
        backend.reconnect(timeout=5.0)  # nothing was ever connected
    device = backend.connect(HR)
    backend.reconnect(timeout=5.0)  # the one connected device: it stays usable
    assert device.connected and device.char_read_handle(0x0003) == bytearray(b"Pulse HR")
    other = backend.connect(OTHER, address_type=BLEAddressType.random)
    with pytest.raises(BLEError) as several:
        backend.reconnect()
    assert_names_both(several.value)
    assert device.connected and other.connected


@pytest.mark.simulator
def test_reconnect_of_a_connected_device_keeps_it_usable(simulated):
    """A 5.0.0 script may call reconnect(device) while the link is up; it returns, the device works."""
    backend = simulated()
    device = backend.connect(HR)
    backend.reconnect(device, timeout=5.0)
    assert device.connected and device.char_read(BATTERY) == bytearray([0x5A])


# -- nothing reaches gatttool before the device is known (the mocked child) ------------------------

DEVICE_LESS_CALLS: Dict[str, Callable[[pygatt.GATTToolBackend], Any]] = {
    "char_read": lambda b: b.char_read(BATTERY, timeout=2),
    "char_read_handle": lambda b: b.char_read_handle(0x000C),
    "char_write_handle": lambda b: b.char_write_handle(0x000D, bytearray([0x01, 0x00]), timeout=5),
    "char_read_long": lambda b: b.char_read_long(BATTERY),
    "char_read_long_handle": lambda b: b.char_read_long_handle(0x000C),
    "char_write_long": lambda b: b.char_write_long(BATTERY, bytes(40)),
    "char_write_long_handle": lambda b: b.char_write_long_handle(0x000C, bytes(40)),
    "discover_characteristics": lambda b: b.discover_characteristics(),
    "exchange_mtu": lambda b: b.exchange_mtu(64),
    "bond": lambda b: b.bond(),
    "get_rssi": lambda b: b.get_rssi(),
    "disconnect": lambda b: b.disconnect(),
    "reconnect": lambda b: b.reconnect(timeout=5.0),
}

SECOND = "AA:BB:CC:DD:EE:02"


def accept_any_address(child: FakeGatttool) -> None:
    """Let a mocked gatttool connect to whatever address it is given."""

    def connect(args: List[str]) -> None:
        child.known_address = args[0]
        FakeGatttool.cmd_connect(child, args)

    child.cmd_connect = connect  # type: ignore[method-assign]


@pytest.mark.parametrize("name", list(DEVICE_LESS_CALLS))
def test_no_device_connected_sends_nothing(backend, fake_spawn, name):
    sent = [list(child.sent) for child in fake_spawn.children]
    with pytest.raises(NotConnectedError, match=NONE_CONNECTED):
        DEVICE_LESS_CALLS[name](backend)
    assert [child.sent for child in fake_spawn.children] == sent


@pytest.mark.parametrize("name", list(DEVICE_LESS_CALLS))
def test_several_devices_connected_sends_nothing(backend, fake_spawn, name):
    fake_spawn.configure = accept_any_address
    accept_any_address(fake_spawn.child)
    backend.connect(ADDRESS)
    backend.connect(SECOND)
    sent = [list(child.sent) for child in fake_spawn.children]
    with pytest.raises(BLEError) as several:
        DEVICE_LESS_CALLS[name](backend)
    assert ADDRESS in str(several.value) and SECOND in str(several.value), str(several.value)
    assert [child.sent for child in fake_spawn.children] == sent


def test_a_disconnected_device_given_first_is_not_replaced_by_another(backend, fake_spawn):
    """``adapter.char_read_handle(old_device, h)`` raises NotConnectedError, as in 5.0.0: it does not
    fall back to the device that is still connected, and sends nothing.
    """
    fake_spawn.configure = accept_any_address
    accept_any_address(fake_spawn.child)
    first = backend.connect(ADDRESS)
    backend.connect(SECOND)
    first.disconnect()
    sent = [list(child.sent) for child in fake_spawn.children]
    for call in (
        lambda: backend.char_read_handle(first, 0x000C),
        lambda: backend.char_read_handle(connected_device=first, handle=0x000C),
        lambda: backend.char_write_handle(device=first, handle=0x000D, value=bytearray([0x01, 0x00])),
    ):
        with pytest.raises(NotConnectedError):
            call()
    assert [child.sent for child in fake_spawn.children] == sent


def test_the_device_given_is_the_device_used(backend, fake_spawn):
    """With two connected, ``adapter.char_read_handle(device, h)`` goes to that device's gatttool only."""
    fake_spawn.configure = accept_any_address
    accept_any_address(fake_spawn.child)
    first = backend.connect(ADDRESS)
    second = backend.connect(SECOND)
    first_child, second_child = fake_spawn.children[0], fake_spawn.children[-1]
    assert backend.char_read_handle(second, 0x000C) == bytearray([0x5A])
    assert second_child.sent[-1] == "char-read-hnd 0x000c" and "char-read-hnd 0x000c" not in first_child.sent
    backend.char_write_handle(connected_device=first, handle=0x000D, value=bytearray([0x01, 0x00]))
    assert first_child.sent[-1] == "char-write-req 0x000d 0100"
    assert not any(line.startswith("char-write") for line in second_child.sent)


# -- a device built directly over a mock backend (users' own unit tests) ---------------------------

MOCK_ADDRESS = "11:22:33:44:55:66"
CHAR_UUID = uuid.UUID("a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b")
CCCD = uuid16_to_uuid(0x2902)


@pytest.fixture
def mocked():
    backend = mock.MagicMock()
    backend.discover_characteristics.return_value = {CHAR_UUID: Characteristic(CHAR_UUID, 99)}
    return backend, GATTToolBLEDevice(MOCK_ADDRESS, backend)


def last_call(backend: mock.MagicMock) -> Any:
    assert backend.method_calls, "nothing reached the backend"
    return backend.method_calls[-1]


def test_direct_device_is_connected_until_disconnect(mocked):
    backend, device = mocked
    assert device.connected
    device.disconnect()
    assert backend.disconnect.called and backend.disconnect.call_args[0][0] is device
    assert not device.connected
    with pytest.raises(NotConnectedError):
        device.char_read(uuid.uuid4())
    with pytest.raises(NotConnectedError):
        device.char_write_handle(24, bytearray([1]))


def test_direct_device_reads_reach_the_backend_device_first(mocked):
    backend, device = mocked
    backend.char_read.return_value = bytearray(range(4))
    char_uuid = uuid.uuid4()
    assert device.char_read(char_uuid) == bytearray(range(4))
    assert backend.char_read.call_args[0][0] is device and backend.char_read.call_args[0][1] == char_uuid
    backend.char_read_handle.return_value = bytearray(b"x")
    assert device.char_read_handle(24) == bytearray(b"x")
    assert backend.char_read_handle.call_args[0][:2] == (device, 24)


def test_direct_device_writes_reach_the_backend_device_first(mocked):
    backend, device = mocked
    device.char_write_handle(24, bytearray([0x01, 0x00]))
    args = backend.char_write_handle.call_args[0]
    assert args[0] is device and args[1] == 24 and args[2] == bytearray([0x01, 0x00])
    device.char_write(CHAR_UUID, bytearray(range(4)))
    assert backend.discover_characteristics.call_args[0][0] is device
    args = backend.char_write_handle.call_args[0]
    assert args[0] is device and args[1] == 99 and args[2] == bytearray(range(4))


def test_direct_device_other_calls_reach_the_backend_device_first(mocked):
    backend, device = mocked
    device.bond()
    assert backend.bond.call_args[0][0] is device
    backend.exchange_mtu.return_value = 64
    assert device.exchange_mtu(64) == 64
    assert backend.exchange_mtu.call_args[0][:2] == (device, 64)
    backend.get_rssi.return_value = -60
    assert device.get_rssi() == -60
    assert backend.get_rssi.call_args[0][0] is device
    found = device.discover_characteristics()
    assert found == backend.discover_characteristics.return_value
    assert backend.discover_characteristics.call_args[0][0] is device


@pytest.mark.parametrize(
    "call, handle",
    [
        (lambda d: d.char_read_long(CHAR_UUID), 99),
        (lambda d: d.char_read_long_handle(42), 42),
        (lambda d: d.char_write_long(CHAR_UUID, bytes(40)), 99),
        (lambda d: d.char_write_long_handle(42, bytes(40)), 42),
    ],
    ids=["char_read_long", "char_read_long_handle", "char_write_long", "char_write_long_handle"],
)
def test_direct_device_long_operations_reach_the_backend_device_first(mocked, call, handle):
    backend, device = mocked
    call(device)
    name, args, kwargs = last_call(backend)
    assert args[0] is device and args[1] == handle, (name, args)


def test_direct_device_handles_are_discovered_once(mocked):
    backend, device = mocked
    assert device.get_handle(CHAR_UUID) == 99
    assert device.get_handle(str(CHAR_UUID)) == 99
    assert backend.discover_characteristics.call_count == 1
    assert backend.discover_characteristics.call_args[0][0] is device


def test_direct_device_subscribe_writes_the_cccd_through_the_backend(mocked):
    backend, device = mocked
    got: List[Any] = []
    device.subscribe(CHAR_UUID, callback=lambda handle, value: got.append((handle, value)))
    args = backend.char_write_handle.call_args[0]
    assert args[0] is device and args[1] == 100 and args[2] == bytearray([0x01, 0x00])  # value handle + 1
    device.receive_notification(99, bytearray([24]))
    assert got == [(99, bytearray([24]))]
    device.subscribe(CHAR_UUID, callback=lambda handle, value: None, indication=True)
    assert backend.char_write_handle.call_args[0][1:3] == (100, bytearray([0x02, 0x00]))
    device.unsubscribe(CHAR_UUID)
    assert backend.char_write_handle.call_args[0][:3] == (device, 100, bytearray([0x00, 0x00]))


def test_direct_device_subscribe_uses_a_discovered_cccd(mocked):
    backend, device = mocked
    characteristic = Characteristic(CHAR_UUID, 99)
    characteristic.add_descriptor(CCCD, 0x70)
    backend.discover_characteristics.return_value = {CHAR_UUID: characteristic}
    device.subscribe(CHAR_UUID)
    assert backend.char_write_handle.call_args[0][:3] == (device, 0x70, bytearray([0x01, 0x00]))


# -- one deadline per call (the mocked child, made slow at each step) ---------------------------------

SLACK_S = 0.9  # scheduling on a loaded machine; each slow step below takes longer than this


@pytest.fixture
def timers() -> Iterator[Callable[[float, Callable[[], None]], None]]:
    """Run answers of the mocked gatttool later; every timer is ended before the backend is checked."""
    started: List[threading.Timer] = []

    def later(delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        started.append(timer)
        timer.start()

    yield later
    for timer in started:
        timer.cancel()
        timer.join(2)


def make_slow(child: FakeGatttool, step: float, later: Callable[[float, Callable[[], None]], None]) -> None:
    """Each of ``sec-level`` and ``connect`` answers ``step`` seconds late."""

    def sec_level(args: List[str]) -> None:
        later(step, lambda: FakeGatttool.cmd_sec_level(child, args))

    child.cmd_sec_level = sec_level  # type: ignore[method-assign]
    child.peripheral.connect_delay_s = step  # "Connection successful" comes step seconds after the attempt


def slow_spawns(fake_spawn: FakeFactory, step: float, later: Callable[[float, Callable[[], None]], None]) -> None:
    """New gatttool processes take ``step`` seconds to start, then answer slowly."""

    def configure(child: FakeGatttool) -> None:
        time.sleep(step)
        make_slow(child, step, later)

    fake_spawn.configure = configure


def test_connect_timeout_is_one_deadline(backend, fake_spawn, timers):
    backend.connect(ADDRESS)  # takes the idle gatttool: the next connect starts a new one
    timeout, step = 2.0, 1.2  # each step alone fits the timeout, the three together do not
    slow_spawns(fake_spawn, step, timers)
    if fake_spawn.children[-1] is not fake_spawn.children[0]:  # an idle gatttool started meanwhile
        make_slow(fake_spawn.children[-1], step, timers)
    started = time.monotonic()
    with pytest.raises(NotConnectedError):
        backend.connect(SECOND, timeout=timeout)
    assert time.monotonic() - started < timeout + SLACK_S


def test_reconnect_timeout_is_one_deadline(backend, fake_spawn, device, timers):
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: drops == [device])
    timeout, step = 2.0, 1.5  # sec-level and connect each fit the timeout, together they do not
    slow_spawns(fake_spawn, step, timers)
    for child in fake_spawn.children:
        make_slow(child, step, timers)
    started = time.monotonic()
    with pytest.raises(NotConnectedError):
        backend.reconnect(device, timeout=timeout)
    assert time.monotonic() - started < timeout + SLACK_S


def test_discovery_timeout_is_one_deadline(backend, fake_spawn, device, timers):
    child = fake_spawn.child
    timeout, step = 2.0, 1.5  # the characteristics and their descriptors each fit, together they do not

    def characteristics(args: List[str]) -> None:
        timers(step, lambda: FakeGatttool.cmd_characteristics(child, args))

    def descriptors(args: List[str]) -> None:
        timers(step, lambda: FakeGatttool.cmd_char_desc(child, args))

    child.cmd_characteristics = characteristics  # type: ignore[method-assign]
    child.cmd_char_desc = descriptors  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        found = device.discover_characteristics(timeout=timeout)
    except NotificationTimeout:
        found = None
    assert time.monotonic() - started < timeout + SLACK_S
    if found is not None:  # returned at the deadline without the descriptors that came too late
        assert all(CCCD not in c.descriptors for c in found.values())


# -- spawning gatttool from a threaded process -------------------------------------------------------


@pytest.fixture
def forks(monkeypatch) -> List[str]:
    """Record every fork of this process (and still fork): pexpect's spawn forks the test process."""
    seen: List[str] = []
    for name in ("fork", "forkpty"):
        original = getattr(os, name)

        def recording(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            seen.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(os, name, recording)
    return seen


@pytest.mark.simulator
def test_spawning_gatttool_with_threads_alive_does_not_fork(simulated, forks):
    """Python >= 3.12 warns "This process is multi-threaded, use of forkpty() may lead to deadlocks"
    when a threaded process forks. CI runs 3.11, where Python never warns, so the test also records
    forks of this process: there must be none, on any version.
    """
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="user-thread", daemon=True)
    worker.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = simulated(load_world("heart-rate"))  # starts gatttool
            device = backend.connect(OTHER, address_type=BLEAddressType.random)
            device2 = backend.connect(HR)  # a second gatttool, started while the backend's threads run
            assert device.char_read_handle(0x0003) == bytearray([0x21])
            assert device2.char_read_handle(0x0003) == bytearray(b"Pulse HR")
    finally:
        stop.set()
        worker.join(2)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert deprecations == []
    assert forks == [], "gatttool was started by forking this (multi-threaded) process"
