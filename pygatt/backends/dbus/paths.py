"""BlueZ object paths and pygatt's addresses and handles, both ways (pure, no I/O).

BlueZ names every object after what it stands for:

* ``/org/bluez/hci0`` is the adapter ``hci0``;
* ``/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01`` is the device ``C4:7C:8D:6A:3E:01``;
* ``…/serviceSSSS`` is a service whose declaration is at handle ``SSSS`` (hex);
* ``…/charCCCC`` is a characteristic whose *declaration* is at handle ``CCCC``:
  its value, the handle pygatt reports and gatttool prints, is ``CCCC + 1``;
* ``…/descDDDD`` is a descriptor at handle ``DDDD``.

The CCCD of a characteristic is its ``descDDDD`` child with UUID 0x2902 (not
simply value + 1: another descriptor may come first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from pygatt import validate

BLUEZ_ROOT = "/org/bluez"

_DEVICE = re.compile(r"(/org/bluez/hci[0-9]{1,3}/dev_(?:[0-9A-F]{2}_){5}[0-9A-F]{2})(?:/.*)?")
_ATTRIBUTE = re.compile(r"/(service|char|desc)([0-9a-f]{4})$")


def adapter_path(hci_device: str) -> str:
    """``"hci0"`` -> ``"/org/bluez/hci0"``.

    Args:
        hci_device: an adapter name like ``hci0``.

    Returns:
        The adapter's object path.

    Raises:
        ValueError: the name is not like ``hci0``.
    """
    return f"{BLUEZ_ROOT}/{validate.hci_device(hci_device)}"


def device_path(hci_device: str, address: str) -> str:
    """The object path BlueZ gives the device ``address`` on adapter ``hci_device``.

    Args:
        hci_device: an adapter name like ``hci0``.
        address: ``AA:BB:CC:DD:EE:FF`` in any case.

    Returns:
        ``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF``.

    Raises:
        ValueError: either argument is malformed.
    """
    return f"{adapter_path(hci_device)}/dev_{validate.address(address).replace(':', '_')}"


def device_path_of(path: str) -> Optional[str]:
    """The device path that ``path`` is (or lies under), or None when it is not under a device."""
    match = _DEVICE.fullmatch(path)
    return match.group(1) if match else None


def address_of(path: str) -> Optional[str]:
    """The Bluetooth address of the device ``path`` is (or lies under), or None."""
    device = device_path_of(path)
    if device is None:
        return None
    return device.rsplit("/dev_", 1)[1].replace("_", ":")


@dataclass(frozen=True)
class AttributePath:
    """What the last element of a GATT object path says.

    Attributes:
        kind: ``"service"``, ``"char"`` or ``"desc"``.
        number: the handle in the path (a characteristic's declaration handle).
    """

    kind: str
    number: int

    @property
    def handle(self) -> int:
        """The handle pygatt uses: the value handle for a characteristic, else the number itself."""
        return self.number + 1 if self.kind == "char" else self.number


def parse_attribute(path: str) -> Optional[AttributePath]:
    """Parse ``…/char000b`` into ``AttributePath("char", 0x000b)``; None for other paths."""
    match = _ATTRIBUTE.search(path)
    if match is None:
        return None
    return AttributePath(match.group(1), int(match.group(2), 16))


def value_handle(char_path: str) -> int:
    """The value handle of the characteristic at ``char_path`` (declaration handle + 1).

    Raises:
        ValueError: the path is not a characteristic's.
    """
    attribute = parse_attribute(char_path)
    if attribute is None or attribute.kind != "char":
        raise ValueError(f"not a characteristic object path: {char_path!r}")
    return attribute.handle
