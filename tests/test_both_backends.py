"""One scenario, three backends: the same user code against GATTToolBackend, BGAPIBackend and DBusBackend.

No radio exists here. The GATTTool backend drives the simulated gatttool through
a real pty; the BGAPI backend drives the simulated BLED112 through a real pty
(pyserial); the D-Bus backend talks to the simulated org.bluez on a private
dbus-daemon. The simulators serve the same JSON world, so every scenario below
checks that the backends behave the same for a program. A scenario that cannot
apply to a backend says why (see ``not_on``).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends import BLEAddressType
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World, load_world
from pygatt.testing.sim.bgapi import SimulatedDongle
from pygatt.util import uuid16_to_uuid
from tests.helpers import wait_for

pytestmark = pytest.mark.simulator

HR_ADDRESS = "C4:7C:8D:6A:3E:01"
RANDOM_ADDRESS = "5D:2B:9F:11:04:7E"
HR = uuid16_to_uuid(0x2A37)
BATTERY = uuid16_to_uuid(0x2A19)

MakeBackend = Callable[..., Any]


DBUS_AVAILABLE = shutil.which("dbus-daemon") is not None


@pytest.fixture(
    params=[
        "gatttool",
        "bgapi",
        pytest.param(
            "dbus",
            marks=[pytest.mark.dbus, pytest.mark.skipif(not DBUS_AVAILABLE, reason="dbus-daemon is not installed")],
        ),
    ]
)
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBackend]:
    backends: List[Any] = []
    dongles: List[SimulatedDongle] = []
    threads = set(threading.enumerate())

    def make(world: Any = "heart-rate") -> Any:
        if isinstance(world, World) and request.param != "bgapi":
            world = str(world.write(tmp_path / f"world{len(backends)}.json"))
        if request.param == "gatttool":
            backend: Any = pygatt.GATTToolBackend(tools=ToolCommands.simulated(world))
            backend.start()
        elif request.param == "dbus":
            backend = pygatt.DBusBackend(simulate=world)
            backend.start()
        else:
            dongle = SimulatedDongle(load_world(world) if isinstance(world, str) else world)
            dongles.append(dongle)
            backend = pygatt.BGAPIBackend(dongle.open_pty(), comports=dongle.comports)
            backend.start()
        backends.append(backend)
        return backend

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for backend in backends:
        backend.stop()
    for dongle in dongles:
        dongle.close()
    assert wait_for(lambda: set(threading.enumerate()) <= threads, 3)


def not_on(make_backend: MakeBackend, kind: str, reason: str) -> None:
    """Skip the scenario on one backend, saying why it does not apply there."""
    if make_backend.kind == kind:  # type: ignore[attr-defined]
        pytest.skip(f"not on {kind}: {reason}")


def sensor(**overrides: Any) -> World:
    world = load_world("heart-rate")
    for key, value in overrides.items():
        setattr(world.peripherals[0], key, value)
    return world


def test_scan_finds_both_devices(make_backend: MakeBackend) -> None:
    devices = make_backend().scan(timeout=0.5)
    names = {d["address"]: d["name"] for d in devices}
    assert set(names) == {HR_ADDRESS, RANDOM_ADDRESS}
    assert names[HR_ADDRESS] == "Pulse HR" and not names[RANDOM_ADDRESS]


def test_connect_public_and_random(make_backend: MakeBackend) -> None:
    backend = make_backend()
    assert backend.connect(HR_ADDRESS).char_read(BATTERY) == bytearray([0x5A])
    device = backend.connect(RANDOM_ADDRESS, address_type=BLEAddressType.random)
    assert device.char_read(BATTERY) == bytearray([0x21])


def test_a_timeout_of_none_is_the_methods_default(make_backend: MakeBackend) -> None:
    """pygatt 5.0.0 took ``timeout=None`` (no deadline with gatttool, its default with BGAPI);
    here it is the default the signature shows, by keyword or by position, never a TypeError."""
    backend = make_backend()
    device = backend.connect(HR_ADDRESS, timeout=None)
    assert device.char_read(BATTERY, timeout=None) == bytearray([0x5A])
    assert device.char_read_handle(0x0010, timeout=None) == bytearray([0x5A])
    device.char_write_handle(0x000D, bytearray([0x01]), True, timeout=None)
    other = backend.connect(RANDOM_ADDRESS, None, BLEAddressType.random)
    assert other.char_read(BATTERY) == bytearray([0x21])
    if make_backend.kind == "gatttool":  # type: ignore[attr-defined]
        # 5.0.0's device-first backend methods, by keyword and by position
        assert backend.char_read_handle(device, 0x0010, None) == bytearray([0x5A])
        assert backend.char_read(device, BATTERY, timeout=None) == bytearray([0x5A])
        assert backend.exchange_mtu(device, 23, None) == 23


def test_the_backends_disconnect_ends_the_link_and_the_address_connects_again(make_backend: MakeBackend) -> None:
    backend = make_backend()
    device = backend.connect(HR_ADDRESS)
    backend.disconnect(device)
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read(BATTERY)
    again = backend.connect(HR_ADDRESS)  # on BGAPI the dongle's link had stayed open: "wrong_state"
    assert again is not device and again.char_read(BATTERY) == bytearray([0x5A])


def test_an_address_of_hex_digits_alone_connects(make_backend: MakeBackend) -> None:
    """pygatt 5.0.0's BGAPI backend took ``C47C8D6A3E01`` (it removed the colons itself)."""
    device = make_backend().connect(HR_ADDRESS.replace(":", "").lower())
    assert device.address == HR_ADDRESS and device.char_read(BATTERY) == bytearray([0x5A])


