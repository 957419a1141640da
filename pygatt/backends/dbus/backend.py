"""``DBusBackend``: BLE through BlueZ's D-Bus API (``org.bluez`` on the system bus)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional, Set, Tuple, Union

from pygatt import validate
from pygatt.backends.backend import (
    DEFAULT_CONNECT_TIMEOUT_S,
    BLEAddressType,
    BLEBackend,
    address_type_of,
    resubscribe_or_close,
)
from pygatt.backends.dbus import errors, paths, properties
from pygatt.backends.dbus.agent import Agent
from pygatt.backends.dbus.bus import BusClosed, BusConnection, CallTimeout, DBusCallError, IncomingCall, Signal
from pygatt.backends.dbus.device import DBusBLEDevice
from pygatt.backends.dbus.link import DBusLink
from pygatt.backends.dbus.properties import ADAPTER, CHARACTERISTIC, DEVICE
from pygatt.backends.dbus.simulation import Simulation
from pygatt.backends.timeouts import none_means_default
from pygatt.backends.turns import Turns
from pygatt.deadline import Deadline
from pygatt.dispatch import CallbackDispatcher
from pygatt.exceptions import BLEError, NotConnectedError
from pygatt.reconnect import DEFAULT_RECONNECT_DELAY, Reconnector

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
DBUS = "org.freedesktop.DBus"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
AGENT_MANAGER = "org.bluez.AgentManager1"
CALL_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 1.0
AGENT_PATH = "/org/pygatt/agent{}"
MATCH_RULES = (
    f"type='signal',sender='{DBUS}',interface='{DBUS}',member='NameOwnerChanged',arg0='{BLUEZ}'",
    f"type='signal',sender='{BLUEZ}',interface='{OBJECT_MANAGER}',member='InterfacesAdded',arg0path='/org/bluez/'",
    f"type='signal',sender='{BLUEZ}',interface='{OBJECT_MANAGER}',member='InterfacesRemoved',arg0path='/org/bluez/'",
    f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES}',member='PropertiesChanged',path_namespace='/org/bluez'",
)


class DBusBackend(BLEBackend):
    """Backend to pygatt that talks to bluetoothd over D-Bus: no gatttool, no root where the
    system's D-Bus policy lets the user talk to BlueZ (Debian's does).

    When ``PYGATT_SIMULATE`` names a simulated world (read when the backend is built)
    and no ``bus_address`` is given, :meth:`start` runs a private bus with a simulated
    BlueZ instead.

    Args:
        hci_device: the adapter to use, e.g. ``"hci0"``.
        bus_address: a D-Bus address (``unix:path=...``) to use instead of the system bus
            (keyword only); the system bus is ``DBUS_SYSTEM_BUS_ADDRESS`` when set.
        agent_capability: the pairing agent's IO capability (``"NoInputNoOutput"`` is Just Works).
        passkey: a fixed passkey (0..999999) the agent gives when a peer asks for one.
        pin_code: a fixed PIN the agent gives for legacy pairing.
        simulate: a simulated world (JSON path, or ``"heart-rate"``) to run on a private bus
            instead of talking to BlueZ (keyword only; ``PYGATT_SIMULATE`` does the same).

    Raises:
        ValueError: a malformed adapter name, bus address, capability, passkey or PIN.
    """

    def __init__(
        self,
        hci_device: str = "hci0",
        *,
        bus_address: Optional[str] = None,
        agent_capability: str = "KeyboardDisplay",
        passkey: Optional[int] = None,
        pin_code: Optional[str] = None,
        simulate: Optional[str] = None,
    ) -> None:
        self._hci_device = validate.hci_device(hci_device)
        self._adapter_path = paths.adapter_path(self._hci_device)
        if bus_address is not None and (not isinstance(bus_address, str) or not bus_address.startswith("unix:")):
            raise ValueError(f"bus_address must be a 'unix:path=...' D-Bus address, got {bus_address!r}")
        if simulate is not None and (not isinstance(simulate, str) or not simulate.strip()):
            raise ValueError(f"simulate must name a simulated world, got {simulate!r}")
        if simulate is not None and bus_address is not None:
            raise ValueError("bus_address and simulate exclude each other")
        self._bus_address = bus_address
        # chosen and checked now, as the other backends do: a world that cannot be loaded is a ValueError here
        self._simulated: Optional[Simulation] = None
        if simulate is not None:
            self._simulated = Simulation(simulate, self._hci_device)
        elif bus_address is None:
            self._simulated = Simulation.from_environment(self._hci_device)
        if self._simulated is not None:
            self._simulated.check()
        self._agent = Agent(agent_capability, passkey, pin_code)
        self._agent_path = AGENT_PATH.format(id(self))
        self._agent_registered = False
        self._bluez_owner = ""  # the unique bus name of bluetoothd: the only caller the agent answers
        self._dispatcher = CallbackDispatcher("pygatt-dbus-callbacks")
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._stops = 0  # how many times stop() ran: a start() that sees it change fails
        self._bus: Optional[BusConnection] = None
        self._simulation: Optional[Simulation] = None
        self._running = False
        self._devices: Dict[str, DBusBLEDevice] = {}  # by address, while connected or reconnecting
        self._links: Dict[str, DBusLink] = {}  # by device object path, while up
        self._taken_over: Set[DBusLink] = set()  # lost links a new connect() replaced before _link_lost ran
        self._options: Dict[str, Tuple[BLEAddressType, float]] = {}  # by address: how to reconnect
        self._reopen_turns = Turns()  # by address: one reconnect at a time (see _reopen)
        self._scan: Optional[Dict[str, Dict[str, Any]]] = None  # device path -> properties seen while scanning
        self._awaited: Dict[str, threading.Event] = {}  # device paths a connect waits to appear
        self._discovery_lock = threading.Lock()
        self._discovery_users = 0  # scans and connects sharing our one discovery session
        self._stopping = threading.Event()
        self._reconnector = Reconnector(DEFAULT_RECONNECT_DELAY)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} hci_device={self._hci_device}>"

    @property
    def agent(self) -> Agent:
        """The pairing agent registered with BlueZ."""
        return self._agent

    def supports_unbonded(self) -> bool:
        """False: BlueZ raises the link's security by itself when an attribute asks for it."""
        return False

    # -- life cycle -------------------------------------------------------------------------

    @none_means_default
    def start(self, timeout: float = CALL_TIMEOUT_S) -> None:
        """Connect to the bus, check that BlueZ and the adapter are there, register the pairing agent.

        The adapter is never reset or powered on behind the user's back.

        Args:
            timeout: seconds for the whole start.

        Raises:
            BluezNotAvailableError: no bus, bluetoothd not on it, or no such adapter (a ToolError).
            PermissionDeniedError: the bus policy refuses to let us talk to BlueZ.
            BLEError: :meth:`stop` was called while starting.
        """
        timeout = validate.positive_timeout(timeout)
        # One start at a time; the backend's lock is not held across the calls to the bus, so a
        # stop() meanwhile returns at once: it closes the bus, which fails the start.
        with self._start_lock:
            with self._lock:
                if self._running:
                    log.info("The D-Bus backend is already started")
                    return
                self._stopping.clear()
                stops = self._stops
            try:
                self._start(timeout, stops)
            except BaseException:
                with self._lock:
                    bus = self._bus if self._stops == stops else None
                    simulation = self._simulation if self._stops == stops else None
                    if bus is not None:
                        self._bus = None
                    if simulation is not None:
                        self._simulation = None
                if bus is not None:
                    bus.close()
                self._reconnector.stop(0.5)
                self._dispatcher.stop(0.2)
                if simulation is not None:
                    simulation.stop()
                raise
        log.info("D-Bus backend started on %s", self._hci_device)

    def _start(self, timeout: float, stops: int) -> None:
        """:meth:`start`'s work; raises BLEError when :meth:`stop` ran meanwhile (``stops`` changed)."""

        def not_stopped() -> None:
            if self._stops != stops:
                raise BLEError("The backend was stopped while starting")

        address = self._bus_address
        if address is None:
            simulation = self._simulated and Simulation(self._simulated.world, self._hci_device)  # anew for each start
            if simulation is not None:
                address = simulation.start()
                with self._lock:
                    if self._stops != stops:
                        simulation.stop()
                    not_stopped()
                    self._simulation = simulation
        bus = BusConnection(address, self._on_signal, self._on_bus_closed)
        try:
            bus.open(timeout)
        except BaseException as exc:
            bus.close()
            if isinstance(exc, ConnectionError):
                raise errors.BluezNotAvailableError(f"Cannot reach the system D-Bus: {exc}") from exc
            raise
        with self._lock:
            if self._stops != stops:
                bus.close()
            not_stopped()
            self._bus = bus
        for rule in MATCH_RULES:
            self._bus_call(DBUS, "/org/freedesktop/DBus", DBUS, "AddMatch", "s", (rule,), timeout=timeout)
        self._check_adapter(timeout)
        self._dispatcher.start()
        self._reconnector.start()
        self._register_agent(timeout)
        with self._lock:
            not_stopped()
            self._running = True

    def _check_adapter(self, timeout: float) -> None:
        try:
            owner = self._bus_call(DBUS, "/org/freedesktop/DBus", DBUS, "GetNameOwner", "s", (BLUEZ,), timeout=timeout)
            self._bluez_owner = str(owner[0])
        except BLEError as exc:
            raise errors.BluezNotAvailableError(
                f"bluetoothd is not running: nobody owns {BLUEZ} on the system bus "
                "(start it with 'systemctl start bluetooth')"
            ) from exc
        try:
            found = self._bluez(self._adapter_path, PROPERTIES, "GetAll", "s", (ADAPTER,), timeout, "start")
        except (NotConnectedError, errors.BluezNotAvailableError) as exc:
            raise errors.BluezNotAvailableError(
                f"No Bluetooth adapter {self._hci_device}: BlueZ has no {self._adapter_path}"
            ) from exc
        adapter = properties.unwrap(found[0])
        if not adapter.get("Powered", False):
            log.warning(
                "Adapter %s is powered off; power it on (bluetoothctl power on) to scan or connect", self._hci_device
            )

    def _register_agent(self, timeout: float) -> None:
        bus = self._connection()
        bus.export(self._agent_path, self._answer_agent_call)
        try:
            self._bluez(
                "/org/bluez",
                AGENT_MANAGER,
                "RegisterAgent",
                "os",
                (self._agent_path, self._agent.capability),
                timeout,
                "RegisterAgent",
            )
            self._agent_registered = True
        except BLEError as exc:
            log.warning("Could not register the pairing agent (%s); bond() uses BlueZ's default agent", exc)

    def _register_agent_again(self) -> None:
        """Dispatcher thread: register the agent with a bluetoothd that (re)appeared on the bus."""
        log.info("bluetoothd is back on the bus; registering the pairing agent again")
        try:
            self._register_agent(CALL_TIMEOUT_S)
        except BLEError as exc:
            log.warning("Could not register the pairing agent again: %s", exc)

    def _answer_agent_call(self, call: IncomingCall) -> Tuple[str, Tuple[Any, ...]]:
        """Reader thread: pass a call to the agent when bluetoothd made it; refuse anyone else
        (another program on the bus must not learn the passkey or confirm a pairing).
        """
        if not call.sender or call.sender != self._bluez_owner:
            log.warning("Refused a pairing-agent call (%s) from %s, which is not bluetoothd", call.member, call.sender)
            raise DBusCallError("org.freedesktop.DBus.Error.AccessDenied", "only bluetoothd may call this agent")
        return self._agent.handle(call)

    def stop(self) -> None:
        """Stop the backend: disconnect every device, unregister the agent, close the bus.

        Safe in every state; returns within a few seconds even when BlueZ does not answer.
        """
        self._stopping.set()
        with self._lock:
            self._running = False
            self._stops += 1
            devices = list(self._devices.values())
            links = list(self._links.values())
            self._devices.clear()
            self._links.clear()
            self._taken_over.clear()
            awaited = list(self._awaited.values())
            bus, self._bus = self._bus, None
            simulation, self._simulation = self._simulation, None
        for event in awaited:
            event.set()  # a connect looking for its device gives up now
        if bus is not None:
            self._disconnect_all(links)
            if self._agent_registered:
                try:
                    bus.call(
                        BLUEZ, "/org/bluez", AGENT_MANAGER, "UnregisterAgent", "o", (self._agent_path,), STOP_TIMEOUT_S
                    )
                except (DBusCallError, CallTimeout, BusClosed) as exc:
                    log.debug("UnregisterAgent: %s", exc)
                self._agent_registered = False
            bus.close()  # whatever still waits for BlueZ fails now
        for link in links:
            link.removed("the backend was stopped")  # wakes a connect waiting for its services
        self._reconnector.stop()
        for device in devices:
            device.link_down()
        self._dispatcher.stop(0.5, discard=True)
        if simulation is not None:
            simulation.stop()

    @staticmethod
    def _disconnect_all(links: List[DBusLink]) -> None:
        """Disconnect every link at once, waiting at most about STOP_TIMEOUT_S in all."""

        def disconnect(link: DBusLink) -> None:
            try:
                link.disconnect(STOP_TIMEOUT_S)
            except BLEError as exc:
                log.info("Disconnecting %s while stopping: %s", link.address, exc)

        threads = [
            threading.Thread(target=disconnect, args=(link,), name="pygatt-dbus-stop", daemon=True) for link in links
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(STOP_TIMEOUT_S + 0.5)  # a thread still waiting ends when the bus closes next

    # -- scanning ---------------------------------------------------------------------------------

    @none_means_default
    def scan(self, timeout: float = 10, run_as_root: bool = False) -> List[Dict[str, Any]]:
        """Scan for BLE devices for ``timeout`` seconds (StartDiscovery with an LE filter).

        Args:
            timeout: seconds to scan.
            run_as_root: accepted (also by position) for compatibility with
                ``GATTToolBackend.scan`` and ignored: scanning over D-Bus needs no root.

        Returns:
            One dict per device heard during the scan: 'address', 'name' (None when not
            advertised), 'rssi', 'address_type', 'manufacturer_data' ({company id: bytes}),
            'service_data' ({UUID: bytes}) and 'uuids'.

        Raises:
            BLEError: a scan already runs, or BlueZ refused (e.g. the adapter is off).
        """
        timeout = validate.positive_timeout(timeout)
        self._require_running()
        known = self._devices_under_adapter(CALL_TIMEOUT_S)
        with self._lock:
            if self._scan is not None:
                raise BLEError("A scan is already running on this backend")
            self._scan = {}
        try:
            self._begin_discovery(CALL_TIMEOUT_S, "scan")
            try:
                self._stopping.wait(timeout)
            finally:
                self._end_discovery()
        finally:
            with self._lock:
                seen, self._scan = self._scan or {}, None
        results = []
        for path, changes in seen.items():
            merged = dict(known.get(path, {}))
            merged.update(changes)
            results.append(properties.scan_result(merged))
        log.info("Found %d BLE devices", len(results))
        return results

    def _begin_discovery(self, timeout: float, target: str) -> None:
        """Start an LE discovery, or join the one a scan or a connect of ours already runs.

        BlueZ keeps one discovery session per bus connection, so ours is shared and
        counted: the last user stops it.
        """
        with self._discovery_lock:
            if self._discovery_users == 0:
                le_only = (properties.discovery_filter(),)
                self._bluez(self._adapter_path, ADAPTER, "SetDiscoveryFilter", "a{sv}", le_only, timeout, target)
                self._bluez(self._adapter_path, ADAPTER, "StartDiscovery", "", (), timeout, target)
            self._discovery_users += 1

    def _end_discovery(self) -> None:
        """Leave the shared discovery; the last user stops it and clears our filter."""
        with self._discovery_lock:
            self._discovery_users -= 1
            if self._discovery_users > 0:
                return
            for member, body in (("StopDiscovery", ()), ("SetDiscoveryFilter", ({},))):
                try:
                    self._bluez(
                        self._adapter_path, ADAPTER, member, "a{sv}" if body else "", body, CALL_TIMEOUT_S, "scan"
                    )
                except BLEError as exc:
                    log.info("%s after scanning: %s", member, exc)

    def _devices_under_adapter(self, timeout: float) -> Dict[str, Dict[str, Any]]:
        objects = self._bluez("/", OBJECT_MANAGER, "GetManagedObjects", "", (), timeout, "GetManagedObjects")[0]
        prefix = self._adapter_path + "/dev_"
        return {
            path: properties.unwrap(interfaces[DEVICE])
            for path, interfaces in objects.items()
            if path.startswith(prefix) and DEVICE in interfaces and paths.device_path_of(path) == path
        }

    # -- connections ----------------------------------------------------------------------------

    @none_means_default
    def connect(
        self,
        address: str,
        timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        address_type: Union[BLEAddressType, str, int] = BLEAddressType.public,
        auto_reconnect: bool = False,
        **kwargs: Any,
    ) -> DBusBLEDevice:
        """Connect to a device and return a DBusBLEDevice.

        A device BlueZ has not seen yet is looked for first (ConnectDevice where BlueZ
        offers it, else a short LE discovery), within the same ``timeout``.

        Args:
            address: the BLE address, e.g. ``"01:23:45:67:89:AB"``.
            timeout: seconds for the whole connection, service resolution included.
            address_type: ``BLEAddressType.public`` or ``BLEAddressType.random`` (its name or
                5.0.0 value also work); used when BlueZ does not know the device yet.
            auto_reconnect: reconnect (and resubscribe) when the link drops. Ignored when
                ``address`` is already connected: that device keeps its own setting.

        Returns:
            The connected device (the same object, unchanged, when its link is up). A link that
            dropped makes a new connection, even before the old device has heard of the loss.

        Raises:
            NotConnectedError: the connection failed (BlueZ's reason in the message) or timed out.
        """
        if kwargs:
            raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        address = validate.address(address)
        timeout = validate.positive_timeout(timeout)
        kind = address_type_of(address_type)
        self._require_running()
        path = paths.device_path(self._hci_device, address)
        with self._lock:
            existing = self._devices.get(address)
            link = self._links.get(path)
            if link is not None and link.lost:
                # the link dropped and the callback thread has not handled that yet: this connect
                # replaces it; _link_lost still tells the old device (callbacks), without reconnecting
                log.info("The link to %s dropped; connecting again", address)
                del self._links[path]
                self._taken_over.add(link)
                link = None
            if existing is not None and existing.connected and link is not None and link.connected:
                # returned as it is, as by the other backends: auto_reconnect stays what it was
                log.info("Already connected to %s", address)
                return existing
            if link is not None:
                raise BLEError(f"A connection to {address} is being opened already (connect or auto-reconnect)")
            if existing is not None:
                existing.auto_reconnect = False  # a new device object takes over from one still reconnecting
                del self._devices[address]
        device = DBusBLEDevice(address, self)
        device.auto_reconnect = bool(auto_reconnect)
        self._open_link(device, kind, Deadline(timeout))
        with self._lock:
            self._options[address] = (kind, timeout)
        return device

    def _open_link(
        self, device: DBusBLEDevice, kind: BLEAddressType, deadline: Deadline, reconnect: bool = False
    ) -> DBusLink:
        """Open a link for ``device`` and hand it over, unless it is no longer wanted once open.

        Args:
            device: the device the link is for.
            kind: its address type, for a device BlueZ does not know yet.
            deadline: for the whole connection.
            reconnect: an auto-reconnect attempt, which gives up when the device's
                ``auto_reconnect`` went off (disconnect() was called) meanwhile.

        Returns:
            The link, up and registered for ``device``.

        Raises:
            NotConnectedError: the connection failed, or was given up (disconnect(), stop()).
        """
        path = paths.device_path(self._hci_device, device.address)
        self._find_device(device.address, path, kind, deadline)

        def on_notification(handle: int, value: bytes) -> None:
            if device.listens_to(handle):
                self._dispatcher.submit(device.receive_notification, handle, value, droppable=True)

        def on_lost(reason: str) -> None:
            self._dispatcher.submit(self._link_lost, device, link, reason)

        link = DBusLink(self._connection(), self._hci_device, device.address, on_notification, on_lost)
        with self._lock:
            if path in self._links:
                raise BLEError(f"A connection to {device.address} is being opened already")
            if reconnect and not self._reconnect_wanted(device):
                raise NotConnectedError(f"Reconnecting to {device.address} was given up")
            self._links[path] = link
        try:
            link.open(deadline.remaining(0.05))
        except BaseException:
            with self._lock:
                if self._links.get(path) is link:
                    del self._links[path]
            raise
        with self._lock:
            current = self._links.get(path) is link  # else disconnect() or stop() took it (and disconnected it)
            wanted = current and self._running and (not reconnect or self._reconnect_wanted(device))
            if wanted:
                device.link_up(link)
                self._devices[device.address] = device
            elif current:
                del self._links[path]
        if wanted:
            return link
        if current:
            link.disconnect(device.DEFAULT_TIMEOUTS["disconnect"])  # leave no connection behind
        if not self._running:
            raise NotConnectedError("The backend was stopped while connecting")
        raise NotConnectedError(f"The connection to {device.address} was given up while it was being opened")

    def _reconnect_wanted(self, device: DBusBLEDevice) -> bool:
        """True while an auto-reconnect of ``device`` should go on."""
        return device.auto_reconnect and self._running and self._devices.get(device.address) is device

    def _find_device(self, address: str, path: str, kind: BLEAddressType, deadline: Deadline) -> None:
        """Make sure BlueZ has an object for ``address``: ConnectDevice, else a short discovery.

        The wait for the device's object is registered before BlueZ is first asked, so an
        ``InterfacesAdded`` from a discovery already running (a scan's) is not missed while
        the questions are on their way: that signal would not come again.
        """
        found = threading.Event()
        with self._lock:
            self._awaited[path] = found
        try:
            try:
                self._bluez(path, PROPERTIES, "GetAll", "s", (DEVICE,), deadline.remaining(), address)
                return
            except errors.BluezNotAvailableError:
                raise
            except NotConnectedError:
                log.info("BlueZ does not know %s yet; looking for it", address)
            arguments = {"Address": ("s", address), "AddressType": ("s", kind.name)}
            try:
                self._bluez(
                    self._adapter_path, ADAPTER, "ConnectDevice", "a{sv}", (arguments,), deadline.remaining(), address
                )
                return
            except BLEError as exc:
                if "UnknownMethod" not in str(exc):
                    raise NotConnectedError(f"Failed to connect to {address}: {exc}") from exc
            self._begin_discovery(deadline.remaining(), address)
            try:
                if not found.wait(deadline.remaining()) or self._stopping.is_set():
                    raise NotConnectedError(
                        f"Timed out connecting to {address}: BlueZ did not see it advertise "
                        f"within {deadline.seconds:g} s"
                    )
            finally:
                self._end_discovery()
        finally:
            with self._lock:
                self._awaited.pop(path, None)

    def disconnect(self, device: DBusBLEDevice) -> None:
        """Disconnect ``device`` (its disconnect callbacks do not fire).

        Args:
            device: a device this backend connected.

        Raises:
            NotConnectedError: it is not connected.
        """
        path = paths.device_path(self._hci_device, device.address)
        with self._lock:
            # only its own link: after a drop, a new connect() may have put another device's there
            owns = self._devices.get(device.address) is device
            link = self._links.pop(path, None) if owns else None
            if owns:
                del self._devices[device.address]
        device.link_down()
        if link is None:
            raise NotConnectedError(f"Device {device.address} is not connected")
        link.disconnect(device.DEFAULT_TIMEOUTS["disconnect"])

    def cancel_reconnect(self, device: DBusBLEDevice) -> None:
        """Stop auto-reconnecting ``device`` (its ``disconnect()`` while the link is down).

        An attempt in flight is cancelled (``Device1.Disconnect``) and has ended when this
        returns, so it leaves no connection behind; no later attempt starts.

        Args:
            device: a device this backend connected, whose ``auto_reconnect`` is now off.
        """
        path = paths.device_path(self._hci_device, device.address)
        with self._lock:
            if self._devices.get(device.address) is not device:
                return  # not reconnecting (any more), or a newer connect() took over
            del self._devices[device.address]
            link = self._links.pop(path, None)
        device.link_down()
        if link is not None:
            log.info("Cancelling the reconnect to %s", device.address)
            link.disconnect(device.DEFAULT_TIMEOUTS["disconnect"])

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Remove the bond with ``address`` (every paired device when None): ``Adapter1.RemoveDevice``.

        A device without a bond is not an error.

        Args:
            address: the device's address, or None for all paired devices.
        """
        self._require_running()
        if address is None:
            targets = [
                p
                for p, props in self._devices_under_adapter(CALL_TIMEOUT_S).items()
                if props.get("Paired") or props.get("Bonded")
            ]
        else:
            targets = [paths.device_path(self._hci_device, validate.address(address))]
        for path in targets:
            try:
                self._bluez(self._adapter_path, ADAPTER, "RemoveDevice", "o", (path,), CALL_TIMEOUT_S, "clear_bond")
                log.info("Cleared bond for %s", paths.address_of(path))
            except BLEError as exc:
                if "DoesNotExist" not in str(exc):
                    raise
                log.info("No bond to clear for %s", paths.address_of(path))

    # -- link loss and reconnection (dispatcher thread) ---------------------------------------------

    def _link_lost(self, device: DBusBLEDevice, link: DBusLink, reason: str) -> None:
        with self._lock:
            if self._links.get(link.path) is link:
                del self._links[link.path]
            elif link in self._taken_over:  # a new connect() replaced it: tell the old device anyway
                self._taken_over.discard(link)
            else:
                return  # disconnected or stopped meanwhile
        device.link_lost(reason)
        if device.auto_reconnect and self._running:
            self._reconnector.schedule(
                device.address,
                lambda: self._reconnect(device),
                lambda: self._reconnect_wanted(device),
            )
        else:
            with self._lock:
                if self._devices.get(device.address) is device:
                    del self._devices[device.address]

    @none_means_default
    def reconnect(self, device: DBusBLEDevice, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        """Connect a device again after its link dropped, and resubscribe (as the other backends do).

        Does nothing when the device is still connected.

        Args:
            device: a device this backend connected.
            timeout: seconds the connect may take.

        Raises:
            NotConnectedError: the connection failed, or the device is not this backend's.
            BLEError: another device object holds the connection to this address, or
                resubscribing failed (the new link is then closed again).
        """
        if not isinstance(device, DBusBLEDevice) or device.backend is not self:
            raise NotConnectedError(f"{device!r} is not a device of this backend")
        seconds = validate.positive_timeout(timeout)
        self._require_running()
        kind = self._options.get(device.address, (BLEAddressType.public, seconds))[0]
        self._reopen(device, kind, Deadline(seconds), reconnect=False)

    def _reconnect(self, device: DBusBLEDevice) -> None:
        """One reconnect attempt (on the reconnector's thread)."""
        kind, timeout = self._options.get(device.address, (BLEAddressType.public, DEFAULT_CONNECT_TIMEOUT_S))
        self._reopen(device, kind, Deadline(timeout), reconnect=True)

    def _reopen(self, device: DBusBLEDevice, kind: BLEAddressType, deadline: Deadline, reconnect: bool) -> None:
        """Open ``device``'s link again and resubscribe, unless it is up already.

        One reconnect of an address at a time (the caller's and the reconnector's may meet): the
        second waits for the first, then finds the device connected, instead of failing on the link
        the first is opening.
        """
        busy = f"Timed out reconnecting to {device.address}: another reconnect of it went on"
        with self._reopen_turns.hold(device.address, deadline.remaining(), busy):
            self._reopen_once(device, kind, deadline, reconnect)

    def _reopen_once(self, device: DBusBLEDevice, kind: BLEAddressType, deadline: Deadline, reconnect: bool) -> None:
        """:meth:`_reopen`'s work, with the address's reconnect turn held."""
        path = paths.device_path(self._hci_device, device.address)
        with self._lock:
            link = self._links.get(path)
            owner = self._devices.get(device.address)
            if link is not None and owner is device and link.connected:
                log.info("%s is still connected", device.address)
                return
            if link is not None and owner is device and link.lost:
                # dropped, and the callback thread has not handled it yet: this reconnect takes over
                # (the late _link_lost then finds no link, and leaves the reconnected device alone)
                del self._links[path]
            elif owner is not None and owner is not device:
                raise BLEError(f"Another device object holds the connection to {device.address}")
        link = self._open_link(device, kind, deadline, reconnect=reconnect)

        def close() -> None:
            # only this link: a disconnect() and a new connect() meanwhile may have put another device's there
            with self._lock:
                owned = self._links.get(path) is link
                if owned:
                    del self._links[path]
            device.link_down()
            if owned:
                link.disconnect(device.DEFAULT_TIMEOUTS["disconnect"])

        resubscribe_or_close(device, close)

    # -- signals (reader thread: route and queue only) ----------------------------------------------

    def _on_signal(self, signal: Signal) -> None:
        member = signal.member
        if member == "NameOwnerChanged":
            if signal.sender == DBUS and signal.body[0] == BLUEZ:
                self._bluez_owner = str(signal.body[2])
                if not signal.body[2]:
                    self._bluez_gone("bluetoothd left the bus")
                elif self._running:  # bluetoothd came back: it forgot our agent (a bus call: not on this thread)
                    self._dispatcher.submit(self._register_agent_again)
            return
        if signal.sender != self._bluez_owner:
            return  # only bluetoothd speaks for BlueZ's objects
        if member == "PropertiesChanged":
            self._properties_changed(signal.path, signal.body)
        elif member == "InterfacesAdded":
            self._interfaces_added(str(signal.body[0]), signal.body[1])
        elif member == "InterfacesRemoved":
            self._interfaces_removed(str(signal.body[0]), list(signal.body[1]))

    def _properties_changed(self, path: str, body: Any) -> None:
        interface, changed, invalidated = body
        device_path = paths.device_path_of(path)
        if device_path is None:
            return
        link = self._links.get(device_path)
        if interface == CHARACTERISTIC:
            if link is not None:
                link.value_changed(path, properties.unwrap(changed))
        elif interface == DEVICE and path == device_path:
            plain = properties.unwrap(changed)
            if link is not None:
                link.device_changed(plain, list(invalidated))
            with self._lock:
                if self._scan is not None and "RSSI" in plain:
                    self._scan.setdefault(path, {}).update(plain)
                elif self._scan is not None and path in self._scan:
                    self._scan[path].update(plain)

    def _interfaces_added(self, path: str, interfaces: Dict[str, Any]) -> None:
        device_path = paths.device_path_of(path)
        if device_path is None:
            return
        if path == device_path and DEVICE in interfaces:
            plain = properties.unwrap(interfaces[DEVICE])
            with self._lock:
                if self._scan is not None:
                    self._scan.setdefault(path, {}).update(plain)
                awaited = self._awaited.get(path)
            if awaited is not None:
                awaited.set()
        link = self._links.get(device_path)
        if link is not None and path != device_path:
            link.objects_changed()

    def _interfaces_removed(self, path: str, interfaces: List[str]) -> None:
        device_path = paths.device_path_of(path)
        link = self._links.get(device_path) if device_path else None
        if link is None:
            return
        if path == device_path and DEVICE in interfaces:
            link.removed("BlueZ removed the device")
        else:
            link.objects_changed()

    def _bluez_gone(self, reason: str) -> None:
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.removed(reason)

    def _on_bus_closed(self, reason: str) -> None:
        self._bluez_gone(f"the D-Bus connection is gone: {reason}")

    # -- plumbing ---------------------------------------------------------------------------------

    def _require_running(self) -> None:
        if not self._running:
            raise BLEError("The backend is not started; call start() first")

    def _connection(self) -> BusConnection:
        bus = self._bus
        if bus is None:
            raise BLEError("The backend is not started; call start() first")
        return bus

    def _bluez(
        self, path: str, interface: str, member: str, signature: str, body: Any, timeout: float, target: str
    ) -> Any:
        return self._bus_call(BLUEZ, path, interface, member, signature, body, timeout=timeout, target=target)

    def _bus_call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Any = (),
        timeout: float = CALL_TIMEOUT_S,
        target: Optional[str] = None,
    ) -> Any:
        try:
            return self._connection().call(destination, path, interface, member, signature, tuple(body), timeout)
        except DBusCallError as exc:
            raise errors.to_exception(exc.name, exc.text, member, target) from None
        except CallTimeout:
            raise errors.timeout_error(member, target or path, timeout) from None
        except BusClosed as exc:
            raise errors.BluezNotAvailableError(f"{member}: the D-Bus connection is gone ({exc})") from None
