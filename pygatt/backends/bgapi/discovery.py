"""Discovery, pure: UUIDs as BGAPI sends them, and characteristics from a Find Information listing."""

from __future__ import annotations

import uuid
from typing import Dict, List, Optional, Tuple

from pygatt.backends.backend import Characteristic
from pygatt.util import uuid16_to_uuid

PRIMARY_SERVICE = 0x2800
SECONDARY_SERVICE = 0x2801
INCLUDE = 0x2802
CHARACTERISTIC = 0x2803
GROUPING_TYPES = frozenset({PRIMARY_SERVICE, SECONDARY_SERVICE, INCLUDE, CHARACTERISTIC})
SERVICE_UUIDS = frozenset({0x1800, 0x1801})
DESCRIPTOR_RANGE = range(0x2900, 0x2906)


def uuid_from_wire(raw: bytes) -> uuid.UUID:
    """A UUID as BGAPI sends it (2, 4 or 16 bytes, least significant first).

    Raises:
        ValueError: another length.
    """
    if len(raw) == 2:
        return uuid16_to_uuid(int.from_bytes(raw, "little"))
    if len(raw) == 4:
        return uuid.UUID(f"{int.from_bytes(raw, 'little'):08x}-0000-1000-8000-00805f9b34fb")
    if len(raw) == 16:
        return uuid.UUID(bytes=bytes(reversed(raw)))
    raise ValueError(f"a UUID has 2, 4 or 16 bytes, got {raw.hex()}")


def uuid_to_wire(value: uuid.UUID) -> bytes:
    """The bytes BGAPI expects for a UUID: 2 bytes for a Bluetooth base UUID, else 16, least significant first."""
    text = str(value)
    if text.startswith("0000") and text[8:] == "-0000-1000-8000-00805f9b34fb":
        return int(text[4:8], 16).to_bytes(2, "little")
    return bytes(reversed(value.bytes))


def short_uuid(value: uuid.UUID) -> Optional[int]:
    """The 16-bit number of a Bluetooth base UUID, else None."""
    raw = uuid_to_wire(value)
    return int.from_bytes(raw, "little") if len(raw) == 2 else None


def build_characteristics(attributes: List[Tuple[int, uuid.UUID]]) -> Dict[uuid.UUID, Characteristic]:
    """Characteristics and descriptors from a Find Information listing.

    The attribute after each characteristic declaration (0x2803) is a value
    handle whose type is the characteristic's UUID; the attributes after it, up
    to the next declaration or service, are its descriptors. A peer that lists no
    declaration at all is read the way pygatt 5.0.0 did: every 128-bit or
    non-GATT 16-bit type is a characteristic and 0x2900..0x2905 its descriptors.

    Args:
        attributes: ``(handle, type UUID)`` pairs in handle order.

    Returns:
        ``{UUID: Characteristic}``; a UUID seen twice keeps the lowest value handle.
    """
    found: Dict[uuid.UUID, Characteristic] = {}
    current: Optional[Characteristic] = None
    declared = any(short_uuid(u) == CHARACTERISTIC for _, u in attributes)
    after_declaration = False
    for handle, attr_uuid in sorted(attributes, key=lambda pair: pair[0]):
        number = short_uuid(attr_uuid)
        if declared:
            if number == CHARACTERISTIC:
                after_declaration = True
                current = None
            elif number in GROUPING_TYPES:
                after_declaration = False
                current = None
            elif after_declaration:
                after_declaration = False
                current = Characteristic(attr_uuid, handle)
                found.setdefault(attr_uuid, current)
            elif current is not None:
                current.add_descriptor(attr_uuid, handle)
            continue
        if number is not None and (number in GROUPING_TYPES or number in SERVICE_UUIDS):
            continue
        if number is not None and number in DESCRIPTOR_RANGE:
            if current is not None:
                current.add_descriptor(attr_uuid, handle)
            continue
        current = Characteristic(attr_uuid, handle)
        found.setdefault(attr_uuid, current)
    return found
