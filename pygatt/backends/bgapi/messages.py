"""The BGAPI messages pygatt knows: names, kinds, class/id and field layouts, and their enums.

A table, no logic beyond lookups: :mod:`pygatt.backends.bgapi.codec` encodes
and decodes with it. Field types are ``u8``, ``u16``, ``i8``, ``bd_addr`` (6
bytes, least significant first) and ``uint8array`` (a length byte and the
bytes, always the last field). A response has the name, class and id of its
command.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union


class CodecError(ValueError):
    """A message cannot be encoded or a packet cannot be decoded."""


class Kind(enum.Enum):
    """Which of the three message kinds a message is."""

    COMMAND = "command"
    RESPONSE = "response"
    EVENT = "event"


class MessageClass(enum.IntEnum):
    """The class byte of a BGAPI frame."""

    SYSTEM = 0
    FLASH = 1
    ATTRIBUTES = 2
    CONNECTION = 3
    ATTCLIENT = 4
    SM = 5
    GAP = 6
    HARDWARE = 7
    TEST = 8
    DFU = 9


class ConnectionFlag(enum.IntFlag):
    """The ``flags`` of a connection_status event."""

    CONNECTED = 0x01
    ENCRYPTED = 0x02
    COMPLETED = 0x04
    PARAMETERS_CHANGE = 0x08


class AttributeValueType(enum.IntEnum):
    """The ``type`` of an attclient_attribute_value event."""

    READ = 0
    NOTIFY = 1
    INDICATE = 2
    READ_BY_TYPE = 3
    READ_BLOB = 4
    INDICATE_RSP_REQ = 5


class ScanPacketType(enum.IntEnum):
    """The ``packet_type`` of a gap_scan_response event."""

    CONNECTABLE_ADVERTISEMENT = 0
    DIRECTED_ADVERTISEMENT = 1
    NON_CONNECTABLE_ADVERTISEMENT = 2
    SCAN_REQUEST = 3
    SCAN_RESPONSE = 4
    CONNECT_REQUEST = 5
    DISCOVERABLE_ADVERTISEMENT = 6


class GapDiscoverMode(enum.IntEnum):
    """The ``mode`` of gap_discover."""

    LIMITED = 0
    GENERIC = 1
    OBSERVATION = 2


class GapDiscoverableMode(enum.IntEnum):
    """The ``discover`` argument of gap_set_mode."""

    NON_DISCOVERABLE = 0
    LIMITED_DISCOVERABLE = 1
    GENERAL_DISCOVERABLE = 2
    BROADCAST = 3
    USER_DATA = 4


class GapConnectableMode(enum.IntEnum):
    """The ``connect`` argument of gap_set_mode."""

    NON_CONNECTABLE = 0
    DIRECTED_CONNECTABLE = 1
    UNDIRECTED_CONNECTABLE = 2
    SCANNABLE_NON_CONNECTABLE = 3


class AddressType(enum.IntEnum):
    """A remote device's address type as BGAPI encodes it."""

    PUBLIC = 0
    RANDOM = 1


NO_BOND = 0xFF
ALL_BONDS = 0xFF

# -- field types --------------------------------------------------------------

U8 = "u8"
U16 = "u16"
I8 = "i8"
BD_ADDR = "bd_addr"
UINT8ARRAY = "uint8array"

_FIXED_SIZES = {U8: 1, I8: 1, U16: 2, BD_ADDR: 6}
_STRUCT_CODES = {U8: "B", I8: "b", U16: "H", BD_ADDR: "6s"}

FieldValue = Union[int, str, bytes]  # what a field holds: an int, an address string or bytes
Layout = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class MessageSpec:
    """One message of the table: its name, kind, class/id and field layout."""

    name: str
    kind: Kind
    msg_class: int
    msg_id: int
    fields: Layout
    #: bytes taken by the fields before a trailing uint8array (all of them if there is none)
    fixed_size: int = field(init=False, repr=False, compare=False)
    #: True if the last field is a length-prefixed byte array
    has_array: bool = field(init=False, repr=False, compare=False)
    #: the fixed fields as one little-endian struct (``bd_addr`` as 6 raw bytes)
    fixed_struct: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fixed = [ftype for _, ftype in self.fields if ftype != UINT8ARRAY]
        # computed once: the decoder asks for these for every frame
        object.__setattr__(self, "fixed_size", sum(_FIXED_SIZES[ftype] for ftype in fixed))
        object.__setattr__(self, "has_array", bool(self.fields) and self.fields[-1][1] == UINT8ARRAY)
        object.__setattr__(self, "fixed_struct", struct.Struct("<" + "".join(_STRUCT_CODES[f] for f in fixed)))

    def payload_size_ok(self, size: int) -> bool:
        """Whether a payload of ``size`` bytes can hold this message."""
        if self.has_array:
            return self.fixed_size + 1 <= size <= self.fixed_size + 1 + 255
        return size == self.fixed_size


