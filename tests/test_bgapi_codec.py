"""The pure BGAPI codec: frames, every message both ways, resynchronisation, result codes, AD data."""

from __future__ import annotations

import random
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pygatt.backends.bgapi import advertising, codec, error_codes
from pygatt.backends.bgapi.codec import (
    BD_ADDR,
    I8,
    U8,
    U16,
    UINT8ARRAY,
    CodecError,
    FrameDecoder,
    Kind,
    MessageSpec,
    Packet,
)

# -- examples from the protocol notes, byte for byte ---------------------------


def test_examples_byte_for_byte() -> None:
    assert codec.encode_command("gap_end_procedure") == bytes.fromhex("00 00 06 04")
    assert codec.encode_response("gap_end_procedure", result=0) == bytes.fromhex("00 02 06 04 00 00")
    assert codec.encode_command("system_reset", boot_in_dfu=0) == bytes.fromhex("00 01 00 00 00")
    assert codec.encode_event("attclient_procedure_completed", connection=0, result=0, chrhandle=3) == bytes.fromhex(
        "80 05 04 01 00 00 00 03 00"
    )
    assert codec.encode_command(
        "gap_connect_direct",
        address="01:23:45:67:89:AB",
        addr_type=0,
        conn_interval_min=60,
        conn_interval_max=76,
        timeout=100,
        latency=0,
    ) == bytes.fromhex("00 0F 06 03 AB 89 67 45 23 01 00 3C 00 4C 00 64 00 00 00")
    assert codec.encode_response("gap_connect_direct", result=0, connection_handle=0) == bytes.fromhex(
        "00 03 06 03 00 00 00"
    )
    assert codec.encode_event(
        "connection_status",
        connection=0,
        flags=0x05,
        address="01:23:45:67:89:AB",
        address_type=0,
        conn_interval=60,
        timeout=100,
        latency=0,
        bonding=0xFF,
    ) == bytes.fromhex("80 10 03 00 00 05 AB 89 67 45 23 01 00 3C 00 64 00 00 00 FF")
    assert codec.encode_event(
        "attclient_attribute_value", connection=0, atthandle=3, type=1, value=b"\x00\x3c"
    ) == bytes.fromhex("80 07 04 05 00 03 00 01 02 00 3C")
    assert codec.encode_event(
        "attclient_find_information_found", connection=0, chrhandle=3, uuid=bytes.fromhex("372A")
    ) == bytes.fromhex("80 06 04 04 00 03 00 02 37 2A")
    assert codec.encode_response("sm_set_bondable_mode") == bytes.fromhex("00 00 05 01")


def test_decode_examples() -> None:
    message = codec.decode_bytes(bytes.fromhex("80 10 03 00 00 05 AB 89 67 45 23 01 00 3C 00 64 00 00 00 FF"))
    assert message.name == "connection_status" and message.kind is Kind.EVENT
    assert message["address"] == "01:23:45:67:89:AB"
    assert message["flags"] == 5 and message["conn_interval"] == 60 and message["bonding"] == 0xFF
    rsp = codec.decode_bytes(bytes.fromhex("00 03 06 03 00 00 02"))
    assert rsp.kind is Kind.RESPONSE and rsp.fields == {"result": 0, "connection_handle": 2}
    cmd = codec.decode_bytes(bytes.fromhex("00 0F 06 03") + bytes(15), from_host=True)
    assert cmd.kind is Kind.COMMAND and cmd.name == "gap_connect_direct"
    rssi = codec.decode_bytes(codec.encode_response("connection_get_rssi", connection=1, rssi=-60))
    assert rssi["rssi"] == -60


# -- every message both ways ---------------------------------------------------


def _sample(ftype: str, rng: random.Random) -> Any:
    if ftype == U8:
        return rng.randrange(256)
    if ftype == U16:
        return rng.randrange(65536)
    if ftype == I8:
        return rng.randrange(-128, 128)
    if ftype == BD_ADDR:
        return ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30)))


def _encoder(kind: Kind) -> Any:
    return {Kind.COMMAND: codec.encode_command, Kind.RESPONSE: codec.encode_response, Kind.EVENT: codec.encode_event}[
        kind
    ]


