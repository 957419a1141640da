"""ATT protocol data units: decoding requests, encoding responses (no I/O).

Every function here works on ``bytes`` only, so the codec can be tested alone.
Opcodes, field layouts and error codes are those of the Bluetooth Core
specification, Vol 3, Part F (Attribute Protocol). Multi-byte fields are
little-endian; a UUID is 2 bytes when it is a Bluetooth base UUID, 16 otherwise.
"""

from __future__ import annotations

import struct
import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple, Type, Union

# -- opcodes -----------------------------------------------------------------------------
ERROR_RSP = 0x01
EXCHANGE_MTU_REQ = 0x02
EXCHANGE_MTU_RSP = 0x03
FIND_INFO_REQ = 0x04
FIND_INFO_RSP = 0x05
FIND_BY_TYPE_VALUE_REQ = 0x06
FIND_BY_TYPE_VALUE_RSP = 0x07
READ_BY_TYPE_REQ = 0x08
READ_BY_TYPE_RSP = 0x09
READ_REQ = 0x0A
READ_RSP = 0x0B
READ_BLOB_REQ = 0x0C
READ_BLOB_RSP = 0x0D
READ_MULTIPLE_REQ = 0x0E
READ_BY_GROUP_TYPE_REQ = 0x10
READ_BY_GROUP_TYPE_RSP = 0x11
WRITE_REQ = 0x12
WRITE_RSP = 0x13
PREPARE_WRITE_REQ = 0x16
PREPARE_WRITE_RSP = 0x17
EXECUTE_WRITE_REQ = 0x18
EXECUTE_WRITE_RSP = 0x19
HANDLE_VALUE_NTF = 0x1B
HANDLE_VALUE_IND = 0x1D
HANDLE_VALUE_CFM = 0x1E
WRITE_CMD = 0x52
SIGNED_WRITE_CMD = 0xD2

#: Bit 6 of an opcode marks a command: it is never answered, not even with an error.
COMMAND_FLAG = 0x40

# -- error codes -------------------------------------------------------------------------
INVALID_HANDLE = 0x01
READ_NOT_PERMITTED = 0x02
WRITE_NOT_PERMITTED = 0x03
INVALID_PDU = 0x04
INSUFFICIENT_AUTHENTICATION = 0x05
REQUEST_NOT_SUPPORTED = 0x06
INVALID_OFFSET = 0x07
INSUFFICIENT_AUTHORIZATION = 0x08
PREPARE_QUEUE_FULL = 0x09
ATTRIBUTE_NOT_FOUND = 0x0A
ATTRIBUTE_NOT_LONG = 0x0B
INSUFFICIENT_ENCRYPTION_KEY_SIZE = 0x0C
INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
UNLIKELY_ERROR = 0x0E
INSUFFICIENT_ENCRYPTION = 0x0F
UNSUPPORTED_GROUP_TYPE = 0x10
INSUFFICIENT_RESOURCES = 0x11

DEFAULT_MTU = 23
MAX_VALUE_LENGTH = 512
BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


class PDUError(ValueError):
    """A PDU that cannot be decoded. ``opcode`` is its first byte (0 when empty)."""

    def __init__(self, message: str, opcode: int = 0, handle: int = 0) -> None:
        super().__init__(message)
        self.opcode = opcode
        self.handle = handle


# -- UUIDs ---------------------------------------------------------------------------------


def uuid_to_att(text: str) -> bytes:
    """A UUID (``"2a00"`` or 128-bit text) as ATT sends it: 2 bytes for base UUIDs, else 16.

    Args:
        text: the UUID, 16-bit (4 hex digits) or 128-bit.

    Returns:
        The little-endian UUID bytes.
    """
    text = text.strip().lower()
    if len(text) == 4:
        return int(text, 16).to_bytes(2, "little")
    value = uuid_module.UUID(text)
    short = str(value)
    if short.endswith(BASE_UUID_TAIL) and short.startswith("0000"):
        return int(short[4:8], 16).to_bytes(2, "little")
    return value.bytes[::-1]


