"""Advertising data: split the AD structures of a scan packet and name them.

Advertising and scan-response payloads are a sequence of AD structures, each
``length, type, data[length - 1]``. A zero length ends the significant part.
Every structure is kept, known type or not; a truncated last structure is kept
with the bytes that are there and flagged, never an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

# AD type -> the key pygatt 5.0.0 used for it in scan results' packet_data
AD_TYPE_NAMES: Dict[int, str] = {
    0x01: "flags",
    0x02: "incomplete_list_16-bit_service_class_uuids",
    0x03: "complete_list_16-bit_service_class_uuids",
    0x04: "incomplete_list_32-bit_service_class_uuids",
    0x05: "complete_list_32-bit_service_class_uuids",
    0x06: "incomplete_list_128-bit_service_class_uuids",
    0x07: "complete_list_128-bit_service_class_uuids",
    0x08: "shortened_local_name",
    0x09: "complete_local_name",
    0x0A: "tx_power_level",
    0x0D: "class_of_device",
    0x0E: "simple_pairing_hash_c/c-192",
    0x0F: "simple_pairing_randomizer_r/r-192",
    0x10: "device_id/security_manager_tk_value",
    0x11: "security_manager_out_of_band_flags",
    0x12: "slave_connection_interval_range",
    0x14: "list_of_16-bit_service_solicitation_uuids",
    0x15: "list_of_128-bit_service_solicitation_uuids",
    0x16: "service_data/service_data-16-bit_uuid",
    0x17: "public_target_address",
    0x18: "random_target_address",
    0x19: "appearance",
    0x1A: "advertising_interval",
    0x1B: "LE_bluetooth_device_address",
    0x1C: "LE_role",
    0x1D: "simple_pairing_hash_c-256",
    0x1E: "simple_pairing_randomizer_r-256",
    0x1F: "list_of_32-bit_service_solicitation_uuids",
    0x20: "service_data-32-bit_uuid",
    0x21: "service_data-128-bit_uuid",
    0x22: "LE_secure_connections_confirmation_value",
    0x23: "LE_secure_connections_random_value",
    0x24: "URI",
    0x25: "indoor_positioning",
    0x26: "transport_discovery_data",
    0x27: "LE_supported_features",
    0x28: "channel_map_update_indication",
    0x29: "PB_ADV",
    0x2A: "mesh_message",
    0x2B: "mesh_beacon",
    0x2C: "BIGInfo",
    0x2D: "broadcast_code",
    0x2E: "resolvable_set_identifier",
    0x2F: "advertising_interval_long",
    0x3D: "3D_information_data",
    0xFF: "manufacturer_specific_data",
}

NAME_TYPES = (0x09, 0x08)  # complete local name first
#: The one UUID list 5.0.0 turned into strings (the incomplete list, 0x06, stayed bytes there).
UUID128_LIST_TYPES = (0x07,)

# scan packet_type -> pygatt 5.0.0's name for it
PACKET_TYPE_NAMES: Dict[int, str] = {
    0: "connectable_advertisement_packet",
    1: "directed_advertisement_packet",
    2: "non-connectable_advertisement_packet",
    3: "scan_request_packet",
    4: "scan_response_packet",
    5: "connect_request_packet",
    6: "discoverable_advertisement_packet",
}


def ad_type_name(ad_type: int) -> str:
    """The packet_data key of an AD type; unknown types are ``"ad_type_0x30"``."""
    return AD_TYPE_NAMES.get(ad_type, f"ad_type_0x{ad_type:02x}")


def packet_type_name(packet_type: int) -> str:
    """The name of a scan ``packet_type``; unknown values are ``"packet_type_7"``."""
    return PACKET_TYPE_NAMES.get(packet_type, f"packet_type_{packet_type}")


@dataclass(frozen=True)
class ADStructure:
    """One AD structure: its type, its data and whether it was cut short."""

    ad_type: int
    data: bytes
    truncated: bool = False

    @property
    def name(self) -> str:
        """The packet_data key of this structure's type."""
        return ad_type_name(self.ad_type)


def split(data: bytes) -> List[ADStructure]:
    """The AD structures in ``data``, in order.

    Args:
        data: an advertising or scan-response payload.

    Returns:
        Every structure found; the last one has ``truncated=True`` if its length
        byte promised more bytes than there are.
    """
    structures: List[ADStructure] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0:  # the significant part ends here
            break
        body = data[offset + 1 : offset + 1 + length]
        if not body:
            break
        truncated = len(body) < length
        structures.append(ADStructure(body[0], bytes(body[1:]), truncated))
        if truncated:
            log.debug("AD structure of type 0x%02x is cut short: %d of %d bytes", body[0], len(body), length)
        offset += 1 + length
    return structures


def _uuid128_strings(data: bytes) -> List[str]:
    """Each 16-byte UUID (least significant byte first) as 5.0.0 printed it: ``"0x0F:0E:...:00"``."""
    return ["0x" + ":".join(f"{byte:02X}" for byte in reversed(data[at : at + 16])) for at in range(0, len(data), 16)]


def _value(structure: ADStructure) -> Any:
    if structure.ad_type in NAME_TYPES:
        return structure.data.decode("utf-8", errors="replace")
    if structure.ad_type in UUID128_LIST_TYPES and len(structure.data) % 16 == 0:
        return _uuid128_strings(structure.data)
    return bytearray(structure.data)


def parse(data: bytes) -> Tuple[Optional[str], Dict[str, Any]]:
    """The device name and the packet_data fields of one scan packet.

    Args:
        data: an advertising or scan-response payload.

    Returns:
        ``(name, fields)``: the complete (else shortened) local name or None, and a
        dict from AD type name to value: names as ``str``, the complete list of 128-bit
        UUIDs as strings such as ``"0x0F:0E:...:00"``, anything else as a ``bytearray``
        (as pygatt 5.0.0).
    """
    fields: Dict[str, Any] = {}
    names: Dict[int, str] = {}
    for structure in split(data):
        value = _value(structure)
        fields[structure.name] = value
        if structure.ad_type in NAME_TYPES:
            names[structure.ad_type] = value
    name = next((names[t] for t in NAME_TYPES if t in names), None)
    return name, fields
