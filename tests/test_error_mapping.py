"""Every error gatttool prints ends the waiting call at once with a typed BLEError."""

from __future__ import annotations

import time

import pytest

from pygatt import exceptions
from pygatt.backends.gatttool import external
from pygatt.backends.gatttool.errors import ATT_EXCEPTIONS
from pygatt.backends.gatttool.parser import ATT_ERRORS
from tests.helpers import ADDRESS


@pytest.mark.parametrize("text, code", sorted(ATT_ERRORS.items(), key=lambda item: -1 if item[1] is None else item[1]))
@pytest.mark.parametrize("operation", ["read", "write"])
def test_each_att_error_becomes_its_exception(device, fake_spawn, text, code, operation):
    child = fake_spawn.child
    if operation == "read":
        child.cmd_char_read_hnd = lambda args: (
            child._out(child.prompt()),
            child.error(f"Characteristic value/descriptor read failed: {text}"),
        )
        call = lambda: device.char_read_handle(0x002A, timeout=10)  # noqa: E731
    else:
        child.cmd_char_write_req = lambda args: (
            child._out(child.prompt()),
            child.error(f"Characteristic Write Request failed: {text}"),
        )
        call = lambda: device.char_write_handle(0x002A, b"\x01", timeout=10)  # noqa: E731
    started = time.monotonic()
    with pytest.raises(exceptions.GATTError) as info:
        call()
    assert time.monotonic() - started < 1  # at once, not after the 10 s timeout
    error = info.value
    assert type(error) is ATT_EXCEPTIONS.get(code, exceptions.GATTError)
    assert isinstance(error, exceptions.BLEError)
    assert error.att_error == code and error.reason == text and error.target == "0x002a"
    assert text in str(error) and "0x002a" in str(error)
    assert error.operation == ("char-read-hnd" if operation == "read" else "char-write-req")


CONNECT_ERRORS = [
    "socket(SEQPACKET, L2CAP): Address family not supported by protocol (97)",
    "l2cap_bind: Cannot assign requested address (99)",
    "setsockopt(BT_SECURITY): Invalid argument (22)",
    f"connect to {ADDRESS}: Connection refused (111)",
    f"connect to {ADDRESS}: Device or resource busy (16)",
    f"connect to {ADDRESS}: Transport endpoint is not connected (107)",
    f"connect to {ADDRESS}: Connection timed out (110)",
    f"connect to {ADDRESS}: Function not implemented (38)",
    "connect error: Connection refused (111)",
]


@pytest.mark.parametrize("text", CONNECT_ERRORS)
def test_each_connect_error_is_not_connected_with_gatttools_words(backend, fake_spawn, text):
    child = fake_spawn.child
    child.cmd_connect = lambda args: (child.sync(f"Attempting to connect to {args[0]}"), child.error(text))
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError) as info:
        backend.connect(ADDRESS, timeout=10)
    assert time.monotonic() - started < 1
    assert text in str(info.value) and ADDRESS in str(info.value)


@pytest.mark.parametrize(
    "command, line",
    [
        ("discover_characteristics", "Discover all characteristics failed: Attribute PDU was invalid"),
        ("exchange_mtu", "Exchange MTU Request failed: Server doesn't support the request received"),
        ("exchange_mtu", "Error exchanging MTU"),
        ("char_read", "Read characteristics by UUID failed: Attribute can't be read"),
    ],
)
def test_other_command_errors(device, fake_spawn, command, line):
    child = fake_spawn.child
    handler = {
        "discover_characteristics": "cmd_characteristics",
        "exchange_mtu": "cmd_mtu",
        "char_read": "cmd_char_read_uuid",
    }[command]
    setattr(child, handler, lambda args: (child._out(child.prompt()), child.error(line)))
    args = {"discover_characteristics": (), "exchange_mtu": (100,), "char_read": ("2a19",)}[command]
    with pytest.raises(exceptions.BLEError, match=line.split(":")[0]):
        getattr(device, command)(*args)


def test_mtu_once_per_connection_is_a_command_failed_error(device, fake_spawn):
    child = fake_spawn.child
    child.cmd_mtu = lambda args: child.sync(
        "\x1b[0;91mCommand Failed: \x1b[0mMTU exchange can only occur once per connection."
    )
    with pytest.raises(exceptions.BLEError, match="once per connection"):
        device.exchange_mtu(100)


def test_unknown_command_error_reaches_the_caller(device, fake_spawn):
    child = fake_spawn.child
    child.cmd_sec_level = lambda args: child.error("sec-level: command not found", asynchronous=False)
    with pytest.raises(exceptions.BLEError, match="command not found"):
        device.bond()


BTMGMT_OUTPUT = """Discovery started
hci0 type 6 discovering on
hci0 dev_found: C4:7C:8D:6A:3E:01 type LE Public rssi -58 flags 0x0000 AD flags 0x06 name Pulse HR
hci0 dev_found: 5D:11:22:33:44:55 type LE Random rssi -80 flags 0x0004 AD flags 0x00 eir_len 3
hci0 dev_found: C4:7C:8D:6A:3E:01 type LE Public rssi -61 flags 0x0000 AD flags 0x06 eir_len 12
hci0 type 6 discovering off
"""


def test_btmgmt_find_output_carries_rssi_type_and_flags():
    devices = {d["address"]: d for d in external.devices_from_btmgmt(BTMGMT_OUTPUT)}
    assert devices["C4:7C:8D:6A:3E:01"] == {
        "address": "C4:7C:8D:6A:3E:01",
        "name": "Pulse HR",
        "rssi": -61,
        "address_type": "public",
        "flags": 0x06,
    }
    assert devices["5D:11:22:33:44:55"]["name"] is None
    assert devices["5D:11:22:33:44:55"]["address_type"] == "random"


def test_lescan_output_merges_names_and_adds_rssi_none():
    output = "LE Scan ...\nC4:7C:8D:6A:3E:01 (unknown)\nC4:7C:8D:6A:3E:01 Pulse HR\n5D:11:22:33:44:55 (unknown)\n"
    assert external.devices_from_lescan(output) == [
        {"address": "C4:7C:8D:6A:3E:01", "name": "Pulse HR", "rssi": None},
        {"address": "5D:11:22:33:44:55", "name": None, "rssi": None},
    ]


def test_filtered_scan_is_none_safe(backend, monkeypatch):
    found = [{"address": "A", "name": None}, {"address": "B", "name": "Pulse HR"}, {"address": "C", "name": "Other"}]
    monkeypatch.setattr(backend, "scan", lambda *a, **k: found)
    assert backend.filtered_scan("Pulse") == [found[1]]
    assert backend.filtered_scan() == found
