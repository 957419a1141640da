"""DBusBackend when things go wrong: bluetoothd vanishing, a device removed mid-read, the link dropping
during a notification stream, methods that never answer, the bus itself going away.

Against the simulated org.bluez on a private dbus-daemon (no radio here; see tests/dbus_sim.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from pygatt import exceptions
from pygatt.backends.dbus import BluezNotAvailableError, DBusBLEDevice
from pygatt.testing import World
from pygatt.testing.sim.bluez_objects import bluez_error
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


def test_the_peer_drops_the_link_after_disconnect_after_notifications_values() -> None:
    rig = make_rig(World.from_dict(world_dict(disconnect_after_notifications=3)))
    try:
        for link in range(2):  # counted per link: the second connection gets three values again
            device = rig.backend.connect(HR)
            dropped = Disconnects()
            device.register_disconnect_callback(dropped)
            got = Collector()
            device.subscribe("2a37", callback=got)
            assert dropped.event.wait(5), f"link {link}: no drop after {len(got.values)} values"
            assert dropped.devices == [device] and not device.connected
            assert not wait_for(lambda got=got: len(got.values) > 3, timeout=0.3)  # the stream ended with the link
            assert [value for _, value in got.values] == [b"\x00\x48", b"\x00\x4a", b"\x00\x4c"]
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


def test_a_failed_resubscribe_is_tried_again_by_the_next_reconnect() -> None:
    """A reconnect whose StartNotify fails does not count as done: its link is closed again and the
    next attempt reconnects and resubscribes (before, the link stayed up with notifications off)."""
    rig = make_rig(streaming_world())
    try:
        device = rig.backend.connect(HR, auto_reconnect=True)
        got = Collector()
        device.subscribe("2a37", callback=got)
        assert got.wait(10)
        start_notify = rig.bluez.gatt.char_StartNotify
        refusals = {"left": 1}

        def refuse_once(call: Any, *args: Any) -> None:
            if refusals["left"]:
                refusals["left"] -= 1
                raise bluez_error("NotPermitted", "Not paired")
            start_notify(call, *args)

        rig.bluez.gatt.char_StartNotify = refuse_once
        rig.bluez.drop_link(HR)
        assert wait_for(lambda: len(rig.bluez.calls_to("Connect")) == 3, timeout=15)
        assert wait_for(lambda: device.connected, timeout=10)
        count = len(got.values)
        assert wait_for(lambda: len(got.values) > count + 10, timeout=10)  # the stream is back
        assert refusals["left"] == 0
    finally:
        stop_rig(rig)


def test_a_failed_resubscribe_leaves_a_newer_connection_alone() -> None:
    """A reconnect attempt whose resubscribe fails closes only its own link: when the user has
    meanwhile disconnected that device and connected the address afresh, the new link stays up."""
    rig = make_rig(World.from_dict(world_dict(disconnect_after_ops=1)))
    entered, go = threading.Event(), threading.Event()
    try:
        old = rig.backend.connect(HR, auto_reconnect=True)

        def slow_failing_resubscribe() -> None:  # the peer answers the resubscribe late, with an error
            entered.set()
            go.wait(10)
            raise exceptions.BLEError("resubscribe refused")

        old.resubscribe_all = slow_failing_resubscribe  # type: ignore[method-assign]
        old.char_read("2a38")  # the peer drops the link after this
        assert entered.wait(10)  # the auto-reconnect's link is up, and resubscribing
        old.disconnect()
        new = rig.backend.connect(HR)
        go.set()
        for thread in [t for t in threading.enumerate() if t.name.startswith("pygatt-reconnect-")]:
            thread.join(10)
        assert new.connected and new.char_read("2a38") == bytearray(b"\x01")
    finally:
        go.set()
        stop_rig(rig)


def test_the_old_device_of_a_taken_over_link_cannot_disconnect_the_new_one() -> None:
    """After a drop the callback thread has not handled yet, connect() makes a new device; the old
    object still says connected, and its disconnect() leaves the new device's link alone."""
    rig = make_rig(World.from_dict(world_dict(disconnect_after_ops=1)))
    release = threading.Event()
    try:
        old = rig.backend.connect(HR)
        busy = Collector()
        old.subscribe("2a19", callback=lambda handle, value: (busy(handle, value), release.wait(10)))
        assert rig.bluez.notify(HR, "2a19", b"\x01") and busy.wait(1)  # the callback thread is held
        old.char_read("2a38")  # the peer drops the link after this
        link = old._link
        assert link is not None and wait_for(lambda: link.lost, 5)
        new = rig.backend.connect(HR)
        assert new is not old and old.connected  # the old object has not heard of the drop yet
        with pytest.raises(exceptions.NotConnectedError):
            old.disconnect()
        release.set()
        assert new.connected and new.char_read("2a38") == bytearray(b"\x01")
    finally:
        release.set()
        stop_rig(rig)


def test_disconnect_during_a_reconnect_attempt_cancels_it() -> None:
    """disconnect() while an auto-reconnect attempt waits for Connect: the attempt is cancelled before
    disconnect() returns, the device stays disconnected on both sides, and no further attempt starts."""
    rig = make_rig(World.from_dict(world_dict(connect_delay_s=0.5)))
    try:
        device = rig.backend.connect(HR, auto_reconnect=True)
        rig.bluez.drop_link(HR)
        assert wait_for(lambda: len(rig.bluez.calls_to("Connect")) == 2, timeout=5)  # the attempt is in flight
        device.disconnect()
        state = rig.bluez.devices[rig.bluez.device_path(HR)]
        assert not device.connected
        assert not state.connected and state.connecting is None  # BlueZ's attempt was cancelled
        reconnecting = [t for t in threading.enumerate() if t.name == f"pygatt-reconnect-{HR}"]
        for thread in reconnecting:
            thread.join(5)
            assert not thread.is_alive()
        assert not state.connected and not device.connected
        assert len(rig.bluez.calls_to("Connect")) == 2
        with pytest.raises(exceptions.NotConnectedError):
            device.char_read("2a38")
    finally:
        stop_rig(rig)


