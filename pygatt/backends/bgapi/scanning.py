"""What a scan heard: one record per device, built from gap_scan_response events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from pygatt.backends.bgapi import advertising

if TYPE_CHECKING:
    from pygatt.backends.bgapi.codec import Message


class AdvertisingAndScanInfo:
    """What a scan heard from one device: address, name, last RSSI and the
    parsed advertising data per packet type (``packet_data``).
    """

    def __init__(self) -> None:
        self.name = ""
        self.address = ""
        self.rssi: Optional[int] = None
        self.packet_data: Dict[str, Dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<AdvertisingAndScanInfo {self.address} {self.name!r} rssi={self.rssi}>"


def record_scan_response(devices: Dict[str, AdvertisingAndScanInfo], message: Message) -> Tuple[str, str]:
    """Add one gap_scan_response to ``devices`` (by address).

    The name is kept once seen, the RSSI is the last one, and each packet type keeps
    the parsed fields of its fullest packet.

    Args:
        devices: the records so far, updated in place.
        message: a gap_scan_response event.

    Returns:
        ``(address, packet type name)`` of the packet.
    """
    address = message["sender"]
    packet_type = advertising.packet_type_name(message["packet_type"])
    name, fields = advertising.parse(message["data"])
    info = devices.get(address)
    if info is None:
        info = devices[address] = AdvertisingAndScanInfo()
        info.address = address
    if name:
        info.name = name
    info.rssi = message["rssi"]
    previous = info.packet_data.get(packet_type)
    if previous is None or len(fields) >= len(previous):
        info.packet_data[packet_type] = fields
    return address, packet_type


def scan_results(devices: Dict[str, AdvertisingAndScanInfo]) -> List[Dict[str, Any]]:
    """The list ``scan()`` returns: one dict per device with address, name, rssi and packet_data."""
    return [
        {"address": info.address, "name": info.name, "rssi": info.rssi, "packet_data": info.packet_data}
        for info in devices.values()
    ]