def test_discover_read_by_uuid_and_handle(make_backend: MakeBackend) -> None:
    not_on(make_backend, "dbus", "BlueZ hides the Generic Access service (0x1800) from D-Bus clients")
    device = make_backend().connect(HR_ADDRESS)
    characteristics = device.discover_characteristics()
    assert len(characteristics) == 8
    assert characteristics[BATTERY].handle == 0x0010
    assert characteristics[BATTERY].descriptors == {uuid16_to_uuid(0x2902): 0x0011, uuid16_to_uuid(0x2901): 0x0012}
    assert device.char_read(BATTERY) == bytearray([0x5A])
    assert device.char_read("2A00") == bytearray(b"Pulse HR")
    assert device.char_read_handle(0x0012) == bytearray(b"Battery")


def test_a_uuid_the_device_lacks(make_backend: MakeBackend) -> None:
    """A UUID the device does not have is AttributeNotFoundError (ATT 0x0a, a BLEError) on every
    backend and for every call: char_read, as gatttool's char-read-uuid gets it from the peer, and
    the calls that look the UUID up in discovery first (write, subscribe, long read, get_handle)."""
    device = make_backend().connect(HR_ADDRESS)
    with pytest.raises(exceptions.AttributeNotFoundError) as missing:
        device.char_read("2a6e")
    assert isinstance(missing.value, exceptions.BLEError)
    assert missing.value.att_error == 0x0A
    assert missing.value.target == str(uuid16_to_uuid(0x2A6E))
    for call in (  # looked up in the discovered characteristics: the same error, in 5.0.0's words
        lambda: device.char_write("2a6e", bytearray([0x01])),
        lambda: device.subscribe("2a6e"),
        lambda: device.char_read_long("2a6e"),
        lambda: device.get_handle("2a6e"),
    ):
        with pytest.raises(exceptions.AttributeNotFoundError, match="No characteristic found matching") as info:
            call()
        assert info.value.att_error == 0x0A and info.value.target == str(uuid16_to_uuid(0x2A6E))
    assert device.char_read(BATTERY) == bytearray([0x5A])  # the link is still up


def test_read_not_permitted_and_invalid_handle(make_backend: MakeBackend) -> None:
    device = make_backend().connect(HR_ADDRESS)
    with pytest.raises(exceptions.ReadNotPermittedError, match="0x0017") as info:
        device.char_read_handle(0x0017)
    assert info.value.att_error == 0x02
    with pytest.raises(exceptions.InvalidHandleError, match="0x0100"):
        device.char_read_handle(0x0100)
    with pytest.raises(exceptions.WriteNotPermittedError):
        device.char_write_handle(0x000B, b"\x00")  # Body Sensor Location: read only


