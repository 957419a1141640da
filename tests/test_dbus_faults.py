"""DBusBackend when things go wrong: bluetoothd vanishing, a device removed mid-read, the link dropping
during a notification stream, methods that never answer, the bus itself going away.

Against the simulated org.bluez on a private dbus-daemon (no radio here; see tests/dbus_sim.py).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from pygatt import exceptions
from pygatt.backends.dbus import BluezNotAvailableError, DBusBLEDevice
from pygatt.testing import World
from tests.dbus_sim import HR, Collector, Rig, make_rig, requires_daemon, running_rig, stop_rig, world_dict
from tests.helpers import wait_for

pytestmark = [requires_daemon, pytest.mark.dbus]

ENDLESS_STREAM = {"trigger": "subscribe", "interval_s": 0.01, "count": 0, "values": [], "size": 8}


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield from running_rig()


def streaming_world(**overrides: Any) -> World:
    data: Dict[str, Any] = world_dict(**overrides)
    heart_rate = data["peripherals"][0]["services"][0]["characteristics"][0]
    heart_rate["notify"] = dict(ENDLESS_STREAM)
    return World.from_dict(data)


class Disconnects:
    """A disconnect callback that counts calls."""

    def __init__(self) -> None:
        self.devices: List[DBusBLEDevice] = []
        self.event = threading.Event()

    def __call__(self, device: DBusBLEDevice) -> None:
        self.devices.append(device)
        self.event.set()


def test_bluetoothd_vanishing_drops_the_link_and_later_calls_fail_clearly(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    dropped = Disconnects()
    device.register_disconnect_callback(dropped)
    rig.bluez.vanish()
    assert dropped.event.wait(5)
    assert dropped.devices == [device] and not device.connected
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read("2a38")
    with pytest.raises(BluezNotAvailableError, match="bluetoothd is not running"):
        rig.backend.scan(timeout=0.1)
    with pytest.raises(exceptions.NotConnectedError):
        rig.backend.connect(HR, timeout=0.5)


def test_device_removed_in_the_middle_of_a_read() -> None:
    rig = make_rig(World.from_dict(world_dict(response_delay_s=0.3)))
    try:
        device = rig.backend.connect(HR)
        handle = device.get_handle("2a38")
        dropped = Disconnects()
        device.register_disconnect_callback(dropped)
        outcome: List[BaseException] = []

        def read() -> None:
            try:
                device.char_read_handle(handle, timeout=10)
            except BaseException as exc:  # recorded and checked below
                outcome.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        assert wait_for(lambda: len(rig.bluez.calls_to("ReadValue")) == 1)
        rig.bluez.remove_device(HR)
        reader.join(10)
        assert not reader.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], exceptions.NotConnectedError), outcome
        assert dropped.event.wait(5) and dropped.devices == [device]
    finally:
        stop_rig(rig)


def test_link_drop_during_a_notification_stream() -> None:
    rig = make_rig(streaming_world())
    try:
        device = rig.backend.connect(HR)
        dropped = Disconnects()
        device.register_disconnect_callback(dropped)
        got = Collector()
        device.subscribe("2a37", callback=got)
        assert got.wait(20)
        rig.bluez.drop_link(HR)
        assert dropped.event.wait(5)
        assert dropped.devices == [device] and not device.connected
        count = len(got.values)
        assert not wait_for(lambda: len(got.values) > count, timeout=0.2)  # the stream ended with the link
        sequence = [int.from_bytes(v[:4], "big") for _, v in got.values]
        assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)  # in order, no duplicates
        with pytest.raises(exceptions.NotConnectedError):
            device.char_read("2a38")
    finally:
        stop_rig(rig)


def test_auto_reconnect_resubscribes_after_a_drop() -> None:
    rig = make_rig(streaming_world())
    try:
        device = rig.backend.connect(HR, auto_reconnect=True)
        dropped = Disconnects()
        device.register_disconnect_callback(dropped)
        got = Collector()
        device.subscribe("2a37", callback=got)
        assert got.wait(10)
        rig.bluez.drop_link(HR)
        assert dropped.event.wait(5)
        assert wait_for(lambda: device.connected, timeout=10)
        count = len(got.values)
        assert wait_for(lambda: len(got.values) > count + 10, timeout=10)  # the stream is back
        assert len(rig.bluez.calls_to("Connect")) == 2
        assert len(dropped.devices) == 1
        assert device.char_read("2a38") == bytearray(b"\x01")
    finally:
        stop_rig(rig)


def test_a_read_that_never_answers_is_bounded_and_names_the_method(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    handle = device.get_handle("2a38")
    rig.bluez.hang("ReadValue")
    with pytest.raises(exceptions.NotificationTimeout, match="ReadValue") as timed_out:
        device.char_read_handle(handle, timeout=0.3)
    assert "0.3 s" in str(timed_out.value)
    rig.bluez.hang("ReadValue", False)
    assert device.char_read_handle(handle) == bytearray(b"\x01")  # the link is still usable


def test_a_connect_that_never_answers_is_bounded(rig: Rig) -> None:
    rig.bluez.hang("Connect")
    with pytest.raises(exceptions.NotConnectedError, match="Connect"):
        rig.backend.connect(HR, timeout=0.5)
    assert rig.bluez.calls_to("Disconnect")  # the attempt was cancelled


def test_a_start_notify_that_never_answers_is_bounded(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    device.get_handle("2a19")
    rig.bluez.hang("StartNotify")
    with pytest.raises(exceptions.NotificationTimeout, match="StartNotify"):
        device.char_write_handle(
            device.discover_characteristics()[_uuid("2a19")].descriptors[_uuid("2902")], b"\x01\x00", timeout=0.3
        )


def test_stop_returns_when_bluez_never_answers_a_disconnect(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    rig.bluez.hang("Disconnect")
    rig.bluez.hang("StopNotify")
    rig.backend.stop()
    assert not device.connected


def test_the_bus_going_away_drops_every_link(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    dropped = Disconnects()
    device.register_disconnect_callback(dropped)
    rig.bus.stop()
    assert dropped.event.wait(5)
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read("2a38")


def _uuid(short: str) -> Any:
    from pygatt.validate import characteristic_uuid

    return characteristic_uuid(short)


def connect_in_background(rig: Rig, address: str, timeout: float) -> Tuple[threading.Thread, List[BaseException]]:
    """``rig.backend.connect(address)`` on a thread of its own; the list receives what it raised."""
    outcome: List[BaseException] = []

    def connect() -> None:
        try:
            rig.backend.connect(address, timeout=timeout)
        except BaseException as exc:  # recorded and checked by the test
            outcome.append(exc)

    thread = threading.Thread(target=connect)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("address, hung", [(HR, "Connect"), ("00:11:22:33:44:55", None)])
def test_stop_ends_a_connect_in_flight(address: str, hung: Any) -> None:
    """A connect waiting for BlueZ (hung Connect) or for an unknown device to advertise ends with stop()."""
    rig = make_rig()
    try:
        if hung:
            rig.bluez.hang(hung)
        connecting, outcome = connect_in_background(rig, address, timeout=60)
        assert wait_for(lambda: bool(rig.bluez.calls_to(hung or "StartDiscovery")))
        rig.backend.stop()
        connecting.join(10)
        assert not connecting.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], exceptions.NotConnectedError), outcome
    finally:
        stop_rig(rig)


def test_disconnect_returns_when_bluez_never_confirms(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    rig.bluez.hang("Disconnect")
    device.disconnect()
    assert not device.connected
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read("2a38")


def test_a_second_connect_while_one_is_in_flight_is_refused(rig: Rig) -> None:
    rig.bluez.hang("Connect")
    first, outcome = connect_in_background(rig, HR, timeout=2)
    assert wait_for(lambda: bool(rig.bluez.calls_to("Connect")))
    with pytest.raises(exceptions.BLEError, match="being opened already"):
        rig.backend.connect(HR)
    first.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], exceptions.NotConnectedError)
    rig.bluez.hang("Connect", False)
    assert rig.backend.connect(HR).char_read("2a38") == bytearray(b"\x01")


def test_bluetoothd_coming_back_gets_the_agent_again(rig: Rig) -> None:
    from pygatt.testing.sim.bluez_dbus import SimulatedBluez

    rig.bluez.vanish()
    rig.bluez.stop()
    with pytest.raises(exceptions.NotConnectedError):
        rig.backend.connect(HR, timeout=0.5)
    rig.bluez = SimulatedBluez(rig.world, rig.bus.address, adapter="hci0")
    rig.bluez.start()
    assert wait_for(lambda: len(rig.bluez.calls_to("RegisterAgent")) == 1)
    device = rig.backend.connect(HR)
    assert device.char_read("2a38") == bytearray(b"\x01")
    got = Collector()
    device.subscribe("2a19", callback=got)
    assert rig.bluez.notify(HR, "2a19", b"\x02") and got.wait(1)  # signals of the new bluetoothd count
