"""BlueZ properties and pygatt results, both ways (pure, no I/O).

Values arrive as the D-Bus library parses them: a variant is a
``(signature, value)`` pair. Everything here takes and returns plain data, so it
is tested without a bus.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pygatt.backends.backend import PROPERTY_BITS, Characteristic
from pygatt.backends.dbus import paths
from pygatt.util import uuid16_to_uuid

ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
SERVICE = "org.bluez.GattService1"
CHARACTERISTIC = "org.bluez.GattCharacteristic1"
DESCRIPTOR = "org.bluez.GattDescriptor1"

CCCD_UUID = uuid16_to_uuid(0x2902)
DEFAULT_ATT_MTU = 23

Variant = Tuple[str, Any]
ObjectTree = Mapping[str, Mapping[str, Mapping[str, Any]]]


def unwrap(properties: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"RSSI": ("n", -60)}`` -> ``{"RSSI": -60}``; the variants of ManufacturerData/ServiceData too.

    Args:
        properties: an ``a{sv}`` dict as parsed from the bus.

    Returns:
        The same dict with every variant replaced by its value.
    """
    plain: Dict[str, Any] = {}
    for name, value in properties.items():
        value = _value(value)
        if name in ("ManufacturerData", "ServiceData") and isinstance(value, dict):
            value = {key: bytes(_value(item)) for key, item in value.items()}
        elif isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        plain[name] = value
    return plain


