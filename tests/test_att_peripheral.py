"""The ATT peripheral of pygatt.testing.att on its own: the codec, the link responder (pure),
and the server over a real Unix SEQPACKET socket, with a test client instead of gatttool.
"""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

import pytest

from pygatt.testing import Characteristic, Descriptor, NotifyStream, Peripheral, Service, World
from pygatt.testing.att import pdu
from pygatt.testing.att.responder import PREPARE_QUEUE_LIMIT, LinkResponder
from pygatt.testing.att.server import ATTPeripheralServer, socket_name
from pygatt.testing.world import layout

ADDRESS = "AA:BB:CC:00:00:02"


def peripheral(**settings: object) -> Peripheral:
    return Peripheral(
        address=ADDRESS,
        services=[
            Service("1800", [Characteristic("2a00", ["read"], value="4142")]),
            Service(
                "12345678-1234-5678-1234-56789abcdef0",
                [
                    Characteristic("ff01", ["read", "write", "write-without-response"], value="00"),
                    Characteristic("ff02", ["read"], value=bytes(range(60)).hex()),
                    Characteristic(
                        "ff03",
                        ["notify", "indicate"],
                        notify=NotifyStream(interval_s=0.01, count=3, values=["01", "02", "03"]),
                    ),
                    Characteristic(
                        "ff04", ["read", "write"], read_error=0x08, write_error="Attribute can't be written"
                    ),
                    Characteristic("abcdef01-0000-4000-8000-00000000cafe", ["read"], value="ee"),
                    Characteristic("ff05", ["read"], value="11", descriptors=[Descriptor("2901", "6869")]),
                ],
            ),
        ],
        **settings,  # type: ignore[arg-type]
    )


def responder(**settings: object) -> LinkResponder:
    p = peripheral(**settings)
    return LinkResponder(layout(p), p.mtu)


def handle_of(uuid: str) -> int:
    from pygatt.testing.world import full_uuid

    for _d, _p, value_handle, found in layout(peripheral()).characteristics:
        if found == full_uuid(uuid):
            return int(value_handle)
    raise KeyError(uuid)


def ask(link: LinkResponder, data: bytes) -> pdu.Response:
    outcome = link.handle(data)
    assert outcome.response is not None
    return pdu.decode_response(outcome.response)


# -- codec ------------------------------------------------------------------------------------------


def test_uuids_are_two_bytes_for_base_uuids_and_sixteen_otherwise():
    assert pdu.uuid_to_att("2a00") == b"\x00\x2a"
    assert pdu.uuid_to_att("00002a00-0000-1000-8000-00805f9b34fb") == b"\x00\x2a"
    custom = "12345678-1234-5678-1234-56789abcdef0"
    assert pdu.uuid_to_att(custom) == bytes.fromhex("f0debc9a785634127856341278563412")
    assert pdu.uuid_from_att(pdu.uuid_to_att(custom)) == custom
    with pytest.raises(pdu.PDUError):
        pdu.uuid_from_att(b"\x01\x02\x03")


def test_requests_decode_and_malformed_ones_are_refused():
    assert pdu.decode_request(b"\x02\x00\x01") == pdu.ExchangeMTURequest(256)
    assert pdu.decode_request(b"\x0c\x03\x00\x16\x00") == pdu.ReadBlobRequest(3, 22)
    assert pdu.decode_request(b"\x52\x05\x00\xaa") == pdu.WriteCommand(5, b"\xaa")
    assert pdu.decode_request(b"\x0e\x01\x00\x02\x00") == pdu.UnsupportedPDU(0x0E, b"\x01\x00\x02\x00")
    for bad in (b"", b"\x0a\x01", b"\x08\x01\x00\xff\xff\x00", b"\x18"):
        with pytest.raises(pdu.PDUError):
            pdu.decode_request(bad)


