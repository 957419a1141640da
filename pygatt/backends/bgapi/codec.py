"""BGAPI wire format: frames and typed encode/decode with the message table of :mod:`.messages`. No I/O.

A BGAPI frame is a 4-byte header and a payload::

    byte 0   bit 7: 1 = event, 0 = command or response
             bits 6..3: technology (0 = Bluetooth LE)
             bits 2..0: payload length bits 10..8
    byte 1   payload length bits 7..0  (length = ((b0 & 7) << 8) | b1, 0..2047)
    byte 2   message class (0 system, 3 connection, 4 attclient, 5 sm, 6 gap, ...)
    byte 3   message id; a response repeats the class and id of its command
    4..      payload: little-endian integers, 6-byte addresses least significant
             byte first, and at most one length-prefixed byte array, always last

:class:`FrameDecoder` turns a byte stream into :class:`Packet` objects and
recovers after garbage; :func:`decode` turns a packet into a :class:`Message`
with named fields; :func:`encode_command`, :func:`encode_response` and
:func:`encode_event` build the bytes of a message from its name and fields.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from pygatt.backends.bgapi.messages import (
    ALL_BONDS,
    BD_ADDR,
    COMMANDS_WITHOUT_RESPONSE,
    I8,
    NO_BOND,
    U8,
    U16,
    UINT8ARRAY,
    AddressType,
    AttributeValueType,
    CodecError,
    ConnectionFlag,
    GapConnectableMode,
    GapDiscoverableMode,
    GapDiscoverMode,
    Kind,
    MessageClass,
    MessageSpec,
    ScanPacketType,
    by_id,
    lookup,
    message_specs,
    spec_for,
)

log = logging.getLogger(__name__)

HEADER_SIZE = 4
MAX_PAYLOAD = 2047
TECHNOLOGY_BLE = 0
_ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")

__all__ = [
    "ALL_BONDS",
    "BD_ADDR",
    "COMMANDS_WITHOUT_RESPONSE",
    "HEADER_SIZE",
    "I8",
    "MAX_PAYLOAD",
    "NO_BOND",
    "TECHNOLOGY_BLE",
    "U8",
    "U16",
    "UINT8ARRAY",
    "AddressType",
    "AttributeValueType",
    "CodecError",
    "ConnectionFlag",
    "FrameDecoder",
    "GapConnectableMode",
    "GapDiscoverMode",
    "GapDiscoverableMode",
    "Kind",
    "Message",
    "MessageClass",
    "MessageSpec",
    "Packet",
    "ScanPacketType",
    "address_from_bytes",
    "address_to_bytes",
    "decode",
    "decode_bytes",
    "decode_payload",
    "encode",
    "encode_command",
    "encode_event",
    "encode_payload",
    "encode_response",
    "lookup",
    "message_specs",
    "parse_header",
    "spec_for",
]


# -- packets and framing ------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One BGAPI frame: header fields and the raw payload."""

    is_event: bool
    msg_class: int
    msg_id: int
    payload: bytes = b""
    technology: int = TECHNOLOGY_BLE

    def to_bytes(self) -> bytes:
        """The frame's bytes, header included.

        Raises:
            CodecError: a header field is out of range or the payload is too long.
        """
        size = len(self.payload)
        if size > MAX_PAYLOAD:
            raise CodecError(f"payload of {size} bytes exceeds {MAX_PAYLOAD}")
        if not 0 <= self.technology <= 15 or not 0 <= self.msg_class <= 255 or not 0 <= self.msg_id <= 255:
            raise CodecError(f"header field out of range in {self!r}")
        byte0 = (0x80 if self.is_event else 0) | (self.technology << 3) | (size >> 8)
        return bytes((byte0, size & 0xFF, self.msg_class, self.msg_id)) + bytes(self.payload)


def parse_header(header: Union[bytes, bytearray]) -> Tuple[bool, int, int, int, int]:
    """(is_event, technology, payload length, class, id) of a 4-byte header."""
    b0 = header[0]
    return bool(b0 & 0x80), (b0 >> 3) & 0x0F, ((b0 & 0x07) << 8) | header[1], header[2], header[3]


