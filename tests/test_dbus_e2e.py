"""DBusBackend end to end: a real private dbus-daemon, the simulated org.bluez, the public pygatt API.

No radio exists here: the peripheral is the simulated BlueZ's (see tests/dbus_sim.py).
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid
from typing import Iterator

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends.dbus import BluezNotAvailableError
from pygatt.testing import World
from pygatt.testing.dbus_bus import PrivateBus
from pygatt.testing.sim.bluez_dbus import SimulatedBluez
from pygatt.testing.world import layout
from pygatt.util import uuid16_to_uuid
from tests.dbus_sim import (
    COMMAND,
    HR,
    INDICATE,
    KEYPAD,
    LONG,
    LONG_VALUE,
    TAG,
    Collector,
    Rig,
    make_rig,
    requires_daemon,
    running_rig,
    stop_rig,
    world_dict,
)
from tests.helpers import wait_for

pytestmark = [requires_daemon, pytest.mark.dbus]


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield from running_rig()


CCCD = uuid16_to_uuid(0x2902)


def u16(number: int) -> uuid.UUID:
    return uuid16_to_uuid(number)


# -- scanning ------------------------------------------------------------------------------------


def test_scan_reports_address_name_rssi_and_advertising_data(rig: Rig) -> None:
    found = {d["address"]: d for d in rig.backend.scan(timeout=0.5)}
    assert set(found) >= {HR, TAG, KEYPAD}
    hr = found[HR]
    assert (hr["name"], hr["rssi"], hr["address_type"]) == ("Pulse HR", -58, "public")
    assert hr["manufacturer_data"] == {0x004C: bytes.fromhex("0215")}
    assert hr["service_data"] == {str(u16(0x180D)): b"\x01"}
    assert str(u16(0x180D)) in hr["uuids"]
    assert found[TAG]["name"] is None and found[TAG]["address_type"] == "random"
    calls = [c.member for c in rig.bluez.calls if c.member.endswith("Discovery") or c.member == "SetDiscoveryFilter"]
    assert calls == ["SetDiscoveryFilter", "StartDiscovery", "StopDiscovery", "SetDiscoveryFilter"]
    assert not rig.bluez.discovering


def test_filtered_scan_keeps_matching_names(rig: Rig) -> None:
    found = rig.backend.filtered_scan("Pulse", timeout=0.3)
    assert [d["address"] for d in found] == [HR]


def test_scan_takes_run_as_root_by_position_and_ignores_it(rig: Rig) -> None:
    """scan(timeout, run_as_root) has GATTToolBackend.scan's parameters, so a 5.0.0 script's
    scan(0.3, True) works unchanged (run_as_root ignored), as does filtered_scan passing it on."""
    parameters = inspect.signature(pygatt.DBusBackend.scan).parameters
    assert list(parameters)[1:] == ["timeout", "run_as_root"]
    assert parameters["run_as_root"].default is False
    assert HR in {d["address"] for d in rig.backend.scan(0.3, True)}
    assert [d["address"] for d in rig.backend.filtered_scan("Pulse", 0.3, True)] == [HR]
    assert [d["address"] for d in rig.backend.filtered_scan("Pulse", timeout=0.3, run_as_root=True)] == [HR]


def test_scan_refuses_bad_timeouts_before_the_bus(rig: Rig) -> None:
    with pytest.raises(ValueError):
        rig.backend.scan(timeout=0)
    assert rig.bluez.calls_to("StartDiscovery") == []


# -- connecting --------------------------------------------------------------------------------


def test_connect_discover_handles_match_the_gatt_layout(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    assert isinstance(device, pygatt.backends.DBusBLEDevice) and device.connected
    chars = device.discover_characteristics()
    peripheral = rig.world.find(HR)
    assert peripheral is not None
    table = layout(peripheral)
    hidden = {u16(0x2A00), u16(0x2A01)}  # GAP: claimed by a BlueZ plugin, no D-Bus objects (none in this world)
    expected = {uuid.UUID(str(u16(int(c[3], 16))) if len(c[3]) == 4 else c[3]): c[2] for c in table.characteristics}
    assert {k: v.handle for k, v in chars.items()} == {k: v for k, v in expected.items() if k not in hidden}
    for attribute in table.attributes.values():
        if attribute.cccd_of is not None:
            owner = next(c for c in chars.values() if c.handle == attribute.cccd_of)
            assert owner.descriptors[CCCD] == attribute.handle
    battery = chars[u16(0x2A19)]
    assert u16(0x2901) in battery.descriptors


def test_connect_to_a_device_never_scanned(rig: Rig) -> None:
    """Without ConnectDevice (Debian's BlueZ), the backend looks for it with a short discovery."""
    device = rig.backend.connect(TAG, address_type=pygatt.BLEAddressType.random)
    assert device.char_read("2a19") == bytearray(b"\x21")
    assert rig.bluez.calls_to("ConnectDevice")  # tried first: UnknownMethod on this BlueZ
    assert rig.bluez.calls_to("StartDiscovery") and rig.bluez.calls_to("StopDiscovery")


def test_reconnect_after_bluez_dropped_the_temporary_device(rig: Rig) -> None:
    """bluez-dbus.md §1 "Lifetime": an unpaired, untrusted device that is no longer connected is
    removed after TemporaryTimeout; connecting again must find it again (§3: scan, then Connect)."""
    rig.bluez.temporary_timeout_s = 0.2
    device = rig.backend.connect(TAG, address_type="random")
    device.disconnect()
    tag = rig.bluez.devices[rig.bluez.device_path(TAG)]
    assert wait_for(lambda: not tag.on_bus, timeout=5)
    again = rig.backend.connect(TAG, address_type="random")
    assert again.char_read("2a19") == bytearray(b"\x21")
    again.disconnect()


def test_connect_to_a_device_never_scanned_with_connect_device() -> None:
    rig = make_rig(experimental=True)
    try:
        device = rig.backend.connect(TAG, address_type="random")
        assert device.char_read("2a19") == bytearray(b"\x21")
        (call,) = rig.bluez.calls_to("ConnectDevice")
        assert call.body[0]["Address"].value == TAG and call.body[0]["AddressType"].value == "random"
        assert rig.bluez.calls_to("StartDiscovery") == []
    finally:
        stop_rig(rig)


def test_connect_to_nothing_fails_within_the_timeout(rig: Rig) -> None:
    with pytest.raises(exceptions.NotConnectedError, match="00:11:22:33:44:55"):
        rig.backend.connect("00:11:22:33:44:55", timeout=0.5)
    assert not rig.bluez.discovering


def test_connect_error_carries_bluez_reason() -> None:
    world = World.from_dict(world_dict(connect_error="connect error: Connection refused (111)"))
    rig = make_rig(world)
    try:
        with pytest.raises(exceptions.NotConnectedError, match="Failed: le-connection-refused"):
            rig.backend.connect(HR, timeout=2)
    finally:
        stop_rig(rig)


def test_bad_arguments_fail_before_the_bus(rig: Rig) -> None:
    with pytest.raises(ValueError):
        rig.backend.connect("C4:7C:8D:6A:3E:01\nConnect")
    with pytest.raises(ValueError):
        rig.backend.connect(HR, timeout=-1)
    with pytest.raises(TypeError):
        rig.backend.connect(HR, bogus=True)
    with pytest.raises(ValueError):
        pygatt.DBusBackend("hci0; rm")
    with pytest.raises(ValueError):
        pygatt.DBusBackend(bus_address="tcp:host=example.invalid")
    assert rig.bluez.calls_to("Connect") == []
    device = rig.backend.connect(HR)
    calls = len(rig.bluez.calls)
    with pytest.raises(TypeError):
        device.char_write_handle(0x0D, "01")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        device.char_write_handle(0x10000, b"\x01")
    with pytest.raises(ValueError):
        device.char_read_long_handle(0x0D, offset=-1)
    assert len(rig.bluez.calls) == calls


# -- reads --------------------------------------------------------------------------------------


def test_reads_by_uuid_handle_descriptor_and_declaration(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    assert device.char_read("2a38") == bytearray(b"\x01")
    assert device.char_read(u16(0x2A29)) == bytearray(b"pygatt")
    battery = device.discover_characteristics()[u16(0x2A19)]
    assert device.char_read_handle(battery.handle) == bytearray(b"\x5a")
    assert device.char_read_handle(battery.descriptors[u16(0x2901)]) == bytearray(b"Battery")
    # the declaration has no D-Bus object; its bytes are what an ATT read of it returns
    peripheral = rig.world.find(HR)
    assert peripheral is not None
    (declaration,) = [c for c in layout(peripheral).characteristics if c[2] == battery.handle]
    expected = bytes([declaration[1]]) + battery.handle.to_bytes(2, "little") + bytes.fromhex("192a")
    assert device.char_read_handle(battery.handle - 1) == bytearray(expected)


def test_long_reads_and_offsets(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    handle = device.get_handle(LONG)
    assert device.char_read_long(LONG) == bytearray(LONG_VALUE)
    assert device.char_read_handle(handle) == bytearray(LONG_VALUE)  # BlueZ follows with Read Blob
    assert device.char_read_long_handle(handle, offset=90) == bytearray(LONG_VALUE[90:])
    (call,) = [c for c in rig.bluez.calls_to("ReadValue") if c.body[0].get("offset")]
    assert call.body[0]["offset"].signature == "q" and call.body[0]["offset"].value == 90
    # by UUID: one packet, as an ATT Read By Type gives it (MTU 247 - 4)
    assert device.char_read(LONG) == bytearray(LONG_VALUE)


def test_read_errors_map_to_typed_exceptions(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    with pytest.raises(exceptions.ReadNotPermittedError) as denied:
        device.char_read("2a25")
    assert denied.value.att_error == 0x02 and denied.value.operation == "ReadValue"
    with pytest.raises(exceptions.AttributeNotFoundError) as missing:
        device.char_read("2a26")
    assert missing.value.att_error == 0x0A
    with pytest.raises(exceptions.ReadNotPermittedError):
        device.char_read("2a37")  # notify only
    with pytest.raises(exceptions.InvalidHandleError):
        device.char_read_handle(0x0FFF)
    with pytest.raises(exceptions.AttributeNotFoundError, match="no characteristic"):
        device.char_read("2a99")  # by UUID as gatttool's char-read-uuid: ATT "Attribute Not Found"
    with pytest.raises(exceptions.BLEError, match="No characteristic found"):
        device.char_write("2a99", b"\x01")
    with pytest.raises(exceptions.InvalidValueLengthError):
        device.char_read_long_handle(device.get_handle(LONG), offset=101)
    assert device.connected  # errors leave the link up


# -- writes -------------------------------------------------------------------------------------


def test_write_request_command_and_long(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    device.char_write("2a39", b"\x05")
    device.char_write(COMMAND, bytearray(b"\x07"), wait_for_response=False)
    long_value = bytes(reversed(range(200)))
    device.char_write_long(LONG, long_value)
    writes = [(c.path.rsplit("/", 1)[1], c.body[0], c.body[1]["type"].value) for c in rig.bluez.calls_to("WriteValue")]
    assert [w[2] for w in writes] == ["request", "command", "request"]
    assert writes[0][1] == b"\x05" and writes[1][1] == b"\x07" and writes[2][1] == long_value
    assert device.char_read_long(LONG) == bytearray(long_value)
    assert device.char_read(COMMAND) == bytearray(b"\x07")


def test_write_errors(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    with pytest.raises(exceptions.WriteNotPermittedError) as denied:
        device.char_write("2a38", b"\x01")
    assert denied.value.att_error == 0x03
    with pytest.raises(ValueError, match="write without response"):
        device.char_write(COMMAND, bytes(245), wait_for_response=False)
    with pytest.raises(exceptions.WriteNotPermittedError):
        device.char_write_handle(device.get_handle("2a38") - 1, b"\x01")  # a declaration
    with pytest.raises(ValueError, match="CCCD"):
        device.char_write_handle(device.discover_characteristics()[u16(0x2A37)].descriptors[CCCD], b"\x05\x00")


# -- notifications -------------------------------------------------------------------------------


def test_subscribe_receives_the_stream_on_the_dispatcher_thread(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    got = Collector()
    device.subscribe("2a37", callback=got)
    assert got.wait(5)
    handle = device.get_handle("2a37")
    assert got.values == [(handle, bytes.fromhex(v)) for v in ("0048", "004a", "004c", "004b", "0049")]
    assert set(got.threads) == {"pygatt-dbus-callbacks"}
    assert len(rig.bluez.calls_to("StartNotify")) == 1
    assert rig.bluez.calls_to("WriteValue") == []  # the CCCD is BlueZ's to write
    device.unsubscribe("2a37")
    assert len(rig.bluez.calls_to("StopNotify")) == 1


def test_indications(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    got = Collector()
    device.subscribe(INDICATE, callback=got, indication=True)
    assert rig.bluez.notify(HR, INDICATE, b"\x11\x22")
    assert got.wait(1)
    assert got.values == [(device.get_handle(INDICATE), b"\x11\x22")]


def test_subscription_kind_says_what_bluez_enabled(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    heart_rate, battery, indicated = (device.get_handle(u) for u in ("2a37", "2a19", INDICATE))
    assert device.subscription_kind(heart_rate) is None  # not subscribed
    device.subscribe("2a37", indication=True)  # notify only: BlueZ enables notifications
    device.subscribe(INDICATE)  # indicate only: BlueZ enables indications
    assert device.subscription_kind(heart_rate) == "notification"
    assert device.subscription_kind(indicated) == "indication"
    assert device.subscription_kind(battery) is None
    device.unsubscribe("2a37")
    assert device.subscription_kind(heart_rate) is None
    device.disconnect()
    assert device.subscription_kind(indicated) is None


def test_a_read_of_a_notifying_characteristic_is_not_a_notification(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    got = Collector()
    device.subscribe("2a19", callback=got)
    for _ in range(3):
        assert device.char_read("2a19") == bytearray(b"\x5a")
    assert rig.bluez.notify(HR, "2a19", b"\x63")
    assert got.wait(1)
    time.sleep(0.1)  # give a wrongly forwarded read echo the chance to show up
    assert got.values == [(device.get_handle("2a19"), b"\x63")]


def test_joined_reads_drop_one_echo_and_keep_a_notification_with_the_same_bytes() -> None:
    """Two reads of a notifying characteristic at once: BlueZ joins them, so ONE Value echo answers
    both; a notification with the same bytes that arrives meanwhile still reaches the callback, once."""
    rig = make_rig(World.from_dict(world_dict(response_delay_s=0.3)))
    try:
        device = rig.backend.connect(HR)
        handle = device.get_handle("2a19")  # read + notify, value 5a
        got = Collector()
        device.subscribe("2a19", callback=got)
        results: list = []
        readers = [
            threading.Thread(target=lambda: results.append(bytes(device.char_read_handle(handle)))) for _ in range(2)
        ]
        for reader in readers:
            reader.start()
        assert wait_for(lambda: len(rig.bluez.calls_to("ReadValue")) == 2, timeout=5)
        assert rig.bluez.notify(HR, "2a19", b"\x5a")  # while both reads wait for the peer
        for reader in readers:
            reader.join(5)
        assert results == [b"\x5a", b"\x5a"]
        assert rig.bluez.notify(HR, "2a19", b"\x63")  # a marker: callbacks run in order
        assert got.wait(2), got.values
        assert got.values == [(handle, b"\x5a"), (handle, b"\x63")]
    finally:
        stop_rig(rig)


def test_a_callback_may_call_back_into_the_device(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    reads: list = []
    done = threading.Event()

    def on_value(handle: int, value: bytearray) -> None:
        reads.append(device.char_read("2a38"))
        done.set()

    device.subscribe("2a19", callback=on_value)
    rig.bluez.notify(HR, "2a19", b"\x01")
    assert done.wait(5)
    assert reads == [bytearray(b"\x01")]


def test_several_devices_at_once_get_their_own_notifications(rig: Rig) -> None:
    hr = rig.backend.connect(HR)
    tag = rig.backend.connect(TAG, address_type="random")
    got_hr, got_tag = Collector(), Collector()
    hr.subscribe("2a19", callback=got_hr)
    tag.subscribe("2a19", callback=got_tag)
    rig.bluez.notify(TAG, "2a19", b"\x02")
    rig.bluez.notify(HR, "2a19", b"\x01")
    assert got_hr.wait(1) and got_tag.wait(1)
    assert [v for _, v in got_hr.values] == [b"\x01"] and [v for _, v in got_tag.values] == [b"\x02"]
    assert hr.char_read("2a19") == bytearray(b"\x5a") and tag.char_read("2a19") == bytearray(b"\x21")
    assert rig.backend.connect(HR) is hr  # already connected: the same device


# -- the rest of the device API ---------------------------------------------------------------


def test_exchange_mtu_returns_what_bluez_negotiated(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    assert device.exchange_mtu(100) == 247
    with pytest.raises(ValueError):
        device.exchange_mtu(600)


def test_get_rssi_says_clearly_that_bluez_has_none_for_a_link(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    with pytest.raises(exceptions.BLEError, match="only from advertisements"):
        device.get_rssi()


def test_bond_just_works_and_passkey_through_the_agent() -> None:
    rig = make_rig(passkey=654321)
    try:
        tag = rig.backend.connect(TAG, address_type="random")
        tag.bond()
        keypad = rig.backend.connect(KEYPAD)
        keypad.bond(permanent=True)
        assert "RequestPasskey" in rig.backend.agent.calls
        props = {c.body[1]: c.body[2].value for c in rig.bluez.calls_to("Set")}
        assert props == {"Trusted": True}
        assert rig.bluez.calls_to("RegisterAgent")[0].body[1] == "KeyboardDisplay"
    finally:
        stop_rig(rig)


def test_bond_fails_with_a_gatt_error_when_the_agent_has_no_passkey(rig: Rig) -> None:
    keypad = rig.backend.connect(KEYPAD)
    with pytest.raises(exceptions.GATTError, match="AuthenticationFailed"):
        keypad.bond()
    assert keypad.connected


def test_disconnect_and_reconnect_without_callbacks_firing(rig: Rig) -> None:
    device = rig.backend.connect(HR)
    fired: list = []
    device.register_disconnect_callback(fired.append)
    device.subscribe("2a19", callback=Collector())
    device.disconnect()
    assert not device.connected
    assert rig.bluez.calls_to("StopNotify") and rig.bluez.calls_to("Disconnect")
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read("2a38")
    again = rig.backend.connect(HR)
    assert again.char_read("2a38") == bytearray(b"\x01")
    time.sleep(0.1)
    assert fired == []


def test_clear_bond_removes_the_device(rig: Rig) -> None:
    rig.backend.clear_bond(HR)
    (call,) = rig.bluez.calls_to("RemoveDevice")
    assert call.body[0] == rig.bluez.device_path(HR)
    rig.backend.clear_bond(HR)  # nothing left to remove: no error
    rig.backend.clear_bond()


# -- start, stop and the environment ----------------------------------------------------------


def test_start_without_bluetoothd_is_a_clear_tool_error() -> None:
    with PrivateBus() as bus:
        backend = pygatt.DBusBackend(bus_address=bus.address)
        with pytest.raises(BluezNotAvailableError, match="bluetoothd is not running"):
            backend.start()
        backend.stop()


def test_start_without_the_adapter_is_a_clear_tool_error() -> None:
    with PrivateBus() as bus, SimulatedBluez(World.from_dict(world_dict()), bus.address, adapter="hci0"):
        backend = pygatt.DBusBackend("hci1", bus_address=bus.address)
        with pytest.raises(exceptions.ToolError, match="No Bluetooth adapter hci1"):
            backend.start()


def test_bus_policy_refusal_is_permission_denied() -> None:
    with PrivateBus(deny_send_to=["org.bluez"]) as bus, SimulatedBluez(World.from_dict(world_dict()), bus.address):
        backend = pygatt.DBusBackend(bus_address=bus.address)
        with pytest.raises(exceptions.PermissionDeniedError, match="policy"):
            backend.start()


def test_no_bus_at_all_is_a_clear_error(tmp_path: object) -> None:
    backend = pygatt.DBusBackend(bus_address=f"unix:path={tmp_path}/nothing.sock")
    with pytest.raises(BluezNotAvailableError, match="Cannot reach the system D-Bus"):
        backend.start()


def test_system_bus_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with PrivateBus() as bus, SimulatedBluez(World.from_dict(world_dict()), bus.address):
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        monkeypatch.delenv("PYGATT_SIMULATE", raising=False)
        backend = pygatt.DBusBackend()
        backend.start()
        try:
            assert backend.connect(HR).char_read("2a38") == bytearray(b"\x01")
        finally:
            backend.stop()


def test_pygatt_simulate_runs_a_private_bus_and_simulated_bluez(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYGATT_SIMULATE", "heart-rate")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/should-not-be-used")
    before = set(threading.enumerate())
    backend = pygatt.DBusBackend()
    backend.start()
    try:
        device = backend.connect("C4:7C:8D:6A:3E:01")
        assert device.char_read("2a38") == bytearray(b"\x01")
    finally:
        backend.stop()
    time.sleep(0.05)
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_start_twice_and_stop_twice(rig: Rig) -> None:
    rig.backend.start()
    rig.backend.stop()
    rig.backend.stop()
    with pytest.raises(exceptions.BLEError, match="not started"):
        rig.backend.connect(HR)


def test_simulate_keyword_and_its_errors(tmp_path: object) -> None:
    backend = pygatt.DBusBackend(simulate="heart-rate")
    backend.start()
    try:
        assert [d["address"] for d in backend.filtered_scan("Pulse", timeout=0.2)] == ["C4:7C:8D:6A:3E:01"]
    finally:
        backend.stop()
    with pytest.raises(ValueError, match="exclude"):
        pygatt.DBusBackend(simulate="heart-rate", bus_address="unix:path=/x")
    with pytest.raises(ValueError, match="no world file"):
        pygatt.DBusBackend(simulate=f"{tmp_path}/missing.json").start()


def test_only_bluetoothd_may_call_the_pairing_agent() -> None:
    """Another program on the bus must not get the passkey from our agent."""
    from jeepney import DBusAddress, MessageType, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    rig = make_rig(passkey=654321)
    try:
        (registered,) = rig.bluez.calls_to("RegisterAgent")
        agent = DBusAddress(registered.body[0], bus_name=registered.sender, interface="org.bluez.Agent1")
        with open_dbus_connection(bus=rig.bus.address) as stranger:
            reply = stranger.send_and_get_reply(
                new_method_call(agent, "RequestPasskey", "o", (rig.bluez.device_path(KEYPAD),)), timeout=5
            )
        assert reply.header.message_type is MessageType.error
        assert reply.body == ("only bluetoothd may call this agent",)
        assert rig.backend.agent.calls == []
        rig.backend.connect(KEYPAD).bond()  # bluetoothd itself is answered
        assert rig.backend.agent.calls == ["RequestPasskey"]
    finally:
        stop_rig(rig)


def test_signals_from_anyone_but_bluetoothd_are_ignored(rig: Rig) -> None:
    """Another program cannot inject notifications or disconnects by sending BlueZ-like signals."""
    from jeepney import DBusAddress, new_signal
    from jeepney.io.blocking import open_dbus_connection

    device = rig.backend.connect(HR)
    got = Collector()
    device.subscribe("2a19", callback=got)
    fired: list = []
    device.register_disconnect_callback(fired.append)
    char_path = next(c.path for c in rig.bluez.calls_to("StartNotify"))
    with open_dbus_connection(bus=rig.bus.address) as stranger:
        fake_value = new_signal(
            DBusAddress(char_path, interface="org.freedesktop.DBus.Properties"),
            "PropertiesChanged",
            "sa{sv}as",
            ("org.bluez.GattCharacteristic1", {"Value": ("ay", b"\x66")}, []),
        )
        fake_drop = new_signal(
            DBusAddress(rig.bluez.device_path(HR), interface="org.freedesktop.DBus.Properties"),
            "PropertiesChanged",
            "sa{sv}as",
            ("org.bluez.Device1", {"Connected": ("b", False)}, []),
        )
        stranger.send(fake_value)
        stranger.send(fake_drop)
    assert rig.bluez.notify(HR, "2a19", b"\x01")  # the real one, sent after the fakes
    assert got.wait(1)
    time.sleep(0.1)
    assert [v for _, v in got.values] == [b"\x01"]
    assert fired == [] and device.connected


def test_a_device_seen_while_connect_asks_bluez_about_it_is_not_missed(rig: Rig, monkeypatch) -> None:
    """A scan's discovery is running; the device shows up (InterfacesAdded) after connect() found
    BlueZ did not know it, while it tries ConnectDevice. That signal does not come again, so
    connect() must have been waiting for it already (it timed out after 5 s, in a CI run)."""
    scanning = threading.Thread(target=lambda: rig.backend.scan(timeout=2.0))
    scanning.start()
    assert wait_for(lambda: bool(rig.bluez.calls_to("StartDiscovery")))
    ask = rig.backend._bluez

    def ask_after_the_device_appeared(path, interface, member, *args, **kwargs):
        if member == "ConnectDevice":
            assert wait_for(lambda: rig.bluez.devices[rig.bluez.device_path(TAG)].on_bus, timeout=3)
            time.sleep(0.2)  # its InterfacesAdded has reached the backend's reader by now
        return ask(path, interface, member, *args, **kwargs)

    monkeypatch.setattr(rig.backend, "_bluez", ask_after_the_device_appeared)
    started = time.monotonic()
    device = rig.backend.connect(TAG, address_type="random", timeout=5)
    assert time.monotonic() - started < 4
    assert device.char_read("2a19") == bytearray(b"\x21")
    scanning.join(10)


def test_a_connect_to_an_unseen_device_during_a_scan_shares_the_discovery(rig: Rig) -> None:
    found: list = []
    scanning = threading.Thread(target=lambda: found.extend(rig.backend.scan(timeout=1.0)))
    scanning.start()
    assert wait_for(lambda: bool(rig.bluez.calls_to("StartDiscovery")))
    device = rig.backend.connect(TAG, address_type="random", timeout=5)
    assert device.char_read("2a19") == bytearray(b"\x21")
    scanning.join(10)
    assert {d["address"] for d in found} >= {HR, TAG}
    assert len(rig.bluez.calls_to("StartDiscovery")) == 1 and len(rig.bluez.calls_to("StopDiscovery")) == 1
    assert not rig.bluez.discovering