def test_responses_encode_what_the_specification_lays_out():
    assert pdu.error_response(0x0A, 0x0003, 0x02) == b"\x01\x0a\x03\x00\x02"
    assert (
        pdu.find_information_response([(1, b"\x00\x28"), (2, b"\x03\x28")])
        == b"\x05\x01\x01\x00\x00\x28\x02\x00\x03\x28"
    )
    assert pdu.read_by_type_response([(3, b"ab"), (5, b"cd")]) == b"\x09\x04\x03\x00ab\x05\x00cd"
    assert pdu.indication(9, b"\x01") == b"\x1d\x09\x00\x01"
    with pytest.raises(ValueError):
        pdu.read_by_type_response([(3, b"a"), (5, b"cd")])
    decoded = pdu.decode_response(pdu.prepare_write_response(7, 18, b"xyz"))
    assert decoded.fields == {"handle": 7, "offset": 18, "value": b"xyz"}


# -- responder: reads -------------------------------------------------------------------------------


def test_read_read_blob_and_offsets():
    link = responder()
    long_handle = handle_of("ff02")
    first = ask(link, struct.pack("<BH", pdu.READ_REQ, long_handle))
    assert first.opcode == pdu.READ_RSP and first.params == bytes(range(22))  # MTU - 1
    blob = ask(link, struct.pack("<BHH", pdu.READ_BLOB_REQ, long_handle, 44))
    assert blob.params == bytes(range(44, 60))
    assert ask(link, struct.pack("<BHH", pdu.READ_BLOB_REQ, long_handle, 60)).params == b""
    past = ask(link, struct.pack("<BHH", pdu.READ_BLOB_REQ, long_handle, 61))
    assert past.fields == {"request": pdu.READ_BLOB_REQ, "handle": long_handle, "code": pdu.INVALID_OFFSET}


def test_read_errors_carry_the_handle_and_the_code():
    link = responder()
    assert ask(link, b"\x0a\xff\x0f").fields == {"request": 0x0A, "handle": 0x0FFF, "code": pdu.INVALID_HANDLE}
    configured = ask(link, struct.pack("<BH", pdu.READ_REQ, handle_of("ff04")))
    assert configured.fields["code"] == 0x08
    cccd = handle_of("ff03") + 1
    assert ask(link, struct.pack("<BH", pdu.READ_REQ, cccd)).params == b"\x00\x00"


def test_read_by_type_packs_equal_lengths_that_fit_and_stops_at_others():
    link = responder()
    declarations = ask(link, struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 1, 0xFFFF) + b"\x03\x28")
    entries = declarations.fields["entries"]
    assert [len(v) for _h, v in entries] == [5, 5, 5]  # 3 x (2 + 5) fits 23 - 2; the 4th would not
    assert entries[0] == (2, b"\x02\x03\x00\x00\x2a")  # properties, value handle, UUID
    link.mtu = 100
    more = ask(link, struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 1, 0xFFFF) + b"\x03\x28")
    assert len(more.fields["entries"]) == 5  # the 128-bit UUID declaration (19 bytes) ends the run
    long_value = ask(link, struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 1, 0xFFFF) + b"\x02\xff")
    assert long_value.fields["entries"] == [(handle_of("ff02"), bytes(range(60)))]  # all of it: under MTU - 4
    missing = ask(link, struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 1, 0xFFFF) + b"\xad\xde")
    assert missing.fields["code"] == pdu.ATTRIBUTE_NOT_FOUND


def test_discovery_requests():
    link = responder()
    groups = ask(link, struct.pack("<BHH", pdu.READ_BY_GROUP_TYPE_REQ, 1, 0xFFFF) + b"\x00\x28")
    assert [e[:2] for e in groups.fields["entries"]] == [(1, 3)]  # the 128-bit service needs its own response
    rest = ask(link, struct.pack("<BHH", pdu.READ_BY_GROUP_TYPE_REQ, 4, 0xFFFF) + b"\x00\x28")
    assert rest.fields["entries"][0][2] == pdu.uuid_to_att("12345678-1234-5678-1234-56789abcdef0")
    not_group = ask(link, struct.pack("<BHH", pdu.READ_BY_GROUP_TYPE_REQ, 1, 0xFFFF) + b"\x03\x28")
    assert not_group.fields["code"] == pdu.UNSUPPORTED_GROUP_TYPE
    info = ask(link, struct.pack("<BHH", pdu.FIND_INFO_REQ, 1, 0xFFFF))
    assert [h for h, _u in info.fields["entries"]] == [1, 2, 3, 4, 5]  # 2 + 5 x 4 bytes fit MTU 23
    by_value = ask(link, struct.pack("<BHHH", pdu.FIND_BY_TYPE_VALUE_REQ, 1, 0xFFFF, 0x2800) + b"\x00\x18")
    assert by_value.fields["ranges"] == [(1, 3)]
    assert ask(link, struct.pack("<BHH", pdu.FIND_INFO_REQ, 5, 4)).fields["code"] == pdu.INVALID_HANDLE


