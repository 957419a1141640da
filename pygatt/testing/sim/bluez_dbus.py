"""A simulated ``org.bluez`` (BlueZ 5.66's bluetoothd) on a D-Bus bus, backed by a JSON world.

:class:`SimulatedBluez` owns the name ``org.bluez`` on a (private) bus and answers
the way bluetoothd does as far as a client can see: the object tree under ``/``
with the world's ATT handles in the paths, ``GetManagedObjects``,
``InterfacesAdded``/``InterfacesRemoved`` from ``/``, ``PropertiesChanged`` sent
before the reply that caused it, one ``Value`` signal per notification, per-sender
discovery and notify sessions, agents, and BlueZ's exact error names and texts.

It runs on a thread of its own (an asyncio loop with one dbus-fast connection);
its public methods may be called from any thread. Test hooks (faults) are Python
methods, not D-Bus methods, so nothing on the bus can tell the mock from bluetoothd.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Dict, Iterable, List, Optional, Set, Tuple, Union

from dbus_fast import Message, MessageType, Variant

from pygatt.testing.dbus_bus import BusStartError, PrivateBus

from . import bluez_objects as bz
from .advertising import advertised_uuids
from .bluez_gatt import GattServer
from .bluez_state import (
    BLUEZ_MTU,
    DeviceState,
    Properties,
    adapter_properties,
    characteristic_properties,
    descriptor_properties,
    device_properties,
    service_properties,
)
from .dbus_service import START_TIMEOUT_S, STOP_TIMEOUT_S, BusService, Var, unwire, variants

if TYPE_CHECKING:
    from pygatt.testing.world import World

log = logging.getLogger(__name__)

PAIRING_METHODS = ("just-works", "confirm", "passkey", "display")
WRITABLE = {
    bz.ADAPTER: {"Alias": "s", "Powered": "b", "Discoverable": "b", "Pairable": "b"},
    bz.DEVICE: {"Alias": "s", "Trusted": "b", "Blocked": "b"},
}


@dataclass(frozen=True)
class BusCall:
    """A method call the simulated bluetoothd received."""

    sender: str
    path: str
    interface: str
    member: str
    signature: str
    body: Tuple[Any, ...]


@dataclass
class Agent:
    """A registered ``org.bluez.Agent1``."""

    sender: str
    path: str
    capability: str


class SimulatedBluez:
    """A mock ``org.bluez`` on the bus at ``bus_address``, backed by ``world``.

    ``_<interface>_<Member>`` methods answer the D-Bus methods of the adapter, devices,
    agent manager and standard interfaces (GATT objects: :class:`~.bluez_gatt.GattServer`);
    they reply (now or later) or raise :class:`~.bluez_objects.BluezError`.

    Args:
        world: the simulated world (the same one the simulated gatttool uses).
        bus_address: the D-Bus address (``unix:path=...``) to connect to.
        adapter: the adapter's name; the world's adapter name by default. No adapter
            object exists when the world's adapter is not ``present``.
        experimental: export ``Adapter1.ConnectDevice`` (bluetoothd ``-E``); without it the call
            gets ``UnknownMethod`` as on Debian 12.
        temporary_timeout_s: how long an undiscovered, unpaired, untrusted device stays after
            discovery stops (BlueZ: 30 s).
        agent_timeout_s: how long Pair waits for the agent's answer (BlueZ: 60 s).

    Raises:
        ValueError: a peripheral of the world has an unknown ``pairing`` method.
    """

    def __init__(
        self,
        world: World,
        bus_address: str,
        adapter: Optional[str] = None,
        experimental: bool = False,
        temporary_timeout_s: float = 30.0,
        agent_timeout_s: float = 60.0,
    ) -> None:
        for peripheral in world.peripherals:
            if peripheral.pairing not in PAIRING_METHODS:
                raise ValueError(f"unknown pairing {peripheral.pairing!r}; known: {', '.join(PAIRING_METHODS)}")
        self.world = world
        self.bus_address = bus_address
        self.adapter_name = adapter or world.adapter.name
        self.adapter_path = bz.adapter_path(self.adapter_name)
        self.experimental = experimental
        self.temporary_timeout_s = temporary_timeout_s
        self.agent_timeout_s = agent_timeout_s
        self._lock = threading.Lock()
        self._calls: List[BusCall] = []
        self._hung: Set[str] = set()
        self.service = BusService(
            bus_address, bz.SERVICE_NAME, self._on_call, self._client_left, "simulated-bluetoothd", unix_fds=True
        )
        self.gatt = GattServer(self.service, self._link_down, self._security_paired)
        # bluetoothd's state
        self.powered = world.adapter.present
        self.alias = f"pygatt-sim-{self.adapter_name}"
        self.discovery_sessions: Set[str] = set()
        self.filters: Dict[str, bz.DiscoveryFilter] = {}
        self.agents: Dict[str, Agent] = {}
        self.default_agent: Optional[str] = None
        self.devices: Dict[str, DeviceState] = {}
        for peripheral in world.peripherals:
            path = bz.device_path(self.adapter_path, peripheral.address)
            device = DeviceState(peripheral, path, self.adapter_path)
            if peripheral.bonded:  # known from /var/lib/bluetooth: on the bus from startup
                device.on_bus = device.paired = device.bonded = True
            self.devices[path] = device

    # ====================================================================================
    # public API (any thread)
    # ====================================================================================
    def __enter__(self) -> SimulatedBluez:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Connect to the bus, own ``org.bluez`` and start answering.

        Args:
            timeout: seconds to wait for the bus.

        Raises:
            RuntimeError: the bus refused us or did not answer in time.
        """
        self.service.start(timeout)

    def stop(self) -> None:
        """Leave the bus and end the thread. Always returns."""
        self.service.stop()

    @property
    def running(self) -> bool:
        """True while the simulated bluetoothd's thread runs (false after stop(); vanish() keeps it)."""
        return self.service.running

    @property
    def unique_name(self) -> str:
        """Our unique bus name (the owner of ``org.bluez``)."""
        return self.service.unique_name

    @property
    def calls(self) -> List[BusCall]:
        """The method calls received so far (a copy), oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, member: str) -> List[BusCall]:
        """The calls received of ``member`` (e.g. ``"ReadValue"``)."""
        return [call for call in self.calls if call.member == member]

    def hang(self, member: str, hung: bool = True) -> None:
        """From now on, never answer calls of ``member`` (``hung=False`` answers them again).

        Args:
            member: a method name, e.g. ``"ReadValue"`` or ``"Connect"``.
            hung: whether it hangs.
        """
        with self._lock:
            if hung:
                self._hung.add(member)
            else:
                self._hung.discard(member)

    def vanish(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """bluetoothd leaves the bus: the connection closes, ``org.bluez`` loses its owner.

        Pending calls get the daemon's ``NoReply``; later calls ``ServiceUnknown``.

        Args:
            timeout: seconds to wait for the bus to see it.
        """
        self.service.run_soon(self.service.leave, timeout)

    def remove_device(self, address: str, timeout: float = STOP_TIMEOUT_S) -> None:
        """The device object goes away now (``InterfacesRemoved``), in the middle of whatever runs.

        Args:
            address: the device address.
            timeout: seconds to wait for it to be done.
        """
        self.service.run_soon(lambda: self._remove(self._device(address), reason=bz.gatt_error(0)), timeout)

    def drop_link(self, address: str, timeout: float = STOP_TIMEOUT_S) -> None:
        """The peer drops the link: ``ServicesResolved``/``Connected`` become false, GATT objects stay.

        Args:
            address: the device address.
            timeout: seconds to wait for it to be done.
        """
        self.service.run_soon(lambda: self._link_down(self._device(address)), timeout)

    def notify(self, address: str, characteristic: Union[int, str], value: bytes, timeout: float = 5.0) -> bool:
        """The peer sends one notification (delivered only if a notify session enabled it).

        Args:
            address: the device address.
            characteristic: its value handle or UUID.
            value: the value.
            timeout: seconds to wait for it to be sent.

        Returns:
            True when a ``PropertiesChanged`` was sent.
        """
        return bool(
            self.service.run_soon(lambda: self.gatt.notify_now(self._device(address), characteristic, value), timeout)
        )

    def device_path(self, address: str) -> str:
        """The object path of the device with ``address``."""
        return bz.device_path(self.adapter_path, address)

    # ====================================================================================
    # sending (on the service thread)
    # ====================================================================================
    def _later(self, delay: float, action: Callable[[], None]) -> None:
        self.service.later(delay, action)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return self.service.spawn(coroutine)

    def _reply(self, call: Message, signature: str = "", body: Optional[List[Any]] = None) -> None:
        self.service.reply(call, signature, body)

    def _fail(self, call: Message, error: bz.BluezError) -> None:
        self.service.fail(call, error.name, error.message)

    def _changed(self, path: str, interface: str, changed: Properties, invalidated: Iterable[str] = ()) -> None:
        self.service.properties_changed(path, interface, changed, invalidated)

    def _added(self, path: str) -> None:
        """``InterfacesAdded`` from ``/``: the object's interfaces (gdbus lists the standard ones too)."""
        interfaces: Dict[str, Properties] = {bz.INTROSPECTABLE: {}, bz.PROPERTIES: {}}
        interfaces.update(self._interfaces(path) or {})
        self.service.interfaces_added(bz.ROOT, path, interfaces)

    def _removed(self, path: str, interfaces: List[str]) -> None:
        self.service.interfaces_removed(bz.ROOT, path, interfaces)

    # ====================================================================================
    # the object tree
    # ====================================================================================
    def _paths(self) -> List[str]:
        paths = [bz.ROOT, bz.BLUEZ_PATH]
        if self.world.adapter.present:
            paths.append(self.adapter_path)
        for device in self.devices.values():
            if device.on_bus:
                paths.append(device.path)
                if device.gatt_exported:
                    paths.extend(device.gatt_paths())
        return paths

    def _interfaces(self, path: str) -> Optional[Dict[str, Properties]]:
        """The object's interfaces and their properties, None when nothing is at ``path``."""
        if path == bz.ROOT:
            return {bz.OBJECT_MANAGER: {}}
        if path == bz.BLUEZ_PATH:
            return {bz.AGENT_MANAGER: {}, bz.PROFILE_MANAGER: {}}
        if path == self.adapter_path and self.world.adapter.present:
            adapter = self.world.adapter
            props = adapter_properties(adapter, self.adapter_name, self.powered, self.discovering, self.alias)
            return {bz.ADAPTER: props, bz.GATT_MANAGER: {}}
        device = self._owner(path)
        if device is None:
            return None
        if path == device.path:
            return {bz.DEVICE: device_properties(device)}
        if not device.gatt_exported:
            return None
        if path in device.services:
            return {bz.SERVICE: service_properties(device, path)}
        if path in device.characteristics:
            return {bz.CHARACTERISTIC: characteristic_properties(device, device.characteristics[path])}
        if path in device.descriptors:
            return {bz.DESCRIPTOR: descriptor_properties(device.descriptors[path])}
        return None

    def _is_parent(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self._paths())

    def _owner(self, path: str) -> Optional[DeviceState]:
        """The on-bus device ``path`` is or belongs to."""
        for device in self.devices.values():
            if device.on_bus and (path == device.path or path.startswith(device.path + "/")):
                return device
        return None

    def _device(self, address: str) -> DeviceState:
        device = self.devices.get(self.device_path(address))
        if device is None:
            raise ValueError(f"no peripheral {address} in the world")
        return device

    @property
    def discovering(self) -> bool:
        """Whether any client has a discovery session."""
        return bool(self.discovery_sessions)

    def _methods(self, interface: str) -> Dict[str, bz.Method]:
        table = dict(bz.METHODS.get(interface, {}))
        if interface == bz.ADAPTER and self.experimental:
            table["ConnectDevice"] = bz.CONNECT_DEVICE
        return table

    # ====================================================================================
    # dispatch
    # ====================================================================================
    def _on_call(self, message: Message) -> None:
        path, member, signature = message.path or "/", message.member or "", message.signature or ""
        with self._lock:
            self._calls.append(
                BusCall(message.sender or "", path, message.interface or "", member, signature, tuple(message.body))
            )
            hung = member in self._hung
        if hung:
            log.debug("simulated org.bluez: %s %s left unanswered (hang)", member, path)
            return
        try:
            self._dispatch(message, path, member, signature)
        except bz.BluezError as error:
            self._fail(message, error)

    def _dispatch(self, message: Message, path: str, member: str, signature: str) -> None:
        interfaces = self._interfaces(path)
        if interfaces is None and (member, signature) == ("Introspect", "") and self._is_parent(path):
            interfaces = {}  # a node between objects (``/org``): only its children
        if interfaces is None:
            raise bz.unknown_object(path)
        available = [bz.INTROSPECTABLE, bz.PROPERTIES, *interfaces]
        interface = message.interface
        if interface is None:
            interface = next((i for i in available if member in self._methods(i)), "")
        method = self._methods(interface).get(member) if interface in available else None
        if method is None or method[0] != signature:
            raise bz.unknown_method(member, signature, interface)
        prefix = {
            bz.OBJECT_MANAGER: "om",
            bz.PROPERTIES: "props",
            bz.INTROSPECTABLE: "introspect",
            bz.AGENT_MANAGER: "agents",
            bz.ADAPTER: "adapter",
            bz.DEVICE: "device",
            bz.CHARACTERISTIC: "char",
            bz.DESCRIPTOR: "desc",
        }.get(interface)
        arguments = [unwire(argument) for argument in message.body]
        if prefix in ("char", "desc"):
            getattr(self.gatt, f"{prefix}_{member}")(message, self._device_of(path), path, *arguments)
            return
        handler = getattr(self, f"_{prefix}_{member}", None) if prefix else None
        if handler is None:
            raise bz.bluez_error("NotSupported")
        handler(message, path, *arguments)

    def _client_left(self, sender: str) -> None:
        """A client left the bus: its discovery session, filter, agent and notify sessions end."""
        if sender in self.discovery_sessions:
            self._end_discovery(sender)
        self.filters.pop(sender, None)
        if sender in self.agents:
            del self.agents[sender]
            if self.default_agent == sender:
                self.default_agent = None
        for device in self.devices.values():
            self.gatt.client_left(device, sender)

    # -- standard interfaces --------------------------------------------------------------
    def _om_GetManagedObjects(self, call: Message, path: str) -> None:
        result: Dict[str, Dict[str, Dict[str, Variant]]] = {}
        for object_path in self._paths():
            if object_path == bz.ROOT:
                continue
            interfaces = self._interfaces(object_path) or {}
            entry: Dict[str, Dict[str, Variant]] = {bz.INTROSPECTABLE: {}}
            for name, props in interfaces.items():
                entry[name] = variants(props)
            entry[bz.PROPERTIES] = {}
            result[object_path] = entry
        self.service.send(Message.new_method_return(call, "a{oa{sa{sv}}}", [result]))

    def _introspect_Introspect(self, call: Message, path: str) -> None:
        prefix = path.rstrip("/") + "/"
        children = sorted({p[len(prefix) :].split("/")[0] for p in self._paths() if p.startswith(prefix) and p != path})
        interfaces = self._interfaces(path) or {}
        methods = {name: self._methods(name) for name in [bz.INTROSPECTABLE, bz.PROPERTIES, *interfaces]}
        self._reply(call, "s", [bz.introspection_xml(interfaces, children, methods)])

    def _props_Get(self, call: Message, path: str, interface: str, name: str) -> None:
        props = (self._interfaces(path) or {}).get(interface)
        if props is None:
            raise bz.BluezError(bz.INVALID_ARGS, f"No such interface '{interface}'")
        if name not in props:
            raise bz.BluezError(bz.INVALID_ARGS, f"No such property '{name}'")
        signature, value = props[name]
        self._reply(call, "v", [Var(signature, value)])

    def _props_GetAll(self, call: Message, path: str, interface: str) -> None:
        props = (self._interfaces(path) or {}).get(interface)
        if props is None:
            raise bz.BluezError(bz.INVALID_ARGS, f"No such interface '{interface}'")
        self.service.send(Message.new_method_return(call, "a{sv}", [variants(props)]))

    def _props_Set(self, call: Message, path: str, interface: str, name: str, value: Var) -> None:
        props = (self._interfaces(path) or {}).get(interface)
        if props is None:
            raise bz.BluezError(bz.INVALID_ARGS, f"No such interface '{interface}'")
        if name not in props:
            raise bz.BluezError("org.freedesktop.DBus.Error.UnknownProperty", f"No such property '{name}'")
        expected = WRITABLE.get(interface, {}).get(name)
        if expected is None:
            raise bz.BluezError("org.freedesktop.DBus.Error.PropertyReadOnly", f"Property '{name}' is not writable")
        if value.signature != expected:
            raise bz.BluezError("org.freedesktop.DBus.Error.InvalidSignature", f"Invalid signature for '{name}'")
        if interface == bz.ADAPTER:
            if name == "Powered":
                self.powered = bool(value.value) and self.world.adapter.present
            elif name == "Alias":
                self.alias = str(value.value)
        else:
            device = self._owner(path)
            assert device is not None
            if name == "Trusted":
                device.trusted = bool(value.value)
            elif name == "Blocked":
                device.blocked = bool(value.value)
        new = (self._interfaces(path) or {}).get(interface, {})
        if name in new and new[name] != props[name]:  # signalled only when it changed
            self._changed(path, interface, {name: new[name]})
        self._reply(call)

    # -- AgentManager1 ------------------------------------------------------------------
    def _agents_RegisterAgent(self, call: Message, path: str, agent: str, capability: str) -> None:
        if capability not in bz.AGENT_CAPABILITIES:
            raise bz.bluez_error("InvalidArguments")
        sender = call.sender or ""
        if sender in self.agents:
            raise bz.bluez_error("AlreadyExists")
        self.agents[sender] = Agent(sender, agent, capability or "KeyboardDisplay")
        self._reply(call)

    def _agents_UnregisterAgent(self, call: Message, path: str, agent: str) -> None:
        sender = call.sender or ""
        if sender not in self.agents or self.agents[sender].path != agent:
            raise bz.bluez_error("DoesNotExist", "No such Agent")
        del self.agents[sender]
        if self.default_agent == sender:
            self.default_agent = None
        self._reply(call)

    def _agents_RequestDefaultAgent(self, call: Message, path: str, agent: str) -> None:
        sender = call.sender or ""
        if sender not in self.agents or self.agents[sender].path != agent:
            raise bz.bluez_error("DoesNotExist", "No such Agent")
        self.default_agent = sender
        self._reply(call)

    # -- Adapter1: discovery --------------------------------------------------------------
    def _adapter_StartDiscovery(self, call: Message, path: str) -> None:
        if not self.powered:
            raise bz.bluez_error("NotReady")
        scan_error = self.world.adapter.scan_error
        if scan_error == "permission":
            raise bz.BluezError(bz.ACCESS_DENIED, "Operation not permitted")
        if scan_error == "busy":
            raise bz.bluez_error("InProgress")
        if scan_error:
            raise bz.bluez_error("NotReady")
        sender = call.sender or ""
        if sender in self.discovery_sessions:
            raise bz.bluez_error("InProgress")
        was_discovering = self.discovering
        self.discovery_sessions.add(sender)
        if not was_discovering:
            self._changed(self.adapter_path, bz.ADAPTER, {"Discovering": ("b", True)})
        self._reply(call)
        self._later(0.01, self._advertise)

    def _advertise(self) -> None:
        """Every peripheral the merged filters let through reports one advertisement."""
        if not self.discovering:
            return
        filters = [self.filters[s] for s in self.discovery_sessions if s in self.filters]
        with_filter = bool(filters)
        for device in self.devices.values():
            p = device.peripheral
            uuids = advertised_uuids(p)
            if filters and not any(f.accepts(device.address, p.name, p.rssi, uuids) for f in filters):
                continue
            device.temporary_token += 1
            if not device.on_bus:
                device.on_bus, device.rssi, device.advertised = True, p.rssi, True
                self._added(device.path)
                continue
            changed: Properties = {}
            if device.rssi is None or with_filter:
                changed["RSSI"] = ("n", p.rssi)
            device.rssi = p.rssi
            if not device.advertised:
                device.advertised = True
                props = device_properties(device)
                changed.update({k: props[k] for k in ("ManufacturerData", "ServiceData") if k in props})
            if changed:
                self._changed(device.path, bz.DEVICE, changed)

    def _adapter_StopDiscovery(self, call: Message, path: str) -> None:
        if not self.powered:
            raise bz.bluez_error("NotReady")
        sender = call.sender or ""
        if sender not in self.discovery_sessions:
            raise bz.bluez_error("Failed", "No discovery started")
        self._end_discovery(sender)
        self._reply(call)

    def _end_discovery(self, sender: str) -> None:
        self.discovery_sessions.discard(sender)
        if self.discovering:
            return
        self._changed(self.adapter_path, bz.ADAPTER, {"Discovering": ("b", False)})
        for device in self.devices.values():
            if device.on_bus and device.rssi is not None:
                device.rssi = None
                self._changed(device.path, bz.DEVICE, {}, ["RSSI"])
                self._schedule_temporary_removal(device)

    def _schedule_temporary_removal(self, device: DeviceState) -> None:
        device.temporary_token += 1
        token = device.temporary_token

        def expire() -> None:
            temporary = not (device.connected or device.paired or device.trusted or device.connecting)
            if device.temporary_token == token and device.on_bus and temporary and not self.discovering:
                self._remove(device, reason=bz.gatt_error(0))

        self._later(self.temporary_timeout_s, expire)

    def _adapter_SetDiscoveryFilter(self, call: Message, path: str, options: bz.Options) -> None:
        parsed = bz.parse_discovery_filter(options)
        if options:
            self.filters[call.sender or ""] = parsed
        else:
            self.filters.pop(call.sender or "", None)
        self._reply(call)

    def _adapter_GetDiscoveryFilters(self, call: Message, path: str) -> None:
        self._reply(call, "as", [list(bz.FILTER_KEYS)])

    def _adapter_RemoveDevice(self, call: Message, path: str, device_path: str) -> None:
        if not self.powered:
            raise bz.bluez_error("NotReady")
        device = self.devices.get(device_path)
        if device is None or not device.on_bus:
            raise bz.bluez_error("DoesNotExist")
        self._remove(device, reason=bz.gatt_error(0))
        self._reply(call)

    def _adapter_ConnectDevice(self, call: Message, path: str, options: bz.Options) -> None:
        address = options.get("Address")
        kind = options.get("AddressType", ("s", "bredr"))
        if address is None or address[0] != "s" or kind[0] != "s" or kind[1] not in ("public", "random", "bredr"):
            raise bz.bluez_error("InvalidArguments")
        device = self.devices.get(self.device_path(str(address[1])))
        if device is not None and device.on_bus:
            raise bz.bluez_error("AlreadyExists")

        async def connect() -> None:
            wanted = device is not None and kind[1] == device.peripheral.address_type
            if device is None or not wanted or not device.peripheral.connectable or device.peripheral.connect_error:
                await asyncio.sleep(device.peripheral.connect_delay_s if device else 0.05)
                self.service.send(Message.new_error(call, "org.bluez.Failed", ""))  # 5.66: no ".Error", no text
                return
            device.on_bus = True
            self._added(device.path)
            try:
                await self._bring_up(device)
            except bz.BluezError:
                self.service.send(Message.new_error(call, "org.bluez.Failed", ""))
                return
            self._reply(call, "o", [device.path])

        self._spawn(connect())

    # -- removal ------------------------------------------------------------------------
    def _remove(self, device: DeviceState, reason: bz.BluezError) -> None:
        """Remove a device and its GATT objects from the bus (this is also bond removal)."""
        if not device.on_bus:
            return
        self._link_down(device, reason=reason, connect_error=bz.bluez_error("Failed", "le-connection-abort-by-local"))
        if device.gatt_exported:
            for path in sorted(device.gatt_paths(), reverse=True):
                interface = (
                    bz.DESCRIPTOR
                    if path in device.descriptors
                    else bz.CHARACTERISTIC
                    if path in device.characteristics
                    else bz.SERVICE
                )
                self._removed(path, [interface])
        device.on_bus = device.gatt_exported = device.advertised = False
        device.paired = device.bonded = device.trusted = False
        device.rssi = None
        device.table = None
        device.characteristics.clear()
        device.descriptors.clear()
        device.services.clear()
        self._removed(device.path, [bz.DEVICE])

    # -- Device1: the link ------------------------------------------------------------------
    def _device_of(self, path: str) -> DeviceState:
        device = self._owner(path)
        assert device is not None  # dispatch checked that the object exists
        return device

    def _device_Connect(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        if not self.powered:
            raise bz.bluez_error("NotReady")
        if device.connected:
            self._reply(call)
            return
        if device.connecting is not None:
            raise bz.bluez_error("InProgress")

        async def connect() -> None:
            try:
                await self._bring_up(device)
            except bz.BluezError as error:
                self._fail(call, error)
                return
            self._reply(call)

        self._spawn(connect())

    async def _bring_up(self, device: DeviceState) -> None:
        """Connect (or join the connection attempt in progress); raises the attempt's error."""
        if device.connected:
            return
        if device.connecting is None:
            device.connecting = self.service.future()
            device.connecting.add_done_callback(_consume)  # waiters may be gone (cancelled Pair)
            device.link += 1
            device.temporary_token += 1
            link = device.link
            self._later(device.peripheral.connect_delay_s, lambda: self._connect_done(device, link))
        await asyncio.shield(device.connecting)

    def _connect_done(self, device: DeviceState, link: int) -> None:
        future = device.connecting
        if device.link != link or future is None or future.done():
            return
        device.connecting = None
        p = device.peripheral
        if p.connect_error or not p.connectable:
            text = p.connect_error.replace("%s", device.address) if p.connect_error else None
            future.set_exception(bz.connect_failure(text))
            return
        device.connected, device.ops, device.notified, device.mtu = True, 0, 0, 23
        self._changed(device.path, bz.DEVICE, {"Connected": ("b", True)})
        future.set_result(None)  # Connect replies here: ATT is up, services are not resolved yet
        self._later(0.005, lambda: self._resolve(device, link))
        if p.disconnect_after_s:
            self._later(p.disconnect_after_s, lambda: self._remote_disconnect(device, link))

    def _resolve(self, device: DeviceState, link: int) -> None:
        """Service discovery: GATT objects (first time), the MTU exchange, ServicesResolved."""
        if device.link != link or not device.connected:
            return
        if not device.gatt_exported:
            if device.table is None:
                device.build_gatt()
            device.gatt_exported = True
            for path in device.gatt_paths():
                self._added(path)
            self._changed(device.path, bz.DEVICE, {"UUIDs": ("as", device.uuids())})
        device.mtu = min(BLUEZ_MTU, max(23, device.peripheral.mtu))
        for state in device.characteristics.values():
            self._changed(state.path, bz.CHARACTERISTIC, {"MTU": ("q", device.mtu)})
        device.services_resolved = True
        self._changed(device.path, bz.DEVICE, {"ServicesResolved": ("b", True)})
        waiters, device.resolved_waiters = device.resolved_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.gatt.link_up(device)

    def _link_down(
        self,
        device: DeviceState,
        reason: Optional[bz.BluezError] = None,
        connect_error: Optional[bz.BluezError] = None,
    ) -> None:
        """The link is gone (or the attempt is cancelled): fail what waits on it, signal the change."""
        reason = reason or bz.gatt_error(0)
        device.link += 1
        if device.connecting is not None:
            future, device.connecting = device.connecting, None
            if not future.done():
                future.set_exception(connect_error or bz.bluez_error("Failed", "br-connection-canceled"))
        if device.pairing is not None:
            device.pairing.cancel()
        pending, device.pending = device.pending, {}
        for call in pending.values():
            self._fail(call, reason)
        self.gatt.link_lost(device)
        waiters, device.resolved_waiters = device.resolved_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(bz.bluez_error("Failed", "Operation failed"))
        if not device.connected:
            return
        device.connected = device.services_resolved = False
        changed: Properties = {"ServicesResolved": ("b", False), "Connected": ("b", False)}
        if device.paired and not device.bonded:  # paired-but-not-bonded devices are unpaired on disconnect
            device.paired = False
            changed["Paired"] = ("b", False)
        self._changed(device.path, bz.DEVICE, changed)
        self._schedule_temporary_removal(device)  # an unneeded temporary device goes after the timeout

    def _remote_disconnect(self, device: DeviceState, link: int) -> None:
        """The peer disconnects (the world's disconnect_after_*), unless the link changed meanwhile."""
        if device.link == link:
            self._link_down(device)

    def _device_Disconnect(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        self._link_down(device, connect_error=bz.bluez_error("Failed", "br-connection-canceled"))
        self._reply(call)

    def _device_ConnectProfile(self, call: Message, path: str, uuid: str) -> None:
        raise bz.bluez_error("NotAvailable")

    _device_DisconnectProfile = _device_ConnectProfile

    # -- Device1: pairing ---------------------------------------------------------------------
    def _device_Pair(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        if device.pairing is not None:
            raise bz.bluez_error("InProgress")
        if device.paired:
            raise bz.bluez_error("AlreadyExists", "Already Paired")
        device.pairing = self._spawn(self._pair(device, call))

    async def _pair(self, device: DeviceState, call: Message) -> None:
        try:
            await self._bring_up(device)
            await self._authenticate(device, call.sender or "")
            device.paired = device.bonded = True
            self._changed(device.path, bz.DEVICE, {"Bonded": ("b", True), "Paired": ("b", True)})
            if not device.services_resolved:
                waiter = self.service.future()
                device.resolved_waiters.append(waiter)
                await waiter
            self._reply(call)
        except bz.BluezError as error:
            self._fail(call, error)
        except asyncio.CancelledError:
            self._fail(call, bz.bluez_error("AuthenticationCanceled"))
        finally:
            device.pairing = None

    async def _authenticate(self, device: DeviceState, sender: str) -> None:
        """The agent calls the world's pairing method needs; raises BluezError on failure."""
        p = device.peripheral
        if p.pair_error:
            await asyncio.sleep(0.01)
            raise bz.bluez_error(p.pair_error)
        if p.pairing == "just-works":
            return
        agent = self.agents.get(sender) or (self.agents.get(self.default_agent) if self.default_agent else None)
        if agent is None or agent.capability == "NoInputNoOutput":
            raise bz.bluez_error("AuthenticationFailed")
        if p.pairing == "confirm":
            request = ("RequestConfirmation", "ou", [device.path, p.passkey])
        elif p.pairing == "passkey":
            request = ("RequestPasskey", "o", [device.path])
        else:
            request = ("DisplayPasskey", "ouq", [device.path, p.passkey, 0])
        member, signature, body = request
        message = Message(
            destination=agent.sender, path=agent.path, interface=bz.AGENT, member=member, signature=signature, body=body
        )
        try:
            reply = await asyncio.wait_for(self.service.call(message), self.agent_timeout_s)
        except asyncio.TimeoutError:
            self.service.send(Message(destination=agent.sender, path=agent.path, interface=bz.AGENT, member="Cancel"))
            raise bz.bluez_error("AuthenticationTimeout") from None
        if reply.message_type == MessageType.ERROR:
            log.debug("simulated org.bluez: agent answered %s", reply.error_name)
            raise bz.bluez_error("AuthenticationFailed")
        if member == "RequestPasskey" and (reply.signature != "u" or reply.body[0] != p.passkey):
            raise bz.bluez_error("AuthenticationFailed")

    def _device_CancelPairing(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        if device.pairing is None:
            raise bz.bluez_error("DoesNotExist")
        device.pairing.cancel()
        self._reply(call)

    def _security_paired(self, device: DeviceState) -> None:
        """BlueZ raised the link's security after an ATT 0x05/0x0F and the peer paired "just works"."""
        device.paired = device.bonded = True
        self._changed(device.path, bz.DEVICE, {"Bonded": ("b", True), "Paired": ("b", True)})


def _consume(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (asyncio logs unseen ones)."""
    if not future.cancelled():
        future.exception()


class PrivateBluez:
    """A private dbus-daemon with a simulated ``org.bluez`` on it: a whole "system bus" for tests and demos.

    Point a client at it with :meth:`environ` (``DBUS_SYSTEM_BUS_ADDRESS``)::

        with PrivateBluez(load_world("heart-rate")) as system:
            os.environ.update(system.environ())

    Args:
        world: the simulated world.
        adapter: the adapter name (the world's by default).
        experimental: export ``Adapter1.ConnectDevice``.
        deny_send_to: bus names the bus policy refuses calls to (``["org.bluez"]``: AccessDenied).
    """

    def __init__(
        self,
        world: World,
        adapter: Optional[str] = None,
        experimental: bool = False,
        deny_send_to: Iterable[str] = (),
    ) -> None:
        self.bus = PrivateBus(deny_send_to=deny_send_to)
        self.world = world
        self.adapter = adapter
        self.experimental = experimental
        self.bluez: Optional[SimulatedBluez] = None

    def __enter__(self) -> PrivateBluez:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """The private bus's address."""
        return self.bus.address

    def environ(self) -> Dict[str, str]:
        """``DBUS_SYSTEM_BUS_ADDRESS`` (and the session bus variable) pointing at the private bus."""
        return self.bus.environ()

    def start(self) -> None:
        """Start the bus, then the simulated bluetoothd on it.

        Raises:
            BusStartError: no dbus-daemon.
            RuntimeError: the simulator could not start.
        """
        self.bus.start()
        try:
            self.bluez = SimulatedBluez(self.world, self.bus.address, self.adapter, self.experimental)
            self.bluez.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the simulator and the bus. Always returns."""
        if self.bluez is not None:
            self.bluez.stop()
            self.bluez = None
        self.bus.stop()


def run_until_stopped(
    world: World,
    bus_address: Optional[str],
    adapter: Optional[str] = None,
    experimental: bool = False,
) -> int:
    """Serve ``org.bluez`` until SIGTERM or SIGINT (for ``python -m pygatt.testing.sim bluez``).

    Args:
        world: the world.
        bus_address: the bus to serve on; None starts a private bus and prints its address
            as ``DBUS_SYSTEM_BUS_ADDRESS=...``.
        adapter: the adapter name (the world's by default).
        experimental: export ``ConnectDevice``.

    Returns:
        The exit status.
    """
    import signal
    import sys

    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    private = PrivateBluez(world, adapter, experimental) if bus_address is None else None
    bluez = None if private else SimulatedBluez(world, bus_address or "", adapter=adapter, experimental=experimental)
    try:
        if private is not None:
            private.start()
            bluez = private.bluez
            sys.stdout.write(f"DBUS_SYSTEM_BUS_ADDRESS={private.address}\n")
        else:
            assert bluez is not None
            bluez.start()
    except (RuntimeError, BusStartError) as exc:
        sys.stderr.write(f"pygatt simulator: {exc}\n")
        return 1
    assert bluez is not None
    sys.stdout.write(f"simulated org.bluez ({bluez.unique_name}) on {bluez.bus_address}\n")
    sys.stdout.flush()
    try:
        while not stop.is_set() and bluez.running:
            stop.wait(0.2)
    finally:
        if private is not None:
            private.stop()
        else:
            bluez.stop()
    return 0


__all__ = ["BusCall", "PrivateBluez", "SimulatedBluez", "run_until_stopped"]
