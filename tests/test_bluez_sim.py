"""The simulated org.bluez, driven over a real private dbus-daemon by a plain jeepney client.

No Bluetooth adapter exists here: everything below talks to the simulator
(``pygatt.testing.sim.bluez_dbus``) backed by the shipped heart-rate world.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from pygatt.testing import load_world
from pygatt.testing.dbus_bus import BusStartError, PrivateBus, bus_config, find_daemon
from pygatt.testing.sim import bluez_objects as bz
from pygatt.testing.sim.bluez_dbus import PrivateBluez, SimulatedBluez
from pygatt.testing.world import World, full_uuid, layout
from tests.bluez_sim_client import (
    ADAPTER,
    ADAPTER_PATH,
    CHAR,
    DESC,
    DEVICE,
    HR_ADDRESS,
    HR_PATH,
    PROPS,
    TAG_ADDRESS,
    TAG_PATH,
    Client,
)

pytestmark = [
    pytest.mark.dbus,
    pytest.mark.skipif(find_daemon() is None, reason="dbus-daemon is not installed (apt-get install dbus-daemon)"),
]

HEART_RATE = HR_PATH + "/service0006"
HR_MEASUREMENT = HEART_RATE + "/char0007"  # notify, value handle 0x0008, CCCD 0x0009
BODY_LOCATION = HEART_RATE + "/char000a"  # read, value 01
CONTROL_POINT = HEART_RATE + "/char000c"  # write
BATTERY = HR_PATH + "/service000e/char000f"  # read + notify, CCCD 0x0011, user description 0x0012
SERIAL = HR_PATH + "/service0013/char0016"  # read_error 2


@pytest.fixture(scope="module")
def bus() -> Iterator[PrivateBus]:
    with PrivateBus() as private_bus:
        yield private_bus


@pytest.fixture
def make_sim(bus: PrivateBus) -> Iterator[Callable[..., SimulatedBluez]]:
    """Start a SimulatedBluez on the private bus (a changed heart-rate world if asked)."""
    started: List[SimulatedBluez] = []
    threads_before = set(threading.enumerate())

    def make(world: Any = None, **options: Any) -> SimulatedBluez:
        sim = SimulatedBluez(world or load_world("heart-rate"), bus.address, **options)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leftover, f"threads outlived the simulator: {leftover}"


@pytest.fixture
def sim(make_sim: Callable[..., SimulatedBluez]) -> SimulatedBluez:
    return make_sim()


@pytest.fixture
def client(bus: PrivateBus, sim: SimulatedBluez) -> Iterator[Client]:
    c = Client(bus.address)
    yield c
    c.close()


def heart_rate(**changes: Any) -> World:
    """The heart-rate world with the sensor's fields changed."""
    world = copy.deepcopy(load_world("heart-rate"))
    for key, value in changes.items():
        setattr(world.peripherals[0], key, value)
    return world


# =====================================================================================
# the private bus
# =====================================================================================
def test_private_bus_starts_answers_and_leaves_nothing_behind() -> None:
    with PrivateBus() as private_bus:
        assert private_bus.address.startswith("unix:path=") and "guid=" in private_bus.address
        assert private_bus.environ()["DBUS_SYSTEM_BUS_ADDRESS"] == private_bus.address
        c = Client(private_bus.address)
        assert c.unique_name.startswith(":1.")
        c.close()
        pid = private_bus.pid
        assert private_bus.running
    assert not private_bus.running
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    private_bus.stop()  # a second stop returns too


def test_a_private_bus_dropped_unstopped_takes_its_daemon_along() -> None:
    import gc
    import os

    private_bus = PrivateBus()
    private_bus.start()
    pid = private_bus.pid
    assert pid is not None
    del private_bus
    gc.collect()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_private_bus_reports_a_missing_daemon() -> None:
    with pytest.raises(BusStartError, match="cannot run"):
        PrivateBus(daemon="/nonexistent/dbus-daemon").start()


def test_bus_config_can_refuse_senders() -> None:
    text = bus_config("/tmp/x/bus.sock", ["org.bluez"])
    assert '<deny send_destination="org.bluez"/>' in text and "unix:path=/tmp/x/bus.sock" in text


def test_a_policy_that_refuses_us_gives_access_denied() -> None:
    with PrivateBus(deny_send_to=["org.bluez"]) as private_bus:
        with SimulatedBluez(load_world("heart-rate"), private_bus.address):
            c = Client(private_bus.address)
            reply = c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery")
            c.close()
    assert reply.error == "org.freedesktop.DBus.Error.AccessDenied"


# =====================================================================================
# object tree, paths and handles
# =====================================================================================
def test_managed_objects_before_any_connection(client: Client) -> None:
    objects = client.managed_objects()
    assert "/" not in objects
    assert set(objects["/org/bluez"]) >= {"org.bluez.AgentManager1", "org.freedesktop.DBus.Introspectable"}
    adapter = objects[ADAPTER_PATH][ADAPTER]
    assert adapter["Powered"] == ("b", True) and adapter["Discovering"] == ("b", False)
    assert "central" in adapter["Roles"][1]
    # the bonded sensor is known from startup; the tag has not been seen yet
    assert HR_PATH in objects and TAG_PATH not in objects
    device = objects[HR_PATH][DEVICE]
    assert device["Address"] == ("s", HR_ADDRESS) and device["Paired"] == ("b", True)
    assert device["Connected"] == ("b", False) and "RSSI" not in device
    assert not [p for p in objects if p.startswith(HR_PATH + "/")]  # no GATT objects before resolution


