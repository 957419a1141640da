"""The D-Bus backend's pure mapping layer: paths <-> handles, properties <-> results, errors <-> exceptions.

No bus, no threads: plain data in, plain data out.
"""

from __future__ import annotations

import uuid

import pytest

from pygatt import exceptions
from pygatt.backends.dbus import errors, paths, properties
from pygatt.backends.dbus.properties import CHARACTERISTIC, DESCRIPTOR, DEVICE, SERVICE, GattTable
from pygatt.util import uuid16_to_uuid

DEV = "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01"


# -- paths ---------------------------------------------------------------------------------------


def test_device_path_from_address_in_any_case() -> None:
    assert paths.device_path("hci0", "c4:7c:8d:6a:3e:01") == DEV
    assert paths.adapter_path("hci1") == "/org/bluez/hci1"


@pytest.mark.parametrize("bad", ["C4:7C:8D:6A:3E", "C4-7C-8D-6A-3E-01", "C4:7C:8D:6A:3E:01\n"])
def test_device_path_refuses_bad_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        paths.device_path("hci0", bad)


def test_device_path_refuses_bad_adapter() -> None:
    with pytest.raises(ValueError):
        paths.device_path("hci0/../x", "C4:7C:8D:6A:3E:01")


def test_device_path_of_and_address_of() -> None:
    char = DEV + "/service000a/char000b"
    assert paths.device_path_of(char) == DEV
    assert paths.device_path_of(DEV) == DEV
    assert paths.device_path_of("/org/bluez/hci0") is None
    assert paths.device_path_of("/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01x") is None
    assert paths.address_of(char) == "C4:7C:8D:6A:3E:01"
    assert paths.address_of("/org/bluez") is None


def test_char_path_number_is_the_declaration_and_value_is_one_more() -> None:
    attribute = paths.parse_attribute(DEV + "/service000a/char000b")
    assert attribute == paths.AttributePath("char", 0x0B)
    assert attribute is not None and attribute.handle == 0x0C
    assert paths.value_handle(DEV + "/service000a/char00ff") == 0x100


def test_service_and_descriptor_numbers_are_their_own_handles() -> None:
    service = paths.parse_attribute(DEV + "/service0010")
    desc = paths.parse_attribute(DEV + "/service0010/char0011/desc0013")
    assert service is not None and service.handle == 0x10
    assert desc is not None and (desc.kind, desc.handle) == ("desc", 0x13)


def test_value_handle_refuses_other_paths() -> None:
    with pytest.raises(ValueError):
        paths.value_handle(DEV + "/service000a")
    assert paths.parse_attribute(DEV) is None
    assert paths.parse_attribute(DEV + "/descriptor013") is None  # the doc's name; BlueZ's code says desc%04x


# -- properties ----------------------------------------------------------------------------------


def test_unwrap_variants_and_advertising_data() -> None:
    raw = {
        "Address": ("s", "C4:7C:8D:6A:3E:01"),
        "RSSI": ("n", -58),
        "ManufacturerData": ("a{qv}", {0x004C: ("ay", bytearray(b"\x02\x15"))}),
        "ServiceData": ("a{sv}", {"0000180d-0000-1000-8000-00805f9b34fb": ("ay", b"\x01")}),
        "Value": ("ay", bytearray(b"\x00\x48")),
    }
    plain = properties.unwrap(raw)
    assert plain["RSSI"] == -58
    assert plain["ManufacturerData"] == {0x004C: b"\x02\x15"}
    assert plain["ServiceData"] == {"0000180d-0000-1000-8000-00805f9b34fb": b"\x01"}
    assert plain["Value"] == b"\x00\x48" and isinstance(plain["Value"], bytes)


def test_scan_result_keys_and_advert_data() -> None:
    result = properties.scan_result(
        {
            "Address": "c4:7c:8d:6a:3e:01",
            "AddressType": "public",
            "Name": "Pulse HR",
            "Alias": "Pulse HR",
            "RSSI": -58,
            "ManufacturerData": {76: b"\x02"},
            "UUIDs": ["0000180d-0000-1000-8000-00805f9b34fb"],
        }
    )
    assert result["address"] == "C4:7C:8D:6A:3E:01"
    assert (result["name"], result["rssi"], result["address_type"]) == ("Pulse HR", -58, "public")
    assert result["manufacturer_data"] == {76: b"\x02"}
    assert result["service_data"] == {}
    assert result["uuids"] == ["0000180d-0000-1000-8000-00805f9b34fb"]


def test_scan_result_without_name_is_none_not_the_alias() -> None:
    result = properties.scan_result({"Address": "5D:2B:9F:11:04:7E", "Alias": "5D-2B-9F-11-04-7E"})
    assert result["name"] is None and result["rssi"] is None