ALL_SPECS = codec.message_specs()


def test_table_has_every_message_of_the_notes() -> None:
    commands = {(s.msg_class, s.msg_id) for s in codec.message_specs(Kind.COMMAND)}
    events = {(s.msg_class, s.msg_id) for s in codec.message_specs(Kind.EVENT)}
    assert commands == {
        (0, 0), (0, 2), (0, 6), (3, 0), (3, 1), (4, 1), (4, 2), (4, 3), (4, 4), (4, 5), (4, 6), (4, 7),
        (4, 8), (4, 9), (4, 10), (5, 0), (5, 1), (5, 2), (5, 5), (6, 1), (6, 2), (6, 3), (6, 4), (6, 7),
    }  # fmt: skip
    assert events == {(0, 0), (3, 0), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4), (4, 5), (5, 1), (5, 4), (6, 0)}
    responses = {(s.msg_class, s.msg_id) for s in codec.message_specs(Kind.RESPONSE)}
    assert responses == commands - {(0, 0)}  # system_reset has no response
    assert codec.COMMANDS_WITHOUT_RESPONSE == {"system_reset"}


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.kind.value}-{s.name}")
def test_every_message_round_trips(spec: MessageSpec) -> None:
    rng = random.Random(spec.name)
    for _ in range(20):
        values = {name: _sample(ftype, rng) for name, ftype in spec.fields}
        frame = _encoder(spec.kind)(spec.name, **values)
        assert len(frame) == codec.HEADER_SIZE + spec.fixed_size + (
            1 + len(values[spec.fields[-1][0]]) if spec.has_array else 0
        )
        assert bool(frame[0] & 0x80) == (spec.kind is Kind.EVENT)
        assert (frame[2], frame[3]) == (spec.msg_class, spec.msg_id)
        message = codec.decode_bytes(frame, from_host=spec.kind is Kind.COMMAND)
        assert (message.name, message.kind) == (spec.name, spec.kind)
        assert message.fields == values
        assert codec.encode(message) == frame
        decoder = FrameDecoder(from_host=spec.kind is Kind.COMMAND)
        assert [codec.decode(p, from_host=spec.kind is Kind.COMMAND) for p in decoder.feed(frame)] == [message]


def test_encode_errors_are_clear() -> None:
    with pytest.raises(CodecError, match="unknown BGAPI command 'nope'"):
        codec.encode_command("nope")
    with pytest.raises(CodecError, match="needs field"):
        codec.encode_command("gap_discover")
    with pytest.raises(CodecError, match="has no field"):
        codec.encode_command("gap_discover", mode=1, extra=2)
    with pytest.raises(CodecError, match="out of range"):
        codec.encode_command("gap_discover", mode=256)
    with pytest.raises(CodecError, match="out of range"):
        codec.encode_response("connection_get_rssi", connection=0, rssi=-129)
    with pytest.raises(CodecError, match="must be an int"):
        codec.encode_command("gap_discover", mode=True)
    with pytest.raises(CodecError, match="not a Bluetooth address"):
        codec.encode_event("gap_scan_response", rssi=0, packet_type=0, sender="01:02", address_type=0, bond=0, data=b"")
    with pytest.raises(CodecError, match="at most 255"):
        codec.encode_command("attclient_write_command", connection=0, atthandle=1, data=bytes(256))
    with pytest.raises(CodecError, match="must be bytes"):
        codec.encode_command("attclient_write_command", connection=0, atthandle=1, data="text")
    with pytest.raises(CodecError):
        codec.encode_response("system_reset", boot_in_dfu=0)  # a command without a response


def test_decode_errors_are_clear() -> None:
    with pytest.raises(CodecError, match="unknown BGAPI response class 9 id 9"):
        codec.decode(Packet(False, 9, 9, b""))
    with pytest.raises(CodecError, match="does not fit"):
        codec.decode(Packet(False, 6, 4, b"\x00"))
    with pytest.raises(CodecError, match="claims 5 bytes"):
        codec.decode(Packet(True, 4, 5, bytes.fromhex("00 03 00 01 05 00 3c")))
    with pytest.raises(CodecError, match="technology"):
        codec.decode_bytes(bytes.fromhex("08 00 06 04"))