def _value(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[1]
    return value


def scan_result(properties: Mapping[str, Any]) -> Dict[str, Any]:
    """The dict ``scan()`` returns for one device, from its (unwrapped) Device1 properties.

    Args:
        properties: Device1 properties (``Address``, ``Name``, ``RSSI``, ``ManufacturerData``...).

    Returns:
        ``address``, ``name`` (None when not advertised: BlueZ's Alias is not a name), ``rssi``
        (None when unknown), ``address_type``, ``manufacturer_data`` ({company id: bytes}),
        ``service_data`` ({UUID string: bytes}) and ``uuids`` (advertised service UUIDs).
    """
    return {
        "address": str(properties.get("Address", "")).upper(),
        "name": properties.get("Name"),
        "rssi": properties.get("RSSI"),
        "address_type": properties.get("AddressType"),
        "manufacturer_data": dict(properties.get("ManufacturerData", {})),
        "service_data": dict(properties.get("ServiceData", {})),
        "uuids": list(properties.get("UUIDs", [])),
    }


def discovery_filter(transport: str = "le", duplicate_data: bool = False) -> Dict[str, Variant]:
    """The ``SetDiscoveryFilter`` argument for an LE scan."""
    return {"Transport": ("s", transport), "DuplicateData": ("b", duplicate_data)}


def read_options(offset: int = 0) -> Dict[str, Variant]:
    """The ``ReadValue`` options: an ``offset`` (uint16) when not 0."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 0xFFFF:
        raise ValueError(f"offset must be an int within 0..65535, got {offset!r}")
    return {"offset": ("q", offset)} if offset else {}


def write_options(with_response: bool) -> Dict[str, Variant]:
    """The ``WriteValue`` options: ``type`` request (acknowledged) or command (not)."""
    return {"type": ("s", "request" if with_response else "command")}


def declaration_value(flags: List[str], value_handle: int, char_uuid: uuid.UUID) -> bytes:
    """The bytes of a characteristic declaration, as reading its handle over ATT gives them.

    Args:
        flags: BlueZ's ``Flags`` of the characteristic.
        value_handle: the characteristic's value handle.
        char_uuid: the characteristic's UUID.

    Returns:
        properties byte, value handle (little endian), UUID (2 bytes when a 16-bit one, else 16).
    """
    properties = 0
    for flag in flags:
        properties |= PROPERTY_BITS.get(flag, 0)
    return bytes([properties]) + value_handle.to_bytes(2, "little") + uuid_bytes(char_uuid)


def uuid_bytes(value: uuid.UUID) -> bytes:
    """A UUID as it appears in ATT PDUs: 2 bytes little endian for a 16-bit one, else 16 reversed."""
    short = value.int >> 96
    if uuid16_to_uuid(short & 0xFFFF) == value:
        return (short & 0xFFFF).to_bytes(2, "little")
    return value.bytes[::-1]


@dataclass
class CharacteristicObject:
    """A characteristic as BlueZ exports it.

    Attributes:
        path: its object path (``…/charCCCC``).
        uuid: its UUID.
        value_handle: the declaration handle in the path + 1.
        flags: BlueZ's ``Flags`` (``read``, ``notify``...).
        cccd_handle: the handle of its 0x2902 descriptor, None when it has none.
    """

    path: str
    uuid: uuid.UUID
    value_handle: int
    flags: List[str]
    cccd_handle: Optional[int] = None

    @property
    def declaration_handle(self) -> int:
        """The handle of the declaration (the number in the path)."""
        return self.value_handle - 1


@dataclass
class GattTable:
    """The handle map of one connected device, built from BlueZ's objects under it.

    Attributes:
        characteristics: by value handle.
        descriptors: descriptor handle -> (object path, UUID).
        cccds: CCCD handle -> the characteristic it configures.
        services: service (declaration) handle -> UUID.
    """

    characteristics: Dict[int, CharacteristicObject] = field(default_factory=dict)
    descriptors: Dict[int, Tuple[str, uuid.UUID]] = field(default_factory=dict)
    cccds: Dict[int, CharacteristicObject] = field(default_factory=dict)
    services: Dict[int, uuid.UUID] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: ObjectTree, device_path: str) -> GattTable:
        """Build the table from a ``GetManagedObjects`` result (properties unwrapped or not).

        Args:
            objects: object path -> interface -> properties.
            device_path: only objects under this device count.

        Returns:
            The device's table (empty when BlueZ has not resolved its services).
        """
        table = cls()
        prefix = device_path + "/"
        owners: Dict[str, CharacteristicObject] = {}
        descriptors: List[Tuple[str, int, uuid.UUID]] = []
        for path, interfaces in objects.items():
            if not path.startswith(prefix):
                continue
            attribute = paths.parse_attribute(path)
            if attribute is None:
                continue
            if attribute.kind == "service" and SERVICE in interfaces:
                table.services[attribute.handle] = uuid.UUID(str(_value(interfaces[SERVICE].get("UUID"))))
            elif attribute.kind == "char" and CHARACTERISTIC in interfaces:
                props = unwrap(interfaces[CHARACTERISTIC])
                char = CharacteristicObject(
                    path, uuid.UUID(str(props.get("UUID"))), attribute.handle, list(props.get("Flags", []))
                )
                table.characteristics[char.value_handle] = char
                owners[path] = char
            elif attribute.kind == "desc" and DESCRIPTOR in interfaces:
                props = unwrap(interfaces[DESCRIPTOR])
                descriptors.append((path, attribute.handle, uuid.UUID(str(props.get("UUID")))))
        for path, handle, desc_uuid in descriptors:
            table.descriptors[handle] = (path, desc_uuid)
            owner = owners.get(path.rsplit("/", 1)[0])
            if owner is not None and desc_uuid == CCCD_UUID:
                owner.cccd_handle = handle
                table.cccds[handle] = owner
        return table

    def by_uuid(self, char_uuid: uuid.UUID) -> Optional[CharacteristicObject]:
        """The characteristic with this UUID and the lowest value handle, or None."""
        matches = sorted(h for h, c in self.characteristics.items() if c.uuid == char_uuid)
        return self.characteristics[matches[0]] if matches else None

    def to_characteristics(self) -> Dict[uuid.UUID, Characteristic]:
        """pygatt's discovery result: ``{UUID: Characteristic}`` with value handles and descriptors.

        When a UUID appears more than once the lowest value handle is kept, as
        the gatttool backend does. Descriptors carry their own handles (the
        CCCD is the 0x2902 one, whatever comes before it).
        """
        result: Dict[uuid.UUID, Characteristic] = {}
        for value_handle in sorted(self.characteristics):
            char = self.characteristics[value_handle]
            found = Characteristic(char.uuid, value_handle)
            for handle in sorted(self.descriptors):
                path, desc_uuid = self.descriptors[handle]
                if path.rsplit("/", 1)[0] == char.path:
                    found.add_descriptor(desc_uuid, handle)
            result.setdefault(char.uuid, found)
        return result