def test_a_drop_while_services_resolve_fails_the_connect_at_once() -> None:
    """Connected=false after Connect's reply but before ServicesResolved: connect() raises a
    NotConnectedError saying the device disconnected, at once rather than at its timeout."""
    rig = make_rig(World.from_dict(world_dict(disconnect_after_s=0.001)))  # services resolve after 5 ms
    try:
        started = time.monotonic()
        with pytest.raises(exceptions.NotConnectedError, match="disconnected while BlueZ was resolving"):
            rig.backend.connect(HR, timeout=8)
        assert time.monotonic() - started < 4
    finally:
        stop_rig(rig)


class ScriptedBluez:
    """Stands in for the bus under one DBusLink: Device1 is disconnected; Connect plays ``signals``
    (Device1 property changes) to the link, as the reader thread would, then replies."""

    def __init__(self, signals: List[Dict[str, bool]]) -> None:
        self.signals = signals
        self.link: Any = None

    def call(self, destination: str, path: str, interface: str, member: str, *args: Any, **kwargs: Any) -> Any:
        if member == "GetAll":
            return ({"Connected": ("b", False), "ServicesResolved": ("b", False)},)
        if member == "Connect":
            for changed in self.signals:
                self.link.device_changed(changed, [])
        return ()


@pytest.mark.parametrize(
    "signals, failure",
    [
        # an earlier link's Connected=false, then this attempt's Connected=true, reply, services
        ([{"Connected": False}, {"Connected": True}, {"ServicesResolved": True}], None),
        ([{"Connected": True}, {"Connected": False}], "disconnected while BlueZ was resolving"),
        ([{"Connected": True}, {"ServicesResolved": False, "Connected": False}], "disconnected while BlueZ"),
    ],
)
def test_only_a_drop_of_the_new_link_fails_the_connect(signals: List[Dict[str, bool]], failure: Any) -> None:
    """Connected=false fails a connect at once only when it is BlueZ's last word on the new link;
    one that precedes the attempt's Connected=true (an earlier link's) does not."""
    from pygatt.backends.dbus.link import DBusLink

    bus = ScriptedBluez(signals)
    link = DBusLink(bus, "hci0", HR, lambda handle, value: None, lambda reason: None)  # type: ignore[arg-type]
    bus.link = link
    if failure is None:
        link.open(5)
        assert link.connected
    else:
        with pytest.raises(exceptions.NotConnectedError, match=failure):
            link.open(5)
        assert not link.connected


def test_connect_after_a_drop_the_callback_thread_has_not_handled_connects_again() -> None:
    """connect() after the link dropped, while the callback thread is still busy (so the old device
    still says connected): connect() makes a new connection instead of returning the dead device,
    and the old device still gets its disconnect callback."""
    rig = make_rig()
    entered, release = threading.Event(), threading.Event()
    try:
        device = rig.backend.connect(HR)
        dropped = Disconnects()
        device.register_disconnect_callback(dropped)

        def slow(handle: int, value: bytearray) -> None:
            entered.set()
            release.wait(10)

        device.subscribe("2a19", callback=slow)
        assert rig.bluez.notify(HR, "2a19", b"\x01") and entered.wait(5)  # the callback thread is busy
        rig.bluez.drop_link(HR)
        with pytest.raises(exceptions.NotConnectedError):
            device.char_read("2a38")  # answered after Connected=false: the link knows it is down
        assert device.connected  # the device does not know yet
        again = rig.backend.connect(HR, timeout=3)
        assert again is not device and again.connected
        assert len(rig.bluez.calls_to("Connect")) == 2
        assert again.char_read("2a38") == bytearray(b"\x01")
        release.set()
        assert dropped.event.wait(5)
        assert dropped.devices == [device] and not device.connected
        assert again.connected and rig.backend.connect(HR) is again
    finally:
        release.set()
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


def test_stop_during_a_start_bluez_does_not_answer_returns_and_the_start_fails(rig: Rig) -> None:
    # start() held the backend's lock across its calls to BlueZ, so a stop() meanwhile waited for them
    # (up to start's timeout for each)
    import pygatt

    rig.bluez.hang("RegisterAgent")
    registered = len(rig.bluez.calls_to("RegisterAgent"))  # the rig's own backend's
    backend = pygatt.DBusBackend(bus_address=rig.bus.address)
    errors: List[BaseException] = []

    def start() -> None:
        try:
            backend.start(timeout=6)
        except exceptions.BLEError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        assert wait_for(lambda: len(rig.bluez.calls_to("RegisterAgent")) > registered, timeout=5)
        stopper = threading.Thread(target=backend.stop)
        stopper.start()
        stopper.join(4)
        stopped_in_time = not stopper.is_alive()
    finally:
        starter.join(10)
        backend.stop()
        rig.bluez.hang("RegisterAgent", False)
    assert stopped_in_time, "stop() waited for start()"
    assert len(errors) == 1, "a start() that stop() interrupted must fail"