def test_gatt_paths_carry_the_worlds_handles(client: Client) -> None:
    client.connect()
    objects = client.managed_objects()
    table = layout(load_world("heart-rate").peripherals[0])
    for declaration, _, value_handle, uuid in table.characteristics:
        matching = [p for p in objects if p.endswith(f"/char{declaration:04x}")]
        if table.attributes[declaration].handle < 6:  # the GAP service (0x1800) is claimed by a plugin
            assert not matching
            continue
        assert len(matching) == 1, (declaration, uuid)
        path = matching[0]
        assert objects[path][CHAR]["UUID"] == ("s", uuid)
        assert bz.handle_of(path) + 1 == value_handle
    assert objects[HEART_RATE]["org.bluez.GattService1"]["UUID"] == ("s", full_uuid("180d"))
    cccd = objects[HR_MEASUREMENT + "/desc0009"][DESC]
    assert cccd["UUID"] == ("s", bz.CCCD_UUID) and cccd["Characteristic"] == ("o", HR_MEASUREMENT)
    assert objects[BATTERY + "/desc0012"][DESC]["UUID"] == ("s", full_uuid("2901"))
    assert objects[HR_MEASUREMENT][CHAR]["Flags"] == ("as", ["notify"])
    assert objects[HR_MEASUREMENT][CHAR]["Notifying"] == ("b", False)
    assert "Notifying" not in objects[BODY_LOCATION][CHAR]
    assert objects[BODY_LOCATION][CHAR]["MTU"] == ("q", 247)
    assert full_uuid("1800") in objects[HR_PATH][DEVICE]["UUIDs"][1]


@pytest.mark.parametrize(
    ("uuid", "name"),
    [("1800", "GAP"), ("1812", "HID"), ("1813", "Scan Parameters"), ("1850", "PACS"), ("1844", "VCS")],
)
def test_services_claimed_by_plugins_get_no_objects(bus: PrivateBus, make_sim: Any, uuid: str, name: str) -> None:
    # bluez-dbus.md §1 "Hidden services": plugins claim GAP 0x1800, HID 0x1812, Scan Parameters
    # 0x1813, MIDI, PACS (0x1850) and VCS (0x1844), so these get no objects; Battery 0x180F stays.
    world = World.from_dict(
        {
            "peripherals": [
                {
                    "address": HR_ADDRESS,
                    "bonded": True,
                    "services": [
                        {"uuid": uuid, "characteristics": [{"uuid": "2a4d", "properties": ["read"], "value": "01"}]},
                        {"uuid": "180f", "characteristics": [{"uuid": "2a19", "properties": ["read"], "value": "64"}]},
                    ],
                }
            ]
        }
    )
    make_sim(world)
    client = Client(bus.address)
    try:
        client.connect()
        services = {
            interfaces["org.bluez.GattService1"]["UUID"][1]
            for path, interfaces in client.managed_objects().items()
            if "org.bluez.GattService1" in interfaces
        }
        assert services == {full_uuid("180f")}, f"{name} should be claimed by a plugin"
    finally:
        client.close()


def test_introspection_lists_children_and_methods(client: Client) -> None:
    xml = client.call("/org", "org.freedesktop.DBus.Introspectable", "Introspect").ok()[0]
    assert '<node name="bluez"/>' in xml
    xml = client.call(HR_PATH, "org.freedesktop.DBus.Introspectable", "Introspect").ok()[0]
    assert '<interface name="org.bluez.Device1">' in xml and '<method name="Pair">' in xml


def test_properties_get_set_and_their_errors(client: Client) -> None:
    assert client.get(HR_PATH, DEVICE, "Alias") == "Pulse HR"
    missing = client.call(HR_PATH, PROPS, "Get", "ss", (DEVICE, "Nope"))
    assert (missing.error, missing.text) == ("org.freedesktop.DBus.Error.InvalidArgs", "No such property 'Nope'")
    read_only = client.call(HR_PATH, PROPS, "Set", "ssv", (DEVICE, "Address", ("s", "00:00:00:00:00:00")))
    assert read_only.error == "org.freedesktop.DBus.Error.PropertyReadOnly"
    wrong = client.call(HR_PATH, PROPS, "Set", "ssv", (DEVICE, "Trusted", ("s", "yes")))
    assert wrong.error == "org.freedesktop.DBus.Error.InvalidSignature"
    assert client.get(HR_PATH, DEVICE, "Trusted") is False
    client.call(HR_PATH, PROPS, "Set", "ssv", (DEVICE, "Trusted", ("b", True))).ok()
    client.call(HR_PATH, PROPS, "Set", "ssv", (DEVICE, "Trusted", ("b", True))).ok()
    assert client.changes(HR_PATH, "Trusted") == [True]  # once: the second Set changed nothing
    assert client.get(HR_PATH, DEVICE, "Trusted") is True
    client.call(ADAPTER_PATH, PROPS, "Set", "ssv", (ADAPTER, "Powered", ("b", False))).ok()
    off = client.call(ADAPTER_PATH, ADAPTER, "StartDiscovery")
    assert (off.error, off.text) == ("org.bluez.Error.NotReady", "Resource Not Ready")