def test_write_with_and_without_response(make_backend: MakeBackend) -> None:
    device = make_backend().connect(HR_ADDRESS)
    device.char_write("2a39", bytearray([0x01]))
    with pytest.raises(exceptions.ReadNotPermittedError):
        device.char_read_handle(0x000D)
    device.char_write_handle(0x0011, b"\x01\x00", wait_for_response=False)
    assert wait_for(lambda: device.char_read_handle(0x0011) == bytearray(b"\x01\x00"))
    device.char_write_handle(0x0011, b"\x00\x00", wait_for_response=True)
    assert device.char_read_handle(0x0011) == bytearray(b"\x00\x00")


def test_subscribe_notifications_then_unsubscribe(make_backend: MakeBackend) -> None:
    device = make_backend().connect(HR_ADDRESS)
    got: List[Any] = []
    device.subscribe(HR, callback=lambda handle, value: got.append((handle, bytes(value))))
    assert wait_for(lambda: len(got) == 5)
    assert got == [(0x0008, bytes.fromhex(v)) for v in ("0048", "004a", "004c", "004b", "0049")]
    device.unsubscribe(HR)
    assert device.char_read_handle(0x0009) == bytearray(b"\x00\x00")


def test_subscribe_indications(make_backend: MakeBackend) -> None:
    not_on(make_backend, "dbus", "BlueZ's StartNotify picks notify or indicate from the properties; 2A37 only notifies")
    device = make_backend().connect(HR_ADDRESS)
    got: List[bytes] = []
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)), indication=True)
    assert device.char_read_handle(0x0009) == bytearray(b"\x02\x00")
    assert wait_for(lambda: len(got) == 5)


def test_long_values(make_backend: MakeBackend) -> None:
    world = sensor()
    world.peripherals[0].services[1].characteristics.append(
        Characteristic("ff01", ["read", "write"], value=bytes(range(200)).hex())
    )
    device = make_backend(world).connect(HR_ADDRESS)
    handle = device.get_handle("ff01")
    assert device.char_read_long_handle(handle) == bytearray(range(200))
    device.char_write_long("ff01", bytes(300 * [7]))
    assert device.char_read_long("ff01") == bytearray(300 * [7])
    mtu = device.mtu  # 23 on gatttool and BGAPI until exchanged; BlueZ negotiates its own
    with pytest.raises(ValueError, match=f"MTU {mtu}"):
        device.char_write_handle(handle, bytes(mtu - 2), wait_for_response=False)


def test_connect_and_scan_after_stop_say_the_backend_is_not_started(make_backend: MakeBackend) -> None:
    """After stop(), connect() and reconnect() raise BLEError "not started" on every backend, not
    NotConnectedError (no connection failed: none was tried). So does scan(), except on GATTTool, whose scan runs
    hcitool on its own and never needed start(), as in pygatt 5.0.0."""
    backend = make_backend()
    device = backend.connect(HR_ADDRESS)
    backend.stop()
    for call in (lambda: backend.connect(HR_ADDRESS), lambda: backend.reconnect(device)):
        with pytest.raises(exceptions.BLEError, match=r"^The backend is not started; call start\(\) first$") as info:
            call()
        assert not isinstance(info.value, exceptions.NotConnectedError)
    if make_backend.kind == "gatttool":  # type: ignore[attr-defined]
        assert HR_ADDRESS in {d["address"] for d in backend.scan(timeout=0.5)}
        return
    with pytest.raises(exceptions.BLEError, match=r"^The backend is not started; call start\(\) first$") as info:
        backend.scan(timeout=0.5)
    assert not isinstance(info.value, exceptions.NotConnectedError)