def uuid_from_att(data: bytes) -> str:
    """A 2- or 16-byte ATT UUID as 128-bit lower-case text.

    Args:
        data: the little-endian UUID bytes.

    Returns:
        The UUID as ``xxxxxxxx-xxxx-...`` text.

    Raises:
        PDUError: when ``data`` is neither 2 nor 16 bytes long.
    """
    if len(data) == 2:
        return f"{int.from_bytes(data, 'little'):08x}{BASE_UUID_TAIL}"
    if len(data) == 16:
        return str(uuid_module.UUID(bytes=bytes(data[::-1])))
    raise PDUError(f"a UUID is 2 or 16 bytes, got {len(data)}")


# -- requests (what a client sends) ------------------------------------------------------


@dataclass(frozen=True)
class ExchangeMTURequest:
    """Exchange MTU Request: the client's receive MTU."""

    mtu: int


@dataclass(frozen=True)
class FindInformationRequest:
    """Find Information Request: list handles and types in a range."""

    start: int
    end: int


@dataclass(frozen=True)
class FindByTypeValueRequest:
    """Find By Type Value Request: attributes of a 16-bit type with a given value."""

    start: int
    end: int
    type: str
    value: bytes


@dataclass(frozen=True)
class ReadByTypeRequest:
    """Read By Type Request: values of the attributes of one type in a range."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class ReadRequest:
    """Read Request."""

    handle: int


@dataclass(frozen=True)
class ReadBlobRequest:
    """Read Blob Request: part of a long value, from ``offset``."""

    handle: int
    offset: int


@dataclass(frozen=True)
class ReadByGroupTypeRequest:
    """Read By Group Type Request: service groups in a range."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class WriteRequest:
    """Write Request (answered by a Write Response)."""

    handle: int
    value: bytes


@dataclass(frozen=True)
class WriteCommand:
    """Write Command (never answered)."""

    handle: int
    value: bytes


@dataclass(frozen=True)
class PrepareWriteRequest:
    """Prepare Write Request: queue part of a long write."""

    handle: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class ExecuteWriteRequest:
    """Execute Write Request: flags 1 writes the queue, 0 cancels it."""

    flags: int


@dataclass(frozen=True)
class HandleValueConfirmation:
    """Handle Value Confirmation: the client received an indication."""


@dataclass(frozen=True)
class UnsupportedPDU:
    """A well-formed PDU this codec has no request type for (e.g. Read Multiple)."""

    opcode: int
    params: bytes = field(default=b"")


Request = Union[
    ExchangeMTURequest,
    FindInformationRequest,
    FindByTypeValueRequest,
    ReadByTypeRequest,
    ReadRequest,
    ReadBlobRequest,
    ReadByGroupTypeRequest,
    WriteRequest,
    WriteCommand,
    PrepareWriteRequest,
    ExecuteWriteRequest,
    HandleValueConfirmation,
    UnsupportedPDU,
]


def _range(opcode: int, params: bytes) -> Tuple[int, int, bytes]:
    if len(params) < 4:
        raise PDUError("the handle range is cut short", opcode)
    start, end = struct.unpack_from("<HH", params)
    return start, end, params[4:]


def _handle(opcode: int, params: bytes, size: int) -> int:
    if len(params) < size:
        raise PDUError(f"opcode 0x{opcode:02x} needs {size} bytes of parameters, got {len(params)}", opcode)
    return int(struct.unpack_from("<H", params)[0])