def test_call_options() -> None:
    assert properties.read_options() == {}
    assert properties.read_options(22) == {"offset": ("q", 22)}
    assert properties.write_options(True) == {"type": ("s", "request")}
    assert properties.write_options(False) == {"type": ("s", "command")}
    assert properties.discovery_filter() == {"Transport": ("s", "le"), "DuplicateData": ("b", False)}
    for bad in (-1, 0x10000, True, 1.5):
        with pytest.raises(ValueError):
            properties.read_options(bad)  # type: ignore[arg-type]


def test_declaration_value_is_what_att_would_return() -> None:
    assert properties.declaration_value(["read", "notify"], 0x000C, uuid16_to_uuid(0x2A37)) == bytes.fromhex(
        "120c00372a"
    )
    custom = uuid.UUID("a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b")
    value = properties.declaration_value(["write"], 0x0100, custom)
    assert value[:3] == bytes.fromhex("080001") and value[3:] == custom.bytes[::-1]


def _objects() -> dict:
    """A GetManagedObjects answer for a device with two services, as BlueZ names them."""
    hr = "0000180d-0000-1000-8000-00805f9b34fb"
    return {
        "/org/bluez/hci0": {"org.bluez.Adapter1": {"Powered": ("b", True)}},
        DEV: {DEVICE: {"Address": ("s", "C4:7C:8D:6A:3E:01"), "Connected": ("b", True)}},
        DEV + "/service000a": {SERVICE: {"UUID": ("s", hr), "Primary": ("b", True)}},
        DEV + "/service000a/char000b": {
            CHARACTERISTIC: {"UUID": ("s", "00002a37-0000-1000-8000-00805f9b34fb"), "Flags": ("as", ["notify"])}
        },
        # a 0x2900 descriptor before the CCCD: the CCCD is not value + 1
        DEV + "/service000a/char000b/desc000d": {DESCRIPTOR: {"UUID": ("s", "00002900-0000-1000-8000-00805f9b34fb")}},
        DEV + "/service000a/char000b/desc000e": {DESCRIPTOR: {"UUID": ("s", "00002902-0000-1000-8000-00805f9b34fb")}},
        DEV + "/service000a/char000f": {
            CHARACTERISTIC: {"UUID": ("s", "00002a38-0000-1000-8000-00805f9b34fb"), "Flags": ("as", ["read"])}
        },
        DEV + "/service0020": {SERVICE: {"UUID": ("s", "0000180f-0000-1000-8000-00805f9b34fb")}},
        DEV + "/service0020/char0021": {
            CHARACTERISTIC: {
                "UUID": ("s", "00002a38-0000-1000-8000-00805f9b34fb"),
                "Flags": ("as", ["read", "write"]),
            }
        },
        # another device's objects are not ours
        "/org/bluez/hci0/dev_5D_2B_9F_11_04_7E/service0001/char0002": {
            CHARACTERISTIC: {"UUID": ("s", "00002a19-0000-1000-8000-00805f9b34fb"), "Flags": ("as", ["read"])}
        },
    }


def test_gatt_table_handles_as_gatttool_reports_them() -> None:
    table = GattTable.from_objects(_objects(), DEV)
    assert sorted(table.characteristics) == [0x0C, 0x10, 0x22]
    heart = table.characteristics[0x0C]
    assert heart.declaration_handle == 0x0B and heart.flags == ["notify"]
    assert heart.cccd_handle == 0x0E
    assert table.cccds[0x0E] is heart
    assert sorted(table.descriptors) == [0x0D, 0x0E]
    assert table.services == {
        0x0A: uuid16_to_uuid(0x180D),
        0x20: uuid16_to_uuid(0x180F),
    }


def test_gatt_table_to_characteristics_keeps_lowest_handle_and_descriptors() -> None:
    found = GattTable.from_objects(_objects(), DEV).to_characteristics()
    assert set(found) == {uuid16_to_uuid(0x2A37), uuid16_to_uuid(0x2A38)}
    assert found[uuid16_to_uuid(0x2A38)].handle == 0x10  # 0x22 has the same UUID
    heart = found[uuid16_to_uuid(0x2A37)]
    assert heart.handle == 0x0C
    assert heart.descriptors == {uuid16_to_uuid(0x2900): 0x0D, uuid16_to_uuid(0x2902): 0x0E}