def _layout(*fields: Tuple[str, str]) -> Layout:
    for index, (_, ftype) in enumerate(fields):
        if ftype == UINT8ARRAY and index != len(fields) - 1:
            raise AssertionError("a uint8array must be the last field")
    return tuple(fields)


# (name, class, id, command fields, response fields or None when there is no response)
_COMMANDS: Tuple[Tuple[str, int, int, Layout, Optional[Layout]], ...] = (
    ("system_reset", 0, 0, _layout(("boot_in_dfu", U8)), None),
    ("system_address_get", 0, 2, _layout(), _layout(("address", BD_ADDR))),
    ("system_get_connections", 0, 6, _layout(), _layout(("maxconn", U8))),
    (
        "connection_disconnect",
        3,
        0,
        _layout(("connection", U8)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "connection_get_rssi",
        3,
        1,
        _layout(("connection", U8)),
        _layout(("connection", U8), ("rssi", I8)),
    ),
    (
        "attclient_read_by_group_type",
        4,
        1,
        _layout(("connection", U8), ("start", U16), ("end", U16), ("uuid", UINT8ARRAY)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_read_by_type",
        4,
        2,
        _layout(("connection", U8), ("start", U16), ("end", U16), ("uuid", UINT8ARRAY)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_find_information",
        4,
        3,
        _layout(("connection", U8), ("start", U16), ("end", U16)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_read_by_handle",
        4,
        4,
        _layout(("connection", U8), ("chrhandle", U16)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_attribute_write",
        4,
        5,
        _layout(("connection", U8), ("atthandle", U16), ("data", UINT8ARRAY)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_write_command",
        4,
        6,
        _layout(("connection", U8), ("atthandle", U16), ("data", UINT8ARRAY)),
        _layout(("connection", U8), ("result", U16)),
    ),
    ("attclient_indicate_confirm", 4, 7, _layout(("connection", U8)), _layout(("result", U16))),
    (
        "attclient_read_long",
        4,
        8,
        _layout(("connection", U8), ("chrhandle", U16)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_prepare_write",
        4,
        9,
        _layout(("connection", U8), ("atthandle", U16), ("offset", U16), ("data", UINT8ARRAY)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "attclient_execute_write",
        4,
        10,
        _layout(("connection", U8), ("commit", U8)),
        _layout(("connection", U8), ("result", U16)),
    ),
    (
        "sm_encrypt_start",
        5,
        0,
        _layout(("handle", U8), ("bonding", U8)),
        _layout(("handle", U8), ("result", U16)),
    ),
    ("sm_set_bondable_mode", 5, 1, _layout(("bondable", U8)), _layout()),
    ("sm_delete_bonding", 5, 2, _layout(("handle", U8)), _layout(("result", U16))),
    ("sm_get_bonds", 5, 5, _layout(), _layout(("bonds", U8))),
    ("gap_set_mode", 6, 1, _layout(("discover", U8), ("connect", U8)), _layout(("result", U16))),
    ("gap_discover", 6, 2, _layout(("mode", U8)), _layout(("result", U16))),
    (
        "gap_connect_direct",
        6,
        3,
        _layout(
            ("address", BD_ADDR),
            ("addr_type", U8),
            ("conn_interval_min", U16),
            ("conn_interval_max", U16),
            ("timeout", U16),
            ("latency", U16),
        ),
        _layout(("result", U16), ("connection_handle", U8)),
    ),
    ("gap_end_procedure", 6, 4, _layout(), _layout(("result", U16))),
    (
        "gap_set_scan_parameters",
        6,
        7,
        _layout(("scan_interval", U16), ("scan_window", U16), ("active", U8)),
        _layout(("result", U16)),
    ),
)

_EVENTS: Tuple[Tuple[str, int, int, Layout], ...] = (
    (
        "system_boot",
        0,
        0,
        _layout(
            ("major", U16),
            ("minor", U16),
            ("patch", U16),
            ("build", U16),
            ("ll_version", U16),
            ("protocol_version", U8),
            ("hw", U8),
        ),
    ),
    (
        "connection_status",
        3,
        0,
        _layout(
            ("connection", U8),
            ("flags", U8),
            ("address", BD_ADDR),
            ("address_type", U8),
            ("conn_interval", U16),
            ("timeout", U16),
            ("latency", U16),
            ("bonding", U8),
        ),
    ),
    ("connection_disconnected", 3, 4, _layout(("connection", U8), ("reason", U16))),
    (
        "attclient_procedure_completed",
        4,
        1,
        _layout(("connection", U8), ("result", U16), ("chrhandle", U16)),
    ),
    (
        "attclient_group_found",
        4,
        2,
        _layout(("connection", U8), ("start", U16), ("end", U16), ("uuid", UINT8ARRAY)),
    ),
    (
        "attclient_attribute_found",
        4,
        3,
        _layout(("connection", U8), ("chrdecl", U16), ("value", U16), ("properties", U8), ("uuid", UINT8ARRAY)),
    ),
    (
        "attclient_find_information_found",
        4,
        4,
        _layout(("connection", U8), ("chrhandle", U16), ("uuid", UINT8ARRAY)),
    ),
    (
        "attclient_attribute_value",
        4,
        5,
        _layout(("connection", U8), ("atthandle", U16), ("type", U8), ("value", UINT8ARRAY)),
    ),
    ("sm_bonding_fail", 5, 1, _layout(("handle", U8), ("result", U16))),
    ("sm_bond_status", 5, 4, _layout(("bond", U8), ("keysize", U8), ("mitm", U8), ("keys", U8))),
    (
        "gap_scan_response",
        6,
        0,
        _layout(
            ("rssi", I8),
            ("packet_type", U8),
            ("sender", BD_ADDR),
            ("address_type", U8),
            ("bond", U8),
            ("data", UINT8ARRAY),
        ),
    ),
)


def _build_tables() -> Tuple[Dict[Kind, Dict[str, MessageSpec]], Dict[Tuple[Kind, int, int], MessageSpec]]:
    by_name: Dict[Kind, Dict[str, MessageSpec]] = {kind: {} for kind in Kind}
    by_id: Dict[Tuple[Kind, int, int], MessageSpec] = {}

    def add(spec: MessageSpec) -> None:
        if spec.name in by_name[spec.kind] or (spec.kind, spec.msg_class, spec.msg_id) in by_id:
            raise AssertionError(f"duplicate message {spec}")
        by_name[spec.kind][spec.name] = spec
        by_id[(spec.kind, spec.msg_class, spec.msg_id)] = spec

    for name, cls, mid, request, response in _COMMANDS:
        add(MessageSpec(name, Kind.COMMAND, cls, mid, request))
        if response is not None:
            add(MessageSpec(name, Kind.RESPONSE, cls, mid, response))
    for name, cls, mid, layout in _EVENTS:
        add(MessageSpec(name, Kind.EVENT, cls, mid, layout))
    return by_name, by_id


_BY_NAME, _BY_ID = _build_tables()

COMMANDS_WITHOUT_RESPONSE = frozenset(name for name, _, _, _, response in _COMMANDS if response is None)


def message_specs(kind: Optional[Kind] = None) -> List[MessageSpec]:
    """Every message of the table, or those of one kind."""
    kinds = [kind] if kind is not None else list(Kind)
    return [spec for k in kinds for spec in _BY_NAME[k].values()]


def spec_for(kind: Kind, name: str) -> MessageSpec:
    """The table entry of message ``name`` of ``kind``.

    Raises:
        CodecError: no such message.
    """
    try:
        return _BY_NAME[kind][name]
    except KeyError:
        raise CodecError(f"unknown BGAPI {kind.value} {name!r}") from None


_BY_KIND_AND_ID: Dict[Kind, Dict[Tuple[int, int], MessageSpec]] = {
    kind: {(spec.msg_class, spec.msg_id): spec for spec in _BY_NAME[kind].values()} for kind in Kind
}


def by_id(kind: Kind) -> Mapping[Tuple[int, int], MessageSpec]:
    """The messages of ``kind`` by ``(class, id)`` (for a decoder's per-frame lookups)."""
    return _BY_KIND_AND_ID[kind]


def lookup(kind: Kind, msg_class: int, msg_id: int) -> Optional[MessageSpec]:
    """The table entry for ``kind`` at class/id, or None if the table has none."""
    return _BY_KIND_AND_ID[kind].get((msg_class, msg_id))