def decode_request(pdu: bytes) -> Request:
    """Decode one PDU a client sent.

    Args:
        pdu: the whole PDU, opcode first.

    Returns:
        One of the request dataclasses, or :class:`UnsupportedPDU` for an opcode
        this codec does not decode.

    Raises:
        PDUError: when the PDU is empty or its parameters are malformed.
    """
    if not pdu:
        raise PDUError("an empty PDU")
    opcode, params = pdu[0], bytes(pdu[1:])
    if opcode == EXCHANGE_MTU_REQ:
        return ExchangeMTURequest(_handle(opcode, params, 2))
    if opcode == FIND_INFO_REQ:
        start, end, rest = _range(opcode, params)
        if rest:
            raise PDUError("Find Information takes only a range", opcode, start)
        return FindInformationRequest(start, end)
    if opcode == FIND_BY_TYPE_VALUE_REQ:
        start, end, rest = _range(opcode, params)
        if len(rest) < 2:
            raise PDUError("Find By Type Value needs a 16-bit type", opcode, start)
        return FindByTypeValueRequest(start, end, uuid_from_att(rest[:2]), rest[2:])
    if opcode in (READ_BY_TYPE_REQ, READ_BY_GROUP_TYPE_REQ):
        start, end, rest = _range(opcode, params)
        if len(rest) not in (2, 16):
            raise PDUError("the attribute type must be 2 or 16 bytes", opcode, start)
        kind: Type[Union[ReadByTypeRequest, ReadByGroupTypeRequest]] = (
            ReadByTypeRequest if opcode == READ_BY_TYPE_REQ else ReadByGroupTypeRequest
        )
        return kind(start, end, uuid_from_att(rest))
    if opcode == READ_REQ:
        if len(params) != 2:
            raise PDUError("Read Request takes one handle", opcode)
        return ReadRequest(_handle(opcode, params, 2))
    if opcode == READ_BLOB_REQ:
        if len(params) != 4:
            raise PDUError("Read Blob Request takes a handle and an offset", opcode)
        handle, offset = struct.unpack("<HH", params)
        return ReadBlobRequest(handle, offset)
    if opcode in (WRITE_REQ, WRITE_CMD):
        handle = _handle(opcode, params, 2)
        return (WriteRequest if opcode == WRITE_REQ else WriteCommand)(handle, params[2:])
    if opcode == PREPARE_WRITE_REQ:
        if len(params) < 4:
            raise PDUError("Prepare Write Request needs a handle and an offset", opcode)
        handle, offset = struct.unpack_from("<HH", params)
        return PrepareWriteRequest(handle, offset, params[4:])
    if opcode == EXECUTE_WRITE_REQ:
        if len(params) != 1:
            raise PDUError("Execute Write Request takes one flags byte", opcode)
        return ExecuteWriteRequest(params[0])
    if opcode == HANDLE_VALUE_CFM:
        return HandleValueConfirmation()
    return UnsupportedPDU(opcode, params)


def is_command(opcode: int) -> bool:
    """True for opcodes that are never answered (commands, confirmations, notifications)."""
    return bool(opcode & COMMAND_FLAG) or opcode in (HANDLE_VALUE_CFM, HANDLE_VALUE_NTF)


# -- responses and server-initiated PDUs -----------------------------------------------


def error_response(request_opcode: int, handle: int, code: int) -> bytes:
    """Error Response: which request failed, at which handle, and why.

    Args:
        request_opcode: the opcode of the request that failed.
        handle: the attribute handle the error is about (0 when none).
        code: the ATT error code.

    Returns:
        The PDU.
    """
    return struct.pack("<BBHB", ERROR_RSP, request_opcode, handle, code)


def exchange_mtu_response(mtu: int) -> bytes:
    """Exchange MTU Response with the server's receive MTU."""
    return struct.pack("<BH", EXCHANGE_MTU_RSP, mtu)


def find_information_response(entries: Sequence[Tuple[int, bytes]]) -> bytes:
    """Find Information Response.

    Args:
        entries: (handle, ATT UUID bytes) pairs, all with UUIDs of one size.

    Returns:
        The PDU (format 1 for 16-bit UUIDs, 2 for 128-bit).

    Raises:
        ValueError: when there are no entries or their UUID sizes differ.
    """
    sizes = {len(u) for _, u in entries}
    if len(sizes) != 1 or sizes - {2, 16}:
        raise ValueError("Find Information entries need UUIDs of one size, 2 or 16 bytes")
    body = b"".join(struct.pack("<H", h) + u for h, u in entries)
    return bytes([FIND_INFO_RSP, 1 if sizes == {2} else 2]) + body


def find_by_type_value_response(ranges: Sequence[Tuple[int, int]]) -> bytes:
    """Find By Type Value Response: (found handle, group end handle) pairs."""
    if not ranges:
        raise ValueError("a Find By Type Value Response needs at least one range")
    return bytes([FIND_BY_TYPE_VALUE_RSP]) + b"".join(struct.pack("<HH", s, e) for s, e in ranges)


def read_by_type_response(entries: Sequence[Tuple[int, bytes]]) -> bytes:
    """Read By Type Response: (handle, value) pairs, all values of one length (at most 253)."""
    lengths = {len(v) for _, v in entries}
    if len(lengths) != 1 or max(lengths) > 253:
        raise ValueError("Read By Type entries need values of one length, at most 253 bytes")
    return bytes([READ_BY_TYPE_RSP, 2 + lengths.pop()]) + b"".join(struct.pack("<H", h) + v for h, v in entries)