def test_wrong_signature_unknown_object_and_missing_adapter(bus: PrivateBus, make_sim: Any) -> None:
    make_sim()
    c = Client(bus.address)
    assert c.read(BODY_LOCATION).error == bz.UNKNOWN_OBJECT  # not resolved yet: no GATT objects
    c.connect()
    reply = c.call(BODY_LOCATION, CHAR, "ReadValue")  # no a{sv}
    assert reply.error == bz.UNKNOWN_METHOD
    assert reply.text == f'Method "ReadValue" with signature "" on interface "{CHAR}" doesn\'t exist\n'
    assert c.call(HR_PATH + "/service0099", CHAR, "StartNotify").error == bz.UNKNOWN_OBJECT
    connect_device = c.call(ADAPTER_PATH, ADAPTER, "ConnectDevice", "a{sv}", ({"Address": ("s", TAG_ADDRESS)},))
    assert connect_device.error == bz.UNKNOWN_METHOD  # experimental only
    c.close()


def test_no_adapter_in_the_world_means_no_adapter_object(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    world.adapter.present = False
    make_sim(world)
    c = Client(bus.address)
    assert ADAPTER_PATH not in c.managed_objects()
    assert c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").error == bz.UNKNOWN_OBJECT
    c.close()


# =====================================================================================
# discovery
# =====================================================================================
def test_discovery_adds_devices_with_advertisement_data(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    world.peripherals[1].manufacturer_data = {"0059": "0102ff"}
    world.peripherals[1].service_data = {"180f": "21"}
    world.peripherals[1].advertised_services = ["180f"]
    make_sim(world)
    c = Client(bus.address)
    c.call(ADAPTER_PATH, ADAPTER, "SetDiscoveryFilter", "a{sv}", ({"Transport": ("s", "le")},)).ok()
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    assert [e.kind for e in c.events[-2:]] == ["signal", "reply"]  # Discovering=true before the reply
    assert c.changes(ADAPTER_PATH, "Discovering") == [True]
    added = c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == TAG_PATH)
    assert added.path == "/"
    assert set(added.body[1]) == {DEVICE, PROPS, "org.freedesktop.DBus.Introspectable"}
    tag = added.body[1][DEVICE]
    assert tag["RSSI"] == ("n", -81) and tag["AddressType"] == ("s", "random") and "Name" not in tag
    assert tag["Alias"] == ("s", TAG_ADDRESS.replace(":", "-"))
    assert tag["ManufacturerData"] == ("a{qv}", {0x59: ("ay", b"\x01\x02\xff")})
    assert tag["ServiceData"] == ("a{sv}", {full_uuid("180f"): ("ay", b"\x21")})
    assert tag["UUIDs"] == ("as", [full_uuid("180f")])
    # the known (bonded) sensor gets its RSSI as a property change
    c.wait_signal(lambda e: e.path == HR_PATH and e.body[1].get("RSSI") == ("n", -58))
    again = c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery")
    assert (again.error, again.text) == ("org.bluez.Error.InProgress", "Operation already in progress")
    c.call(ADAPTER_PATH, ADAPTER, "StopDiscovery").ok()
    assert c.changes(ADAPTER_PATH, "Discovering") == [True, False]
    invalidated = [e.body[2] for e in c.signals("PropertiesChanged", TAG_PATH)]
    assert ["RSSI"] in invalidated
    stop = c.call(ADAPTER_PATH, ADAPTER, "StopDiscovery")
    assert (stop.error, stop.text) == ("org.bluez.Error.Failed", "No discovery started")
    c.close()


def test_discovery_filter_rules(client: Client) -> None:
    bad = client.call(ADAPTER_PATH, ADAPTER, "SetDiscoveryFilter", "a{sv}", ({"RSSI": ("i", -70)},))
    assert (bad.error, bad.text) == ("org.bluez.Error.InvalidArguments", "Invalid arguments in method call")
    both = {"RSSI": ("n", -70), "Pathloss": ("q", 10)}
    assert client.call(ADAPTER_PATH, ADAPTER, "SetDiscoveryFilter", "a{sv}", (both,)).error.endswith("InvalidArguments")
    client.call(ADAPTER_PATH, ADAPTER, "SetDiscoveryFilter", "a{sv}", ({"RSSI": ("n", -70)},)).ok()
    client.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    client.wait_signal(lambda e: e.path == HR_PATH and "RSSI" in e.body[1])
    client.pump(0.2)
    assert not client.signals("InterfacesAdded")  # the tag (-81 dBm) is filtered out


def test_a_client_leaving_ends_its_discovery_and_temporary_devices_go(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(temporary_timeout_s=0.2)
    watcher = Client(bus.address)
    scanner = Client(bus.address)
    scanner.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    watcher.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == TAG_PATH)
    scanner.close()
    watcher.wait_signal(lambda e: e.path == ADAPTER_PATH and e.body[1].get("Discovering") == ("b", False))
    removed = watcher.wait_signal(lambda e: e.member == "InterfacesRemoved" and e.body[0] == TAG_PATH)
    assert removed.body[1] == [DEVICE] and removed.path == "/"
    assert HR_PATH in watcher.managed_objects()  # bonded devices stay
    watcher.close()


# =====================================================================================
# connect, disconnect, remove
# =====================================================================================
def test_a_temporary_device_goes_after_its_link_ends(bus: PrivateBus, make_sim: Any) -> None:
    # bluez-dbus.md §1 "Lifetime": unpaired, untrusted, unconnected ("temporary") devices are
    # removed TemporaryTimeout after they stop being needed. A link that ends while no discovery
    # runs leaves such a device unneeded, just as the end of a discovery does.
    make_sim(temporary_timeout_s=0.2)
    client = Client(bus.address)
    try:
        client.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
        client.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == TAG_PATH)
        client.connect(TAG_PATH)
        client.call(ADAPTER_PATH, ADAPTER, "StopDiscovery").ok()
        client.pump(0.4)  # past the timeout: still connected, so it stays
        assert not [e for e in client.signals("InterfacesRemoved") if e.body[0] == TAG_PATH]
        client.call(TAG_PATH, DEVICE, "Disconnect").ok()
        removed = client.wait_signal(lambda e: e.member == "InterfacesRemoved" and e.body[0] == TAG_PATH)
        assert removed.body[1] == [DEVICE]
        assert TAG_PATH not in client.managed_objects()
        assert HR_PATH in client.managed_objects()  # bonded devices stay
    finally:
        client.close()


