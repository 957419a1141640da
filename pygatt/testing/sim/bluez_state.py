"""The state of the simulated ``org.bluez``: adapter, devices, GATT objects, sessions (no I/O).

Built from a :class:`~pygatt.testing.world.World`. GATT objects are made from the
world's attribute table (:func:`~pygatt.testing.world.layout`), so their paths carry
the same ATT handles the simulated gatttool reports. Each ``*_properties`` function
returns an interface's properties as ``name -> (signature, value)``, optional ones
left out when BlueZ would leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from pygatt.testing.world import Attribute, Characteristic, Layout, Peripheral, full_uuid, layout

from . import bluez_objects as bz
from .advertising import advertised_uuids
from .dbus_service import Var

if TYPE_CHECKING:
    import asyncio
    import socket

Properties = Dict[str, Tuple[str, Any]]

#: Services a bluetoothd plugin claims, so they get no D-Bus objects (GAP, HID, Scan Parameters, MIDI,
#: Published Audio Capabilities, Volume Control).
HIDDEN_SERVICES = frozenset(
    {
        full_uuid("1800"),
        full_uuid("1812"),
        full_uuid("1813"),
        "03b80e5a-ede8-4b33-a751-6ce34ec4c700",
        full_uuid("1850"),
        full_uuid("1844"),
    }
)
#: The ATT MTU BlueZ asks for.
BLUEZ_MTU = 517


@dataclass
class CharacteristicState:
    """One ``GattCharacteristic1`` object."""

    path: str
    service_path: str
    declaration: int
    attribute: Attribute  # the value attribute (declaration + 1)
    characteristic: Characteristic
    cccd: Optional[Attribute] = None
    value: bytes = b""  # BlueZ's cache, the Value property
    sessions: Set[str] = field(default_factory=set)  # senders with a notify session
    notifying: bool = False
    enabling: bool = False  # a CCCD write of StartNotify in flight
    read_offset: Optional[int] = None  # a read in flight (at this offset)
    readers: List[Any] = field(default_factory=list)  # calls waiting for it
    writing: bool = False
    stream_sent: int = 0
    notify_socket: Optional[socket.socket] = None  # our end after AcquireNotify
    write_socket: Optional[socket.socket] = None  # our end after AcquireWrite

    @property
    def flags(self) -> List[str]:
        """The ``Flags`` property."""
        return bz.characteristic_flags(self.characteristic)


@dataclass
class DescriptorState:
    """One ``GattDescriptor1`` object."""

    path: str
    characteristic_path: str
    attribute: Attribute
    value: bytes = b""


@dataclass
class DeviceState:
    """One ``Device1`` object and its link."""

    peripheral: Peripheral
    path: str
    adapter_path: str
    on_bus: bool = False
    connected: bool = False
    services_resolved: bool = False
    paired: bool = False
    bonded: bool = False
    trusted: bool = False
    blocked: bool = False
    rssi: Optional[int] = None
    advertised: bool = False  # an advertisement was seen (ManufacturerData/ServiceData known)
    link: int = 0  # incremented on every link change; timers of an older link do nothing
    mtu: int = 23
    ops: int = 0
    notified: int = 0  # notifications and indications the peer sent on this link
    table: Optional[Layout] = None
    gatt_exported: bool = False
    services: Dict[str, Tuple[int, str]] = field(default_factory=dict)  # path -> (start handle, uuid)
    characteristics: Dict[str, CharacteristicState] = field(default_factory=dict)
    descriptors: Dict[str, DescriptorState] = field(default_factory=dict)
    connecting: Optional[asyncio.Future[Any]] = None
    resolved_waiters: List[asyncio.Future[Any]] = field(default_factory=list)
    pairing: Optional[asyncio.Task[Any]] = None
    pending: Dict[int, Any] = field(default_factory=dict)  # in-flight GATT calls by serial
    temporary_token: int = 0

    @property
    def address(self) -> str:
        """The upper-case address."""
        return self.peripheral.address.upper()

    def build_gatt(self) -> None:
        """Lay out the peripheral's attributes and make the GATT objects (hidden services left out)."""
        self.table = layout(self.peripheral)
        self.services.clear()
        self.characteristics.clear()
        self.descriptors.clear()
        declarations = {handle: (value_handle, uuid) for handle, _, value_handle, uuid in self.table.characteristics}
        for start, end, uuid in self.table.services:
            if uuid in HIDDEN_SERVICES:
                continue
            service = bz.service_path(self.path, start)
            self.services[service] = (start, uuid)
            current: Optional[CharacteristicState] = None
            for attribute in self.table.in_range(start + 1, end):
                if attribute.handle in declarations:
                    value_attribute = self.table.attributes[declarations[attribute.handle][0]]
                    assert value_attribute.characteristic is not None
                    current = CharacteristicState(
                        bz.characteristic_path(service, attribute.handle),
                        service,
                        attribute.handle,
                        value_attribute,
                        value_attribute.characteristic,
                    )
                    self.characteristics[current.path] = current
                elif current is not None and attribute.handle != current.attribute.handle:
                    path = bz.descriptor_path(current.path, attribute.handle)
                    self.descriptors[path] = DescriptorState(path, current.path, attribute)
                    if attribute.uuid == bz.CCCD_UUID:
                        current.cccd = attribute
        self.gatt_exported = False

    def gatt_paths(self) -> List[str]:
        """Every GATT object path, parents first."""
        return sorted([*self.services, *self.characteristics, *self.descriptors])

    def uuids(self) -> List[str]:
        """``Device1.UUIDs``: advertised services, plus every primary service once resolved."""
        found = set(advertised_uuids(self.peripheral))
        if self.table is not None and self.gatt_exported:
            found.update(uuid for _, _, uuid in self.table.services)
        return sorted(found)

    def find_characteristic(self, key: Any) -> Optional[CharacteristicState]:
        """A characteristic by value handle (int) or UUID (str), if exported."""
        for state in self.characteristics.values():
            if isinstance(key, int) and state.attribute.handle == key:
                return state
            if isinstance(key, str) and state.attribute.uuid == full_uuid(key):
                return state
        return None


