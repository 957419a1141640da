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
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply

from pygatt.testing.world import Attribute, World, full_uuid

from . import bluez_objects as bz
from .bluez_state import (
    BLUEZ_MTU,
    CharacteristicState,
    DeviceState,
    Properties,
    adapter_properties,
    characteristic_properties,
    descriptor_properties,
    device_properties,
    service_properties,
)

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
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
        self.unique_name = ""
        self._lock = threading.Lock()
        self._calls: List[BusCall] = []
        self._hung: Set[str] = set()
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._bus: Optional[MessageBus] = None
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None
        self._stopping: Optional[asyncio.Event] = None
        self._gone = False
        self._tasks: Set[asyncio.Task] = set()
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
                device.on_bus = device.paired = device.bonded = device.trusted = True
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
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="simulated-bluetoothd", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"simulated org.bluez: no bus connection within {timeout:g} s")
        if self._start_error is not None:
            error = self._start_error
            self.stop()
            raise RuntimeError(f"simulated org.bluez could not start: {error}") from error

    def stop(self) -> None:
        """Leave the bus and end the thread. Always returns."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                log.debug("simulated org.bluez: the loop is already closed")
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("simulated org.bluez: the thread did not end within %g s", STOP_TIMEOUT_S)
        self._thread = None

    @property
    def running(self) -> bool:
        """True while the simulated bluetoothd's thread runs (false after stop(); vanish() keeps it)."""
        return self._thread is not None and self._thread.is_alive()

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
        self._call_soon(self._vanish, timeout)

    def remove_device(self, address: str, timeout: float = STOP_TIMEOUT_S) -> None:
        """The device object goes away now (``InterfacesRemoved``), in the middle of whatever runs.

        Args:
            address: the device address.
            timeout: seconds to wait for it to be done.
        """
        self._call_soon(lambda: self._remove(self._device(address), reason=bz.gatt_error(0)), timeout)

    def drop_link(self, address: str, timeout: float = STOP_TIMEOUT_S) -> None:
        """The peer drops the link: ``ServicesResolved``/``Connected`` become false, GATT objects stay.

        Args:
            address: the device address.
            timeout: seconds to wait for it to be done.
        """
        self._call_soon(lambda: self._link_down(self._device(address)), timeout)

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
        return bool(self._call_soon(lambda: self._notify_now(self._device(address), characteristic, value), timeout))

    def device_path(self, address: str) -> str:
        """The object path of the device with ``address``."""
        return bz.device_path(self.adapter_path, address)

    # ====================================================================================
    # thread, loop and bus
    # ====================================================================================
    def _call_soon(self, action: Callable[[], Any], timeout: float) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed() or self._thread is None:
            raise RuntimeError("the simulated org.bluez is not running")

        async def run() -> Any:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # reported to start() when it is not running yet
            self._start_error = exc
            log.exception("simulated org.bluez failed")
        finally:
            self._ready.set()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        bus = MessageBus(bus_address=self.bus_address)
        await asyncio.wait_for(bus.connect(), START_TIMEOUT_S)
        self._bus = bus
        self.unique_name = bus.unique_name or ""
        bus.add_message_handler(self._on_message)
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        reply = await bus.request_name(bz.SERVICE_NAME, NameFlag.DO_NOT_QUEUE)
        if reply != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {bz.SERVICE_NAME}: {reply}")
        self._ready.set()
        await self._stopping.wait()
        if not self._gone:
            self._gone = True
            bus.disconnect()

    def _vanish(self) -> None:
        if not self._gone and self._bus is not None:
            self._gone = True
            self._bus.disconnect()

    def _spawn(self, coroutine: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_later(max(0.0, delay), action)

    def _send(self, message: Message) -> None:
        if not self._gone and self._bus is not None:
            self._bus.send(message)

    def _reply(self, call: Message, signature: str = "", body: Optional[List[Any]] = None) -> None:
        self._send(Message.new_method_return(call, signature, [wire(v) for v in (body or [])]))

    def _fail(self, call: Message, error: bz.BluezError) -> None:
        self._send(Message.new_error(call, error.name, error.message))

    def _signal(self, path: str, interface: str, member: str, signature: str, body: List[Any]) -> None:
        self._send(Message.new_signal(path, interface, member, signature, body))

    def _changed(self, path: str, interface: str, changed: Properties, invalidated: Iterable[str] = ()) -> None:
        """``PropertiesChanged`` from ``path``."""
        body = {name: Variant(sig, wire(value)) for name, (sig, value) in changed.items()}
        self._signal(path, bz.PROPERTIES, "PropertiesChanged", "sa{sv}as", [interface, body, list(invalidated)])

    def _added(self, path: str) -> None:
        """``InterfacesAdded`` from ``/`` for the object at ``path``."""
        interfaces = self._interfaces(path) or {}
        body = {
            name: {prop: Variant(sig, wire(value)) for prop, (sig, value) in props.items()}
            for name, props in interfaces.items()
        }
        self._signal(bz.ROOT, bz.OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", [path, body])

    def _removed(self, path: str, interfaces: List[str]) -> None:
        self._signal(bz.ROOT, bz.OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, interfaces])

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
    def _on_message(self, message: Message) -> bool:
        if message.message_type == MessageType.SIGNAL:
            if message.member == "NameOwnerChanged" and message.sender == "org.freedesktop.DBus":
                name, _, new_owner = message.body
                if name.startswith(":") and not new_owner:
                    self._sender_left(name)
            return False
        if message.message_type != MessageType.METHOD_CALL:
            return False
        path, member, signature = message.path or "/", message.member or "", message.signature or ""
        with self._lock:
            self._calls.append(
                BusCall(message.sender or "", path, message.interface or "", member, signature, tuple(message.body))
            )
            hung = member in self._hung
        if hung:
            log.debug("simulated org.bluez: %s %s left unanswered (hang)", member, path)
            return True
        try:
            self._dispatch(message, path, member, signature)
        except bz.BluezError as error:
            self._fail(message, error)
        return True

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
        handler = getattr(self, f"_{prefix}_{member}", None) if prefix else None
        if handler is None:
            raise bz.bluez_error("NotSupported")
        handler(message, path, *[unwire(argument) for argument in message.body])

    def _sender_left(self, sender: str) -> None:
        """A client left the bus: its discovery session, filter, agent and notify sessions end."""
        if sender in self.discovery_sessions:
            self._end_discovery(sender)
        self.filters.pop(sender, None)
        if sender in self.agents:
            del self.agents[sender]
            if self.default_agent == sender:
                self.default_agent = None
        for device in self.devices.values():
            for state in device.characteristics.values():
                if sender in state.sessions:
                    self._end_notify_session(device, state, sender)

    # -- standard interfaces --------------------------------------------------------------
    def _om_GetManagedObjects(self, call: Message, path: str) -> None:
        result: Dict[str, Dict[str, Dict[str, Variant]]] = {}
        for object_path in self._paths():
            if object_path == bz.ROOT:
                continue
            interfaces = self._interfaces(object_path) or {}
            entry: Dict[str, Dict[str, Variant]] = {bz.INTROSPECTABLE: {}}
            for name, props in interfaces.items():
                entry[name] = {prop: Variant(sig, wire(value)) for prop, (sig, value) in props.items()}
            entry[bz.PROPERTIES] = {}
            result[object_path] = entry
        self._send(Message.new_method_return(call, "a{oa{sa{sv}}}", [result]))

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
        self._send(Message.new_method_return(call, "v", [Variant(signature, wire(value))]))

    def _props_GetAll(self, call: Message, path: str, interface: str) -> None:
        props = (self._interfaces(path) or {}).get(interface)
        if props is None:
            raise bz.BluezError(bz.INVALID_ARGS, f"No such interface '{interface}'")
        body = {name: Variant(sig, wire(value)) for name, (sig, value) in props.items()}
        self._send(Message.new_method_return(call, "a{sv}", [body]))

    def _props_Set(self, call: Message, path: str, interface: str, name: str, value: bz.Var) -> None:
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
        if name in new:
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
            uuids = [full_uuid(u) for u in p.advertised_services]
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
                self._send(Message.new_error(call, "org.bluez.Failed", ""))  # 5.66: no ".Error", no text
                return
            device.on_bus = True
            self._added(device.path)
            try:
                await self._bring_up(device)
            except bz.BluezError:
                self._send(Message.new_error(call, "org.bluez.Failed", ""))
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
            assert self._loop is not None
            device.connecting = self._loop.create_future()
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
        device.connected, device.ops, device.mtu = True, 0, 23
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
        for state in device.characteristics.values():
            if state.sessions:  # notify sessions survive a disconnect: BlueZ enables the CCCD again
                self._write_cccd(device, state, enable=True)
            stream = state.characteristic.notify
            if stream is not None and stream.trigger == "connect":
                self._start_stream(device, state)

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
        for state in device.characteristics.values():
            state.read_offset, state.readers, state.writing, state.enabling = None, [], False, False
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
                assert self._loop is not None
                waiter = self._loop.create_future()
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
        assert self._bus is not None
        try:
            reply = await asyncio.wait_for(self._bus.call(message), self.agent_timeout_s)
        except asyncio.TimeoutError:
            self._send(Message(destination=agent.sender, path=agent.path, interface=bz.AGENT, member="Cancel"))
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

    # -- GATT: reads and writes -------------------------------------------------------------
    def _gatt_op(self, device: DeviceState, call: Message, action: Callable[[], None]) -> None:
        """Run a GATT operation after the peer's response time, unless the link changes first."""
        if not device.connected:
            raise bz.not_connected()
        device.ops += 1
        link = device.link
        device.pending[call.serial] = call

        def finish() -> None:
            if device.link != link or device.pending.pop(call.serial, None) is None:
                return
            try:
                action()
            except bz.BluezError as error:
                self._fail(call, error)
            limit = device.peripheral.disconnect_after_ops
            if limit and device.ops >= limit:
                self._later(0.001, lambda: self._remote_disconnect(device, link))

        self._later(device.peripheral.response_delay_s, finish)

    def _access(self, device: DeviceState, attribute: Attribute, writing: bool) -> None:
        """Raise the D-Bus error for the ATT error the peer answers (0x05/0x0F: pairing first)."""
        error: Union[None, int, str] = attribute.write_error if writing else attribute.read_error
        if attribute.characteristic is not None:  # the world's own value keeps codes gatttool has no text for
            characteristic = attribute.characteristic
            error = characteristic.write_error if writing else characteristic.read_error
        code = bz.att_code_of(error)
        if code is None and not (attribute.writable if writing else attribute.readable):
            code = 0x03 if writing else 0x02
        if code in (0x05, 0x0F) and not device.paired and device.peripheral.pairing == "just-works":
            device.paired = device.bonded = True  # BlueZ raises the security level and retries
            self._changed(device.path, bz.DEVICE, {"Bonded": ("b", True), "Paired": ("b", True)})
        if code in (0x05, 0x0F) and device.paired:
            return
        if code is not None:
            raise bz.gatt_error(code)

    def _char_ReadValue(self, call: Message, path: str, options: bz.Options) -> None:
        device = self._device_of(path)
        state = device.characteristics[path]
        offset, _ = bz.parse_gatt_options(options)
        if not device.connected:
            raise bz.not_connected()
        if state.read_offset is not None:
            if state.read_offset != offset:
                raise bz.bluez_error("InProgress")
            state.readers.append(call)  # a concurrent read at the same offset joins the first
            device.pending[call.serial] = call
            return
        state.read_offset, state.readers = offset, [call]

        def read() -> None:
            readers, state.readers, state.read_offset = state.readers, [], None
            try:
                value = self._read(device, state.attribute, offset)
            except bz.BluezError as error:
                for reader in readers[1:]:
                    device.pending.pop(reader.serial, None)
                    self._fail(reader, error)
                raise
            state.value = value
            self._changed(state.path, bz.CHARACTERISTIC, {"Value": ("ay", value)})  # before the reply
            for reader in readers:
                device.pending.pop(reader.serial, None)
                self._reply(reader, "ay", [value])

        self._gatt_op(device, call, read)

    def _read(self, device: DeviceState, attribute: Attribute, offset: int) -> bytes:
        self._access(device, attribute, writing=False)
        value = bytes(attribute.value)
        if offset > len(value):
            raise bz.gatt_error(0x07)
        return value[offset:]  # BlueZ reads long values with Read Blob: the whole value

    def _char_WriteValue(self, call: Message, path: str, value: bytes, options: bz.Options) -> None:
        device = self._device_of(path)
        state = device.characteristics[path]
        offset, kind = bz.parse_gatt_options(options)
        if not device.connected:
            raise bz.not_connected()
        if state.writing:
            raise bz.bluez_error("InProgress")
        flags = state.flags
        if kind is None:
            kind = "request" if "write" in flags else "command" if "write-without-response" in flags else ""
        if kind in ("request", "reliable"):
            state.writing = True

            def write() -> None:
                state.writing = False
                self._write(device, state.attribute, bytes(value), offset)
                self._reply(call)

            self._gatt_op(device, call, write)
            return
        if kind != "command" or offset:
            raise bz.bluez_error("NotSupported")
        if len(value) > device.mtu - 3:
            raise bz.bluez_error("Failed", "Failed to initiate write")
        device.ops += 1
        try:  # a Write Command gets no answer: an error on the peer's side is invisible
            self._write(device, state.attribute, bytes(value), 0)
        except bz.BluezError as error:
            log.debug("simulated org.bluez: write command dropped by the peer (%s)", error.message)
        self._reply(call)

    def _write(self, device: DeviceState, attribute: Attribute, value: bytes, offset: int) -> None:
        self._access(device, attribute, writing=True)
        if offset > len(attribute.value):
            raise bz.gatt_error(0x07)
        attribute.value = bytearray(bytes(attribute.value[:offset]) + value)  # Value (BlueZ's cache) is unchanged

    def _desc_ReadValue(self, call: Message, path: str, options: bz.Options) -> None:
        device = self._device_of(path)
        state = device.descriptors[path]
        offset, _ = bz.parse_gatt_options(options)

        def read() -> None:
            value = self._read(device, state.attribute, offset)
            state.value = value
            self._changed(state.path, bz.DESCRIPTOR, {"Value": ("ay", value)})
            self._reply(call, "ay", [value])

        self._gatt_op(device, call, read)

    def _desc_WriteValue(self, call: Message, path: str, value: bytes, options: bz.Options) -> None:
        device = self._device_of(path)
        state = device.descriptors[path]
        offset, _ = bz.parse_gatt_options(options)
        if state.attribute.uuid == bz.CCCD_UUID:
            raise bz.bluez_error("NotPermitted", "Write not permitted")  # use StartNotify/StopNotify

        def write() -> None:
            self._write(device, state.attribute, bytes(value), offset)
            self._reply(call)

        self._gatt_op(device, call, write)

    def _char_AcquireWrite(self, call: Message, path: str, options: bz.Options) -> None:
        raise bz.bluez_error("NotSupported")  # not simulated: WriteAcquired is not exported

    _char_AcquireNotify = _char_AcquireWrite  # not simulated: NotifyAcquired is not exported, clients StartNotify

    # -- GATT: notifications -----------------------------------------------------------------
    def _char_StartNotify(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        state = device.characteristics[path]
        sender = call.sender or ""
        if not {"notify", "indicate"} & set(state.flags):
            raise bz.bluez_error("NotSupported")
        if sender in state.sessions:
            self._reply(call)
            return
        if state.enabling:
            raise bz.bluez_error("InProgress")
        if not device.connected:  # succeeds; the CCCD is written at the next connection
            state.sessions.add(sender)
            self._set_notifying(state, True)
            self._reply(call)
            return
        state.enabling = True
        link = device.link

        def enabled() -> None:
            state.enabling = False
            if device.link != link:
                self._fail(call, bz.bluez_error("NotConnected"))
                return
            state.sessions.add(sender)
            first = state.cccd is None or not int.from_bytes(bytes(state.cccd.value[:2]).ljust(2, b"\0"), "little")
            self._set_notifying(state, True)
            self._reply(call)
            if first:
                self._write_cccd(device, state, enable=True)

        self._later(device.peripheral.response_delay_s, enabled)

    def _set_notifying(self, state: CharacteristicState, notifying: bool) -> None:
        if state.notifying != notifying:
            state.notifying = notifying
            self._changed(state.path, bz.CHARACTERISTIC, {"Notifying": ("b", notifying)})

    def _write_cccd(self, device: DeviceState, state: CharacteristicState, enable: bool) -> None:
        """Write the CCCD on the peer: 0x0001 when ``notify`` is set, else 0x0002; starts a stream."""
        if state.cccd is None:
            return
        bits = (0x0001 if "notify" in state.flags else 0x0002) if enable else 0
        state.cccd.value = bytearray(bits.to_bytes(2, "little"))
        stream = state.characteristic.notify
        if enable and stream is not None and stream.trigger == "subscribe":
            self._start_stream(device, state)

    def _char_StopNotify(self, call: Message, path: str) -> None:
        device = self._device_of(path)
        state = device.characteristics[path]
        sender = call.sender or ""
        if sender not in state.sessions:
            raise bz.bluez_error("Failed", "No notify session started")
        self._end_notify_session(device, state, sender)
        self._reply(call)

    def _end_notify_session(self, device: DeviceState, state: CharacteristicState, sender: str) -> None:
        state.sessions.discard(sender)
        if state.sessions:
            return
        if device.connected:
            self._write_cccd(device, state, enable=False)
        self._set_notifying(state, False)

    def _start_stream(self, device: DeviceState, state: CharacteristicState) -> None:
        stream = state.characteristic.notify
        assert stream is not None
        link = device.link
        state.stream_sent = 0

        def send() -> None:
            if device.link != link or not device.connected:
                return
            enabled = state.cccd is None or any(bytes(state.cccd.value[:2]))
            if stream.trigger == "subscribe" and not enabled:
                return
            batch = 1 if stream.interval_s > 0 else 32
            for _ in range(batch):
                if stream.count and state.stream_sent >= stream.count:
                    return
                self._deliver(state, stream.value(state.stream_sent))
                state.stream_sent += 1
            self._later(stream.interval_s, send)

        self._later(stream.interval_s, send)

    def _deliver(self, state: CharacteristicState, value: bytes) -> bool:
        """A notification reaches BlueZ: one ``Value`` signal, even for an unchanged value."""
        if not state.sessions:
            return False  # BlueZ only listens for handles a notify session registered
        state.value = value
        self._changed(state.path, bz.CHARACTERISTIC, {"Value": ("ay", value)})
        return True

    def _notify_now(self, device: DeviceState, key: Union[int, str], value: bytes) -> bool:
        state = device.find_characteristic(key)
        if state is None or not device.connected:
            return False
        return self._deliver(state, bytes(value))


# ==========================================================================================
# values between the model and dbus-fast
# ==========================================================================================
def wire(value: Any) -> Any:
    """A model value as dbus-fast wants it (:class:`~.bluez_objects.Var` -> ``Variant``)."""
    if isinstance(value, bz.Var):
        return Variant(value.signature, wire(value.value))
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire(item) for item in value]
    return value


def unwire(value: Any) -> Any:
    """A received argument as the model wants it (``a{sv}`` -> ``{key: (signature, value)}``, ``v`` -> Var)."""
    if isinstance(value, Variant):
        return bz.Var(value.signature, value.value)
    if isinstance(value, dict) and all(isinstance(item, Variant) for item in value.values()):
        return {key: (item.signature, item.value) for key, item in value.items()}
    return value


def run_until_stopped(world: World, bus_address: str, adapter: Optional[str] = None, experimental: bool = False) -> int:
    """Serve ``org.bluez`` until SIGTERM or SIGINT (for ``python -m pygatt.testing.sim bluez``).

    Args:
        world: the world.
        bus_address: the bus to serve on.
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
    bluez = SimulatedBluez(world, bus_address, adapter=adapter, experimental=experimental)
    try:
        bluez.start()
    except RuntimeError as exc:
        sys.stderr.write(f"pygatt simulator: {exc}\n")
        return 1
    sys.stdout.write(f"simulated org.bluez ({bluez.unique_name}) on {bus_address}\n")
    sys.stdout.flush()
    try:
        while not stop.is_set() and bluez.running:
            stop.wait(0.2)
    finally:
        bluez.stop()
    return 0


__all__ = ["BusCall", "SimulatedBluez", "run_until_stopped"]