# -- responder: writes --------------------------------------------------------------------------------


def test_writes_permissions_and_lengths():
    link = responder()
    rw = handle_of("ff01")
    assert ask(link, struct.pack("<BH", pdu.WRITE_REQ, rw) + b"\x07").opcode == pdu.WRITE_RSP
    assert link.handle(struct.pack("<BH", pdu.WRITE_CMD, rw) + b"\x08").response is None
    assert ask(link, struct.pack("<BH", pdu.READ_REQ, rw)).params == b"\x08"
    assert ask(link, struct.pack("<BH", pdu.WRITE_REQ, handle_of("ff02")) + b"\x01").fields["code"] == 0x03
    assert ask(link, struct.pack("<BH", pdu.WRITE_REQ, handle_of("ff04")) + b"\x01").fields["code"] == 0x03
    too_long = ask(link, struct.pack("<BH", pdu.WRITE_REQ, rw) + bytes(513))
    assert too_long.fields["code"] == pdu.INVALID_ATTRIBUTE_VALUE_LENGTH
    assert link.handle(struct.pack("<BH", pdu.WRITE_CMD, 0x0FFF) + b"\x01").response is None  # never answered


def test_prepared_writes_execute_and_cancel():
    link = responder()
    rw = handle_of("ff01")
    for offset in (0, 18, 36):
        echoed = ask(link, struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, rw, offset) + bytes([offset]) * 18)
        assert echoed.fields == {"handle": rw, "offset": offset, "value": bytes([offset]) * 18}
    assert ask(link, b"\x18\x01").opcode == pdu.EXECUTE_WRITE_RSP
    assert ask(link, struct.pack("<BH", pdu.READ_REQ, rw)).params == bytes(18) + bytes([18]) * 4
    ask(link, struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, rw, 0) + b"\x99")
    assert ask(link, b"\x18\x00").opcode == pdu.EXECUTE_WRITE_RSP  # cancelled
    assert ask(link, struct.pack("<BH", pdu.READ_REQ, rw)).params[:1] == b"\x00"
    ask(link, struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, rw, 5) + b"\x01")
    gap = ask(link, b"\x18\x01")
    assert gap.fields == {"request": pdu.EXECUTE_WRITE_REQ, "handle": rw, "code": pdu.INVALID_OFFSET}
    for _ in range(PREPARE_QUEUE_LIMIT):
        ask(link, struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, rw, 0) + b"\x01")
    full = ask(link, struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, rw, 0) + b"\x01")
    assert full.fields["code"] == pdu.PREPARE_QUEUE_FULL


def test_cccd_writes_report_subscriptions():
    link = responder()
    cccd = handle_of("ff03") + 1
    outcome = link.handle(struct.pack("<BH", pdu.WRITE_REQ, cccd) + b"\x02\x00")
    assert outcome.subscriptions == [(handle_of("ff03"), 2)]
    assert ask(link, struct.pack("<BH", pdu.WRITE_REQ, cccd) + b"\x01").fields["code"] == 0x0D


def test_mtu_unsupported_requests_and_operation_counting():
    link = responder(mtu=100)
    outcome = link.handle(b"\x02\x00\x02")
    assert pdu.decode_response(outcome.response).fields == {"mtu": 100} and link.mtu == 100 and outcome.operation
    assert ask(link, b"\x0e\x01\x00\x02\x00").fields["code"] == pdu.REQUEST_NOT_SUPPORTED
    assert link.handle(b"\xd2\x01\x00" + bytes(13)).response is None  # a signed write command: ignored
    assert not link.handle(struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 5, 0xFFFF) + b"\x03\x28").operation
    assert link.handle(struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, 1, 0xFFFF) + b"\x03\x28").operation