def read_by_group_type_response(entries: Sequence[Tuple[int, int, bytes]]) -> bytes:
    """Read By Group Type Response: (start, end, value) triples, values of one length."""
    lengths = {len(v) for _, _, v in entries}
    if len(lengths) != 1 or max(lengths) > 251:
        raise ValueError("Read By Group Type entries need values of one length, at most 251 bytes")
    body = b"".join(struct.pack("<HH", s, e) + v for s, e, v in entries)
    return bytes([READ_BY_GROUP_TYPE_RSP, 4 + lengths.pop()]) + body


def read_response(value: bytes) -> bytes:
    """Read Response carrying ``value`` (already cut to MTU - 1 bytes)."""
    return bytes([READ_RSP]) + value


def read_blob_response(value: bytes) -> bytes:
    """Read Blob Response carrying part of a value."""
    return bytes([READ_BLOB_RSP]) + value


def write_response() -> bytes:
    """Write Response."""
    return bytes([WRITE_RSP])


def prepare_write_response(handle: int, offset: int, value: bytes) -> bytes:
    """Prepare Write Response: the request's fields echoed back."""
    return struct.pack("<BHH", PREPARE_WRITE_RSP, handle, offset) + value


def execute_write_response() -> bytes:
    """Execute Write Response."""
    return bytes([EXECUTE_WRITE_RSP])


def notification(handle: int, value: bytes) -> bytes:
    """Handle Value Notification."""
    return struct.pack("<BH", HANDLE_VALUE_NTF, handle) + value


def indication(handle: int, value: bytes) -> bytes:
    """Handle Value Indication (the client must confirm it)."""
    return struct.pack("<BH", HANDLE_VALUE_IND, handle) + value


# -- decoding what a server sends (for tests and clients) --------------------------------


@dataclass(frozen=True)
class Response:
    """A decoded server PDU: its opcode and parameters, plus the fields tests look at."""

    opcode: int
    params: bytes
    fields: Dict[str, object]


def decode_response(pdu: bytes) -> Response:
    """Decode a PDU a server sent (responses, errors, notifications, indications).

    Args:
        pdu: the whole PDU.

    Returns:
        A :class:`Response` whose ``fields`` hold the decoded parameters.

    Raises:
        PDUError: when the PDU is empty or cut short.
    """
    if not pdu:
        raise PDUError("an empty PDU")
    opcode, params = pdu[0], bytes(pdu[1:])
    fields: Dict[str, object] = {}
    try:
        if opcode == ERROR_RSP:
            request, handle, code = struct.unpack("<BHB", params)
            fields = {"request": request, "handle": handle, "code": code}
        elif opcode == EXCHANGE_MTU_RSP:
            fields = {"mtu": struct.unpack("<H", params)[0]}
        elif opcode in (HANDLE_VALUE_NTF, HANDLE_VALUE_IND):
            fields = {"handle": struct.unpack_from("<H", params)[0], "value": params[2:]}
        elif opcode == FIND_INFO_RSP:
            size = 2 if params[0] == 1 else 16
            body = params[1:]
            step = 2 + size
            fields = {
                "entries": [
                    (struct.unpack_from("<H", body, i)[0], uuid_from_att(body[i + 2 : i + step]))
                    for i in range(0, len(body), step)
                ]
            }
        elif opcode in (READ_BY_TYPE_RSP, READ_BY_GROUP_TYPE_RSP):
            step, body = params[0], params[1:]
            header = 2 if opcode == READ_BY_TYPE_RSP else 4
            entries: List[Tuple[Any, ...]] = []
            for i in range(0, len(body), step):
                handles = struct.unpack_from("<" + "H" * (header // 2), body, i)
                entries.append((*handles, body[i + header : i + step]))
            fields = {"entries": entries}
        elif opcode == FIND_BY_TYPE_VALUE_RSP:
            fields = {"ranges": [struct.unpack_from("<HH", params, i) for i in range(0, len(params), 4)]}
        elif opcode == PREPARE_WRITE_RSP:
            handle, offset = struct.unpack_from("<HH", params)
            fields = {"handle": handle, "offset": offset, "value": params[4:]}
        elif opcode in (READ_RSP, READ_BLOB_RSP):
            fields = {"value": params}
    except (struct.error, IndexError) as exc:
        raise PDUError(f"a cut-short PDU with opcode 0x{opcode:02x}: {exc}", opcode) from None
    return Response(opcode, params, fields)
