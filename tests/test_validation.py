"""Bad input is refused with a clear error before anything reaches gatttool."""

from __future__ import annotations

import uuid

import pytest

import pygatt
from pygatt import validate
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.util import uuid16_to_uuid
from tests.helpers import ADDRESS


def test_uuid16_to_uuid():
    assert uuid16_to_uuid(0x2A00) == uuid.UUID("00002a00-0000-1000-8000-00805f9b34fb")
    with pytest.raises(ValueError):
        uuid16_to_uuid(0x10000)
    with pytest.raises(TypeError):
        uuid16_to_uuid("2a00")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "AA:BB:CC:DD:EE",
        "AA:BB:CC:DD:EE:FF\nchar-write-req 0x0001 00",
        "AA:BB:CC:DD:EE:FF ",
        " AA:BB:CC:DD:EE:FF",
        "AA-BB-CC-DD-EE-FF",
        "GG:BB:CC:DD:EE:FF",
        "AA:BB:CC:DD:EE:FF random",
        "AABBCCDDEEF",
        "AABBCCDDEEFF0",
        "AABBCCDDEEFG",
        "AABBCC:DDEEFF",
    ],
)
def test_bad_addresses(bad):
    with pytest.raises(ValueError, match="address"):
        validate.address(bad)


def test_address_types():
    with pytest.raises(TypeError, match="address"):
        validate.address(None)
    assert validate.address("aa:bb:cc:dd:ee:ff") == "AA:BB:CC:DD:EE:FF"
    # pygatt 5.0.0's BGAPI backend took the twelve hex digits alone (it removed the colons itself)
    assert validate.address("aabbccddeeff") == "AA:BB:CC:DD:EE:FF"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2a1",
        "xyz1",
        "2a19\n",
        "2a19\nchar-write-cmd 1 00",
        "00002a19-0000-1000-8000-00805f9b34fbX",
        "0000 2a19",
        "00002a19-0000-1000-8000",
    ],
)
def test_bad_uuids(bad):
    with pytest.raises(ValueError, match="UUID"):
        validate.characteristic_uuid(bad)


def test_uuid_forms():
    full = uuid.UUID("00002a19-0000-1000-8000-00805f9b34fb")
    for good in ("2a19", "2A19", "00002a19", "00002A19-0000-1000-8000-00805F9B34FB", full.hex, full):
        assert validate.characteristic_uuid(good) == full
    with pytest.raises(TypeError):
        validate.characteristic_uuid(0x2A19)


@pytest.mark.parametrize(
    "bad, error",
    [
        (-1, ValueError),
        (0, ValueError),
        (0x10000, ValueError),
        ("0x10", TypeError),
        (1.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_handles(bad, error):
    with pytest.raises(error, match="handle"):
        validate.handle(bad)


@pytest.mark.parametrize(
    "bad, error",
    [
        (None, TypeError),
        ("0100", TypeError),
        (1, TypeError),
        (b"", ValueError),
        (bytes(513), ValueError),
        ([256], TypeError),
        (object(), TypeError),
        ({1, 2}, TypeError),  # a set has no order: bytes() of it would be any of its orders
        ({1: 2}, TypeError),  # bytes() of a dict is its keys
    ],
)
def test_bad_values(bad, error):
    with pytest.raises(error, match="value"):
        validate.value_bytes(bad)


def test_value_forms():
    assert validate.value_bytes(bytearray([1, 2])) == b"\x01\x02"
    assert validate.value_bytes([1, 2]) == b"\x01\x02"
    assert validate.value_bytes(memoryview(b"\x03")) == b"\x03"
    assert validate.value_bytes(bytes(512)) == bytes(512)


@pytest.mark.parametrize("bad", ["hci", "hci0\n", "hci0 -b", "usb0", "", None, "hci0; reboot"])
def test_bad_hci_device(bad):
    with pytest.raises(ValueError, match="hci_device"):
        pygatt.GATTToolBackend(hci_device=bad)


@pytest.mark.parametrize("bad", [["-t", "random\nconnect x"], "--sec-level 'low\nexit'", [1]])
def test_cli_options_with_line_breaks_or_non_strings(bad):
    with pytest.raises((ValueError, TypeError)):
        pygatt.GATTToolBackend(cli_options=bad)


def test_tool_commands_refuse_strings_and_control_characters():
    with pytest.raises(ValueError):
        ToolCommands(gatttool="gatttool")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ToolCommands(hcitool=["hcitool\n"])


def test_simulate_environment_variable_selects_the_simulator():
    tools = ToolCommands.from_environment({"PYGATT_SIMULATE": "heart-rate"})
    assert tools.gatttool[1:3] == ["-m", "pygatt.testing.sim"] and "heart-rate" in tools.gatttool
    assert ToolCommands.from_environment({"PYGATT_SIMULATE": ""}) == ToolCommands()
    assert ToolCommands.from_environment({}).gatttool == ["gatttool"]


def test_bad_input_on_a_device_sends_nothing(device, fake_spawn):
    child = fake_spawn.child
    before = list(child.sent)
    bad_calls = [
        lambda: device.char_read("2a19\nchar-write-cmd 0x0001 00"),
        lambda: device.char_read_handle(-1),
        lambda: device.char_read_handle(0x10000),
        lambda: device.char_read_handle("3"),
        lambda: device.char_write_handle(3, None),
        lambda: device.char_write_handle(3, "0100"),
        lambda: device.char_write_handle(3, bytes(513)),
        lambda: device.char_write_handle(3, b"\x01", timeout=0),
        lambda: device.exchange_mtu(22),
        lambda: device.exchange_mtu("100\nexit"),
        lambda: device.subscribe_handle(3, callback="not callable"),
        lambda: device._backend.connect("AA:BB:CC:DD:EE:FF\nexit"),
        lambda: device._backend.connect(ADDRESS.lower() + " random"),
        lambda: device._backend.connect(ADDRESS, address_type="randomish"),
        lambda: device._backend.connect(ADDRESS, timeout=-1),
        lambda: device._backend.clear_bond("AA:BB:CC:DD:EE:FF;rm"),
        lambda: device._backend.scan(timeout=0),
    ]
    for call in bad_calls:
        with pytest.raises((ValueError, TypeError)):
            call()
    assert child.sent == before
    assert len(bad_calls) == 17
