"""What a simulated peripheral advertises: Bluetooth Core advertising data (AD) structures.

Each AD structure is ``length, type, data`` with ``length`` counting the type
byte; an advertising or scan-response payload holds at most 31 bytes of them.
The advertisement carries the flags, the service UUIDs, the TX power and the
manufacturer data; the scan response (sent to active scanners) carries the name.
A world can also give either payload as raw hex.
"""

from __future__ import annotations

import logging
import uuid as uuid_module
from typing import List

from pygatt.testing.world import Peripheral, full_uuid

log = logging.getLogger(__name__)

MAX_PAYLOAD = 31
FLAGS = 0x01
COMPLETE_16BIT_UUIDS = 0x03
COMPLETE_128BIT_UUIDS = 0x07
SHORTENED_NAME = 0x08
COMPLETE_NAME = 0x09
TX_POWER = 0x0A
MANUFACTURER_DATA = 0xFF
LE_GENERAL_DISCOVERABLE = 0x02
BR_EDR_NOT_SUPPORTED = 0x04
GAP_SERVICES = ("00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb")
SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def ad_structure(ad_type: int, data: bytes) -> bytes:
    """One AD structure: its length (type byte included), its type, its data."""
    return bytes([len(data) + 1, ad_type]) + data


def advertised_uuids(peripheral: Peripheral) -> List[str]:
    """The service UUIDs (full, lower-case) a peripheral lists in its advertisement."""
    if peripheral.advertised_services is not None:
        return [full_uuid(text) for text in peripheral.advertised_services]
    return [u for u in (full_uuid(s.uuid) for s in peripheral.services) if u not in GAP_SERVICES]


def advertising_data(peripheral: Peripheral) -> bytes:
    """The advertisement's AD structures (at most 31 bytes; what does not fit is left out)."""
    if peripheral.advertising_data is not None:
        return bytes.fromhex(peripheral.advertising_data)
    short = [u for u in advertised_uuids(peripheral) if u.endswith(SIG_BASE_SUFFIX) and u.startswith("0000")]
    long = [u for u in advertised_uuids(peripheral) if u not in short]
    structures = [ad_structure(FLAGS, bytes([LE_GENERAL_DISCOVERABLE | BR_EDR_NOT_SUPPORTED]))]
    if short:
        listed = b"".join(int(u[4:8], 16).to_bytes(2, "little") for u in short)
        structures.append(ad_structure(COMPLETE_16BIT_UUIDS, listed))
    if long:
        listed = b"".join(uuid_module.UUID(u).bytes[::-1] for u in long)
        structures.append(ad_structure(COMPLETE_128BIT_UUIDS, listed))
    if peripheral.tx_power is not None:
        structures.append(ad_structure(TX_POWER, peripheral.tx_power.to_bytes(1, "little", signed=True)))
    for company, data in sorted(peripheral.manufacturer_data.items()):
        payload = int(company, 16).to_bytes(2, "little") + bytes.fromhex(data)  # company id first, as on air
        structures.append(ad_structure(MANUFACTURER_DATA, payload))
    return _fit(structures, peripheral.address)


def scan_response_data(peripheral: Peripheral) -> bytes:
    """The scan response's AD structures: the name (shortened to fit), or raw hex from the world."""
    if peripheral.scan_response_data is not None:
        return bytes.fromhex(peripheral.scan_response_data)
    if not peripheral.name:
        return b""
    name = peripheral.name.encode("utf-8")
    if len(name) <= MAX_PAYLOAD - 2:
        return ad_structure(COMPLETE_NAME, name)
    return ad_structure(SHORTENED_NAME, name[: MAX_PAYLOAD - 2])


def _fit(structures: List[bytes], address: str) -> bytes:
    payload = b""
    for structure in structures:
        if len(payload) + len(structure) > MAX_PAYLOAD:
            log.warning("advertising data of %s is over %d bytes; AD type 0x%02x left out", address, MAX_PAYLOAD,
                        structure[1])  # fmt: skip
            continue
        payload += structure
    return payload
