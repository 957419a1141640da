"""The simulated world: an adapter and the peripherals it can see.

A world is described in JSON (or built from these dataclasses) and read by the
simulated BlueZ programs of ``pygatt.testing.sim``. Handles are assigned the
way a real GATT server lays them out: a service declaration, then for each
characteristic its declaration, its value, a CCCD (0x2902) when it can notify
or indicate, and its other descriptors.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

# re-exported: the simulators and tests take the property bits from the world module
from pygatt.backends.backend import PROPERTY_BITS as PROPERTY_BITS

ATT_ERROR_TEXTS = {
    0x01: "Invalid handle",
    0x02: "Attribute can't be read",
    0x03: "Attribute can't be written",
    0x04: "Attribute PDU was invalid",
    0x05: "Attribute requires authentication before read/write",
    0x06: "Server doesn't support the request received",
    0x07: "Offset past the end of the attribute",
    0x08: "Attribute requires authorization before read/write",
    0x09: "Too many prepare writes have been queued",
    0x0A: "No attribute found within the given range",
    0x0B: "Attribute can't be read/written using Read Blob Req",
    0x0C: "Encryption Key Size is insufficient",
    0x0D: "Attribute value length is invalid",
    0x0E: "Request attribute has encountered an unlikely error",
    0x0F: "Encryption required before read/write",
    0x10: "Attribute type is not a supported grouping attribute",
    0x11: "Insufficient Resources to complete the request",
    0x80: "Internal application error: I/O",
    0x81: "A timeout occurred",  # spelled so by BlueZ 5.66 (seen on the real gatttool)
    0x82: "The operation was aborted",
}
#: An error code gatttool has no words for (it prints "Unexpected error code").
UNNAMED_ATT_ERROR = 0x12
PRIMARY_SERVICE = "2800"
CHARACTERISTIC_DECLARATION = "2803"
CCCD = "2902"


def full_uuid(text: str) -> str:
    """Expand a UUID as written in a world file.

    Args:
        text: a 16- or 32-bit assigned number (``"2a37"``) or a 128-bit UUID.

    Returns:
        The 128-bit form in lower case: ``"00002a37-0000-1000-8000-00805f9b34fb"``.
    """
    text = text.strip().lower()
    if len(text) in (4, 8):
        return f"{int(text, 16):08x}-0000-1000-8000-00805f9b34fb"
    return str(uuid_module.UUID(text))


def att_error_text(error: Union[int, str, None]) -> Optional[str]:
    """Turn an ATT error from a world file into gatttool's words.

    Args:
        error: an ATT error code (``2``), gatttool's text, or ``None``.

    Returns:
        gatttool's text for the error (``"Attribute can't be read"``), or ``None``.
    """
    if error is None or isinstance(error, str):
        return error
    return ATT_ERROR_TEXTS.get(error, "Unexpected error code")


def att_error_code(error: Union[int, str, None]) -> Optional[int]:
    """An ATT error given as a code or as gatttool's text, as the code a peripheral sends.

    Args:
        error: None, a code, or one of gatttool's error texts.

    Returns:
        The code; text gatttool has no code for becomes 0x12 (an unnamed code).
    """
    if error is None or isinstance(error, int):
        return error
    for code, text in ATT_ERROR_TEXTS.items():
        if text == error:
            return code
    return UNNAMED_ATT_ERROR


@dataclass
class NotifyStream:
    """Values a characteristic sends by itself, as notifications or indications.

    Generated values have a big-endian sequence number in their first four
    bytes, so every value is unique and checkable.

    Attributes:
        trigger: ``"subscribe"`` (when its CCCD is written) or ``"connect"``.
        interval_s: seconds between values; 0 sends as fast as the terminal takes them.
        count: how many values to send (0: until disconnected).
        values: hex strings sent in turn (empty: generated values).
        size: the size of generated values, in bytes.
    """

    trigger: str = "subscribe"
    interval_s: float = 1.0
    count: int = 0
    values: List[str] = field(default_factory=list)
    size: int = 20

    def value(self, sequence: int) -> bytes:
        """One value of the stream.

        Args:
            sequence: its position in the stream, from 0.

        Returns:
            The value: from ``values`` in turn, or generated.
        """
        if self.values:
            return bytes.fromhex(self.values[sequence % len(self.values)])
        head = sequence.to_bytes(4, "big")
        body = bytes((sequence + i) & 0xFF for i in range(max(0, self.size - 4)))
        return (head + body)[: self.size]


@dataclass
class Descriptor:
    """A characteristic descriptor (other than the CCCD, which ``Characteristic.cccd`` adds).

    Attributes:
        uuid: its UUID, 16-bit (``"2901"``) or 128-bit.
        value: its value in hex.
    """

    uuid: str
    value: str = ""


@dataclass
class Characteristic:
    """A characteristic: properties by name, a hex value, errors to answer with.

    Attributes:
        uuid: its UUID, 16-bit (``"2a19"``) or 128-bit.
        properties: property names: ``broadcast``, ``read``, ``write-without-response``,
            ``write``, ``notify``, ``indicate``, ``authenticated-signed-writes``,
            ``extended-properties``.
        value: the value in hex, up to 512 bytes.
        read_error: an ATT error code or gatttool's text to answer reads with.
        write_error: the same for writes.
        cccd: whether a notify or indicate characteristic gets a CCCD (0x2902).
        descriptors: its other descriptors, after the CCCD.
        notify: the values it sends by itself, if any.
    """

    uuid: str
    properties: List[str] = field(default_factory=lambda: ["read"])
    value: str = ""
    read_error: Union[int, str, None] = None
    write_error: Union[int, str, None] = None
    cccd: bool = True
    descriptors: List[Descriptor] = field(default_factory=list)
    notify: Optional[NotifyStream] = None

    @property
    def property_bits(self) -> int:
        """The properties as one number, as gatttool prints them (``char properties: 0x12``)."""
        return sum(PROPERTY_BITS[name] for name in self.properties)


@dataclass
class Service:
    """A primary service and its characteristics.

    Attributes:
        uuid: its UUID, 16-bit (``"180d"``) or 128-bit.
        characteristics: its characteristics, in handle order.
    """

    uuid: str
    characteristics: List[Characteristic] = field(default_factory=list)


@dataclass
class Peripheral:
    """A simulated BLE peripheral and how it behaves.

    The fields and their defaults are described in the simulator guide's table
    of world file fields; the ones with ``_error``, ``_delay_s`` and
    ``disconnect_after_`` in their names make it misbehave on purpose.
    """

    address: str
    name: Optional[str] = None
    address_type: str = "public"
    rssi: int = -60
    connectable: bool = True
    connect_error: Optional[str] = None
    connect_delay_s: float = 0.02
    mtu: int = 247
    response_delay_s: float = 0.0
    disconnect_after_ops: Optional[int] = None
    disconnect_after_s: Optional[float] = None
    disconnect_after_notifications: Optional[int] = None  # drop each link after sending this many
    sec_level_error: Optional[str] = None
    bonded: bool = False
    services: List[Service] = field(default_factory=list)
    # What the simulated dongles and org.bluez advertise (optional; the simulated gatttool ignores them):
    advertised_services: Optional[List[str]] = None  # service UUIDs in the advertisement; None: all but 1800/1801
    manufacturer_data: Dict[str, str] = field(default_factory=dict)  # company id (hex) -> hex data
    service_data: Dict[str, str] = field(default_factory=dict)  # service UUID -> hex data
    tx_power: Optional[int] = None  # dBm, advertised when set
    advertising_data: Optional[str] = None  # raw AD structures (hex), replaces the generated advertisement
    scan_response_data: Optional[str] = None  # raw AD structures (hex), replaces the generated scan response
    advertising_interval_s: float = 0.1
    # pairing, as the simulated org.bluez asks its agent
    pairing: str = "just-works"  # "just-works", "confirm", "passkey" or "display": what Pair asks the agent
    passkey: int = 123456  # the passkey "passkey" pairing expects and "confirm"/"display" show
    pair_error: Optional[str] = None  # an org.bluez.Error short name Pair fails with, e.g. "AuthenticationFailed"
    # what a BGAPI dongle reports for failures
    connect_error_code: Optional[int] = None  # BGAPI reason of a failed connect (0x023E when connect_error is set)
    bond_error_code: Optional[int] = None  # BGAPI/SMP code of a failed bonding (0x0305 when sec_level_error is set)


@dataclass
class Adapter:
    """The local adapter: its name and the failures to simulate.

    Attributes:
        name: the adapter name the tools accept (``hci0``); they take ``address`` too.
        present: False makes every tool fail as on a machine without Bluetooth.
        scan_error: ``"permission"``, ``"busy"`` or ``"no-device"`` makes
            ``hcitool lescan`` fail that way; ``None`` scans.
        reset_error: text that ``hciconfig reset`` fails with; ``None`` resets.
    """

    name: str = "hci0"
    present: bool = True
    address: str = "00:1A:7D:DA:71:13"  # the adapter's own address (the tools take it as -i; simulated org.bluez)
    scan_error: Optional[str] = None  # None, "permission", "busy", "no-device"
    reset_error: Optional[str] = None

    def answers_to(self, adapter: str) -> bool:
        """Whether a tool given ``adapter`` (``-i``, hciconfig's argument) opens this adapter.

        gatttool, hcitool and hciconfig take the adapter's ``hciN`` name or its address.
        """
        return adapter == self.name or adapter.upper() == self.address.upper()


@dataclass
class World:
    """An adapter and the peripherals around it.

    Attributes:
        adapter: the local adapter.
        peripherals: the peripherals it can see.
    """

    adapter: Adapter = field(default_factory=Adapter)
    peripherals: List[Peripheral] = field(default_factory=list)

    def find(self, address: str) -> Optional[Peripheral]:
        """Look a peripheral up.

        Args:
            address: its address, in any case.

        Returns:
            The peripheral, or ``None`` when the world has none at that address.
        """
        for peripheral in self.peripherals:
            if peripheral.address.upper() == address.upper():
                return peripheral
        return None

    def to_json(self) -> str:
        """Describe the world.

        Returns:
            The world as JSON text, which :meth:`from_json` reads back.
        """
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Union[str, Path]) -> Path:
        """Write the world to a JSON file, for ``PYGATT_SIMULATE`` or ``ToolCommands.simulated``.

        Args:
            path: the file to write.

        Returns:
            The path written.
        """
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> World:
        """Build a world from decoded JSON.

        Args:
            data: the decoded JSON document.

        Returns:
            The world.

        Raises:
            TypeError: a key that is not a field (a typo in a world file).
        """
        peripherals = []
        for p in data.get("peripherals", []):
            services = []
            for s in p.get("services", []):
                characteristics = []
                for c in s.get("characteristics", []):
                    c = dict(c)
                    c["descriptors"] = [Descriptor(**d) for d in c.get("descriptors", [])]
                    c["notify"] = NotifyStream(**c["notify"]) if c.get("notify") else None
                    characteristics.append(Characteristic(**c))
                services.append(Service(uuid=s["uuid"], characteristics=characteristics))
            peripherals.append(Peripheral(**{**p, "services": services}))
        return cls(adapter=Adapter(**data.get("adapter", {})), peripherals=peripherals)

    @classmethod
    def from_json(cls, text: str) -> World:
        """Build a world from JSON text.

        Args:
            text: the JSON document.

        Returns:
            The world.

        Raises:
            ValueError: not JSON.
            TypeError: a key that is not a field.
        """
        return cls.from_dict(json.loads(text))


@dataclass
class Attribute:
    """One entry of a peripheral's attribute table."""

    handle: int
    uuid: str
    value: bytearray
    readable: bool = True
    writable: bool = False
    read_error: Optional[str] = None
    write_error: Optional[str] = None
    characteristic: Optional[Characteristic] = None  # the value attribute's characteristic
    cccd_of: Optional[int] = None  # for a CCCD: the value handle it configures
    read_error_code: Optional[int] = None  # the ATT code of read_error
    write_error_code: Optional[int] = None  # the ATT code of write_error


@dataclass
class Layout:
    """A peripheral's attributes with handles, as a GATT server lays them out."""

    attributes: Dict[int, Attribute]
    services: List[Tuple[Any, ...]]  # (start, end, uuid)
    characteristics: List[Tuple[Any, ...]]  # (declaration handle, properties, value handle, uuid)

    def in_range(self, start: int, end: int) -> Iterator[Attribute]:
        """Walk part of the attribute table.

        Args:
            start: the first handle.
            end: the last handle.

        Yields:
            The attributes with start <= handle <= end, in handle order.
        """
        for handle in sorted(self.attributes):
            if start <= handle <= end:
                yield self.attributes[handle]


def layout(peripheral: Peripheral) -> Layout:
    """Assign handles to a peripheral's services, characteristics and descriptors.

    Args:
        peripheral: the peripheral.

    Returns:
        Its attribute table, laid out as a GATT server does.
    """
    attributes: Dict[int, Attribute] = {}
    services: List[Tuple[Any, ...]] = []
    characteristics: List[Tuple[Any, ...]] = []
    handle = 1
    for service in peripheral.services:
        start = handle
        service_uuid = full_uuid(service.uuid)
        attributes[handle] = Attribute(handle, full_uuid(PRIMARY_SERVICE), bytearray(_uuid_bytes(service.uuid)))
        handle += 1
        for characteristic in service.characteristics:
            bits = characteristic.property_bits
            char_uuid = full_uuid(characteristic.uuid)
            # properties, value handle, UUID: what a Read or Read By Type of the declaration returns
            declaration = bytes([bits]) + (handle + 1).to_bytes(2, "little") + _uuid_bytes(characteristic.uuid)
            attributes[handle] = Attribute(handle, full_uuid(CHARACTERISTIC_DECLARATION), bytearray(declaration))
            characteristics.append((handle, bits, handle + 1, char_uuid))
            value_handle = handle + 1
            attributes[value_handle] = Attribute(
                value_handle,
                char_uuid,
                bytearray.fromhex(characteristic.value),
                readable=bool(bits & 0x02) or characteristic.read_error is not None,
                writable=bool(bits & 0x0C),
                read_error=att_error_text(characteristic.read_error),
                write_error=att_error_text(characteristic.write_error),
                characteristic=characteristic,
                read_error_code=att_error_code(characteristic.read_error),
                write_error_code=att_error_code(characteristic.write_error),
            )
            handle += 2
            if bits & 0x30 and characteristic.cccd:
                attributes[handle] = Attribute(
                    handle, full_uuid(CCCD), bytearray(2), writable=True, cccd_of=value_handle
                )
                handle += 1
            for descriptor in characteristic.descriptors:
                attributes[handle] = Attribute(handle, full_uuid(descriptor.uuid), bytearray.fromhex(descriptor.value))
                handle += 1
        services.append((start, handle - 1, service_uuid))
    return Layout(attributes, services, characteristics)


def _uuid_bytes(text: str) -> bytes:
    """A UUID as ATT carries it: 2 bytes for a Bluetooth base UUID, else 16 (little-endian)."""
    full = full_uuid(text)
    if full.startswith("0000") and full.endswith("-0000-1000-8000-00805f9b34fb"):
        return int(full[4:8], 16).to_bytes(2, "little")
    return uuid_module.UUID(full).bytes[::-1]