def test_gatt_table_by_uuid_and_empty_device() -> None:
    table = GattTable.from_objects(_objects(), DEV)
    match = table.by_uuid(uuid16_to_uuid(0x2A38))
    assert match is not None and match.value_handle == 0x10
    assert table.by_uuid(uuid16_to_uuid(0x2A99)) is None
    empty = GattTable.from_objects(_objects(), "/org/bluez/hci0/dev_00_00_00_00_00_01")
    assert empty.characteristics == {} and empty.to_characteristics() == {}


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, cls, code",
    [
        ("org.bluez.Error.NotPermitted", "Read not permitted", exceptions.ReadNotPermittedError, 0x02),
        ("org.bluez.Error.NotPermitted", "Write not permitted", exceptions.WriteNotPermittedError, 0x03),
        ("org.bluez.Error.NotPermitted", "Not paired", exceptions.InsufficientAuthenticationError, 0x05),
        ("org.bluez.Error.InvalidArguments", "Invalid offset", exceptions.InvalidValueLengthError, 0x07),
        ("org.bluez.Error.InvalidArguments", "Invalid Length", exceptions.InvalidValueLengthError, 0x0D),
        ("org.bluez.Error.NotAuthorized", "Operation Not Authorized", exceptions.InsufficientAuthorizationError, 8),
        ("org.bluez.Error.NotSupported", "Operation is not supported", exceptions.GATTError, 0x06),
        ("org.bluez.Error.Failed", "Operation failed with ATT error: 0x0a", exceptions.AttributeNotFoundError, 0x0A),
        ("org.bluez.Error.Failed", "Operation failed with ATT error: 0x01", exceptions.InvalidHandleError, 0x01),
        ("org.bluez.Error.Failed", "Operation failed with ATT error: 0x0f", exceptions.InsufficientEncryptionError, 15),
        ("org.bluez.Error.Failed", "Operation failed with ATT error: 0x80", exceptions.GATTError, 0x80),
        ("org.bluez.Error.Failed", "Operation failed", exceptions.GATTError, None),
        ("org.bluez.Error.AuthenticationFailed", "Authentication Failed", exceptions.GATTError, None),
    ],
)
def test_gatt_errors_map_to_the_gatttool_backends_classes(name: str, text: str, cls: type, code: object) -> None:
    error = errors.to_exception(name, text, "ReadValue", "0x002a")
    assert type(error) is cls
    assert isinstance(error, exceptions.GATTError)
    assert error.att_error == code
    assert error.operation == "ReadValue" and error.target == "0x002a"
    assert "ReadValue 0x002a" in str(error) and text in str(error)


@pytest.mark.parametrize(
    "name, text",
    [
        ("org.bluez.Error.Failed", "Not connected"),
        ("org.bluez.Error.NotConnected", "Not Connected"),
        ("org.bluez.Error.Failed", "le-connection-abort-by-local"),
        ("org.bluez.Error.Failed", "br-connection-canceled"),
        ("org.freedesktop.DBus.Error.UnknownObject", 'Method "ReadValue" ... doesn\'t exist'),
    ],
)
def test_missing_links_are_not_connected_errors(name: str, text: str) -> None:
    assert type(errors.to_exception(name, text, "ReadValue", "0x000c")) is exceptions.NotConnectedError


def test_bus_policy_refusal_is_permission_denied() -> None:
    error = errors.to_exception("org.freedesktop.DBus.Error.AccessDenied", "Rejected send message", "Connect")
    assert isinstance(error, exceptions.PermissionDeniedError)
    assert "policy" in str(error) and "Rejected send message" in error.output


@pytest.mark.parametrize(
    "name", ["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"]
)
def test_no_bluetoothd_is_a_tool_error_saying_so(name: str) -> None:
    error = errors.to_exception(name, "The name org.bluez was not provided by any .service files", "GetAll")
    assert isinstance(error, errors.BluezNotAvailableError) and isinstance(error, exceptions.ToolError)
    assert "bluetoothd is not running" in str(error)


def test_no_such_adapter_and_not_ready_and_unknown_method() -> None:
    assert isinstance(
        errors.to_exception("org.bluez.Error.NoSuchAdapter", "No such adapter", "x"), exceptions.ToolError
    )
    ready = errors.to_exception("org.bluez.Error.NotReady", "Resource Not Ready", "StartDiscovery")
    assert type(ready) is exceptions.BLEError and "powered" in str(ready)
    method = errors.to_exception("org.freedesktop.DBus.Error.UnknownMethod", "no ConnectDevice", "ConnectDevice")
    assert type(method) is exceptions.BLEError and "UnknownMethod" in str(method)


def test_no_reply_and_timeouts_name_the_method() -> None:
    no_reply = errors.to_exception("org.freedesktop.DBus.Error.NoReply", "Did not receive a reply", "ReadValue")
    assert isinstance(no_reply, exceptions.NotificationTimeout)
    timeout = errors.timeout_error("ReadValue", "0x000c", 1.5)
    assert isinstance(timeout, exceptions.NotificationTimeout)
    assert "ReadValue" in str(timeout) and "1.5 s" in str(timeout)


def test_unknown_errors_stay_ble_errors_with_the_name() -> None:
    error = errors.to_exception("org.example.Error.Odd", "strange", "WriteValue", "0x0010")
    assert type(error) is exceptions.BLEError and "org.example.Error.Odd: strange" in str(error)


def test_att_error_of_reads_codes_and_messages() -> None:
    assert errors.att_error_of("org.bluez.Error.Failed", "Operation failed with ATT error: 0x0E") == 0x0E
    assert errors.att_error_of("org.bluez.Error.NotPermitted", "Read not permitted") == 0x02
    assert errors.att_error_of("org.bluez.Error.Failed", "Operation failed") is None
