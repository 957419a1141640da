"""Finding USB serial devices (the BLED112 dongle) with pyserial's port list."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Iterable, List, Optional, Tuple

log = logging.getLogger(__name__)

BLED112_VENDOR_ID = 0x2458
BLED112_PRODUCT_ID = 0x0001

ComportsFunction = Callable[[], Iterable[Any]]

# "USB VID:PID=2458:0001 SER=1 LOCATION=1-1:1.0" (Linux, macOS) or "USB\VID_2458&PID_0001\1" (Windows)
_VID_PID = re.compile(r"VID[:_]?(?:PID=)?([0-9A-Fa-f]{4})[:&_ ]*(?:PID[_=]?)?([0-9A-Fa-f]{4})", re.IGNORECASE)


class USBSerialDeviceInfo:
    """A USB serial port: its description, port name and USB vendor/product ids."""

    def __init__(self) -> None:
        self.device_name: Optional[str] = None
        self.port_name: Optional[str] = None
        self.vendor_id: Optional[int] = None
        self.product_id: Optional[int] = None

    def __repr__(self) -> str:
        ids = f"{_hex_id(self.vendor_id)}:{_hex_id(self.product_id)}"
        return f"<USBSerialDeviceInfo {self.port_name} {ids} {self.device_name!r}>"

    def __str__(self) -> str:
        """``"<device name> VID=0x2458 PID=0x0001 on <port>"``, the line pygatt 5.0.0 printed."""
        return f"{self.device_name} VID={_hex_id(self.vendor_id)} PID={_hex_id(self.product_id)} on {self.port_name}"


def _hex_id(usb_id: Optional[int]) -> str:
    """A USB id as ``0x2458``, or ``None`` when unknown."""
    return "None" if usb_id is None else f"0x{usb_id:04x}"


def extract_vid_pid(info_string: str) -> Optional[Tuple[int, int]]:
    """The USB vendor and product ids in a pyserial ``hwid`` string.

    Args:
        info_string: e.g. ``"USB VID:PID=2458:0001 SER=1"`` or ``"USB\\\\VID_2458&PID_0001\\\\1"``.

    Returns:
        ``(vendor_id, product_id)`` as ints, or None when the string names none.
    """
    if not isinstance(info_string, str):
        return None
    match = _VID_PID.search(info_string)
    if match is None:
        return None
    return int(match.group(1), 16), int(match.group(2), 16)


def default_comports() -> List[Any]:
    """pyserial's list of serial ports on this machine."""
    from serial.tools import list_ports

    return list(list_ports.comports())


def describe_port(port: Any) -> str:
    """``"/dev/ttyACM0 (USB VID:PID=2458:0001 ...)"`` for an error message."""
    return f"{getattr(port, 'device', port)} ({getattr(port, 'hwid', '') or getattr(port, 'description', '')})"


def port_ids(port: Any) -> Optional[Tuple[int, int]]:
    """The USB ids of a ListPortInfo-like object (its ``vid``/``pid``, else parsed from ``hwid``)."""
    vid, pid = getattr(port, "vid", None), getattr(port, "pid", None)
    if isinstance(vid, int) and isinstance(pid, int):
        return vid, pid
    return extract_vid_pid(getattr(port, "hwid", "") or "")


def find_usb_serial_devices(
    vendor_id: Optional[int] = None, product_id: Optional[int] = None, *, comports: Optional[ComportsFunction] = None
) -> List[USBSerialDeviceInfo]:
    """Serial ports of USB devices, optionally only those with the given ids.

    Ports still enumerating (pyserial shows them as ``"n/a"``) are skipped.

    Args:
        vendor_id: keep only this USB vendor id (e.g. 0x2458), None for any.
        product_id: keep only this USB product id (e.g. 0x0001), None for any.
        comports: the port-list function (default: pyserial's ``comports``).

    Returns:
        One :class:`USBSerialDeviceInfo` per matching port, in pyserial's order.
    """
    found: List[USBSerialDeviceInfo] = []
    for port in (comports or default_comports)():
        device = getattr(port, "device", None)
        if not device or device == "n/a":
            continue
        ids = port_ids(port)
        if ids is None:
            continue
        if vendor_id is not None and ids[0] != vendor_id:
            continue
        if product_id is not None and ids[1] != product_id:
            continue
        info = USBSerialDeviceInfo()
        info.device_name = getattr(port, "description", None) or device
        info.port_name = device
        info.vendor_id, info.product_id = ids
        found.append(info)
    return found
