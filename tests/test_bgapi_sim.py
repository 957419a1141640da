"""The simulated BLED112 (pygatt.testing.sim.bgapi), driven through a REAL pty opened with
``serial.Serial`` and through its socket URL opened with ``serial.serial_for_url``.

No dongle exists here: these tests check the simulator against the BGAPI protocol facts
(frame bytes, sequences, result codes), so the backend tested against it meets a faithful
dongle. Frames are built and read with pygatt's own codec, except where exact bytes
from the protocol notes are compared.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Iterator, List, Tuple

import pytest
import serial

from pygatt.backends.bgapi.codec import FrameDecoder, Kind, Message, decode, encode_command
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World, load_world
from pygatt.testing.sim.advertising import advertising_data, scan_response_data
from pygatt.testing.sim.bgapi import SimulatedDongle
from pygatt.testing.world import att_error_code
from tests.helpers import wait_for

pytestmark = pytest.mark.simulator

SENSOR = "01:23:45:67:89:AB"
TAG = "11:22:33:44:55:66"
BEACON = "66:55:44:33:22:11"
REFUSER = "22:22:22:22:22:22"
LOCKED = "33:33:33:33:33:33"
NUS = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
LONG_VALUE = bytes(range(50))
CONNECT_SENSOR = bytes.fromhex("00 0F 06 03 AB 89 67 45 23 01 00 3C 00 4C 00 64 00 00 00")
SENSOR_CONNECTED = bytes.fromhex("80 10 03 00 00 05 AB 89 67 45 23 01 00 3C 00 64 00 00 00 FF")

# Handles of SENSOR, as the world lays them out:
# 1 service 180d | 2 decl, 3 value 2a37 (notify/indicate), 4 CCCD | 5 decl, 6 value 2a38 (read)
# 7 decl, 8 value 2a39 (write) | 9 decl, 10 value 2a3a (read/write/write-without-response, 50 bytes)
# 11 decl, 12 value 2a3b (read error 5) | 13 decl, 14 value 2a3c (write error 3)
# 15 service NUS | 16 decl, 17 value (128-bit UUID) | 18 decl, 19 value 2a3d (fast stream), 20 CCCD


def world_dict() -> dict:
    return {
        "peripherals": [
            {
                "address": SENSOR,
                "name": "Sensor",
                "rssi": -50,
                "manufacturer_data": {"004c": "02"},
                "services": [
                    {
                        "uuid": "180d",
                        "characteristics": [
                            {
                                "uuid": "2a37",
                                "properties": ["notify", "indicate"],
                                "value": "003c",
                                "notify": {"interval_s": 0.01, "count": 3, "values": ["003c", "003d", "003e"]},
                            },
                            {"uuid": "2a38", "properties": ["read"], "value": "01"},
                            {"uuid": "2a39", "properties": ["write"], "value": "00"},
                            {
                                "uuid": "2a3a",
                                "properties": ["read", "write", "write-without-response"],
                                "value": LONG_VALUE.hex(),
                            },
                            {"uuid": "2a3b", "properties": ["read"], "read_error": 5},
                            {"uuid": "2a3c", "properties": ["write"], "write_error": 3},
                        ],
                    },
                    {
                        "uuid": NUS,
                        "characteristics": [
                            {"uuid": "6e400003-b5a3-f393-e0a9-e50e24dcca9e", "properties": ["read"], "value": "aa"},
                            {
                                "uuid": "2a3d",
                                "properties": ["notify"],
                                "notify": {"interval_s": 0, "count": 3000, "size": 20},
                            },
                        ],
                    },
                ],
            },
            {"address": TAG, "address_type": "random", "rssi": -90, "tx_power": -4, "services": []},
            {"address": BEACON, "name": "Beacon", "connectable": False, "services": [], "advertised_services": []},
            {"address": REFUSER, "connect_error": "connect error: Connection refused (111)"},
            {"address": LOCKED, "bond_error_code": 0x0303, "services": []},
        ]
    }


class Client:
    """The host end: writes commands, reads frames through the codec (or raw bytes)."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port
        self.decoder = FrameDecoder()
        self.queue: Deque[Message] = deque()

    def command(self, name: str, **fields: Any) -> None:
        self.port.write(encode_command(name, **fields))

    def raw(self, size: int) -> bytes:
        assert not self.queue and not self.decoder.pending, "raw read while decoded frames are waiting"
        data = self.port.read(size)
        assert len(data) == size, f"wanted {size} bytes, got {data.hex(' ')}"
        return data

    def next(self) -> Message:
        while not self.queue:
            chunk = self.port.read(max(1, self.port.in_waiting))
            assert chunk, "the dongle sent nothing within the port's timeout"
            self.queue.extend(decode(packet) for packet in self.decoder.feed(chunk))
        return self.queue.popleft()

    def expect(self, name: str, kind: Kind = Kind.EVENT, **fields: Any) -> Message:
        message = self.next()
        assert (message.name, message.kind) == (name, kind), f"expected {kind.value} {name}, got {message}"
        for key, value in fields.items():
            assert message[key] == value, f"{message}: {key} should be {value!r}"
        return message

    def request(self, name: str, **fields: Any) -> Message:
        self.command(name, **fields)
        return self.expect(name, Kind.RESPONSE)

    def until(self, predicate: Callable[[Message], bool]) -> List[Message]:
        seen = []
        while True:
            message = self.next()
            seen.append(message)
            if predicate(message):
                return seen

    def connect(self, address: str, address_type: int = 0) -> int:
        response = self.request(
            "gap_connect_direct",
            address=address,
            addr_type=address_type,
            conn_interval_min=60,
            conn_interval_max=76,
            timeout=100,
            latency=0,
        )
        assert response["result"] == 0
        self.expect("connection_status", connection=response["connection_handle"], flags=0x05, address=address)
        return int(response["connection_handle"])