def test_remote_disconnect_fires_callback_once_and_calls_fail(make_backend: MakeBackend) -> None:
    device = make_backend(sensor(disconnect_after_ops=2)).connect(HR_ADDRESS)
    fired: List[Any] = []
    device.register_disconnect_callback(fired.append)
    device.char_read_handle(0x0010)
    device.char_read_handle(0x0010)
    assert wait_for(lambda: fired == [device])
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0010)
    time.sleep(0.1)
    assert fired == [device]


def test_a_second_disconnect_raises(make_backend: MakeBackend) -> None:
    """disconnect() of a device this program disconnected already raises NotConnectedError on every
    backend (pygatt 5.0.0's devices required a connection for it)."""
    device = make_backend().connect(HR_ADDRESS)
    device.disconnect()
    with pytest.raises(exceptions.NotConnectedError):
        device.disconnect()


def test_disconnect_after_the_peer_dropped_the_link(make_backend: MakeBackend) -> None:
    """After a drop, the GATTTool and D-Bus devices say they are not connected; the BGAPI device
    disconnects quietly, as 5.0.0's did (its check only looked for a connection handle, which a
    drop did not clear). A second disconnect() raises there too."""
    device = make_backend(sensor(disconnect_after_ops=1)).connect(HR_ADDRESS)
    device.char_read_handle(0x0010)  # the peer drops the link after this
    assert wait_for(lambda: not device.connected)
    if make_backend.kind == "bgapi":  # type: ignore[attr-defined]
        device.disconnect()
    with pytest.raises(exceptions.NotConnectedError):
        device.disconnect()


def test_disconnect_while_an_auto_reconnect_connects_stays_disconnected(make_backend: MakeBackend) -> None:
    """disconnect() while an auto-reconnect attempt is connecting: once the attempt has ended, the
    device is still disconnected (the link that came up for it is closed again, or never comes up)."""
    world = sensor(disconnect_after_ops=1)
    world.peripherals[0].connect_delay_s = 1.0
    device = make_backend(world).connect(HR_ADDRESS, timeout=5, auto_reconnect=True)
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    device.char_read_handle(0x0010)  # the peer drops the link after this
    assert wait_for(lambda: drops == [device])
    time.sleep(0.3)  # no event says the attempt is inside its 1 s connect; it almost surely is by now
    device.disconnect()
    for thread in [t for t in threading.enumerate() if t.name.startswith("pygatt-reconnect-")]:
        thread.join(10)
        assert not thread.is_alive()
    assert not device.connected
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0010)


def test_a_slow_peer_answers_its_last_operation_before_it_hangs_up(make_backend: MakeBackend) -> None:
    """``disconnect_after_ops`` drops the link right after the Nth answer, also when answers take a while
    (the simulated gatttool dropped it before a slow answer; the simulated dongle could, under load)."""
    device = make_backend(sensor(disconnect_after_ops=1, response_delay_s=0.2)).connect(HR_ADDRESS)
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    assert device.char_read_handle(0x0010) == bytearray([0x5A])
    assert wait_for(lambda: drops == [device], timeout=5)


def test_reconnect_after_a_drop_by_hand(make_backend: MakeBackend) -> None:
    """adapter.reconnect(device) does nothing while the device is connected, and brings a dropped
    link back, on every backend."""
    backend = make_backend(sensor(disconnect_after_ops=1))
    device = backend.connect(HR_ADDRESS)
    backend.reconnect(device, 5)  # still connected: nothing to do
    battery = device.char_read_handle(0x0010)  # the peer drops the link after this
    assert wait_for(lambda: not device.connected, timeout=5)
    backend.reconnect(device, 5)
    assert device.connected
    assert device.char_read_handle(0x0010) == battery


@pytest.mark.parametrize("first, second", [(True, False), (False, True)])
def test_connect_to_a_connected_address_leaves_its_auto_reconnect_alone(
    make_backend: MakeBackend, first: bool, second: bool
) -> None:
    """connect() to an address that is already connected returns the live device as it is, on every
    backend: the second call's auto_reconnect does not change whether a drop is reconnected."""
    backend = make_backend(sensor(disconnect_after_ops=1))
    device = backend.connect(HR_ADDRESS, auto_reconnect=first)
    assert backend.connect(HR_ADDRESS, auto_reconnect=second) is device
    assert device.auto_reconnect is first
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    device.char_read_handle(0x0010)  # the peer drops the link after this
    assert wait_for(lambda: drops == [device])
    # the first reconnect attempt starts at once after the drop
    assert wait_for(lambda: device.connected, timeout=8 if first else 1.5) is first


