"""Discovery from a Find Information listing, pure (no port)."""

from __future__ import annotations

import uuid

import pytest

from pygatt.backends.bgapi.discovery import build_characteristics, short_uuid, uuid_from_wire, uuid_to_wire
from pygatt.util import uuid16_to_uuid

U = uuid16_to_uuid
CUSTOM = uuid.UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")


def test_uuid_wire_forms() -> None:
    assert uuid_from_wire(bytes.fromhex("372a")) == U(0x2A37)
    assert uuid_from_wire(bytes(reversed(CUSTOM.bytes))) == CUSTOM
    assert uuid_from_wire(bytes.fromhex("78563412")) == uuid.UUID("12345678-0000-1000-8000-00805f9b34fb")
    assert uuid_to_wire(U(0x2A37)) == bytes.fromhex("372a")
    assert uuid_to_wire(CUSTOM) == bytes(reversed(CUSTOM.bytes))
    assert short_uuid(U(0x2902)) == 0x2902 and short_uuid(CUSTOM) is None
    with pytest.raises(ValueError):
        uuid_from_wire(b"\x01\x02\x03")


def test_declarations_give_value_handles_and_descriptors() -> None:
    listing = [
        (1, U(0x2800)), (2, U(0x2803)), (3, U(0x2A37)), (4, U(0x2902)), (5, U(0x2908)),
        (6, U(0x2803)), (7, CUSTOM), (8, U(0x2800)), (9, U(0x2803)), (10, U(0x2A37)), (11, U(0x2902)),
    ]  # fmt: skip
    found = build_characteristics(listing)
    assert set(found) == {U(0x2A37), CUSTOM}
    assert found[U(0x2A37)].handle == 3  # the first of two with one UUID (lowest value handle)
    assert found[U(0x2A37)].descriptors == {U(0x2902): 4, U(0x2908): 5}  # 0x2908 is a descriptor here
    assert found[CUSTOM].handle == 7 and found[CUSTOM].descriptors == {}


def test_listing_without_declarations_is_read_as_500_did() -> None:
    listing = [(1, U(0x1800)), (2, U(0x2A00)), (3, U(0x2901)), (4, CUSTOM), (5, U(0x2902))]
    found = build_characteristics(listing)
    assert found[U(0x2A00)].handle == 2 and found[U(0x2A00)].descriptors == {U(0x2901): 3}
    assert found[CUSTOM].handle == 4 and found[CUSTOM].descriptors == {U(0x2902): 5}
    assert U(0x1800) not in found