def test_connect_order_connected_reply_objects_mtu_resolved(client: Client) -> None:
    client.call(HR_PATH, DEVICE, "Connect").ok()
    client.wait_signal(lambda e: e.path == HR_PATH and e.body[1].get("ServicesResolved") == ("b", True))
    kinds = [(e.kind, e.member, e.path) for e in client.events if e.member != "AddMatch"]
    connected = kinds.index(("signal", "PropertiesChanged", HR_PATH))
    reply = kinds.index(("reply", "Connect", ""))
    first_added = next(i for i, k in enumerate(kinds) if k[1] == "InterfacesAdded")
    resolved = len(kinds) - 1
    assert connected < reply < first_added < resolved
    assert client.events[connected + 1].body[1] == {"Connected": ("b", True)}
    assert client.changes(BODY_LOCATION, "MTU") == [247]
    # a second Connect while connected succeeds at once
    client.call(HR_PATH, DEVICE, "Connect").ok()


def test_disconnect_keeps_gatt_objects_and_calls_then_fail(client: Client) -> None:
    client.connect()
    client.call(HR_PATH, DEVICE, "Disconnect").ok()
    assert client.events[-2].kind == "signal" and client.events[-2].body[1] == {
        "ServicesResolved": ("b", False),
        "Connected": ("b", False),
    }
    assert BODY_LOCATION in client.managed_objects()
    reply = client.read(BODY_LOCATION)
    assert (reply.error, reply.text) == ("org.bluez.Error.Failed", "Not connected")
    client.call(HR_PATH, DEVICE, "Disconnect").ok()  # not connected: still success
    # reconnecting: no second InterfacesAdded
    added_before = len(client.signals("InterfacesAdded"))
    client.connect()
    assert len(client.signals("InterfacesAdded")) == added_before


@pytest.mark.parametrize(
    "text, reason",
    [
        ("connect error: Connection refused (111)", "le-connection-refused"),
        ("connect error: Connection timed out (110)", "le-connection-timeout"),
        ("connect error: Something odd", "le-connection-unknown"),
    ],
)
def test_connect_errors_name_the_le_reason(bus: PrivateBus, make_sim: Any, text: str, reason: str) -> None:
    make_sim(heart_rate(connect_error=text))
    c = Client(bus.address)
    reply = c.call(HR_PATH, DEVICE, "Connect")
    assert (reply.error, reply.text) == ("org.bluez.Error.Failed", reason)
    assert c.changes(HR_PATH, "Connected") == []
    c.close()


