"""``GATTToolBackend``: BLE through BlueZ's ``gatttool -I``, driven by pexpect."""

from __future__ import annotations

import functools
import logging
import os
import shlex
import threading
import uuid
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Set, TypeVar, Union, cast

from pygatt import validate
from pygatt.backends.backend import DEFAULT_CONNECT_TIMEOUT_S, BLEAddressType, BLEBackend, Characteristic
from pygatt.backends.gatttool import external
from pygatt.backends.gatttool.device import GATTToolBLEDevice
from pygatt.backends.gatttool.session import GATTToolSession
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.dispatch import CallbackDispatcher
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout, ToolError
from pygatt.validate import BytesLike, UUIDLike

log = logging.getLogger(__name__)

DECLARATION_UUIDS = frozenset(uuid.UUID(f"0000{n:04x}-0000-1000-8000-00805f9b34fb") for n in range(0x2800, 0x2804))
DEFAULT_ATT_MTU = 23
TOOL_TIMEOUT_S = 5.0
DISCONNECT_TIMEOUT_S = 2.0
RECONNECT_ATTEMPTS = 3

F = TypeVar("F", bound=Callable[..., Any])


def _device_session(func: F) -> F:
    """Backend methods that act on a device take it first, as in pygatt 5.0.0;
    this checks that the device is one of ours and connected.
    """

    @functools.wraps(func)
    def wrapper(self: GATTToolBackend, device: GATTToolBLEDevice, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(device, GATTToolBLEDevice) or device._backend is not self:
            raise NotConnectedError(f"{device!r} is not a device connected through this backend")
        if not device._connected or device._session is None:
            raise NotConnectedError(f"Device {device.address} is not connected")
        return func(self, device, *args, **kwargs)

    return cast(F, wrapper)


def _cli_arguments(cli_options: Union[None, str, Sequence[str]]) -> List[str]:
    """``cli_options`` as a list: a list is taken as is, a string is split like a shell would."""
    if cli_options is None:
        return []
    arguments = shlex.split(cli_options) if isinstance(cli_options, str) else list(cli_options)
    for argument in arguments:
        if not isinstance(argument, str):
            raise TypeError(f"cli_options must be strings, got {argument!r}")
        if any(c in argument for c in "\r\n\0"):
            raise ValueError(f"cli_options must not contain line breaks: {argument!r}")
    return arguments


class GATTToolBackend(BLEBackend):
    """Backend to pygatt that uses BlueZ's interactive gatttool CLI prompt."""

    def __init__(
        self,
        hci_device: str = "hci0",
        gatttool_logfile: Union[None, str, os.PathLike[str], IO[str]] = None,
        cli_options: Union[None, str, Sequence[str]] = None,
        search_window_size: Optional[int] = None,
        max_read: Optional[int] = None,
        *,
        tools: Optional[ToolCommands] = None,
    ) -> None:
        """Initialize.

        hci_device -- the hci_device to use with GATTTool.
        gatttool_logfile -- an optional filename (or open text file) to store raw gatttool input and output.
        cli_options -- optional additional arguments for gatttool: a list, or one string split like a shell.
        search_window_size -- the longest unfinished line kept while waiting for its end.
        max_read -- the largest chunk read from gatttool at once.
        tools -- the programs to run (keyword only); see ToolCommands.

        By default the BlueZ tools on PATH run, or the simulator when PYGATT_SIMULATE is set.
        """
        self._hci_device = validate.hci_device(hci_device)
        self._cli_options = _cli_arguments(cli_options)
        for name, limit in (("search_window_size", search_window_size), ("max_read", max_read)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"{name} must be a positive int, got {limit!r}")
        self._search_window_size = search_window_size
        self._max_read = max_read
        self._gatttool_logfile = gatttool_logfile
        self._tools = tools if tools is not None else ToolCommands.from_environment()
        self._dispatcher = CallbackDispatcher()
        self._lock = threading.RLock()
        self._running = False
        self._spare: Optional[GATTToolSession] = None
        self._devices: Dict[str, GATTToolBLEDevice] = {}
        self._device_of: Dict[GATTToolSession, GATTToolBLEDevice] = {}  # connected sessions only
        self._scanner: Optional[external.Scanner] = None
        self._reconnects: List[threading.Thread] = []
        self._connecting: Set[GATTToolSession] = set()  # sessions in the middle of a connect

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} hci_device={self._hci_device}>"

    def supports_unbonded(self) -> bool:
        """False: BlueZ raises the link's security by itself when an attribute
        asks for it, so a connection may become bonded unasked (as in pygatt 5.0.0).
        """
        return False

    # -- life cycle --------------------------------------------------------------

    def start(self, reset_on_start: bool = True, initialization_timeout: float = 3) -> None:
        """Run gatttool in interactive mode, and wait for its prompt.

        reset_on_start -- reset the adapter with ``hciconfig <dev> reset`` first.
        initialization_timeout -- seconds to wait for gatttool's first prompt.

        A reset that cannot be done (no adapter, no permission) is logged as a
        warning and the start goes on.
        """
        timeout = validate.positive_timeout(initialization_timeout, "initialization_timeout")
        with self._lock:
            if self._running:
                log.info("gatttool is already started")
                return
            if reset_on_start:
                try:
                    self.reset()
                except BLEError as exc:
                    log.warning("Could not reset %s, going on without: %s", self._hci_device, exc)
            self._dispatcher.start()
            try:
                self._spare = self._new_session(timeout)
            except BaseException:
                self._dispatcher.stop(0.2)
                raise
            self._running = True

    def stop(self) -> None:
        """Stop the backend: disconnect every device, end gatttool and any scan.

        Safe in every state (never started, scanning, connected, gatttool
        already dead, called twice); returns within about two seconds.
        """
        with self._lock:
            self._running = False
            sessions = [d._session for d in self._devices.values() if d._session is not None]
            for device in self._devices.values():
                device._connected = False
                device._session = None
            self._devices.clear()
            self._device_of.clear()
            if self._spare is not None:
                sessions.append(self._spare)
                self._spare = None
            sessions.extend(self._connecting)  # a connect in flight fails at once
            self._connecting.clear()
            scanner = self._scanner
        if scanner is not None:
            scanner.kill()
        closers = [threading.Thread(target=s.close, name="pygatt-close", daemon=True) for s in sessions]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(1.8)
        for thread in list(self._reconnects):
            thread.join(0.2)
        self._dispatcher.stop(0.2)

    def _new_session(self, timeout: float) -> GATTToolSession:
        argv = [*self._tools.gatttool, *self._cli_options, "-i", self._hci_device, "-I"]
        holder: Dict[str, GATTToolSession] = {}

        def on_notification(handle: int, value: bytes, indication: bool) -> None:
            self._route_notification(holder["session"], handle, value)

        def on_link_lost(why: str) -> None:
            self._dispatcher.submit(self._link_lost, holder["session"], why)

        session = GATTToolSession(
            argv,
            on_notification,
            on_link_lost,
            logfile=self._gatttool_logfile,
            max_read=self._max_read,
            search_window_size=self._search_window_size,
        )
        holder["session"] = session
        session.start(timeout)
        return session

    # -- adapter-level operations -----------------------------------------------

    def reset(self) -> None:
        """Run ``hciconfig <dev> reset`` (with ``sudo -n`` when not root).

        Raises a BLEError (ToolError) that quotes hciconfig when it fails. It
        never restarts the bluetooth service.
        """
        argv = external.with_privileges([*self._tools.hciconfig, self._hci_device, "reset"], as_root=True)
        external.run_tool(argv, TOOL_TIMEOUT_S, f"reset {self._hci_device}")

    def scan(self, timeout: float = 10, run_as_root: bool = False, *, tool: str = "hcitool") -> List[Dict[str, Any]]:
        """Scan for BLE devices.

        timeout -- seconds to scan for.
        run_as_root -- run the scan through ``sudo -n`` (passwordless sudo needed).
        tool -- ``"hcitool"`` (``hcitool lescan``, as pygatt 5.0.0) or ``"btmgmt"`` (``btmgmt find -l``).

        btmgmt also reports RSSI, the address type and the AD flags.

        Returns a list of dicts with 'address', 'name' (None for devices that did
        not advertise one) and 'rssi' (dBm; None with hcitool, which does not
        print it). Raises a BLEError that names the permission problem when the
        tool lacks privileges.
        """
        timeout = validate.positive_timeout(timeout)
        if tool == "hcitool":
            argv = [*self._tools.hcitool, "-i", self._hci_device, "lescan"]
            parse = external.devices_from_lescan
        elif tool == "btmgmt":
            index = self._hci_device[3:]
            argv = [*self._tools.btmgmt, "--timeout", str(int(timeout) + 1), "--index", index, "find", "-l"]
            parse = external.devices_from_btmgmt
        else:
            raise ValueError(f"tool must be 'hcitool' or 'btmgmt', got {tool!r}")
        argv = external.with_privileges(argv, run_as_root)
        scanner = external.Scanner(argv)
        with self._lock:
            if self._scanner is not None:
                raise BLEError("A scan is already running on this backend")
            self._scanner = scanner
        try:
            output, returncode, ended_by_us = scanner.run(timeout)
        finally:
            with self._lock:
                self._scanner = None
        # hcitool announces a running scan with "LE Scan ..."; btmgmt may find nothing and exit 0
        failed = (returncode != 0 and not ended_by_us) or (tool == "hcitool" and "LE Scan ..." not in output)
        if failed or any(hint in output for hint in external.PERMISSION_HINTS):
            raise external.failure("scan", argv, external.clean(output), returncode)
        devices = parse(output)
        log.info("Found %d BLE devices", len(devices))
        return devices

    def kill(self) -> None:
        """End a running scan (it returns what it found so far)."""
        with self._lock:
            scanner = self._scanner
        if scanner is not None:
            scanner.kill()

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Remove the bond with ``address`` (every bond when None) using bluetoothctl."""
        target = "*" if address is None else validate.address(address)
        argv = external.with_privileges([*self._tools.bluetoothctl, "remove", target], as_root=True)
        try:
            output = external.run_tool(argv, TOOL_TIMEOUT_S, f"clear_bond {target}")
        except ToolError as exc:
            if "not available" in exc.output:
                log.info("No bond to clear for %s", target)
                return
            raise
        log.info("Cleared bond for %s: %s", target, output)

    def sendline(self, command: str) -> None:
        """Send a raw line to gatttool: the connected device's session when exactly
        one is connected, the idle session when none is.
        """
        if not isinstance(command, str):
            raise TypeError("command must be a str")
        self._only_session().send(command)

    def _only_session(self) -> GATTToolSession:
        with self._lock:
            connected = [d for d in self._devices.values() if d._session is not None]
            if len(connected) > 1:
                raise BLEError(
                    "Several devices are connected ("
                    + ", ".join(sorted(d.address for d in connected))
                    + "); call the method on the device instead"
                )
            if connected:
                return cast(GATTToolSession, connected[0]._session)
            if self._spare is None:
                raise BLEError("The backend is not started; call start() first")
            return self._spare

    # -- connections ---------------------------------------------------------------

    def connect(
        self,
        address: str,
        timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        address_type: Union[BLEAddressType, str] = BLEAddressType.public,
        auto_reconnect: bool = False,
        **kwargs: Any,
    ) -> GATTToolBLEDevice:
        """Connect to a device and return a GATTToolBLEDevice.

        address -- the BLE address, e.g. "01:23:45:67:89:AB".
        timeout -- seconds to wait for the connection.
        address_type -- BLEAddressType.public or BLEAddressType.random.
        auto_reconnect -- reconnect (and resubscribe) when the link drops.

        Raises NotConnectedError, with gatttool's reason, when it fails. Each
        connected device gets a gatttool process of its own, so several devices
        can be connected at once.
        """
        if kwargs:
            raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        address = validate.address(address)
        timeout = validate.positive_timeout(timeout)
        kind = BLEAddressType(address_type.value if isinstance(address_type, BLEAddressType) else address_type)
        with self._lock:
            if not self._running:
                raise BLEError("The backend is not started; call start() first")
            existing = self._devices.get(address)
            if existing is not None:
                log.info("Already connected to %s", address)
                return existing
        device = GATTToolBLEDevice(address, self)
        device._address_type = kind
        device._auto_reconnect = bool(auto_reconnect)
        device._connect_timeout = timeout
        self._open_link(device, timeout)
        return device

    def _open_link(self, device: GATTToolBLEDevice, timeout: float) -> None:
        """Connect ``device`` on a session of its own, or raise NotConnectedError."""
        with self._lock:
            if not self._running:
                raise NotConnectedError("The backend is stopped")
            session, self._spare = self._spare, None
        if session is None or not session.alive:
            session = self._new_session(timeout)
        with self._lock:
            if not self._running:
                session.close()
                raise NotConnectedError("The backend was stopped while connecting")
            self._connecting.add(session)
        try:
            self._connect_session(session, device, timeout)
        finally:
            with self._lock:
                self._connecting.discard(session)
        with self._lock:
            if not self._running:
                session.close()
                raise NotConnectedError("The backend was stopped while connecting")
            device._session = session
            device._connected = True
            device._mtu = DEFAULT_ATT_MTU
            self._devices[device.address] = device
            self._device_of[session] = device

    def _connect_session(self, session: GATTToolSession, device: GATTToolBLEDevice, timeout: float) -> None:
        session.expect_disconnect(False)
        session.connection_reset()
        # A reused process keeps the level an earlier bond() set; start every link at low, as pygatt 5.0.0 did.
        session.run("sec-level", "sec-level low", timeout, device.address)
        log.info("Connecting to %s (%s)", device.address, device._address_type.value)
        try:
            session.run("connect", f"connect {device.address} {device._address_type.value}", timeout, device.address)
        except NotificationTimeout:
            session.close()  # still trying to connect; a fresh process is cleaner than a cancel
            raise NotConnectedError(f"Timed out connecting to {device.address} after {timeout} seconds.") from None
        except BLEError:
            self._recycle(session)
            raise

    def _recycle(self, session: GATTToolSession) -> None:
        """Keep an unconnected session as the spare, or end it."""
        with self._lock:
            if self._running and self._spare is None and session.alive:
                self._spare = session
                return
        session.close()

    @_device_session
    def disconnect(self, device: GATTToolBLEDevice) -> None:
        """Disconnect from the device. Its gatttool process is kept for the next connect."""
        session = cast(GATTToolSession, device._session)
        self._forget(device)
        session.expect_disconnect(True)
        try:
            session.run("disconnect", "disconnect", DISCONNECT_TIMEOUT_S, device.address)
        except BLEError as exc:
            log.info("gatttool did not confirm the disconnect of %s (%s); ending its process", device.address, exc)
            session.close()
            return
        self._recycle(session)

    def _forget(self, device: GATTToolBLEDevice) -> None:
        with self._lock:
            device._connected = False
            if device._session is not None:
                self._device_of.pop(device._session, None)
            device._session = None
            if self._devices.get(device.address) is device:
                del self._devices[device.address]

    def _route_notification(self, session: GATTToolSession, handle: int, value: bytes) -> None:
        """Reader thread: queue a notification for its device's callbacks.

        Handles nobody subscribed to are dropped here, so a flood of them costs
        no memory.
        """
        device = self._device_of.get(session)
        if device is not None and handle in device._callbacks:
            self._dispatcher.submit(device.receive_notification, handle, value)

    def _link_lost(self, session: GATTToolSession, why: str) -> None:
        """Dispatcher thread: a link went down without being asked to."""
        device = self._device_of.get(session)
        if device is None:
            return
        log.warning("Lost the connection to %s: %s", device.address, why)
        self._forget(device)
        if session.alive:
            self._recycle(session)
        device._fire_disconnected()
        if device._auto_reconnect and self._running:
            thread = threading.Thread(
                target=self._reconnect, args=(device,), name=f"pygatt-reconnect-{device.address}", daemon=True
            )
            self._reconnects = [t for t in self._reconnects if t.is_alive()] + [thread]
            thread.start()

    def _reconnect(self, device: GATTToolBLEDevice) -> None:
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            if not self._running:
                return
            try:
                self._open_link(device, device._connect_timeout)
                device.resubscribe_all()
                log.info("Reconnected to %s", device.address)
                return
            except BLEError as exc:
                log.warning("Reconnect %d/%d to %s failed: %s", attempt, RECONNECT_ATTEMPTS, device.address, exc)
        log.error("Giving up reconnecting to %s", device.address)

    # -- GATT operations (device first, as in pygatt 5.0.0) -----------------------

    @_device_session
    def bond(self, device: GATTToolBLEDevice, permanent: bool = False) -> None:
        """Raise the link's security (``sec-level medium``), which makes BlueZ pair.

        Raises BLEError with gatttool's words when it fails or the link drops.
        """
        session = cast(GATTToolSession, device._session)
        log.info("Bonding with %s", device.address)
        session.run("sec-level", "sec-level medium", TOOL_TIMEOUT_S, device.address)
        if not session.connected:
            raise NotConnectedError(f"Bonding with {device.address} failed: the link dropped")

    @_device_session
    def get_rssi(self, device: GATTToolBLEDevice) -> int:
        """The RSSI of the connection, from ``hcitool rssi``; BLEError when not available."""
        argv = [*self._tools.hcitool, "-i", self._hci_device, "rssi", device.address]
        output = external.run_tool(argv, TOOL_TIMEOUT_S, f"get_rssi {device.address}")
        rssi = external.parse_rssi(output)
        if rssi is None:
            raise BLEError(f"get_rssi {device.address}: hcitool gave no RSSI: {output!r}")
        return rssi

    @_device_session
    def char_read(self, device: GATTToolBLEDevice, uuid: UUIDLike, timeout: float = 1) -> bytearray:
        """Read a characteristic by UUID (``char-read-uuid``); returns a bytearray.

        Only the first matching characteristic is returned, and gatttool reads
        at most one packet (MTU - 4 bytes) this way: use char_read_long for more.
        """
        key = validate.characteristic_uuid(uuid)
        session = cast(GATTToolSession, device._session)
        result = session.run("char-read-uuid", f"char-read-uuid {key}", validate.positive_timeout(timeout), str(key))
        return bytearray(result[0].value)

    @_device_session
    def char_read_handle(self, device: GATTToolBLEDevice, handle: int, timeout: float = 4) -> bytearray:
        """Read a characteristic by handle (``char-read-hnd``); returns a bytearray.

        gatttool follows values longer than one packet with Read Blob requests.
        """
        handle = validate.handle(handle)
        session = cast(GATTToolSession, device._session)
        target = f"0x{handle:04x}"
        result = session.run("char-read-hnd", f"char-read-hnd {target}", validate.positive_timeout(timeout), target)
        return bytearray(result[0].value)

    @_device_session
    def char_write_handle(
        self,
        device: GATTToolBLEDevice,
        handle: int,
        value: BytesLike,
        wait_for_response: bool = True,
        timeout: float = 30,
    ) -> None:
        """Write to a handle: ``char-write-req`` when waiting for a response,
        ``char-write-cmd`` (which waits only for gatttool's prompt) otherwise.

        A write without response must fit one packet (MTU - 3 bytes): gatttool
        would silently cut a longer one, so it is refused here instead.
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        timeout = validate.positive_timeout(timeout)
        target = f"0x{handle:04x}"
        if not wait_for_response and len(data) > device._mtu - 3:
            raise ValueError(
                f"value is {len(data)} bytes, more than the {device._mtu - 3} a write without response "
                f"carries at MTU {device._mtu}; use wait_for_response=True or exchange_mtu first"
            )
        kind = "char-write-req" if wait_for_response else "char-write-cmd"
        session = cast(GATTToolSession, device._session)
        session.run(kind, f"{kind} {target} {data.hex()}", timeout, target)

    @_device_session
    def char_read_long_handle(self, device: GATTToolBLEDevice, handle: int, timeout: float = 4) -> bytearray:
        """Read a value longer than one packet: gatttool's ``char-read-hnd`` reads blobs."""
        return cast(bytearray, self.char_read_handle(device, handle, timeout=timeout))

    @_device_session
    def char_write_long_handle(
        self,
        device: GATTToolBLEDevice,
        handle: int,
        value: BytesLike,
        wait_for_response: bool = False,
        timeout: float = 30,
    ) -> None:
        """Write a value longer than one packet: ``char-write-req`` uses prepared writes.

        A long write is always acknowledged by the peer (Execute Write), so it is
        always waited for, whatever ``wait_for_response`` says.
        """
        self.char_write_handle(device, handle, value, wait_for_response=True, timeout=timeout)

    @_device_session
    def discover_characteristics(
        self, device: GATTToolBLEDevice, timeout: float = 5
    ) -> Dict[uuid.UUID, Characteristic]:
        """Discover the device's characteristics (``characteristics``) and their
        descriptors (``char-desc``). Returns {UUID: Characteristic}; when a UUID
        appears more than once, the lowest value handle is kept.
        """
        timeout = validate.positive_timeout(timeout)
        session = cast(GATTToolSession, device._session)
        found = sorted(session.run("characteristics", "characteristics", timeout), key=lambda c: c.value_handle)
        characteristics: Dict[uuid.UUID, Characteristic] = {}
        by_value_handle: List[Characteristic] = []
        for line in found:
            characteristic = Characteristic(line.uuid, line.value_handle)
            by_value_handle.append(characteristic)
            characteristics.setdefault(line.uuid, characteristic)
        if by_value_handle:
            self._add_descriptors(session, by_value_handle, timeout)
        log.debug("Discovered %d characteristics on %s", len(characteristics), device.address)
        return characteristics

    @staticmethod
    def _add_descriptors(
        session: GATTToolSession,
        characteristics: List[Characteristic],
        timeout: float,
    ) -> None:
        """Attach each ``char-desc`` descriptor to the characteristic whose value it follows."""
        try:
            descriptors = session.run("char-desc", "char-desc", timeout)
        except NotConnectedError:
            raise
        except BLEError as exc:
            log.warning("Could not list descriptors (%s); subscribing falls back to value handle + 1", exc)
            return
        by_handle = {c.handle: c for c in characteristics}
        owner: Optional[Characteristic] = None
        for descriptor in sorted(descriptors, key=lambda d: d.handle):
            if descriptor.handle in by_handle:
                owner = by_handle[descriptor.handle]  # a value handle: what follows is its descriptors
            elif descriptor.uuid in DECLARATION_UUIDS:
                owner = None  # a service or characteristic declaration ends the run
            elif owner is not None:
                owner.add_descriptor(descriptor.uuid, descriptor.handle)

    @_device_session
    def exchange_mtu(self, device: GATTToolBLEDevice, mtu: int, timeout: float = 1) -> int:
        """Ask for an ATT MTU of ``mtu`` (23..517); returns the MTU now in use.

        gatttool allows one exchange per connection.
        """
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 23 <= mtu <= 517:
            raise ValueError(f"mtu must be an int within 23..517, got {mtu!r}")
        session = cast(GATTToolSession, device._session)
        result = session.run("mtu", f"mtu {mtu}", validate.positive_timeout(timeout), str(mtu))
        device._mtu = result[0].mtu
        return cast(int, device._mtu)
