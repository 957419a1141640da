"""Argument checks shared by every backend.

Everything a caller passes that ends up in a command line sent to a tool is
checked here first, so a bad value fails with a clear ``ValueError`` or
``TypeError`` naming the argument, and nothing (for example a newline inside an
address) can ever smuggle a second command into a tool's input.
"""

from __future__ import annotations

import re
import uuid
from typing import Union

from pygatt.util import uuid16_to_uuid

UUIDLike = Union[str, uuid.UUID]
BytesLike = Union[bytes, bytearray, memoryview]

MAX_HANDLE = 0xFFFF
MAX_ATTRIBUTE_LENGTH = 512
#: The longest timeout accepted (about 11.5 days): every wait in pygatt has a finite deadline.
MAX_TIMEOUT_S = 1_000_000.0

_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_BARE_ADDRESS = re.compile(r"[0-9A-Fa-f]{12}")
_SHORT_UUID = re.compile(r"[0-9A-Fa-f]{4}|[0-9A-Fa-f]{8}")
_LONG_UUID = re.compile(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}")
_URN_OR_BRACED_UUID = re.compile(
    r"(?:urn:uuid:)?\{?(" + _LONG_UUID.pattern + r")\}?", re.IGNORECASE
)  # "{...}", "urn:uuid:..."
_HCI_DEVICE = re.compile(r"hci[0-9]{1,3}")


def address(value: object, name: str = "address") -> str:
    """Check a Bluetooth device address.

    Args:
        value: the address, ``AA:BB:CC:DD:EE:FF`` in any case, or its twelve hex
            digits alone (``AABBCCDDEEFF``, as pygatt 5.0.0's BGAPI backend took it).
        name: the argument's name, for the error message.

    Returns:
        The address in upper case, with colons.

    Raises:
        TypeError: not a str.
        ValueError: not six colon-separated hex bytes.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str like 'AA:BB:CC:DD:EE:FF', got {type(value).__name__}")
    if _BARE_ADDRESS.fullmatch(value):  # pygatt 5.0.0's BGAPI backend took the hex digits alone
        value = ":".join(value[i : i + 2] for i in range(0, 12, 2))
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{name} must look like 'AA:BB:CC:DD:EE:FF', got {value!r}")
    return value.upper()


def characteristic_uuid(value: object, name: str = "uuid") -> uuid.UUID:
    """Check a characteristic (or service, or descriptor) UUID.

    Args:
        value: a :class:`uuid.UUID`, or a string in any case: the full 128-bit
            form (with or without dashes, in braces or after ``urn:uuid:``, as
            :class:`uuid.UUID` reads it) or a 16- or 32-bit assigned number such
            as ``"2a37"``, which is expanded on the Bluetooth base UUID.
        name: the argument's name, for the error message.

    Returns:
        The UUID.

    Raises:
        TypeError: neither a str nor a UUID.
        ValueError: a string that is not a UUID.
    """
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or uuid.UUID, got {type(value).__name__}")
    if _LONG_UUID.fullmatch(value):
        return uuid.UUID(value)
    long_form = _URN_OR_BRACED_UUID.fullmatch(value)  # as uuid.UUID() reads them, and 5.0.0 with it
    if long_form:
        return uuid.UUID(long_form.group(1))
    if _SHORT_UUID.fullmatch(value):
        number = int(value, 16)
        if number <= 0xFFFF:
            return uuid16_to_uuid(number)
        return uuid.UUID(f"{number:08x}-0000-1000-8000-00805f9b34fb")
    raise ValueError(f"{name} is not a UUID: {value!r}")


def handle(value: object, name: str = "handle") -> int:
    """Check an attribute handle.

    Args:
        value: the handle, an int within 0x0001..0xFFFF.
        name: the argument's name, for the error message.

    Returns:
        The handle.

    Raises:
        TypeError: not an int (a bool is not a handle either).
        ValueError: outside 0x0001..0xFFFF.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_HANDLE:
        raise ValueError(f"{name} must be within 0x0001..0xFFFF, got {value}")
    return value


def value_bytes(
    value: object, name: str = "value", limit: int = MAX_ATTRIBUTE_LENGTH, *, allow_empty: bool = False
) -> bytes:
    """Check a value to write.

    Args:
        value: bytes, bytearray, memoryview or a list of ints 0..255.
        name: the argument's name, for the error message.
        limit: the largest length accepted (an attribute value holds at most 512 bytes).
        allow_empty: accept a zero-length value (ATT allows one; gatttool cannot send it).

    Returns:
        The value as bytes.

    Raises:
        TypeError: not bytes-like (a str or a number is refused, not converted).
        ValueError: empty (unless ``allow_empty``), or longer than ``limit``.
    """
    if value is None or isinstance(value, (str, int, float, set, frozenset, dict)):  # a set has no order
        raise TypeError(f"{name} must be bytes, bytearray or a list of ints, got {type(value).__name__}")
    try:
        data = bytes(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be bytes-like or a list of ints 0..255: {exc}") from None
    if not data and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if len(data) > limit:
        raise ValueError(f"{name} is {len(data)} bytes long, more than the {limit} allowed")
    return bytes(data)


def hci_device(value: object, name: str = "hci_device") -> str:
    """Check an adapter name.

    Args:
        value: the name, ``hci`` and a number (``hci0``).
        name: the argument's name, for the error message.

    Returns:
        The name.

    Raises:
        ValueError: anything else.
    """
    if not isinstance(value, str) or not _HCI_DEVICE.fullmatch(value):
        raise ValueError(f"{name} must look like 'hci0', got {value!r}")
    return value


def adapter(value: object, name: str = "hci_device") -> str:
    """Check an adapter as BlueZ's command line tools take it: ``hciN`` or the adapter's address.

    gatttool, hciconfig and hcitool (``-i``) accept both, and pygatt 5.0.0 passed the
    value on as given.

    Args:
        value: ``hci0`` or ``00:1A:7D:DA:71:13``.
        name: the argument's name, for the error message.

    Returns:
        The name, or the address in upper case.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, str) and _ADDRESS.fullmatch(value):
        return value.upper()
    if not isinstance(value, str) or not _HCI_DEVICE.fullmatch(value):
        raise ValueError(f"{name} must look like 'hci0' or be the adapter's address, got {value!r}")
    return value


def positive_timeout(value: object, name: str = "timeout") -> float:
    """Check a timeout in seconds.

    Args:
        value: a number greater than zero and at most :data:`MAX_TIMEOUT_S`.
        name: the argument's name, for the error message.

    Returns:
        The timeout as a float.

    Raises:
        TypeError: not a number.
        ValueError: zero, negative, NaN, infinite or longer than :data:`MAX_TIMEOUT_S`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not value > 0 or value != value:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    if value > MAX_TIMEOUT_S:
        raise ValueError(f"{name} must be at most {MAX_TIMEOUT_S:.0f} s, got {value}")
    return float(value)