def test_auto_reconnect_resubscribes_after_a_drop(make_backend: MakeBackend) -> None:
    # the peer drops the link after the subscribe's last operation: gatttool discovers in two
    # requests (services, characteristics), BGAPI in one (find information); then the CCCD write
    not_on(
        make_backend,
        "dbus",
        "a D-Bus subscription is StartNotify, which the world's disconnect_after_ops does not count; "
        "tests/test_dbus_faults.py drops the link mid-stream and checks reconnect + resubscribe instead",
    )
    operations = 3 if make_backend.kind == "gatttool" else 2  # type: ignore[attr-defined]
    backend = make_backend(sensor(disconnect_after_ops=operations))
    device = backend.connect(HR_ADDRESS, auto_reconnect=True)
    drops: List[Any] = []
    got: List[bytes] = []
    device.register_disconnect_callback(drops.append)
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)))
    assert wait_for(lambda: drops == [device])
    assert wait_for(lambda: device.connected and len(got) >= 5, timeout=8)
    assert device.char_read_handle(0x0009) == bytearray(b"\x01\x00")


def test_slow_peer_times_out_then_recovers(make_backend: MakeBackend) -> None:
    device = make_backend(sensor(response_delay_s=0.6)).connect(HR_ADDRESS)
    with pytest.raises(exceptions.NotificationTimeout):
        device.char_read_handle(0x0012, timeout=0.2)
    time.sleep(0.6)  # the late answer arrives and is dropped
    assert device.char_read_handle(0x0010, timeout=3) == bytearray([0x5A])  # not the late 'Battery'


def test_several_devices_with_their_own_notifications(make_backend: MakeBackend) -> None:
    world = World(
        peripherals=[
            Peripheral(
                address=f"AA:00:00:00:00:0{n}",
                name=f"Node {n}",
                services=[
                    Service(
                        "180d",
                        [Characteristic("2a37", ["notify"], notify=NotifyStream(interval_s=0.01, count=20,
                                                                                values=[f"0{n}"]))],
                    )
                ],
            )
            for n in range(1, 4)
        ]
    )  # fmt: skip
    backend = make_backend(world)
    got: dict = {n: [] for n in range(1, 4)}
    devices = {}
    for n in range(1, 4):
        devices[n] = backend.connect(f"AA:00:00:00:00:0{n}")
        devices[n].subscribe(HR, callback=lambda h, v, n=n: got[n].append(bytes(v)))
    assert wait_for(lambda: all(len(got[n]) == 20 for n in got))
    assert all(set(got[n]) == {bytes([n])} for n in got)
    devices[2].disconnect()
    assert devices[3].char_read_handle(0x0004) == bytearray(b"\x01\x00")


def test_fast_stream_arrives_complete_and_in_order(make_backend: MakeBackend) -> None:
    world = sensor()
    stream = NotifyStream(interval_s=0, count=10_000, size=20)
    world.peripherals[0].services[1].characteristics[0].notify = stream
    device = make_backend(world).connect(HR_ADDRESS)
    got: List[bytes] = []
    device.subscribe(HR, callback=lambda handle, value: got.append(bytes(value)))
    assert wait_for(lambda: len(got) == 10_000, timeout=30)
    assert got == [stream.value(n) for n in range(10_000)]


def test_rssi_and_bond(make_backend: MakeBackend) -> None:
    device = make_backend().connect(HR_ADDRESS)
    if make_backend.kind == "dbus":  # type: ignore[attr-defined]
        with pytest.raises(exceptions.BLEError, match="RSSI"):  # BlueZ has no RSSI for a connected link
            device.get_rssi()
    else:
        assert isinstance(device.get_rssi(), int)
    device.bond()
    assert device.char_read(BATTERY) == bytearray([0x5A])