def open_port(device: str) -> serial.SerialBase:
    if device.startswith("socket://"):
        return serial.serial_for_url(device, timeout=5)
    return serial.Serial(device, 115200, timeout=5)


@pytest.fixture(params=["pty", "socket"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world() -> World:
    return World.from_dict(world_dict())


def serve(dongle: SimulatedDongle, kind: str) -> str:
    return dongle.open_pty() if kind == "pty" else dongle.open_socket()


@pytest.fixture
def rig(world: World, kind: str) -> Iterator[Tuple[SimulatedDongle, Client]]:
    threads = set(threading.enumerate())
    dongle = SimulatedDongle(world)
    port = open_port(serve(dongle, kind))
    try:
        yield dongle, Client(port)
    finally:
        port.close()
        dongle.close()
    assert set(threading.enumerate()) <= threads, "the dongle's thread outlived close()"


@pytest.fixture
def dongle(rig: Tuple[SimulatedDongle, Client]) -> SimulatedDongle:
    return rig[0]


@pytest.fixture
def host(rig: Tuple[SimulatedDongle, Client]) -> Client:
    return rig[1]


@pytest.fixture
def linked(host: Client) -> Client:
    """A host with connection 0 to SENSOR."""
    assert host.connect(SENSOR) == 0
    return host


# -- exact bytes from the protocol notes ------------------------------------------------------


def test_end_procedure_when_idle_is_wrong_state(host: Client) -> None:
    host.port.write(bytes.fromhex("00 00 06 04"))
    assert host.raw(6) == bytes.fromhex("00 02 06 04 81 01")


def test_connect_request_response_and_status_bytes(host: Client, dongle: SimulatedDongle) -> None:
    host.port.write(CONNECT_SENSOR)
    assert host.raw(7) == bytes.fromhex("00 03 06 03 00 00 00")
    assert host.raw(20) == SENSOR_CONNECTED
    assert dongle.commands_received[-1] == (
        "gap_connect_direct",
        {
            "address": SENSOR,
            "addr_type": 0,
            "conn_interval_min": 60,
            "conn_interval_max": 76,
            "timeout": 100,
            "latency": 0,
        },
    )


def test_find_information_bytes(linked: Client) -> None:
    linked.port.write(bytes.fromhex("00 05 04 03 00 01 00 FF FF"))
    assert linked.raw(7) == bytes.fromhex("00 03 04 03 00 00 00")
    assert linked.raw(10) == bytes.fromhex("80 06 04 04 00 01 00 02 00 28")
    assert linked.raw(10) == bytes.fromhex("80 06 04 04 00 02 00 02 03 28")
    assert linked.raw(10) == bytes.fromhex("80 06 04 04 00 03 00 02 37 2A")
    assert linked.raw(10) == bytes.fromhex("80 06 04 04 00 04 00 02 02 29")
    found = linked.until(lambda m: m.name == "attclient_procedure_completed")
    assert [m["chrhandle"] for m in found[:-1]] == list(range(5, 21))
    by_handle = {m["chrhandle"]: m["uuid"] for m in found[:-1]}
    assert by_handle[15] == bytes.fromhex("0028")
    assert by_handle[17] == bytes.fromhex("9ecadc240ee5a9e093f3a3b50300406e")  # 128-bit, LSB first
    assert found[-1].fields == {"connection": 0, "result": 0, "chrhandle": 0xFFFF}


def test_notification_bytes_after_a_cccd_write(linked: Client) -> None:
    linked.port.write(bytes.fromhex("00 06 04 05 00 04 00 02 01 00"))  # write 01 00 to the CCCD at 4
    assert linked.raw(7) == bytes.fromhex("00 03 04 05 00 00 00")
    assert linked.raw(9) == bytes.fromhex("80 05 04 01 00 00 00 04 00")
    assert linked.raw(11) == bytes.fromhex("80 07 04 05 00 03 00 01 02 00 3C")
    assert linked.raw(11) == bytes.fromhex("80 07 04 05 00 03 00 01 02 00 3D")
    assert linked.raw(11) == bytes.fromhex("80 07 04 05 00 03 00 01 02 00 3E")
    # the stream had 3 values: what comes next is the answer to the next command
    assert linked.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"


def test_indications_are_type_2(linked: Client) -> None:
    linked.request("attclient_attribute_write", connection=0, atthandle=4, data=b"\x02\x00")
    linked.expect("attclient_procedure_completed", result=0, chrhandle=4)
    values = [linked.expect("attclient_attribute_value", atthandle=3, type=2)["value"] for _ in range(3)]
    assert values == [b"\x00\x3c", b"\x00\x3d", b"\x00\x3e"]


def test_disconnect_bytes(linked: Client) -> None:
    linked.port.write(bytes.fromhex("00 01 03 00 00"))
    assert linked.raw(7) == bytes.fromhex("00 03 03 00 00 00 00")
    assert linked.raw(7) == bytes.fromhex("80 03 03 04 00 16 02")
    linked.port.write(bytes.fromhex("00 01 03 00 00"))  # the handle is gone now
    assert linked.raw(7) == bytes.fromhex("00 03 03 00 00 86 01")


def test_address_rssi_and_bondable_bytes(linked: Client) -> None:
    linked.port.write(bytes.fromhex("00 00 00 02"))
    assert linked.raw(10) == bytes.fromhex("00 06 00 02 CC BB AA 80 07 00")
    linked.port.write(bytes.fromhex("00 01 03 01 00"))
    assert linked.raw(6) == bytes.fromhex("00 02 03 01 00 CE")  # -50 dBm
    linked.port.write(bytes.fromhex("00 01 05 01 00"))
    assert linked.raw(4) == bytes.fromhex("00 00 05 01")  # an empty response
    linked.port.write(bytes.fromhex("00 00 00 06"))
    assert linked.raw(5) == bytes.fromhex("00 01 00 06 03")  # system_get_connections: 3


# -- scanning -----------------------------------------------------------------------------------


def scan(host: Client, active: int) -> List[Message]:
    assert host.request("gap_set_scan_parameters", scan_interval=75, scan_window=50, active=active)["result"] == 0
    assert host.request("gap_discover", mode=2)["result"] == 0
    packets = []
    wanted = {SENSOR, TAG, BEACON, REFUSER, LOCKED}
    while wanted:  # each peripheral advertises every 0.1 s
        message = host.expect("gap_scan_response")
        packets.append(message)
        wanted.discard(message["sender"])
    host.command("gap_end_procedure")
    rest = host.until(lambda m: m.kind is Kind.RESPONSE)  # advertisements may come before the response
    end = rest.pop()
    assert (end.name, end["result"]) == ("gap_end_procedure", 0)
    return packets + rest


def test_active_scan_reports_advertisements_and_scan_responses(host: Client) -> None:
    packets = scan(host, active=1)
    sensor = [m for m in packets if m["sender"] == SENSOR]
    advertisement, response = sensor[0], sensor[1]
    assert advertisement.fields == {
        "rssi": -50,
        "packet_type": 0,
        "sender": SENSOR,
        "address_type": 0,
        "bond": 0xFF,
        "data": bytes.fromhex("02010603030d1811079ecadc240ee5a9e093f3a3b50100406e04ff4c0002"),
    }
    assert response["packet_type"] == 4 and response["data"] == bytes.fromhex("07 09") + b"Sensor"
    tag = next(m for m in packets if m["sender"] == TAG)
    assert (tag["address_type"], tag["rssi"], tag["data"]) == (1, -90, bytes.fromhex("020106020afc"))
    assert not [m for m in packets if m["sender"] == TAG and m["packet_type"] == 4]  # no name: no scan response
    beacon = [m for m in packets if m["sender"] == BEACON]
    assert beacon[0]["packet_type"] == 6  # non-connectable, scannable (it has a scan response)
    # after gap_end_procedure's response nothing more is reported
    assert host.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"


def test_passive_scan_has_no_scan_responses(host: Client) -> None:
    packets = scan(host, active=0)
    assert {m["packet_type"] for m in packets} == {0, 6}  # the beacon is scannable: it has a name to give


def test_only_scannable_advertisements_get_scan_responses(host: Client) -> None:
    # bgapi-protocol.md §2 "scan packet_type": 0 connectable advertisement, 2 non-connectable,
    # 4 scan response, 6 discoverable (scannable). A non-connectable advertisement (2, ADV_NONCONN_IND)
    # is not scannable (Bluetooth Core spec, Vol 6 Part B §2.3.1.3: no SCAN_REQ may answer it), so
    # no scan response can follow one; a non-connectable peripheral with a scan response advertises
    # as scannable (6, ADV_SCAN_IND).
    packets = scan(host, active=1)
    beacon = [m for m in packets if m["sender"] == BEACON]
    kinds = {m["packet_type"] for m in beacon}
    assert 4 in kinds, "the beacon's name comes in a scan response"
    assert kinds == {6, 4}, f"a non-connectable advertisement was followed by a scan response: {kinds}"
    for sender in {m["sender"] for m in packets}:
        advertised = {m["packet_type"] for m in packets if m["sender"] == sender and m["packet_type"] != 4}
        answered = any(m["sender"] == sender and m["packet_type"] == 4 for m in packets)
        assert not (answered and advertised == {2}), f"{sender}: scan response to ADV_NONCONN_IND"


def test_scan_refusals(host: Client, world: World) -> None:
    assert host.request("gap_discover", mode=3)["result"] == 0x0180
    assert host.request("gap_set_scan_parameters", scan_interval=10, scan_window=20, active=1)["result"] == 0x0180
    assert host.request("gap_discover", mode=1)["result"] == 0
    # scanning has begun: advertisement events may come before each of the next responses
    assert response_amid_scan(host, "gap_discover", mode=1)["result"] == 0x0181  # already scanning
    assert response_amid_scan(host, "gap_end_procedure")["result"] == 0
    world.adapter.scan_error = "busy"
    assert host.request("gap_discover", mode=1)["result"] == 0x0181


def response_amid_scan(host: Client, name: str, **fields: Any) -> Message:
    """Send a command while scanning; return its response, checking that only scan reports came first."""
    host.command(name, **fields)
    *before, response = host.until(lambda m: m.kind is Kind.RESPONSE)
    assert {m.name for m in before} <= {"gap_scan_response"}, before
    assert response.name == name
    return response


def test_set_mode(host: Client) -> None:
    assert host.request("gap_set_mode", discover=0, connect=0)["result"] == 0
    assert host.request("gap_set_mode", discover=5, connect=0)["result"] == 0x0180


# -- connections ------------------------------------------------------------------------------------


def test_connection_limit_is_0x0209(world: World, kind: str) -> None:
    with SimulatedDongle(world, max_connections=2) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        assert host.connect(SENSOR) == 0
        assert host.connect(TAG, address_type=1) == 1
        refused = host.request(
            "gap_connect_direct", address=LOCKED, addr_type=0, conn_interval_min=60, conn_interval_max=76,
            timeout=100, latency=0,
        )  # fmt: skip
        assert refused["result"] == 0x0209
        host.request("connection_disconnect", connection=0)
        host.expect("connection_disconnected", connection=0, reason=0x0216)
        assert host.connect(LOCKED) == 0  # the freed handle is used again
        host.port.close()


def test_connect_error_ends_the_attempt(host: Client) -> None:
    response = host.request(
        "gap_connect_direct", address=REFUSER, addr_type=0, conn_interval_min=60, conn_interval_max=76,
        timeout=100, latency=0,
    )  # fmt: skip
    assert response.fields == {"result": 0, "connection_handle": 0}
    host.expect("connection_disconnected", connection=0, reason=0x023E)
    assert host.connect(SENSOR) == 0


def test_unanswered_connect_runs_until_end_procedure(host: Client) -> None:
    for address, address_type in (("77:77:77:77:77:77", 0), (TAG, 0)):  # absent; wrong address type
        response = host.request(
            "gap_connect_direct", address=address, addr_type=address_type, conn_interval_min=60,
            conn_interval_max=76, timeout=100, latency=0,
        )  # fmt: skip
        assert response["result"] == 0
        assert host.request("gap_discover", mode=2)["result"] == 0x0181  # the connect procedure is running
        assert host.request("gap_end_procedure")["result"] == 0
    assert host.connect(SENSOR) == 0


def test_connect_refusals(linked: Client) -> None:
    def connect(**changes: Any) -> int:
        fields = dict(address=TAG, addr_type=1, conn_interval_min=60, conn_interval_max=76, timeout=100, latency=0)
        fields.update(changes)
        return int(linked.request("gap_connect_direct", **fields)["result"])

    assert connect(address=SENSOR, addr_type=0) == 0x0181  # already connected
    assert connect(conn_interval_min=80) == 0x0180  # min > max
    assert connect(timeout=5) == 0x0180
    assert connect(latency=501) == 0x0180


def test_commands_on_an_unknown_connection_are_0x0186(host: Client) -> None:
    assert host.request("attclient_read_by_handle", connection=2, chrhandle=3)["result"] == 0x0186
    assert host.request("attclient_find_information", connection=0, start=1, end=5)["result"] == 0x0186
    assert host.request("sm_encrypt_start", handle=1, bonding=1)["result"] == 0x0186
    assert host.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"  # and no events came


# -- GATT operations --------------------------------------------------------------------------------


def test_read_by_handle(linked: Client) -> None:
    linked.port.write(bytes.fromhex("00 03 04 04 00 06 00"))
    assert linked.raw(7) == bytes.fromhex("00 03 04 04 00 00 00")
    assert linked.raw(10) == bytes.fromhex("80 06 04 05 00 06 00 00 01 01")
    linked.request("attclient_read_by_handle", connection=0, chrhandle=10)
    assert linked.expect("attclient_attribute_value", type=0)["value"] == LONG_VALUE[:22]  # one packet


@pytest.mark.parametrize("handle, code", [(12, 0x0405), (8, 0x0402), (0x99, 0x0401)])
def test_read_errors_are_0x04xx(linked: Client, handle: int, code: int) -> None:
    assert linked.request("attclient_read_by_handle", connection=0, chrhandle=handle)["result"] == 0
    linked.expect("attclient_procedure_completed", connection=0, result=code, chrhandle=handle)


def test_read_long_sends_chunks_then_completes(linked: Client) -> None:
    linked.request("attclient_read_long", connection=0, chrhandle=10)
    chunks = [linked.expect("attclient_attribute_value", atthandle=10) for _ in range(3)]
    assert [(m["type"], m["value"]) for m in chunks] == [
        (0, LONG_VALUE[:22]),
        (4, LONG_VALUE[22:44]),
        (4, LONG_VALUE[44:]),
    ]
    linked.expect("attclient_procedure_completed", result=0, chrhandle=10)
    linked.request("attclient_read_long", connection=0, chrhandle=6)  # a short value: one chunk
    assert linked.expect("attclient_attribute_value", type=0)["value"] == b"\x01"
    linked.expect("attclient_procedure_completed", result=0, chrhandle=6)


def test_writes(linked: Client) -> None:
    assert linked.request("attclient_attribute_write", connection=0, atthandle=10, data=b"hello")["result"] == 0
    linked.expect("attclient_procedure_completed", result=0, chrhandle=10)
    linked.request("attclient_read_by_handle", connection=0, chrhandle=10)
    assert linked.expect("attclient_attribute_value")["value"] == b"hello"
    # a write command: a response and nothing else
    assert linked.request("attclient_write_command", connection=0, atthandle=10, data=b"bye")["result"] == 0
    linked.request("attclient_read_by_handle", connection=0, chrhandle=10)
    assert linked.expect("attclient_attribute_value")["value"] == b"bye"
    # errors
    linked.request("attclient_attribute_write", connection=0, atthandle=14, data=b"\x01")
    linked.expect("attclient_procedure_completed", result=0x0403, chrhandle=14)
    linked.request("attclient_attribute_write", connection=0, atthandle=6, data=b"\x01")
    linked.expect("attclient_procedure_completed", result=0x0403, chrhandle=6)
    too_long = linked.request("attclient_attribute_write", connection=0, atthandle=10, data=bytes(21))
    assert too_long["result"] == 0x0180
    assert linked.request("attclient_write_command", connection=0, atthandle=10, data=bytes(21))["result"] == 0x0180


def test_prepared_writes(linked: Client) -> None:
    value = bytes(range(100, 140))
    for offset in range(0, len(value), 18):
        chunk = value[offset : offset + 18]
        response = linked.request("attclient_prepare_write", connection=0, atthandle=10, offset=offset, data=chunk)
        assert response["result"] == 0
        linked.expect("attclient_procedure_completed", result=0, chrhandle=10)
    assert linked.request("attclient_execute_write", connection=0, commit=1)["result"] == 0
    linked.expect("attclient_procedure_completed", result=0, chrhandle=10)
    linked.request("attclient_read_long", connection=0, chrhandle=10)
    read = linked.until(lambda m: m.name == "attclient_procedure_completed")
    assert b"".join(m["value"] for m in read[:-1]) == value
    # cancelled: nothing changes
    linked.request("attclient_prepare_write", connection=0, atthandle=10, offset=0, data=b"zz")
    linked.expect("attclient_procedure_completed", result=0)
    linked.request("attclient_execute_write", connection=0, commit=0)
    linked.expect("attclient_procedure_completed", result=0)
    linked.request("attclient_read_by_handle", connection=0, chrhandle=10)
    assert linked.expect("attclient_attribute_value")["value"] == value[:22]
    # a gap in the offsets, a chunk too long, a handle that cannot be written
    linked.request("attclient_prepare_write", connection=0, atthandle=10, offset=5, data=b"x")
    linked.expect("attclient_procedure_completed", result=0)
    linked.request("attclient_execute_write", connection=0, commit=1)
    linked.expect("attclient_procedure_completed", result=0x0407, chrhandle=10)
    response = linked.request("attclient_prepare_write", connection=0, atthandle=10, offset=0, data=bytes(19))
    assert response["result"] == 0x0180
    linked.request("attclient_prepare_write", connection=0, atthandle=14, offset=0, data=b"x")
    linked.expect("attclient_procedure_completed", result=0x0403, chrhandle=14)


def test_read_by_group_type_lists_services(linked: Client) -> None:
    linked.request("attclient_read_by_group_type", connection=0, start=1, end=0xFFFF, uuid=b"\x00\x28")
    groups = linked.until(lambda m: m.name == "attclient_procedure_completed")
    assert [(m["start"], m["end"], m["uuid"].hex()) for m in groups[:-1]] == [
        (1, 14, "0d18"),
        (15, 20, "9ecadc240ee5a9e093f3a3b50100406e"),
    ]


def test_read_by_type_is_answered(linked: Client) -> None:
    # bgapi-protocol.md §1 "Responses and events": exactly one response per command (except
    # system_reset); §2 "Defined but not used by U": 4/2 read_by_type (connection, start, end, uuid)
    # answers with its results as 4/5 type 3, then 4/1.
    response = linked.request("attclient_read_by_type", connection=0, start=1, end=0xFFFF, uuid=bytes([0x38, 0x2A]))
    assert (response["connection"], response["result"]) == (0, 0)
    linked.expect("attclient_attribute_value", connection=0, atthandle=6, type=3, value=b"\x01")
    linked.expect("attclient_procedure_completed", connection=0, result=0)
    # a type no attribute has: ATT "attribute not found" (0x0400 + 0x0A, §4)
    linked.request("attclient_read_by_type", connection=0, start=1, end=0xFFFF, uuid=bytes([0x99, 0x2A]))
    linked.expect("attclient_procedure_completed", connection=0, result=0x040A)
    # an unreadable one: its ATT error (2a3b at handle 12 answers error 5)
    linked.request("attclient_read_by_type", connection=0, start=1, end=0xFFFF, uuid=bytes([0x3B, 0x2A]))
    linked.expect("attclient_procedure_completed", connection=0, result=0x0405, chrhandle=12)
    # an unknown connection gets 0x0186 like every attclient command
    refused = linked.request("attclient_read_by_type", connection=5, start=1, end=0xFFFF, uuid=b"\x38\x2a")
    assert refused["result"] == 0x0186


def test_one_att_procedure_at_a_time(world: World, kind: str) -> None:
    world.peripherals[0].response_delay_s = 0.3
    with SimulatedDongle(world) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(SENSOR)
        host.port.write(
            encode_command("attclient_read_by_handle", connection=0, chrhandle=6)
            + encode_command("attclient_read_by_handle", connection=0, chrhandle=6)
            + encode_command("attclient_write_command", connection=0, atthandle=10, data=b"ok")
        )
        assert host.expect("attclient_read_by_handle", Kind.RESPONSE)["result"] == 0
        assert host.expect("attclient_read_by_handle", Kind.RESPONSE)["result"] == 0x0181  # busy
        assert host.expect("attclient_write_command", Kind.RESPONSE)["result"] == 0  # not a procedure
        assert host.expect("attclient_attribute_value", type=0)["value"] == b"\x01"
        host.port.close()


def test_fast_stream_keeps_every_value_in_order(linked: Client) -> None:
    linked.request("attclient_attribute_write", connection=0, atthandle=20, data=b"\x01\x00")
    linked.expect("attclient_procedure_completed", result=0)
    values = [linked.expect("attclient_attribute_value", atthandle=19, type=1)["value"] for _ in range(3000)]
    assert [int.from_bytes(v[:4], "big") for v in values] == list(range(3000))
    assert all(len(v) == 20 for v in values)


def test_remote_disconnect_after_ops(world: World, kind: str) -> None:
    world.peripherals[0].disconnect_after_ops = 2
    with SimulatedDongle(world) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(SENSOR)
        host.request("attclient_read_by_handle", connection=0, chrhandle=6)
        host.expect("attclient_attribute_value", value=b"\x01")
        host.request("attclient_read_by_handle", connection=0, chrhandle=6)
        host.expect("attclient_attribute_value", value=b"\x01")  # the second operation still completes
        host.expect("connection_disconnected", connection=0, reason=0x0213)
        host.port.close()


# -- security manager --------------------------------------------------------------------------------


def test_bonding_and_bond_list(linked: Client) -> None:
    assert linked.request("sm_get_bonds")["bonds"] == 0
    linked.request("sm_set_bondable_mode", bondable=1)
    assert linked.request("sm_encrypt_start", handle=0, bonding=1)["result"] == 0
    linked.expect("sm_bond_status", bond=0, keysize=16)
    status = linked.expect("connection_status", connection=0, bonding=0)
    assert status["flags"] & 0x03 == 0x03  # connected, encrypted
    assert linked.request("sm_get_bonds")["bonds"] == 1
    linked.expect("sm_bond_status", bond=0)
    assert linked.request("sm_delete_bonding", handle=0xFF)["result"] == 0
    assert linked.request("sm_get_bonds")["bonds"] == 0
    assert linked.request("sm_delete_bonding", handle=3)["result"] == 0x0180


def test_encryption_without_bondable_mode_makes_no_bond(linked: Client) -> None:
    linked.request("sm_set_bondable_mode", bondable=0)
    linked.request("sm_encrypt_start", handle=0, bonding=1)
    assert linked.expect("connection_status", flags=0x03)["bonding"] == 0xFF
    assert linked.request("sm_get_bonds")["bonds"] == 0


def test_bonding_failure(host: Client) -> None:
    handle = host.connect(LOCKED)
    host.request("sm_set_bondable_mode", bondable=1)
    host.request("sm_encrypt_start", handle=handle, bonding=1)
    host.expect("sm_bonding_fail", handle=handle, result=0x0303)


def test_world_bonds_are_in_flash(kind: str) -> None:
    with SimulatedDongle(load_world("heart-rate")) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        assert host.request("sm_get_bonds")["bonds"] == 1
        host.expect("sm_bond_status", bond=0)
        response = host.request(
            "gap_connect_direct", address="C4:7C:8D:6A:3E:01", addr_type=0, conn_interval_min=60,
            conn_interval_max=76, timeout=100, latency=0,
        )  # fmt: skip
        host.expect("connection_status", connection=response["connection_handle"], bonding=0)  # the bond is known
        host.port.close()


# -- reset and faults ----------------------------------------------------------------------------------


def dead(port: serial.SerialBase) -> bool:
    """True when reading the port fails or finds the end of the stream, as with an unplugged device."""
    try:
        return port.read(1) == b"" and not port.is_open
    except (serial.SerialException, OSError):
        return True


def test_reset_renames_the_port_and_boots(world: World, kind: str) -> None:
    with SimulatedDongle(world) as dongle:
        first = serve(dongle, kind)
        assert [p.device for p in dongle.comports()] == [first]
        host = Client(open_port(first))
        host.connect(SENSOR)
        host.request("sm_set_bondable_mode", bondable=1)
        host.request("sm_encrypt_start", handle=0, bonding=1)
        host.expect("sm_bond_status", bond=0)
        host.expect("connection_status", flags=0x03)
        host.port.write(bytes.fromhex("00 01 00 00 00"))  # system_reset: no response, the port goes away
        assert dead(host.port)
        host.port.close()
        assert wait_for(lambda: bool(dongle.comports()))
        second = dongle.comports()[0].device
        assert second != first
        assert dongle.comports()[0].hwid.startswith("USB VID:PID=2458:0001")
        host = Client(open_port(second))
        boot = host.expect("system_boot")
        assert (boot["major"], boot["minor"]) == (1, 3)
        assert host.request("connection_disconnect", connection=0)["result"] == 0x0186  # links ended
        assert host.request("sm_get_bonds")["bonds"] == 1  # bonds are kept
        host.expect("sm_bond_status", bond=0)
        assert host.connect(SENSOR) == 0
        host.port.close()
        assert dongle.commands_received.count(("system_reset", {"boot_in_dfu": 0})) == 1


def test_garbage_arrives_between_frames(dongle: SimulatedDongle, host: Client) -> None:
    dongle.inject_garbage(b"\x00\xff\x13")
    host.port.write(bytes.fromhex("00 00 06 04"))
    assert host.raw(3) == b"\x00\xff\x13"
    assert host.raw(6) == bytes.fromhex("00 02 06 04 81 01")


def test_a_dropped_response(dongle: SimulatedDongle, linked: Client) -> None:
    dongle.drop_next_response()
    linked.command("attclient_read_by_handle", connection=0, chrhandle=6)
    linked.expect("attclient_attribute_value", value=b"\x01")  # the events still come
    assert linked.request("gap_end_procedure")["result"] == 0x0181  # later responses are sent again


def test_remote_disconnect(dongle: SimulatedDongle, linked: Client) -> None:
    dongle.disconnect(SENSOR.lower())
    assert linked.raw(7) == bytes.fromhex("80 03 03 04 00 13 02")
    with pytest.raises(ValueError, match="no link"):
        dongle.disconnect(SENSOR)
    with pytest.raises(ValueError):
        dongle.disconnect("nonsense")
    linked.connect(SENSOR)
    dongle.disconnect(SENSOR, reason=0x0208)
    linked.expect("connection_disconnected", connection=0, reason=0x0208)


def test_killed_port_dies_and_can_be_plugged_in_again(dongle: SimulatedDongle, linked: Client, kind: str) -> None:
    old = dongle.comports()[0].device
    dongle.kill_port()
    assert dead(linked.port)
    assert dongle.comports() == []
    linked.port.close()
    with pytest.raises(serial.SerialException):
        open_port(old)  # the old port cannot be opened any more
    new = serve(dongle, kind)
    host = Client(open_port(new))
    host.expect("system_boot")
    assert host.request("connection_get_rssi", connection=0)["rssi"] == 0  # the link died with the port
    host.port.close()


def test_host_garbage_and_split_frames(host: Client, dongle: SimulatedDongle) -> None:
    host.port.write(b"\xff\x13\x37" + bytes.fromhex("00 00 06 04"))  # garbage first: skipped
    assert host.raw(6) == bytes.fromhex("00 02 06 04 81 01")
    frame = encode_command("attclient_read_by_handle", connection=0, chrhandle=6)
    host.port.write(frame[:3])
    host.port.flush()
    host.port.write(frame[3:])
    assert host.raw(7) == bytes.fromhex("00 03 04 04 00 86 01")  # not connected, but understood
    assert [name for name, _ in dongle.commands_received] == ["gap_end_procedure", "attclient_read_by_handle"]


def test_a_partial_frame_is_given_up_when_the_line_goes_quiet(host: Client) -> None:
    # a header promising 5 bytes, then a whole command: the command completes the "frame" only
    # if the dongle waits forever; it answers once the partial frame is given up
    host.port.write(bytes.fromhex("00 05 04 03") + bytes.fromhex("00 00 06 04"))
    assert host.raw(6) == bytes.fromhex("00 02 06 04 81 01")


def test_host_reopening_the_port_gets_fresh_answers(dongle: SimulatedDongle, host: Client, kind: str) -> None:
    device = dongle.comports()[0].device
    host.port.close()
    again = Client(open_port(device))
    assert again.request("gap_end_procedure")["result"] == 0x0181
    again.port.close()


# -- the object's life ---------------------------------------------------------------------------------


def test_close_always_returns_and_ends_everything(world: World) -> None:
    dongle = SimulatedDongle(world)
    dongle.close()
    dongle.close()
    with pytest.raises(RuntimeError):
        dongle.open_pty()
    dongle = SimulatedDongle(world)
    path = dongle.open_pty()
    with pytest.raises(RuntimeError, match="already serves"):
        dongle.open_socket()
    port = open_port(path)
    dongle.close()
    assert dead(port)
    port.close()
    assert not [t for t in threading.enumerate() if t.name == "simulated-bled112"]


def test_bad_arguments() -> None:
    world = World()
    with pytest.raises(ValueError):
        SimulatedDongle(world, address="00:07:80")
    with pytest.raises(ValueError):
        SimulatedDongle(world, max_connections=0)
    with pytest.raises(ValueError):
        SimulatedDongle(world, max_connections=9)


def test_comports_entry_looks_like_pyserials(dongle: SimulatedDongle) -> None:
    (info,) = dongle.comports()
    assert (info.vid, info.pid) == (0x2458, 0x0001)
    assert "VID:PID=2458:0001" in info.hwid
    assert info[0] == info.device and info.description
    assert dongle.port == info.device


def read_line(fd: int, timeout: float = 10.0) -> str:
    """One line from a pipe, or AssertionError when none comes within ``timeout``."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no line within {timeout} s (got {data!r})"
        chunk = os.read(fd, 1)
        assert chunk, f"the program ended (got {data!r})"
        data += chunk
    return data.decode().strip()


@pytest.mark.parametrize("option", [[], ["--socket"]])
def test_cli_prints_the_port_and_serves_it(option: List[str]) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "pygatt.testing.sim", "bgapi", "--world", "heart-rate", *option],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        device = read_line(child.stdout.fileno())
        assert device.startswith("socket://127.0.0.1:" if option else "/dev/pts/")
        host = Client(open_port(device))
        assert host.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"
        assert host.connect("C4:7C:8D:6A:3E:01") == 0
        host.port.write(bytes.fromhex("00 01 00 00 00"))
        renamed = read_line(child.stdout.fileno())
        assert renamed and renamed != device
        host.port.close()
        child.terminate()
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


# -- the world's BGAPI fields ---------------------------------------------------------------------------


def test_old_worlds_load_and_new_fields_have_defaults() -> None:
    peripheral = load_world("heart-rate").peripherals[0]
    assert peripheral.advertised_services is None and peripheral.manufacturer_data == {}
    assert peripheral.advertising_interval_s == 0.1 and peripheral.connect_error_code is None
    assert att_error_code(2) == 2 and att_error_code("Attribute can't be read") == 2
    assert att_error_code("something else") == 0x12 and att_error_code(None) is None


def test_raw_advertising_data_from_the_world(host: Client, world: World) -> None:
    world.peripherals[1].advertising_data = "0201040aff"
    world.peripherals[1].scan_response_data = "03097a7a"
    assert host.request("gap_discover", mode=2)["result"] == 0
    tag = [m for m in host.until(lambda m: m.get("sender") == TAG and m["packet_type"] == 4)
           if m.get("sender") == TAG]  # fmt: skip
    assert [m["data"] for m in tag[-2:]] == [bytes.fromhex("0201040aff"), bytes.fromhex("03097a7a")]


def test_connect_stream_starts_without_a_cccd_write(kind: str) -> None:
    world = World.from_dict(world_dict())
    stream = NotifyStream(trigger="connect", interval_s=0.01, count=2, values=["11", "22"])
    world.peripherals[1].services = [Service("180f", [Characteristic("2a19", ["notify"], notify=stream)])]
    with SimulatedDongle(world) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(TAG, address_type=1)
        assert host.expect("attclient_attribute_value", atthandle=3, type=1)["value"] == b"\x11"
        assert host.expect("attclient_attribute_value", atthandle=3, type=1)["value"] == b"\x22"
        host.port.close()


def test_two_links_are_answered_on_their_own_handles(linked: Client) -> None:
    assert linked.connect(TAG, address_type=1) == 1
    linked.port.write(
        encode_command("attclient_read_by_handle", connection=1, chrhandle=0x42)
        + encode_command("attclient_read_by_handle", connection=0, chrhandle=6)
    )
    assert linked.expect("attclient_read_by_handle", Kind.RESPONSE, connection=1)["result"] == 0
    assert linked.expect("attclient_read_by_handle", Kind.RESPONSE, connection=0)["result"] == 0
    answers = {m["connection"]: m for m in (linked.next(), linked.next())}
    assert answers[1].fields == {"connection": 1, "result": 0x0401, "chrhandle": 0x42}
    assert answers[0].fields == {"connection": 0, "atthandle": 6, "type": 0, "value": b"\x01"}
    assert linked.request("connection_get_rssi", connection=1)["rssi"] == -90


def test_clearing_the_cccd_stops_a_stream(linked: Client) -> None:
    linked.request("attclient_attribute_write", connection=0, atthandle=20, data=b"\x01\x00")
    linked.expect("attclient_procedure_completed", result=0)
    linked.expect("attclient_attribute_value", atthandle=19)
    linked.command("attclient_attribute_write", connection=0, atthandle=20, data=b"\x00\x00")
    seen = linked.until(lambda m: m.name == "attclient_procedure_completed")
    assert {m.name for m in seen[:-1]} <= {"attclient_attribute_value", "attclient_attribute_write"}
    # the next answer follows at once: no value of the stream comes any more
    assert linked.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"


def test_remote_disconnect_after_seconds(world: World, kind: str) -> None:
    world.peripherals[0].disconnect_after_s = 0.05
    with SimulatedDongle(world) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(SENSOR)
        host.expect("connection_disconnected", connection=0, reason=0x0213)
        assert host.request("attclient_read_by_handle", connection=0, chrhandle=6)["result"] == 0x0186
        host.port.close()


def test_a_bonded_peripheral_encrypts_with_its_bond(kind: str) -> None:
    with SimulatedDongle(load_world("heart-rate")) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        assert host.connect("C4:7C:8D:6A:3E:01") == 0
        host.request("sm_set_bondable_mode", bondable=1)
        host.request("sm_encrypt_start", handle=0, bonding=1)
        status = host.expect("connection_status")  # no new bond: straight to the encrypted status
        assert (status["flags"], status["bonding"]) == (0x03, 0)
        host.port.close()


def test_indicate_confirm_with_nothing_to_confirm(linked: Client) -> None:
    assert linked.request("attclient_indicate_confirm", connection=0)["result"] == 0x0181
    assert linked.request("attclient_indicate_confirm", connection=5)["result"] == 0x0186


def test_indications_left_to_the_host_wait_for_its_confirmation(world: World, kind: str) -> None:
    with SimulatedDongle(world, host_confirms_indications=True) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(SENSOR)
        host.request("attclient_attribute_write", connection=0, atthandle=4, data=b"\x02\x00")
        host.expect("attclient_procedure_completed", result=0, chrhandle=4)
        for value in (b"\x00\x3c", b"\x00\x3d", b"\x00\x3e"):
            host.expect("attclient_attribute_value", atthandle=3, type=5, value=value)
            # nothing more comes until the host confirms: the next answer is the address
            assert host.request("system_address_get")["address"] == "00:07:80:AA:BB:CC"
            assert host.request("attclient_indicate_confirm", connection=0)["result"] == 0
        assert host.request("attclient_indicate_confirm", connection=0)["result"] == 0x0181
        host.port.close()


def test_advertising_data_that_does_not_fit_is_left_out() -> None:
    peripheral = Peripheral(
        address=SENSOR,
        name="A name much longer than thirty-one bytes",
        manufacturer_data={"0000": "00" * 28},
        advertised_services=["180d", "180f"],
    )
    data = advertising_data(peripheral)
    assert data == bytes.fromhex("02010605030d180f18")  # the manufacturer data did not fit
    response = scan_response_data(peripheral)
    assert len(response) == 31 and response[1] == 0x08  # shortened local name


def test_remote_disconnect_after_notifications(world: World, kind: str) -> None:
    world.peripherals[0].disconnect_after_notifications = 2
    with SimulatedDongle(world) as dongle:
        host = Client(open_port(serve(dongle, kind)))
        host.connect(SENSOR)
        host.request("attclient_attribute_write", connection=0, atthandle=4, data=b"\x01\x00")
        host.expect("attclient_procedure_completed", result=0)
        host.expect("attclient_attribute_value", atthandle=3, value=b"\x00\x3c")
        host.expect("attclient_attribute_value", atthandle=3, value=b"\x00\x3d")
        host.expect("connection_disconnected", connection=0, reason=0x0213)  # and no third value
        host.port.close()


def test_service_data_is_advertised() -> None:
    peripheral = Peripheral(
        address=SENSOR,
        advertised_services=[],
        service_data={"180f": "5a", NUS: "01"},
    )
    assert advertising_data(peripheral) == bytes.fromhex("02010604160f185a12219ecadc240ee5a9e093f3a3b50100406e01")