def test_eleven_bit_length() -> None:
    packet = Packet(True, 4, 5, bytes(300))
    frame = packet.to_bytes()
    assert frame[0] == 0x81 and frame[1] == 300 - 256
    assert codec.parse_header(frame)[2] == 300
    with pytest.raises(CodecError):
        Packet(False, 0, 0, bytes(2048)).to_bytes()


# -- the incremental decoder ---------------------------------------------------

FRAMES: List[bytes] = [
    codec.encode_response("gap_end_procedure", result=0),
    codec.encode_event("attclient_procedure_completed", connection=0, result=0, chrhandle=3),
    codec.encode_event("attclient_attribute_value", connection=1, atthandle=3, type=1, value=b"\x00\x3c"),
    codec.encode_response("sm_set_bondable_mode"),
    codec.encode_event(
        "gap_scan_response",
        rssi=-50,
        packet_type=0,
        sender="01:02:03:04:05:06",
        address_type=0,
        bond=0xFF,
        data=bytes.fromhex("020106 0509414243 44"),
    ),
    codec.encode_response("system_address_get", address="AA:BB:CC:DD:EE:FF"),
]


def test_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    out: List[bytes] = []
    for byte in b"".join(FRAMES):
        out.extend(p.to_bytes() for p in decoder.feed(bytes([byte])))
    assert out == FRAMES and decoder.pending == 0 and decoder.dropped == 0


def test_stray_byte_before_frames_is_dropped_not_misframed() -> None:
    # pygatt 5.0.0 emitted 00 00 02 06, 00 00 80 05, ... for this stream
    decoder = FrameDecoder()
    packets = decoder.feed(b"\x00" + FRAMES[0] + FRAMES[1])
    assert [p.to_bytes() for p in packets] == FRAMES[:2]
    assert decoder.dropped == 1


def test_unknown_class_id_and_bad_array_length_are_skipped() -> None:
    bad_array = bytes.fromhex("80 07 04 05 00 03 00 01 09 00 3c")  # array claims 9 bytes, 2 follow
    unknown = bytes.fromhex("00 00 09 09")
    wifi = bytes.fromhex("08 00 00 00")
    decoder = FrameDecoder()
    packets = decoder.feed(unknown + bad_array + wifi + FRAMES[2])
    assert [p.to_bytes() for p in packets] == [FRAMES[2]]


def test_expire_recovers_frames_swallowed_by_a_false_header() -> None:
    # garbage that looks like the header of a 6-byte system_address_get response
    decoder = FrameDecoder()
    fake_header = bytes.fromhex("00 06 00 02")
    assert decoder.feed(fake_header + FRAMES[0][:3]) == []
    assert decoder.pending == 7
    assert [p.to_bytes() for p in decoder.expire()] == []
    assert decoder.pending == 0
    decoder.feed(fake_header)
    recovered = decoder.feed(FRAMES[1][:2]) + decoder.expire() + decoder.feed(FRAMES[1][2:])
    assert recovered == []  # the frame was cut by the idle gap: lost, but the decoder is in step
    assert [p.to_bytes() for p in decoder.feed(FRAMES[2])] == [FRAMES[2]]


def test_responses_nobody_awaits_are_line_noise() -> None:
    awaited = {(4, 4)}
    decoder = FrameDecoder(expects_response=lambda c, i: (c, i) in awaited)
    read_response = codec.encode_response("attclient_read_by_handle", connection=0, result=0)
    fake_header = bytes.fromhex("00 06 00 02 01")  # a plausible system_address_get response header
    packets = decoder.feed(fake_header + read_response + FRAMES[1])
    assert [p.to_bytes() for p in packets] == [read_response, FRAMES[1]]  # no idle gap needed
    unfiltered = FrameDecoder()
    assert [p.to_bytes() for p in unfiltered.feed(fake_header + read_response)] != [read_response]


def test_commands_direction() -> None:
    decoder = FrameDecoder(from_host=True)
    command = codec.encode_command("attclient_read_by_handle", connection=0, chrhandle=3)
    event = FRAMES[1]
    packets = decoder.feed(event + command)
    assert [codec.decode(p, from_host=True).name for p in packets] == ["attclient_read_by_handle"]