def adapter_properties(world_adapter: Any, path_name: str, powered: bool, discovering: bool, alias: str) -> Properties:
    """``Adapter1``'s properties.

    Args:
        world_adapter: the world's :class:`~pygatt.testing.world.Adapter`.
        path_name: the adapter's name (``hci0``).
        powered: the Powered property.
        discovering: the Discovering property.
        alias: the Alias property.

    Returns:
        name -> (signature, value).
    """
    return {
        "Address": ("s", world_adapter.address.upper()),
        "AddressType": ("s", "public"),
        "Name": ("s", f"pygatt-sim-{path_name}"),
        "Alias": ("s", alias),
        "Class": ("u", 0),
        "Powered": ("b", powered),
        "Discoverable": ("b", False),
        "DiscoverableTimeout": ("u", 180),
        "Pairable": ("b", True),
        "PairableTimeout": ("u", 0),
        "Discovering": ("b", discovering),
        "UUIDs": ("as", []),
        "Roles": ("as", ["central", "peripheral"]),
    }


def device_properties(device: DeviceState) -> Properties:
    """``Device1``'s properties (Name, RSSI, ManufacturerData, ServiceData only when known)."""
    p = device.peripheral
    props: Properties = {
        "Address": ("s", device.address),
        "AddressType": ("s", "random" if p.address_type == "random" else "public"),
    }
    if p.name:
        props["Name"] = ("s", p.name)
    props.update(
        {
            "Alias": ("s", p.name or device.address.replace(":", "-")),
            "Paired": ("b", device.paired),
            "Bonded": ("b", device.bonded),
            "Trusted": ("b", device.trusted),
            "Blocked": ("b", device.blocked),
            "LegacyPairing": ("b", False),
            "Connected": ("b", device.connected),
            "ServicesResolved": ("b", device.services_resolved),
            "UUIDs": ("as", device.uuids()),
            "Adapter": ("o", device.adapter_path),
        }
    )
    if device.rssi is not None:
        props["RSSI"] = ("n", device.rssi)
    if device.advertised and p.manufacturer_data:
        props["ManufacturerData"] = ("a{qv}", manufacturer_data(p))
    if device.advertised and p.service_data:
        props["ServiceData"] = ("a{sv}", service_data(p))
    return props


def manufacturer_data(peripheral: Peripheral) -> Dict[int, Var]:
    """``ManufacturerData``: company id -> variant holding ``ay``."""
    return {int(key, 16): Var("ay", bytes.fromhex(value)) for key, value in peripheral.manufacturer_data.items()}


def service_data(peripheral: Peripheral) -> Dict[str, Var]:
    """``ServiceData``: 128-bit UUID -> variant holding ``ay``."""
    return {full_uuid(key): Var("ay", bytes.fromhex(value)) for key, value in peripheral.service_data.items()}


def service_properties(device: DeviceState, path: str) -> Properties:
    """``GattService1``'s properties."""
    _, uuid = device.services[path]
    return {"UUID": ("s", uuid), "Device": ("o", device.path), "Primary": ("b", True), "Includes": ("ao", [])}


def characteristic_properties(device: DeviceState, state: CharacteristicState) -> Properties:
    """``GattCharacteristic1``'s properties.

    Notifying only with notify/indicate, NotifyAcquired only with notify, WriteAcquired only
    with write-without-response, MTU only while connected.
    """
    props: Properties = {
        "UUID": ("s", state.attribute.uuid),
        "Service": ("o", state.service_path),
        "Value": ("ay", state.value),
    }
    if {"notify", "indicate"} & set(state.flags):
        props["Notifying"] = ("b", state.notifying)
    props["Flags"] = ("as", state.flags)
    if "write-without-response" in state.flags:
        props["WriteAcquired"] = ("b", state.write_socket is not None)
    if "notify" in state.flags:
        props["NotifyAcquired"] = ("b", state.notify_socket is not None)
    if device.connected:
        props["MTU"] = ("q", device.mtu)
    return props


def descriptor_properties(state: DescriptorState) -> Properties:
    """``GattDescriptor1``'s properties (no Flags, no Handle in 5.66)."""
    return {
        "UUID": ("s", state.attribute.uuid),
        "Characteristic": ("o", state.characteristic_path),
        "Value": ("ay", state.value),
    }
