"""How ``pygatt`` shows results: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, TextIO

from pygatt.util import uuid16_to_uuid

if TYPE_CHECKING:
    import uuid

_BASE_SUFFIX = str(uuid16_to_uuid(0))[8:]  # "-0000-1000-8000-00805f9b34fb"

#: Assigned numbers of common services, characteristics and descriptors.
KNOWN_UUIDS: Dict[int, str] = {
    0x1800: "Generic Access",
    0x1801: "Generic Attribute",
    0x1802: "Immediate Alert",
    0x1803: "Link Loss",
    0x1804: "Tx Power",
    0x1805: "Current Time",
    0x1809: "Health Thermometer",
    0x180A: "Device Information",
    0x180D: "Heart Rate",
    0x180F: "Battery Service",
    0x1810: "Blood Pressure",
    0x1812: "Human Interface Device",
    0x1814: "Running Speed and Cadence",
    0x1816: "Cycling Speed and Cadence",
    0x1818: "Cycling Power",
    0x181A: "Environmental Sensing",
    0x2900: "Characteristic Extended Properties",
    0x2901: "Characteristic User Description",
    0x2902: "Client Characteristic Configuration",
    0x2903: "Server Characteristic Configuration",
    0x2904: "Characteristic Presentation Format",
    0x2905: "Characteristic Aggregate Format",
    0x2906: "Valid Range",
    0x2908: "Report Reference",
    0x2A00: "Device Name",
    0x2A01: "Appearance",
    0x2A04: "Peripheral Preferred Connection Parameters",
    0x2A05: "Service Changed",
    0x2A06: "Alert Level",
    0x2A07: "Tx Power Level",
    0x2A19: "Battery Level",
    0x2A1C: "Temperature Measurement",
    0x2A1D: "Temperature Type",
    0x2A23: "System ID",
    0x2A24: "Model Number String",
    0x2A25: "Serial Number String",
    0x2A26: "Firmware Revision String",
    0x2A27: "Hardware Revision String",
    0x2A28: "Software Revision String",
    0x2A29: "Manufacturer Name String",
    0x2A2B: "Current Time",
    0x2A35: "Blood Pressure Measurement",
    0x2A37: "Heart Rate Measurement",
    0x2A38: "Body Sensor Location",
    0x2A39: "Heart Rate Control Point",
    0x2A4A: "HID Information",
    0x2A4B: "Report Map",
    0x2A4C: "HID Control Point",
    0x2A4D: "Report",
    0x2A50: "PnP ID",
    0x2A53: "RSC Measurement",
    0x2A5B: "CSC Measurement",
    0x2A63: "Cycling Power Measurement",
    0x2A6D: "Pressure",
    0x2A6E: "Temperature",
    0x2A6F: "Humidity",
    0x2AA6: "Central Address Resolution",
}

#: Short names for descriptors, for the discover table.
DESCRIPTOR_ABBREVIATIONS: Dict[int, str] = {0x2902: "CCCD", 0x2903: "SCCD", 0x2901: "User Description"}


def assigned_number(value: uuid.UUID) -> Optional[int]:
    """Find the 16-bit assigned number of a UUID.

    Args:
        value: the UUID.

    Returns:
        The number when the UUID is on the Bluetooth base UUID, else None.
    """
    text = str(value)
    if text.endswith(_BASE_SUFFIX) and text.startswith("0000"):
        return int(text[4:8], 16)
    return None


def short_uuid(value: uuid.UUID) -> str:
    """Write a UUID as short as it goes.

    Args:
        value: the UUID.

    Returns:
        ``2a19`` for a UUID on the Bluetooth base UUID, the full UUID otherwise.
    """
    number = assigned_number(value)
    return str(value) if number is None else f"{number:04x}"


def uuid_name(value: uuid.UUID) -> str:
    """Name a well-known UUID.

    Args:
        value: the UUID.

    Returns:
        The name of a well-known 16-bit UUID (``Battery Level``), or ``""``.
    """
    number = assigned_number(value)
    return "" if number is None else KNOWN_UUIDS.get(number, "")


def descriptor_label(value: uuid.UUID) -> str:
    """Label a descriptor for the discover table.

    Args:
        value: the descriptor's UUID.

    Returns:
        ``2902 CCCD``, ``2901 User Description``, or the short UUID.
    """
    number = assigned_number(value)
    name = DESCRIPTOR_ABBREVIATIONS.get(number, "") if number is not None else ""
    return f"{short_uuid(value)} {name}".rstrip()


def spaced_hex(value: bytes) -> str:
    """Show bytes in hex.

    Args:
        value: the bytes.

    Returns:
        ``50 75 6c``; ``(empty)`` for no bytes.
    """
    return value.hex(" ") if value else "(empty)"


def interpretation(value: bytes) -> str:
    """Say what the bytes might mean to a person.

    Args:
        value: the bytes.

    Returns:
        ``(90)`` for one byte, ``"text"`` for printable ASCII, else ``""``.
    """
    if len(value) == 1:
        return f"({value[0]})"
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return json.dumps(text) if text and text.isprintable() else ""


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: each character that is not printable as its escape.

    A device's name comes from whatever it advertises; printed raw, an escape sequence in it
    would reach the terminal, and a line break would fake a row of the table.

    Args:
        text: the text.

    Returns:
        ``text`` as it is when it is all printable, else with ``\\x1b``, ``\\n``... in place.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """Lay out a table with columns two spaces apart, left aligned, without trailing blanks.

    Args:
        headers: the column titles.
        rows: the cells, row by row (a cell that is not printable is shown escaped).

    Returns:
        The lines of the table.
    """
    cells = [[printable(str(cell)) for cell in line] for line in [headers, *rows]]
    widths = [max(len(cell) for cell in column) for column in zip(*cells)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]


class Output:
    """Writes results to stdout: JSON when ``json_mode``, text otherwise.

    Every result is flushed at once, so a pipe sees each notification as it arrives.
    """

    def __init__(self, stream: TextIO, json_mode: bool) -> None:
        self.stream = stream
        self.json_mode = json_mode

    def result(self, document: Any, lines: Sequence[str]) -> None:
        """Show one result and flush it.

        Args:
            document: the result as a JSON document (one line in ``--json`` mode).
            lines: the result as lines of text (otherwise).
        """
        if self.json_mode:
            self.stream.write(json.dumps(document) + "\n")
        else:
            self.stream.writelines(line + "\n" for line in lines)
        self.stream.flush()

    def text(self, line: str) -> None:
        """Show a line in text mode only (the demo's headings).

        Args:
            line: the line.
        """
        if not self.json_mode:
            self.stream.write(line + "\n")
            self.stream.flush()