frame_strategy = st.sampled_from(FRAMES)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.lists(st.integers(min_value=1, max_value=50), max_size=20))
def test_random_bytes_never_raise(data: bytes, cuts: List[int]) -> None:
    decoder = FrameDecoder()
    position = 0
    for cut in cuts:
        for packet in decoder.feed(data[position : position + cut]):
            codec.decode(packet)  # every packet the decoder yields decodes
        position += cut
    for packet in decoder.feed(data[position:]) + decoder.expire():
        codec.decode(packet)
    assert decoder.pending == 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=200),
    st.lists(frame_strategy, min_size=1, max_size=10),
    st.lists(st.integers(min_value=1, max_value=17), max_size=30),
)
def test_valid_frames_after_garbage_and_an_idle_gap_are_recovered(
    garbage: bytes, frames: List[bytes], cuts: List[int]
) -> None:
    decoder = FrameDecoder()
    for packet in decoder.feed(garbage):
        codec.decode(packet)
    decoder.expire()  # the line went quiet: the transport gives up on a partial frame
    stream = b"".join(frames)
    out: List[bytes] = []
    position = 0
    for cut in cuts:
        out.extend(p.to_bytes() for p in decoder.feed(stream[position : position + cut]))
        position += cut
    out.extend(p.to_bytes() for p in decoder.feed(stream[position:]))
    assert out == frames


NON_STARTING_BYTES = [b for b in range(256) if b & 0x78]  # technology bits set: never a BLE frame start


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(NON_STARTING_BYTES), max_size=200),
    st.lists(frame_strategy, min_size=1, max_size=10),
    st.lists(st.integers(min_value=1, max_value=17), max_size=30),
)
def test_frames_right_after_line_noise_are_recovered_without_a_gap(
    garbage: List[int], frames: List[bytes], cuts: List[int]
) -> None:
    decoder = FrameDecoder()
    stream = bytes(garbage) + b"".join(frames)
    out: List[bytes] = []
    position = 0
    for cut in cuts:
        out.extend(p.to_bytes() for p in decoder.feed(stream[position : position + cut]))
        position += cut
    out.extend(p.to_bytes() for p in decoder.feed(stream[position:]))
    assert out == frames
    assert decoder.dropped == len(garbage)


@settings(max_examples=200)
@given(st.sampled_from(ALL_SPECS), st.data())
def test_round_trip_property(spec: MessageSpec, data: st.DataObject) -> None:
    values: Dict[str, Any] = {}
    for name, ftype in spec.fields:
        if ftype == U8:
            values[name] = data.draw(st.integers(0, 255))
        elif ftype == U16:
            values[name] = data.draw(st.integers(0, 0xFFFF))
        elif ftype == I8:
            values[name] = data.draw(st.integers(-128, 127))
        elif ftype == BD_ADDR:
            values[name] = codec.address_from_bytes(data.draw(st.binary(min_size=6, max_size=6)))
        else:
            assert ftype == UINT8ARRAY
            values[name] = data.draw(st.binary(max_size=255))
    frame = _encoder(spec.kind)(spec.name, **values)
    assert codec.decode_bytes(frame, from_host=spec.kind is Kind.COMMAND).fields == values


# -- result codes ----------------------------------------------------------------

CODES = [
    0x0180, 0x0181, 0x0182, 0x0183, 0x0184, 0x0185, 0x0186, 0x0187, 0x0188, 0x0189, 0x018A, 0x018B,
    0x0205, 0x0206, 0x0207, 0x0208, 0x0209, 0x020C, 0x0212, 0x0213, 0x0216, 0x0222, 0x0228, 0x023A,
    0x023B, 0x023C, 0x023D, 0x023E,
    0x0301, 0x0302, 0x0303, 0x0304, 0x0305, 0x0306, 0x0307, 0x0308, 0x0309, 0x030A,
    0x0401, 0x0402, 0x0403, 0x0404, 0x0405, 0x0406, 0x0407, 0x0408, 0x0409, 0x040A, 0x040B, 0x040C,
    0x040D, 0x040E, 0x040F, 0x0410, 0x0411, 0x0480,
]  # fmt: skip


