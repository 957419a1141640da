"""Small helpers that pygatt 5.0.0 exposed as ``pygatt.util``."""

from __future__ import annotations

import uuid

BASE_UUID_TEMPLATE = "0000{:04x}-0000-1000-8000-00805f9b34fb"


def uuid16_to_uuid(uuid16: int) -> uuid.UUID:
    """Expand a 16-bit assigned number to the full 128-bit Bluetooth UUID.

    Args:
        uuid16: the assigned number, 0x0000 to 0xFFFF (``0x2A19``, Battery Level).

    Returns:
        The UUID on the Bluetooth base UUID, ``0000xxxx-0000-1000-8000-00805f9b34fb``.

    Raises:
        TypeError: not an int.
        ValueError: outside 0x0000..0xFFFF.

    Example:
        >>> uuid16_to_uuid(0x2A00)
        UUID('00002a00-0000-1000-8000-00805f9b34fb')
    """
    if isinstance(uuid16, bool) or not isinstance(uuid16, int):
        raise TypeError(f"uuid16 must be an int, got {type(uuid16).__name__}")
    if not 0 <= uuid16 <= 0xFFFF:
        raise ValueError(f"uuid16 must be within 0x0000..0xFFFF, got {uuid16:#x}")
    return uuid.UUID(BASE_UUID_TEMPLATE.format(uuid16))
