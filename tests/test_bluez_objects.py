"""The simulated org.bluez's pure parts: paths, handles, options, errors, state (no bus needed)."""

from __future__ import annotations

import pytest

from pygatt.testing import load_world
from pygatt.testing.sim import bluez_objects as bz
from pygatt.testing.sim.bluez_state import DeviceState, characteristic_properties, device_properties
from pygatt.testing.world import full_uuid, layout


def test_paths_carry_handles_in_bluez_format() -> None:
    device = bz.device_path("/org/bluez/hci0", "c4:7c:8d:6a:3e:01")
    assert device == "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01"
    service = bz.service_path(device, 0x0A)
    characteristic = bz.characteristic_path(service, 0x0B)
    descriptor = bz.descriptor_path(characteristic, 0xFFFE)
    assert descriptor == device + "/service000a/char000b/descfffe"
    assert [bz.handle_of(p) for p in (service, characteristic, descriptor)] == [0x0A, 0x0B, 0xFFFE]
    with pytest.raises(ValueError, match="not a GATT object path"):
        bz.handle_of(device)


def test_device_objects_follow_the_world_layout() -> None:
    peripheral = load_world("heart-rate").peripherals[0]
    device = DeviceState(peripheral, bz.device_path("/org/bluez/hci0", peripheral.address), "/org/bluez/hci0")
    device.build_gatt()
    table = layout(peripheral)
    for path, state in device.characteristics.items():
        assert bz.handle_of(path) == state.declaration
        assert state.attribute.handle == state.declaration + 1
        assert table.attributes[state.attribute.handle].uuid == state.attribute.uuid
    assert not [p for p in device.services if device.services[p][1] == full_uuid("1800")]  # claimed by a plugin
    cccds = {p for p, d in device.descriptors.items() if d.attribute.uuid == bz.CCCD_UUID}
    assert cccds == {p for p in device.descriptors if p.endswith(("/desc0009", "/desc0011"))}
    notifying = device.characteristics[device.path + "/service0006/char0007"]
    assert notifying.cccd is not None and notifying.cccd.handle == 0x0009


def test_optional_properties_are_left_out() -> None:
    tag = load_world("heart-rate").peripherals[1]
    device = DeviceState(tag, bz.device_path("/org/bluez/hci0", tag.address), "/org/bluez/hci0")
    props = device_properties(device)
    assert "Name" not in props and "RSSI" not in props and "ManufacturerData" not in props
    assert props["Alias"] == ("s", "5D-2B-9F-11-04-7E") and props["AddressType"] == ("s", "random")
    device.rssi = -81
    assert device_properties(device)["RSSI"] == ("n", -81)
    device.build_gatt()
    battery = next(iter(device.characteristics.values()))
    assert "MTU" not in characteristic_properties(device, battery)  # only while connected
    assert "Notifying" not in characteristic_properties(device, battery)  # read only: no notify
    device.connected = True
    assert characteristic_properties(device, battery)["MTU"] == ("q", 23)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, (0, None)),
        ({"offset": ("q", 4)}, (4, None)),
        ({"type": ("s", "Command"), "unknown": ("b", True)}, (0, "command")),
    ],
)
def test_gatt_options(options: bz.Options, expected: tuple) -> None:
    assert bz.parse_gatt_options(options) == expected


@pytest.mark.parametrize("options", [{"offset": ("u", 4)}, {"offset": ("i", 4)}, {"type": ("as", ["request"])}])
def test_gatt_options_of_the_wrong_type(options: bz.Options) -> None:
    with pytest.raises(bz.BluezError) as caught:
        bz.parse_gatt_options(options)
    assert (caught.value.name, caught.value.message) == (
        "org.bluez.Error.InvalidArguments",
        "Invalid arguments in method call",
    )


def test_discovery_filter_parsing_and_matching() -> None:
    parsed = bz.parse_discovery_filter(
        {"UUIDs": ("as", [full_uuid("180D").upper()]), "RSSI": ("n", -70), "Transport": ("s", "le")}
    )
    assert parsed.accepts("AA:BB:CC:DD:EE:FF", None, -60, [full_uuid("180d")])
    assert not parsed.accepts("AA:BB:CC:DD:EE:FF", None, -80, [full_uuid("180d")])
    assert not parsed.accepts("AA:BB:CC:DD:EE:FF", None, -60, [full_uuid("180f")])
    pattern = bz.parse_discovery_filter({"Pattern": ("s", "c4:7c")})
    assert pattern.accepts("C4:7C:8D:6A:3E:01", None, -90, []) and not pattern.accepts("5D:2B:00:00:00:00", None, 0, [])
    assert bz.parse_discovery_filter({"Pattern": ("s", "Pulse")}).accepts("00:00:00:00:00:01", "Pulse HR", 0, [])
    assert not bz.parse_discovery_filter({"Transport": ("s", "bredr")}).accepts("00:00:00:00:00:01", None, 0, [])
    for bad in (
        {"RSSI": ("n", 21)},
        {"RSSI": ("n", -70), "Pathloss": ("q", 3)},
        {"Transport": ("s", "usb")},
        {"Colour": ("s", "red")},
        {"DuplicateData": ("s", "yes")},
    ):
        with pytest.raises(bz.BluezError, match="InvalidArguments"):
            bz.parse_discovery_filter(bad)


def test_att_codes_from_world_errors() -> None:
    assert bz.att_code_of(None) is None
    assert bz.att_code_of(0x80) == 0x80
    assert bz.att_code_of("Attribute can't be read") == 0x02
    assert bz.att_code_of("Something gatttool never says") == 0x0E


def test_default_messages_and_custom_ones() -> None:
    assert bz.bluez_error("InProgress").message == "Operation already in progress"
    assert bz.bluez_error("Failed", "No discovery started").message == "No discovery started"
    assert bz.not_connected().name == "org.bluez.Error.Failed" and bz.not_connected().message == "Not connected"
    assert bz.connect_failure(None).message == "le-connection-abort-by-local"
    assert bz.connect_failure("connect error: Device or resource busy (16)").message == "le-connection-busy"


def test_signatures_split_into_complete_types() -> None:
    assert bz.split_signature("aya{sv}") == ["ay", "a{sv}"]
    assert bz.split_signature("oa{sa{sv}}") == ["o", "a{sa{sv}}"]
    assert bz.split_signature("(ii)as") == ["(ii)", "as"]
    assert bz.split_signature("") == []


def test_introspection_describes_methods_properties_and_children() -> None:
    xml = bz.introspection_xml({bz.DEVICE: {"Connected": ("b", False)}}, ["service0006"])
    assert '<method name="Connect">' in xml and '<property name="Connected" type="b" access="read"/>' in xml
    assert '<node name="service0006"/>' in xml and '<signal name="PropertiesChanged">' in xml