class FrameDecoder:
    """Incremental frame decoder that drops bytes until it is in step again.

    Args:
        from_host: True to decode what a host sends (commands, as a simulated
            dongle does); False (default) for what a dongle sends (responses
            and events).

    A candidate frame is accepted only if its technology is Bluetooth LE, its
    class/id is in the message table for that direction, the payload length
    fits the message layout and a trailing byte array's length byte matches.
    Anything else costs one byte and the search starts again at the next.
    Frames larger than any known message are never waited for, so garbage cannot
    make the decoder swallow good frames that follow, except when it happens to
    look like the header of a known message: the transport calls :meth:`expire`
    when the line has been idle, which gives up on a partial frame and recovers
    whatever complete frames sat behind its first byte. ``expects_response``,
    when given, narrows responses down to those a command is waiting for, so
    garbage that looks like any other response header is skipped at once.

    Args:
        from_host: see above.
        expects_response: ``expects_response(class, id)`` is True when a response
            with that class and id is awaited (None: every response is plausible).
    """

    def __init__(self, from_host: bool = False, expects_response: Optional[Callable[[int, int], bool]] = None) -> None:
        self._buffer = bytearray()
        self._expects_response = None if from_host else expects_response
        # what can arrive: events (only from a dongle) and commands (from a host) or responses (from a dongle)
        self._events = {} if from_host else by_id(Kind.EVENT)
        self._others = by_id(Kind.COMMAND if from_host else Kind.RESPONSE)
        self.dropped = 0
        self.frames = 0

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame kept for the next :meth:`feed`."""
        return len(self._buffer)

    def feed(self, data: bytes) -> List[Packet]:
        """Add bytes from the line; returns the complete packets now found (possibly none)."""
        self._buffer.extend(data)
        return self._drain()

    def expire(self) -> List[Packet]:
        """Give up on a partial frame (the line went idle); returns packets recovered from its bytes."""
        packets: List[Packet] = []
        while self._buffer:
            self._drop(1)
            packets.extend(self._drain())
        return packets

    def reset(self) -> None:
        """Forget any partial frame (after the port was reopened)."""
        self._buffer.clear()

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        self.dropped += count

    def _drain(self) -> List[Packet]:
        packets: List[Packet] = []
        buf = self._buffer
        while buf:
            b0 = buf[0]
            if (b0 & 0x78) != 0:  # technology other than Bluetooth LE
                self._drop(1)
                continue
            if len(buf) < HEADER_SIZE:
                break
            is_event, _, size, msg_class, msg_id = parse_header(buf)
            spec = (self._events if is_event else self._others).get((msg_class, msg_id))
            if spec is None or not spec.payload_size_ok(size):
                self._drop(1)
                continue
            if not is_event and self._expects_response is not None and not self._expects_response(msg_class, msg_id):
                self._drop(1)  # a response nobody waits for: line noise that looks like a header
                continue
            if len(buf) < HEADER_SIZE + size:
                break
            payload = bytes(buf[HEADER_SIZE : HEADER_SIZE + size])
            if spec.has_array and payload[spec.fixed_size] != size - spec.fixed_size - 1:
                self._drop(1)
                continue
            if self.dropped:
                log.debug("BGAPI decoder in step again at %s after %d dropped bytes so far", spec.name, self.dropped)
            del buf[: HEADER_SIZE + size]
            self.frames += 1
            packets.append(Packet(is_event, msg_class, msg_id, payload))
        return packets


# -- typed messages -----------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A decoded message: its table entry's name, kind, class/id and field values.

    ``bd_addr`` fields are strings like ``"01:23:45:67:89:AB"``, ``uint8array``
    fields are ``bytes`` and the rest are ints. ``message["result"]`` reads a field.
    """

    name: str
    kind: Kind
    msg_class: int
    msg_id: int
    fields: Dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when the message has no such field."""
        return self.fields.get(key, default)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.fields.items())
        return f"{self.kind.value} {self.name}({shown})"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex(" ") if value else "''"
    return repr(value)


def address_to_bytes(address: str) -> bytes:
    """``"01:23:45:67:89:AB"`` -> its 6 bytes on the wire (least significant first).

    Raises:
        CodecError: not six colon-separated hex bytes.
    """
    if not isinstance(address, str) or not _ADDRESS_RE.match(address):
        raise CodecError(f"not a Bluetooth address (want 'XX:XX:XX:XX:XX:XX'): {address!r}")
    return bytes(reversed(bytes.fromhex(address.replace(":", ""))))


def address_from_bytes(raw: bytes) -> str:
    """6 wire bytes (least significant first) -> ``"01:23:45:67:89:AB"``."""
    return ":".join(f"{b:02X}" for b in reversed(raw))


def _encode_field(spec: MessageSpec, name: str, ftype: str, value: Any) -> bytes:
    where = f"{spec.name}.{name}"
    if ftype == BD_ADDR:
        try:
            return address_to_bytes(value)
        except CodecError as exc:
            raise CodecError(f"{where}: {exc}") from None
    if ftype == UINT8ARRAY:
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
            data = bytes(value)
        else:
            raise CodecError(f"{where} must be bytes, got {value!r}")
        if len(data) > 255:
            raise CodecError(f"{where} is {len(data)} bytes; at most 255 fit")
        return bytes((len(data),)) + data
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{where} must be an int, got {value!r}")
    low, high, fmt = {U8: (0, 0xFF, "<B"), I8: (-128, 127, "<b"), U16: (0, 0xFFFF, "<H")}[ftype]
    if not low <= value <= high:
        raise CodecError(f"{where}={value} is out of range {low}..{high} for {ftype}")
    return struct.pack(fmt, value)


def encode_payload(spec: MessageSpec, values: Mapping[str, Any]) -> bytes:
    """The payload bytes of ``spec`` with ``values`` for its fields.

    Raises:
        CodecError: a field is missing, unknown or has a bad value.
    """
    names = [name for name, _ in spec.fields]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise CodecError(f"{spec.kind.value} {spec.name} has no field(s) {', '.join(unknown)}")
    missing = [name for name in names if name not in values]
    if missing:
        raise CodecError(f"{spec.kind.value} {spec.name} needs field(s) {', '.join(missing)}")
    return b"".join(_encode_field(spec, name, ftype, values[name]) for name, ftype in spec.fields)


def _encode(kind: Kind, name: str, values: Mapping[str, Any]) -> bytes:
    spec = spec_for(kind, name)
    payload = encode_payload(spec, values)
    return Packet(kind is Kind.EVENT, spec.msg_class, spec.msg_id, payload).to_bytes()


def encode_command(name: str, **fields: Any) -> bytes:
    """The frame of command ``name``, e.g. ``encode_command("gap_discover", mode=2)``.

    Raises:
        CodecError: unknown command, or a field missing, unknown or out of range.
    """
    return _encode(Kind.COMMAND, name, fields)


def encode_response(name: str, **fields: Any) -> bytes:
    """The frame of the response to command ``name``.

    Raises:
        CodecError: unknown message (or one without a response), or a bad field.
    """
    return _encode(Kind.RESPONSE, name, fields)


def encode_event(name: str, **fields: Any) -> bytes:
    """The frame of event ``name``.

    Raises:
        CodecError: unknown event, or a field missing, unknown or out of range.
    """
    return _encode(Kind.EVENT, name, fields)


def encode(message: Message) -> bytes:
    """The frame of a :class:`Message` (the inverse of :func:`decode`)."""
    return _encode(message.kind, message.name, message.fields)


def decode_payload(spec: MessageSpec, payload: bytes) -> Dict[str, Any]:
    """The field values of ``spec`` read from ``payload``.

    Raises:
        CodecError: the payload does not fit the layout.
    """
    if not spec.payload_size_ok(len(payload)):
        raise CodecError(f"{spec.kind.value} {spec.name}: payload of {len(payload)} bytes does not fit its layout")
    fixed = spec.fixed_struct.unpack_from(payload, 0)
    values: Dict[str, Any] = {}
    for (name, ftype), value in zip(spec.fields, fixed):
        values[name] = address_from_bytes(value) if ftype == BD_ADDR else value
    if spec.has_array:
        offset = spec.fixed_size
        size = payload[offset]
        if offset + 1 + size != len(payload):
            raise CodecError(
                f"{spec.kind.value} {spec.name}: {spec.fields[-1][0]} claims {size} bytes, "
                f"{len(payload) - offset - 1} follow"
            )
        values[spec.fields[-1][0]] = bytes(payload[offset + 1 :])
    return values


def decode(packet: Packet, from_host: bool = False) -> Message:
    """The typed message in ``packet``.

    Args:
        packet: a frame, as :class:`FrameDecoder` returns them.
        from_host: True if the packet was sent by a host (a non-event frame is then
            a command); False (default) for frames from a dongle (a response).

    Returns:
        The decoded message.

    Raises:
        CodecError: unknown class/id for that direction, or a payload that does not
            fit the layout.
    """
    if packet.is_event:
        kind = Kind.EVENT
    else:
        kind = Kind.COMMAND if from_host else Kind.RESPONSE
    spec = lookup(kind, packet.msg_class, packet.msg_id)
    if spec is None:
        raise CodecError(f"unknown BGAPI {kind.value} class {packet.msg_class} id {packet.msg_id}")
    return Message(spec.name, kind, spec.msg_class, spec.msg_id, decode_payload(spec, packet.payload))


def decode_bytes(frame: bytes, from_host: bool = False) -> Message:
    """Decode exactly one complete frame given as bytes.

    Raises:
        CodecError: not exactly one well-formed frame.
    """
    if len(frame) < HEADER_SIZE:
        raise CodecError(f"a frame has at least {HEADER_SIZE} bytes, got {len(frame)}")
    is_event, technology, size, msg_class, msg_id = parse_header(frame)
    if technology != TECHNOLOGY_BLE:
        raise CodecError(f"technology {technology} is not Bluetooth LE")
    if len(frame) != HEADER_SIZE + size:
        raise CodecError(f"header says {size} payload bytes, frame has {len(frame) - HEADER_SIZE}")
    return decode(Packet(is_event, msg_class, msg_id, bytes(frame[HEADER_SIZE:])), from_host=from_host)