def test_every_result_code_has_a_name_and_message() -> None:
    assert sorted(error_codes.RETURN_CODES) == CODES
    names = {error_codes.name_of(code) for code in CODES}
    assert len(names) == len(CODES)
    for code in CODES:
        assert error_codes.get_return_message(code) == error_codes.RETURN_CODES[code].message
        assert f"0x{code:04x}" in error_codes.describe(code)


def test_result_code_helpers() -> None:
    assert error_codes.get_return_message(0) == "Success"
    assert error_codes.get_return_message(0x0401) == "The attribute handle given was not valid on this server"
    assert error_codes.get_return_message(0x0216) == "Local device terminated the connection"
    assert error_codes.get_return_message(0x04F3) == "Attribute protocol error 0x04f3"
    assert error_codes.get_return_message(0x7777) == "Unknown return code 0x7777"
    assert error_codes.att_error_of(0x040A) == 0x0A
    assert error_codes.att_error_of(0x0216) is None
    assert error_codes.name_of(0x0209) == "connection_limit_exceeded"
    assert error_codes.lookup(0x0305) is not None
    assert error_codes.RETURN_CODES[0x0305].space is error_codes.ErrorSpace.SECURITY_MANAGER


# -- advertising data ----------------------------------------------------------


def test_advertising_parse_known_and_unknown_types() -> None:
    uuid128 = bytes(range(16))
    data = (
        bytes([2, 0x01, 0x06])
        + bytes([5, 0x09]) + b"Abcd"
        + bytes([3, 0x08]) + b"Ab"
        + bytes([17, 0x07]) + uuid128
        + bytes([3, 0x30, 0xAA, 0xBB])
        + bytes([4, 0xFF, 0x4C, 0x00, 0x01])
    )  # fmt: skip
    name, fields = advertising.parse(data)
    assert name == "Abcd"
    assert fields["flags"] == bytearray([6])
    assert fields["shortened_local_name"] == "Ab"
    # as pygatt 5.0.0 printed them: most significant byte first, colons between bytes
    assert fields["complete_list_128-bit_service_class_uuids"] == ["0x0F:0E:0D:0C:0B:0A:09:08:07:06:05:04:03:02:01:00"]
    assert fields["ad_type_0x30"] == bytearray([0xAA, 0xBB])
    assert fields["manufacturer_specific_data"] == bytearray([0x4C, 0x00, 0x01])


def test_advertising_fields_named_and_shaped_as_500() -> None:
    """pygatt 5.0.0 named the AD types up to 0x2F and kept the incomplete 128-bit UUID list as bytes."""
    data = (
        bytes([17, 0x06]) + bytes(range(16))
        + bytes([3, 0x22, 0x01, 0x02])
        + bytes([3, 0x2F, 0x03, 0x04])
    )  # fmt: skip
    _, fields = advertising.parse(data)
    assert fields == {
        "incomplete_list_128-bit_service_class_uuids": bytearray(range(16)),
        "LE_secure_connections_confirmation_value": bytearray([1, 2]),
        "advertising_interval_long": bytearray([3, 4]),
    }


def test_advertising_truncated_and_padding() -> None:
    structures = advertising.split(bytes([2, 0x01, 0x06, 9, 0x09, 0x41]))
    assert structures[0] == advertising.ADStructure(0x01, b"\x06")
    assert structures[1] == advertising.ADStructure(0x09, b"A", truncated=True)
    assert advertising.split(bytes([2, 0x01, 0x06, 0, 0, 0])) == [advertising.ADStructure(0x01, b"\x06")]
    assert advertising.parse(b"") == (None, {})
    assert advertising.parse(bytes([3, 0x09, 0xFF, 0xFE]))[0] == "\ufffd\ufffd"
    assert advertising.packet_type_name(4) == "scan_response_packet"
    assert advertising.packet_type_name(9) == "packet_type_9"


@given(st.binary(max_size=64))
def test_advertising_never_raises(data: bytes) -> None:
    name, fields = advertising.parse(data)
    assert name is None or isinstance(name, str)
    assert all(isinstance(key, str) for key in fields)