def test_disconnect_during_connect_cancels_it(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(heart_rate(connect_delay_s=2.0))
    connecting, other = Client(bus.address), Client(bus.address)
    from jeepney import DBusAddress, new_method_call

    message = new_method_call(DBusAddress(HR_PATH, "org.bluez", DEVICE), "Connect")
    serial = next(connecting.conn.outgoing_serial)
    connecting.conn.send(message, serial=serial)
    time.sleep(0.1)
    busy = other.call(HR_PATH, DEVICE, "Connect")
    assert (busy.error, busy.text) == ("org.bluez.Error.InProgress", "Operation already in progress")
    other.call(HR_PATH, DEVICE, "Disconnect").ok()
    answer = connecting.conn.receive(timeout=5)
    while answer.header.fields.get(5) != serial:  # 5: reply_serial
        answer = connecting.conn.receive(timeout=5)
    assert answer.body == ("br-connection-canceled",)
    connecting.close()
    other.close()


def test_remove_device_is_bond_removal(client: Client) -> None:
    client.connect()
    client.call(ADAPTER_PATH, ADAPTER, "RemoveDevice", "o", (HR_PATH,)).ok()
    removed = [(e.body[0], list(e.body[1])) for e in client.signals("InterfacesRemoved")]
    assert removed[-1] == (HR_PATH, [DEVICE])
    assert (BATTERY, [CHAR]) in removed and (HR_MEASUREMENT + "/desc0009", [DESC]) in removed
    assert all(e.path == "/" for e in client.signals("InterfacesRemoved"))
    assert client.changes(HR_PATH, "Connected") == [True, False]
    gone = client.call(ADAPTER_PATH, ADAPTER, "RemoveDevice", "o", (HR_PATH,))
    assert (gone.error, gone.text) == ("org.bluez.Error.DoesNotExist", "Does Not Exist")
    assert client.call(HR_PATH, DEVICE, "Connect").error == bz.UNKNOWN_OBJECT


def test_connect_device_when_experimental(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(experimental=True)
    c = Client(bus.address)
    reply = c.call(
        ADAPTER_PATH,
        ADAPTER,
        "ConnectDevice",
        "a{sv}",
        ({"Address": ("s", TAG_ADDRESS), "AddressType": ("s", "random")},),
    )
    assert reply.ok() == (TAG_PATH,)
    assert c.get(TAG_PATH, DEVICE, "Connected") is True
    exists = c.call(ADAPTER_PATH, ADAPTER, "ConnectDevice", "a{sv}", ({"Address": ("s", TAG_ADDRESS)},))
    assert exists.error == "org.bluez.Error.AlreadyExists"
    c.close()


# =====================================================================================
# reads and writes
# =====================================================================================
def test_read_value_signal_before_reply_and_offsets(client: Client) -> None:
    client.connect()
    assert client.read(BODY_LOCATION).ok() == (b"\x01",)
    assert client.events[-2].kind == "signal" and client.events[-2].body[1] == {"Value": ("ay", b"\x01")}
    manufacturer = HR_PATH + "/service0013/char0014"
    assert client.read(manufacturer, {"offset": ("q", 2)}).ok() == (b"gatt",)
    past = client.read(manufacturer, {"offset": ("q", 7)})
    assert (past.error, past.text) == ("org.bluez.Error.InvalidArguments", "Invalid offset")
    wrong_type = client.read(manufacturer, {"offset": ("u", 2)})
    assert wrong_type.error == "org.bluez.Error.InvalidArguments"
    described = client.call(BATTERY + "/desc0012", DESC, "ReadValue", "a{sv}", ({},)).ok()
    assert described == (b"Battery",)


def test_read_errors_follow_bluez_wording(client: Client) -> None:
    client.connect()
    denied = client.read(SERIAL)
    assert (denied.error, denied.text) == ("org.bluez.Error.NotPermitted", "Read not permitted")


@pytest.mark.parametrize(
    "code, name, text",
    [
        (0x02, "NotPermitted", "Read not permitted"),
        (0x03, "NotPermitted", "Write not permitted"),
        (0x05, "NotPermitted", "Not paired"),
        (0x0F, "NotPermitted", "Not paired"),
        (0x0C, "NotPermitted", "Not paired"),
        (0x07, "InvalidArguments", "Invalid offset"),
        (0x0D, "InvalidArguments", "Invalid Length"),
        (0x08, "NotAuthorized", "Operation Not Authorized"),
        (0x06, "NotSupported", "Operation is not supported"),
        (0x00, "Failed", "Operation failed"),
        (0x01, "Failed", "Operation failed with ATT error: 0x01"),
        (0x80, "Failed", "Operation failed with ATT error: 0x80"),
        (0xFD, "Failed", "Operation failed with ATT error: 0xfd"),
    ],
)
def test_att_error_table(code: int, name: str, text: str) -> None:
    error = bz.gatt_error(code)
    assert (error.name, error.message) == ("org.bluez.Error." + name, text)


def test_world_att_errors_reach_the_client(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    sensor = world.peripherals[0]
    sensor.bonded = False
    sensor.pairing = "confirm"  # needs an agent, so a read cannot pair by itself
    sensor.services[1].characteristics[1].read_error = 0x80
    sensor.services[1].characteristics[2].write_error = "Attribute requires authentication before read/write"
    make_sim(world)
    c = Client(bus.address)
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    c.connect()
    assert c.read(BODY_LOCATION).text == "Operation failed with ATT error: 0x80"
    denied = c.write(CONTROL_POINT, b"\x01")
    assert (denied.error, denied.text) == ("org.bluez.Error.NotPermitted", "Not paired")
    c.close()


def test_an_encrypted_read_pairs_just_works_first(bus: PrivateBus, make_sim: Any) -> None:
    world = heart_rate(bonded=False)
    world.peripherals[0].services[1].characteristics[1].read_error = 0x05
    make_sim(world)
    c = Client(bus.address)
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    c.connect()
    assert c.read(BODY_LOCATION).ok() == (b"\x01",)
    assert c.changes(HR_PATH, "Paired") == [True]
    c.close()


def test_writes_request_command_and_their_rules(client: Client) -> None:
    client.connect()
    client.write(CONTROL_POINT, b"\x07\x08").ok()
    assert client.get(CONTROL_POINT, CHAR, "Value") == b""  # writes never change Value
    # the peripheral stored it: a request to a write-only char is refused, but BlueZ's long write path is not
    client.write(CONTROL_POINT, b"\x09", kind=None).ok()  # no type: "write" flag -> request
    denied = client.write(BODY_LOCATION, b"\x02")
    assert (denied.error, denied.text) == ("org.bluez.Error.NotPermitted", "Write not permitted")
    client.write(BODY_LOCATION, b"\x02", kind="command").ok()  # no answer, so no error
    assert client.read(BODY_LOCATION).ok() == (b"\x01",)  # the peer ignored it
    unknown = client.write(CONTROL_POINT, b"\x01", kind="sideways")
    assert (unknown.error, unknown.text) == ("org.bluez.Error.NotSupported", "Operation is not supported")
    with_offset = client.call(
        CONTROL_POINT, CHAR, "WriteValue", "aya{sv}", (b"\x01", {"type": ("s", "command"), "offset": ("q", 1)})
    )
    assert with_offset.error == "org.bluez.Error.NotSupported"
    cccd = client.write(HR_MEASUREMENT + "/desc0009", b"\x01\x00", interface=DESC)
    assert (cccd.error, cccd.text) == ("org.bluez.Error.NotPermitted", "Write not permitted")


def test_written_values_are_read_back_with_offsets(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    world.peripherals[0].services[1].characteristics[2].properties = ["read", "write", "write-without-response"]
    make_sim(world)
    c = Client(bus.address)
    c.connect()
    long_value = bytes(range(100))  # > MTU-3 for a 23 MTU: BlueZ writes it long; one call all the same
    c.write(CONTROL_POINT, long_value).ok()
    assert c.read(CONTROL_POINT).ok() == (long_value,)
    c.call(CONTROL_POINT, CHAR, "WriteValue", "aya{sv}", (b"\xaa\xbb", {"offset": ("q", 98)})).ok()
    assert c.read(CONTROL_POINT).ok()[0][-2:] == b"\xaa\xbb"
    c.write(CONTROL_POINT, b"\x05", kind="command").ok()
    assert c.read(CONTROL_POINT).ok() == (b"\x05",)
    c.close()


# =====================================================================================
# notifications
# =====================================================================================
def test_notifications_are_one_value_signal_each(client: Client) -> None:
    client.connect()
    client.call(HR_MEASUREMENT, CHAR, "StartNotify").ok()
    assert client.events[-2].body[1] == {"Notifying": ("b", True)}  # before the reply
    deadline = time.monotonic() + 5
    while len(client.changes(HR_MEASUREMENT, "Value")) < 5 and time.monotonic() < deadline:
        client.pump(0.1)
    assert client.changes(HR_MEASUREMENT, "Value") == [
        bytes.fromhex(v) for v in ("0048", "004a", "004c", "004b", "0049")
    ]
    client.call(HR_MEASUREMENT, CHAR, "StartNotify").ok()  # a repeat from the same sender: success
    client.call(HR_MEASUREMENT, CHAR, "StopNotify").ok()
    assert client.changes(HR_MEASUREMENT, "Notifying") == [True, False]
    again = client.call(HR_MEASUREMENT, CHAR, "StopNotify")
    assert (again.error, again.text) == ("org.bluez.Error.Failed", "No notify session started")
    refused = client.call(BODY_LOCATION, CHAR, "StartNotify")
    assert refused.error == "org.bluez.Error.NotSupported"


def test_a_fast_stream_to_a_slow_client_loses_nothing(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    stream = world.peripherals[0].services[1].characteristics[0].notify
    stream.interval_s, stream.count, stream.values = 0, 3000, []  # generated values: sequence numbers
    sim = make_sim(world)
    c = Client(bus.address)
    c.connect()
    c.call(HR_MEASUREMENT, CHAR, "StartNotify").ok()
    time.sleep(0.5)  # not reading: the bus's buffers fill and the simulator must wait, not break
    values: List[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < 3000 and time.monotonic() < deadline:
        message = c.conn.receive(timeout=5)
        body = message.body
        if len(body) == 3 and body[0] == CHAR and "Value" in body[1]:
            values.append(body[1]["Value"][1])
    assert [int.from_bytes(v[:4], "big") for v in values] == list(range(3000))
    assert sim.running and c.read(BODY_LOCATION).ok() == (b"\x01",)
    c.close()


def test_an_unchanged_value_still_signals_and_a_read_adds_one(sim: SimulatedBluez, client: Client) -> None:
    client.connect()
    client.call(BATTERY, CHAR, "StartNotify").ok()
    assert sim.notify(HR_ADDRESS, "2a19", b"\x50")
    assert sim.notify(HR_ADDRESS, 0x0010, b"\x50")
    client.pump(0.2)
    assert client.changes(BATTERY, "Value") == [b"\x50", b"\x50"]
    client.read(BATTERY).ok()
    assert client.changes(BATTERY, "Value") == [b"\x50", b"\x50", b"\x5a"]
    client.call(BATTERY, CHAR, "StopNotify").ok()
    assert not sim.notify(HR_ADDRESS, "2a19", b"\x51")  # no session: BlueZ does not listen


def test_notify_sessions_end_with_their_sender(bus: PrivateBus, sim: SimulatedBluez) -> None:
    watcher, subscriber = Client(bus.address), Client(bus.address)
    subscriber.connect()
    subscriber.call(BATTERY, CHAR, "StartNotify").ok()
    subscriber.close()
    watcher.wait_signal(lambda e: e.path == BATTERY and e.body[1].get("Notifying") == ("b", False))
    watcher.close()


def test_acquire_notify_gives_one_packet_per_notification(bus: PrivateBus, sim: SimulatedBluez) -> None:
    c = Client(bus.address, enable_fds=True)
    c.connect()
    assert c.get(BATTERY, CHAR, "NotifyAcquired") is False
    assert c.call(BODY_LOCATION, CHAR, "AcquireNotify", "a{sv}", ({},)).error == "org.bluez.Error.NotSupported"
    fd, mtu = c.call(BATTERY, CHAR, "AcquireNotify", "a{sv}", ({},)).ok()
    assert mtu == 247
    packets = fd.to_socket()
    packets.settimeout(5)
    assert c.get(BATTERY, CHAR, "NotifyAcquired") is True
    again = c.call(BATTERY, CHAR, "AcquireNotify", "a{sv}", ({},))
    assert (again.error, again.text) == ("org.bluez.Error.NotPermitted", "Notify acquired")
    assert c.call(BATTERY, CHAR, "StartNotify").text == "Notify acquired"
    assert sim.notify(HR_ADDRESS, "2a19", b"\x41")
    assert sim.notify(HR_ADDRESS, "2a19", b"\x41\x42")
    assert [packets.recv(100), packets.recv(100)] == [b"\x41", b"\x41\x42"]
    c.pump(0.1)
    assert c.changes(BATTERY, "Value") == []  # not copied to Value
    sim.drop_link(HR_ADDRESS)
    assert packets.recv(100) == b""  # the link went: EOF
    packets.close()
    c.wait_signal(lambda e: e.path == BATTERY and e.body[1].get("NotifyAcquired") == ("b", False))
    c.close()


def test_acquire_write_turns_packets_into_write_commands(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    world.peripherals[0].services[1].characteristics[2].properties = ["read", "write-without-response"]
    sim = make_sim(world)
    c = Client(bus.address, enable_fds=True)
    c.connect()
    fd, mtu = c.call(CONTROL_POINT, CHAR, "AcquireWrite", "a{sv}", ({},)).ok()
    writer = fd.to_socket()
    assert c.get(CONTROL_POINT, CHAR, "WriteAcquired") is True
    acquired = c.write(CONTROL_POINT, b"\x01", kind="command")
    assert (acquired.error, acquired.text) == ("org.bluez.Error.NotPermitted", "Write acquired")
    writer.send(b"\x33\x44")
    deadline = time.monotonic() + 10  # the packet and the read travel on different sockets
    while c.read(CONTROL_POINT).ok() != (b"\x33\x44",) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.read(CONTROL_POINT).ok() == (b"\x33\x44",)
    assert sim.calls_to("AcquireWrite")[0].path == CONTROL_POINT
    writer.close()
    c.wait_signal(lambda e: e.path == CONTROL_POINT and e.body[1].get("WriteAcquired") == ("b", False))
    c.write(CONTROL_POINT, b"\x05", kind="command").ok()
    c.close()


def test_start_notify_while_disconnected_arms_at_connection(sim: SimulatedBluez, client: Client) -> None:
    client.connect()
    client.call(HR_PATH, DEVICE, "Disconnect").ok()
    client.call(HR_MEASUREMENT, CHAR, "StartNotify").ok()
    client.connect()
    client.wait_signal(lambda e: e.path == HR_MEASUREMENT and "Value" in e.body[1])


# =====================================================================================
# pairing and agents
# =====================================================================================
def test_pair_asks_the_agent_for_confirmation(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(heart_rate(bonded=False, pairing="confirm", passkey=4242))
    asked: List[Any] = []

    def agent(member: str, body: Any) -> Any:
        asked.append((member, body))
        return "return", ("", ())

    c = Client(bus.address, answer_agent=agent)
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", ("/test/agent", "KeyboardDisplay")).ok()
    twice = c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", ("/test/agent", ""))
    assert twice.error == "org.bluez.Error.AlreadyExists"
    c.call("/org/bluez", "org.bluez.AgentManager1", "RequestDefaultAgent", "o", ("/test/agent",)).ok()
    c.call(HR_PATH, DEVICE, "Pair", timeout=10).ok()
    assert asked == [("RequestConfirmation", (HR_PATH, 4242))]
    assert c.get(HR_PATH, DEVICE, "Paired") is True and c.get(HR_PATH, DEVICE, "Bonded") is True
    assert c.get(HR_PATH, DEVICE, "ServicesResolved") is True  # Pair connected and resolved first
    already = c.call(HR_PATH, DEVICE, "Pair")
    assert (already.error, already.text) == ("org.bluez.Error.AlreadyExists", "Already Paired")
    c.close()


@pytest.mark.parametrize(
    "answer, error",
    [
        (("error", "org.bluez.Error.Rejected"), "org.bluez.Error.AuthenticationFailed"),
        (None, "org.bluez.Error.AuthenticationFailed"),  # no agent registered
    ],
)
def test_pair_failures(bus: PrivateBus, make_sim: Any, answer: Any, error: str) -> None:
    make_sim(heart_rate(bonded=False, pairing="passkey"))
    c = Client(bus.address, answer_agent=(lambda member, body: answer) if answer else None)
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    if answer:
        c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", ("/a", "KeyboardOnly")).ok()
    reply = c.call(HR_PATH, DEVICE, "Pair")
    assert reply.error == error
    assert c.get(HR_PATH, DEVICE, "Paired") is False
    c.close()


def test_pair_with_the_right_passkey_and_cancel_pairing(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(heart_rate(bonded=False, pairing="passkey", passkey=1234))
    c = Client(bus.address, answer_agent=lambda member, body: ("return", ("u", (1234,))))
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    assert c.call(HR_PATH, DEVICE, "CancelPairing").error == "org.bluez.Error.DoesNotExist"
    c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", ("/a", "KeyboardOnly")).ok()
    c.call(HR_PATH, DEVICE, "Pair").ok()
    assert c.changes(HR_PATH, "Paired") == [True]
    c.close()


def test_just_works_pairing_needs_no_agent_and_named_errors_pass_through(bus: PrivateBus, make_sim: Any) -> None:
    world = heart_rate(bonded=False)
    world.peripherals[1].pair_error = "AuthenticationRejected"
    make_sim(world)
    c = Client(bus.address)
    c.call(ADAPTER_PATH, ADAPTER, "StartDiscovery").ok()
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == TAG_PATH)
    c.wait_signal(lambda e: e.member == "InterfacesAdded" and e.body[0] == HR_PATH)
    c.call(HR_PATH, DEVICE, "Pair").ok()
    rejected = c.call(TAG_PATH, DEVICE, "Pair")
    assert (rejected.error, rejected.text) == ("org.bluez.Error.AuthenticationRejected", "Authentication Rejected")
    c.close()


# =====================================================================================
# faults
# =====================================================================================
def test_vanish_pending_calls_get_no_reply_then_service_unknown(bus: PrivateBus, make_sim: Any) -> None:
    sim = make_sim(heart_rate(response_delay_s=5.0))
    c = Client(bus.address)
    c.connect()
    from jeepney import DBusAddress, new_method_call

    pending = new_method_call(DBusAddress(BODY_LOCATION, "org.bluez", CHAR), "ReadValue", "a{sv}", ({},))
    serial = next(c.conn.outgoing_serial)
    c.conn.send(pending, serial=serial)
    time.sleep(0.1)
    sim.vanish()
    answer = c.conn.receive(timeout=5)
    while answer.header.fields.get(5) != serial:
        answer = c.conn.receive(timeout=5)
    assert answer.header.fields.get(4) == "org.freedesktop.DBus.Error.NoReply"  # 4: error_name
    assert c.read(BODY_LOCATION).error == "org.freedesktop.DBus.Error.ServiceUnknown"
    c.close()


def test_device_removed_mid_read(bus: PrivateBus, make_sim: Any) -> None:
    sim = make_sim(heart_rate(response_delay_s=3.0))
    c = Client(bus.address)
    c.connect()
    from jeepney import DBusAddress, new_method_call

    message = new_method_call(DBusAddress(BODY_LOCATION, "org.bluez", CHAR), "ReadValue", "a{sv}", ({},))
    timer = threading.Timer(0.2, sim.remove_device, args=(HR_ADDRESS,))
    timer.start()
    reply = c.raw_call(message, "ReadValue")
    timer.join()
    assert (reply.error, reply.text) == ("org.bluez.Error.Failed", "Operation failed")
    c.pump(0.1)
    removed = [e.body[0] for e in c.signals("InterfacesRemoved")]
    assert removed[-1] == HR_PATH and BODY_LOCATION in removed
    assert c.read(BODY_LOCATION).error == bz.UNKNOWN_OBJECT
    c.close()


def test_link_dropped_during_a_notification_stream(bus: PrivateBus, make_sim: Any) -> None:
    world = load_world("heart-rate")
    world.peripherals[0].services[1].characteristics[0].notify.count = 0  # endless
    world.peripherals[0].services[1].characteristics[0].notify.interval_s = 0.05
    sim = make_sim(world)
    c = Client(bus.address)
    c.connect()
    c.call(HR_MEASUREMENT, CHAR, "StartNotify").ok()
    deadline = time.monotonic() + 10
    while len(c.changes(HR_MEASUREMENT, "Value")) < 3 and time.monotonic() < deadline:
        c.pump(0.05)
    sim.drop_link(HR_ADDRESS)
    c.wait_signal(lambda e: e.path == HR_PATH and e.body[1].get("Connected") == ("b", False))
    received = len(c.changes(HR_MEASUREMENT, "Value"))
    assert received >= 3
    c.pump(0.3)
    assert len(c.changes(HR_MEASUREMENT, "Value")) == received  # the stream stopped with the link
    assert HR_MEASUREMENT in c.managed_objects()  # GATT objects stay
    assert c.read(BODY_LOCATION).text == "Not connected"
    c.close()


def test_a_hung_method_never_answers_and_is_recorded(sim: SimulatedBluez, client: Client) -> None:
    client.connect()
    sim.hang("ReadValue")
    with pytest.raises(TimeoutError):
        client.read(BODY_LOCATION, timeout=0.5)
    sim.hang("ReadValue", hung=False)
    assert client.read(BODY_LOCATION).ok() == (b"\x01",)
    reads = sim.calls_to("ReadValue")
    assert [(c.path, c.sender) for c in reads] == [(BODY_LOCATION, client.unique_name)] * 2


def test_world_disconnect_after_ops(bus: PrivateBus, make_sim: Any) -> None:
    make_sim(heart_rate(disconnect_after_ops=2))
    c = Client(bus.address)
    c.connect()
    c.read(BODY_LOCATION).ok()
    c.read(BODY_LOCATION).ok()
    c.wait_signal(lambda e: e.path == HR_PATH and e.body[1].get("Connected") == ("b", False))
    c.close()


# =====================================================================================
# out of process
# =====================================================================================
def test_runs_as_a_program(bus: PrivateBus) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pygatt.testing.sim", "bluez", "--world", "heart-rate", "--bus", bus.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "simulated org.bluez" in line
        c = Client(bus.address)
        assert HR_PATH in c.managed_objects()
        c.close()
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)  # also closes the pipes
        assert process.returncode == 0, errors


def test_runs_as_a_program_on_its_own_private_bus() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pygatt.testing.sim", "bluez", "--world", "heart-rate", "--private-bus"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        variable, address = process.stdout.readline().strip().split("=", 1)
        assert variable == "DBUS_SYSTEM_BUS_ADDRESS"
        assert "simulated org.bluez" in process.stdout.readline()
        c = Client(address)
        assert c.get(ADAPTER_PATH, ADAPTER, "Powered") is True
        c.close()
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)  # also closes the pipes
        assert process.returncode == 0, errors
    with pytest.raises(OSError):
        Client(address)  # the private bus went with it


def test_private_bluez_is_a_whole_system_bus() -> None:
    with PrivateBluez(load_world("heart-rate")) as system:
        assert system.environ()["DBUS_SYSTEM_BUS_ADDRESS"] == system.address
        c = Client(system.address)
        assert HR_PATH in c.managed_objects()
        c.close()
    assert system.bluez is None and not system.bus.running


def test_program_usage_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pygatt.testing.sim", "bluez", "--world", "heart-rate"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert result.returncode == 2 and "--bus" in result.stderr