# -- the server over a real socket ------------------------------------------------------------------------


@pytest.fixture
def socket_dir():
    path = tempfile.mkdtemp(prefix="att-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def client(directory: Path, address: str = ADDRESS, kind: str = "public") -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(5)
    try:
        sock.connect(str(directory / socket_name(address, kind)))
    except OSError:
        sock.close()
        raise
    return sock


def exchange(sock: socket.socket, request: bytes) -> pdu.Response:
    sock.send(request)
    return pdu.decode_response(sock.recv(1024))


def test_server_answers_one_pdu_per_packet_and_keeps_writes_per_link(socket_dir):
    with ATTPeripheralServer(World(peripherals=[peripheral()]), socket_dir) as server:
        first = client(socket_dir)
        assert exchange(first, b"\x0a\x03\x00").params == b"AB"
        rw = handle_of("ff01")
        assert exchange(first, struct.pack("<BH", pdu.WRITE_REQ, rw) + b"\x55").opcode == pdu.WRITE_RSP
        assert exchange(first, struct.pack("<BH", pdu.READ_REQ, rw)).params == b"\x55"
        second = client(socket_dir)
        assert exchange(second, struct.pack("<BH", pdu.READ_REQ, rw)).params == b"\x00"  # a fresh table
        assert server.peak_links(ADDRESS) == 2 and server.accepted == 2
        assert server.received(ADDRESS)[0] == b"\x0a\x03\x00"
        first.close()
        second.close()


def test_server_notifies_and_waits_for_each_confirmation(socket_dir):
    with ATTPeripheralServer(World(peripherals=[peripheral()]), socket_dir) as server:
        sock = client(socket_dir)
        cccd = handle_of("ff03") + 1
        assert exchange(sock, struct.pack("<BH", pdu.WRITE_REQ, cccd) + b"\x02\x00").opcode == pdu.WRITE_RSP
        first = pdu.decode_response(sock.recv(64))
        assert first.opcode == pdu.HANDLE_VALUE_IND and first.fields["value"] == b"\x01"
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(64)  # no second indication before the confirmation
        sock.settimeout(5)
        values = [first.fields["value"]]
        for _ in range(2):
            sock.send(bytes([pdu.HANDLE_VALUE_CFM]))
            values.append(pdu.decode_response(sock.recv(64)).fields["value"])
        assert values == [b"\x01", b"\x02", b"\x03"]
        server.notify(ADDRESS, 0x0042, b"\x09" * 40)
        pushed = pdu.decode_response(sock.recv(64))
        assert pushed.opcode == pdu.HANDLE_VALUE_NTF and pushed.fields["value"] == b"\x09" * 20  # MTU - 3
        assert server.notifications_sent(ADDRESS) == 4
        sock.close()


def test_server_drops_links_like_a_remote_disconnect(socket_dir):
    world = World(peripherals=[peripheral(disconnect_after_ops=1), Peripheral("AA:BB:CC:00:00:03", connectable=False)])
    with ATTPeripheralServer(world, socket_dir) as server:
        sock = client(socket_dir)
        assert exchange(sock, b"\x0a\x03\x00").params == b"AB"
        assert sock.recv(64) == b""  # closed by the peripheral after its answer
        with pytest.raises(OSError):
            client(socket_dir, "AA:BB:CC:00:00:03")  # not connectable: nobody listens
        with pytest.raises(OSError):
            client(socket_dir, ADDRESS, "random")  # wrong address type
        other = client(socket_dir)
        server.drop_links(ADDRESS)
        assert other.recv(64) == b""
        deadline = time.monotonic() + 5
        while server.links(ADDRESS) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.links(ADDRESS) == 0
        sock.close()
        other.close()
    assert not list(socket_dir.iterdir())  # the sockets are removed on stop


def test_server_that_cannot_listen_fails_at_start_and_stops_cleanly(tmp_path):
    server = ATTPeripheralServer(World(peripherals=[peripheral()]), tmp_path / "missing")
    with pytest.raises(OSError):
        server.start()
    server.stop()  # nothing left to release, no thread to join
    with pytest.raises(RuntimeError, match="starts once"):
        server.start()
