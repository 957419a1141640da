"""``BGAPIBackend``: pygatt over a Silicon Labs (Bluegiga) BLED112 USB dongle.

Layers, each with one job:

* :mod:`~pygatt.backends.bgapi.codec` (with the table in :mod:`~.messages`):
  bytes <-> typed messages, no I/O; :mod:`~.advertising` and :mod:`~.discovery`
  parse advertising data and attribute listings, also without I/O;
* :mod:`~pygatt.backends.bgapi.transport`: the serial port and its one reader thread;
  :mod:`~.ports` finds the port (again, after a reset);
* :mod:`~pygatt.backends.bgapi.protocol`: one command in flight, responses matched
  by class/id, events routed per connection;
* :mod:`~pygatt.backends.bgapi.link`: the GATT operations of one connection;
  :mod:`~.connecting` opens one;
* this module: the backend's life cycle, scanning (:mod:`~.scanning`), connecting, bonds;
* :mod:`~pygatt.backends.bgapi.device`: ``BGAPIBLEDevice``, the user's handle.

User callbacks run on the backend's :class:`~pygatt.dispatch.CallbackDispatcher`
thread, never on the reader thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from pygatt import validate
from pygatt.backends.backend import (
    DEFAULT_CONNECT_TIMEOUT_S,
    BLEAddressType,
    BLEBackend,
    Characteristic,
    resubscribe_or_close,
)
from pygatt.backends.bgapi import codec, util
from pygatt.backends.bgapi.connecting import ConnectionParams, bounded_int, end_procedure, open_connection
from pygatt.backends.bgapi.device import BGAPIBLEDevice
from pygatt.backends.bgapi.error_codes import describe
from pygatt.backends.bgapi.exceptions import BGAPIError, CommandFailed, ExpectedResponseTimeout
from pygatt.backends.bgapi.link import BGAPILink
from pygatt.backends.bgapi.messages import Kind, message_specs
from pygatt.backends.bgapi.ports import MAX_CONNECTION_ATTEMPTS, Candidates, PortFinder, open_first
from pygatt.backends.bgapi.protocol import DEFAULT_RESPONSE_TIMEOUT_S, BGAPIProtocol
from pygatt.backends.bgapi.scanning import AdvertisingAndScanInfo, record_scan_response, scan_results
from pygatt.backends.bgapi.transport import SerialTransport
from pygatt.backends.timeouts import none_means_default
from pygatt.dispatch import CallbackDispatcher
from pygatt.exceptions import BLEError, NotConnectedError
from pygatt.reconnect import Reconnector

log = logging.getLogger(__name__)

SIMULATE_ENV = "PYGATT_SIMULATE"
INIT_RESPONSE_TIMEOUT_S = 2.0
STOP_DISCONNECT_TIMEOUT_S = 1.5  # for all the links together

ScanCallback = Callable[[Dict[str, "AdvertisingAndScanInfo"], str, str], Any]


def bgapi_address_to_hex(address: Union[bytes, bytearray, Sequence[int]]) -> str:
    """A Bluetooth address as BGAPI sends it (6 bytes, least significant first) -> ``"01:23:45:67:89:AB"``.

    Args:
        address: the 6 bytes (or ints) in wire order.

    Returns:
        The address in upper case with colons, most significant byte first.
    """
    return ":".join(f"{b:02X}" for b in reversed(list(address)))


#: Every name :meth:`BGAPIBackend.expect` can wait for: the responses' and the events'.
_EXPECTABLE = frozenset(spec.name for kind in (Kind.RESPONSE, Kind.EVENT) for spec in message_specs(kind))


def _message_name(expected: Any) -> str:
    """The message name ``expected`` stands for.

    Raises:
        TypeError: ``expected`` is neither a name nor has one.
        ValueError: no response or event has that name (a typo would otherwise wait out the timeout).
    """
    name = expected if isinstance(expected, str) else getattr(expected, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"expect a message name such as 'gap_scan_response', got {expected!r}")
    for prefix in ("ble_rsp_", "ble_evt_", "ble_cmd_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name not in _EXPECTABLE:
        raise ValueError(f"no BGAPI response or event is named {name!r} (e.g. 'gap_scan_response')")
    return name


class BGAPIBackend(BLEBackend):
    """A BLE backend for a BGAPI compatible USB adapter (BLED112, BLED113).

    Args:
        serial_port: the dongle's port (``/dev/ttyACM0``, ``COM3``, or a pyserial
            URL such as ``socket://127.0.0.1:5000``); None finds the dongle by its USB
            id 2458:0001. With ``PYGATT_SIMULATE`` set and no port, a simulated
            dongle is started.
        receive_queue_timeout: kept for compatibility with pygatt 5.0.0.
        comports: a callable listing serial ports as pyserial's
            ``serial.tools.list_ports.comports`` does (its default).
    """

    def __init__(
        self,
        serial_port: Optional[str] = None,
        receive_queue_timeout: float = 0.1,
        *,
        comports: Optional[util.ComportsFunction] = None,
    ) -> None:
        if serial_port is not None and (
            not isinstance(serial_port, str) or not serial_port.strip() or any(ord(c) < 32 for c in serial_port)
        ):
            raise ValueError(f"serial_port must be a port name or URL (no control characters), got {serial_port!r}")
        if comports is not None and not callable(comports):
            raise TypeError("comports must be callable")
        self._receive_queue_timeout = validate.positive_timeout(receive_queue_timeout, "receive_queue_timeout")
        self._ports = PortFinder(serial_port, comports)
        self._simulator: Any = None
        self._simulated_world: Any = None
        world = os.environ.get(SIMULATE_ENV, "").strip()
        if serial_port is None and comports is None and world:
            from pygatt.testing import load_world  # only for PYGATT_SIMULATE

            self._simulated_world = load_world(world)  # a bad world fails here, before start()
            log.info("PYGATT_SIMULATE=%s: start() will serve a simulated BLED112", world)
        self._protocol = BGAPIProtocol(DEFAULT_RESPONSE_TIMEOUT_S)
        self._transport: Optional[SerialTransport] = None
        self._dispatcher = CallbackDispatcher("pygatt-bgapi-callbacks")
        self._reconnector = Reconnector()
        self._lock = threading.RLock()
        self._stops = 0  # how many times stop() ran
        self._stopped = threading.Condition(self._lock)  # notified by stop()
        self._connect_lock = threading.Lock()
        self._devices: Dict[str, BGAPIBLEDevice] = {}
        self._links: Dict[int, Tuple[BGAPILink, BGAPIBLEDevice]] = {}
        self._running = False
        #: The dongle's address as :meth:`get_mac` last read it: 6 ints, least significant first (as 5.0.0).
        self.address: Optional[Tuple[int, ...]] = None

    def __repr__(self) -> str:
        port = self._transport.port_name if self._transport is not None else self._ports.serial_port
        return f"<BGAPIBackend port={port} running={self._running}>"

    # -- the simulated dongle --------------------------------------------------------

    def _start_simulator(self) -> None:
        """Serve a simulated BLED112 (``pygatt.testing``) for ``PYGATT_SIMULATE``, found like a real one."""
        from pygatt.testing.sim.bgapi import SimulatedDongle

        self._simulator = SimulatedDongle(self._simulated_world)
        port = self._simulator.open_socket()
        self._ports.comports = self._simulator.comports
        log.info("Serving a simulated BLED112 at %s", port)

    # -- opening the port ------------------------------------------------------------------

    def _open(self, candidates: Candidates, initialise: bool = True) -> SerialTransport:
        """Open the first candidate that answers (the initial commands, with ``initialise``);
        the transport returned is attached to the protocol.

        Raises:
            NotConnectedError: nothing opened (or answered) within MAX_CONNECTION_ATTEMPTS rounds.
        """

        def ready(transport: SerialTransport) -> None:
            self._protocol.attach(transport)
            if initialise:
                self._initialise()

        return open_first(
            candidates,
            lambda port: SerialTransport(
                port, self._protocol.handle_message, self._port_lost, self._protocol.expects_response
            ),
            ready,
            lambda transport: self._protocol.detach(),
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self, reset: bool = True, delay_after_reset_s: float = 1) -> None:
        """Open the dongle, optionally reset it, and put it in a known state.

        Args:
            reset: reset the dongle first (ends links and procedures left over by an
                earlier program). The USB device re-enumerates; the port is found again
                under its old or a new name within a bounded number of attempts.
            delay_after_reset_s: seconds to wait after the reset before reopening.

        Raises:
            DongleNotFoundError: no port given and no dongle in the port list (a BGAPIError).
            NotConnectedError: the port could not be opened (again).
            ExpectedResponseTimeout: the dongle did not answer.
            BLEError: :meth:`stop` was called while starting.
        """
        if isinstance(delay_after_reset_s, bool) or not isinstance(delay_after_reset_s, (int, float)):
            raise TypeError("delay_after_reset_s must be a number of seconds")
        if not 0 <= delay_after_reset_s <= validate.MAX_TIMEOUT_S:  # NaN too
            raise ValueError(
                f"delay_after_reset_s must be within 0..{validate.MAX_TIMEOUT_S:.0f} s, got {delay_after_reset_s}"
            )
        if self._running:
            self.stop()
        with self._lock:
            stops = self._stops  # a stop() meanwhile changes it: this start then fails
        try:
            if self._simulated_world is not None:
                self._start_simulator()
            port = self._ports.locate()
            transport = self._open(lambda: [port], initialise=not reset)
        except BaseException:
            self.stop()
            raise
        try:
            if reset:
                before = self._ports.dongle_ports()
                transport.expect_loss()  # the dongle re-enumerates: its port vanishes, as it should
                self._protocol.send("system_reset", boot_in_dfu=0)
                transport.drain()
                self._protocol.detach()
                transport.close()
                log.info("Reset the dongle at %s; reopening in %g s", port, delay_after_reset_s)
                with self._stopped:  # the wait ends early when stop() is called
                    self._stopped.wait_for(lambda: self._stops != stops, delay_after_reset_s)
                self._check_not_stopped(stops)
                transport = self._open(self._ports.after_reset(port, before))
                if transport.port_name != port:
                    # worth a warning on a real dongle; the simulated one comes back on a new socket every time
                    level = logging.INFO if self._simulated_world is not None else logging.WARNING
                    log.log(level, "The dongle came back as %s (was %s)", transport.port_name, port)
                    if self._ports.serial_port is not None:
                        self._ports.serial_port = transport.port_name
            self._dispatcher.start()
            self._reconnector.start()
            with self._lock:
                self._check_not_stopped(stops)
                self._transport = transport
                self._running = True
        except BaseException:
            transport.close()
            self.stop()
            raise
        log.info("BGAPI backend started on %s", transport.port_name)

    def _check_not_stopped(self, stops: int) -> None:
        """Raise BLEError when stop() ran since a start() read ``stops``."""
        if self._stops != stops:
            raise BLEError("The backend was stopped while starting")

    def _initialise(self) -> None:
        """Stop advertising, refuse new bonds, end any procedure left running."""
        self._protocol.command("gap_set_mode", wait=INIT_RESPONSE_TIMEOUT_S, discover=0, connect=0)
        self._protocol.command("sm_set_bondable_mode", wait=INIT_RESPONSE_TIMEOUT_S, bondable=0)
        result = self._protocol.command("gap_end_procedure", wait=INIT_RESPONSE_TIMEOUT_S)["result"]
        if result:
            log.debug("gap_end_procedure at start: %s (nothing was running)", describe(result))

    def stop(self) -> None:
        """Disconnect every device, stop the reader and close the port.

        Safe in every state (never started, port already dead, called twice);
        always returns, and no callback runs after it returned.
        """
        deadline = time.monotonic() + STOP_DISCONNECT_TIMEOUT_S
        with self._lock:
            self._running = False
            self._stops += 1
            self._stopped.notify_all()
            links = list(self._links.values())
        for link, device in links:
            device.auto_reconnect = False
            device.mark_disconnected()
            if link.connected and self._protocol.alive:
                link.disconnect(max(0.05, deadline - time.monotonic()))
        with self._lock:
            self._links.clear()
            self._devices.clear()
            transport = self._transport
            self._transport = None
        self._protocol.shutdown("the BGAPI backend was stopped")  # wakes a reconnect waiting on the dongle
        self._reconnector.stop(0.5)
        if transport is not None:
            transport.close()
        self._dispatcher.stop(0.2, discard=True)
        if self._simulator is not None:
            self._simulator_close()
        log.info("BGAPI backend stopped")

    def _simulator_close(self) -> None:
        simulator = self._simulator
        self._simulator = None
        try:
            simulator.close()
        except Exception:
            log.exception("Closing the simulated dongle failed")

    def _require_running(self) -> None:
        """Refuse a call that needs the dongle when there is none to talk to.

        Raises:
            BLEError: the backend is not started (never, or stopped since), as the
                GATTTool and D-Bus backends say it.
            NotConnectedError: it is started, but the dongle is gone (unplugged, or its port failed).
        """
        if not self._running:
            raise BLEError("The backend is not started; call start() first")
        if not self._protocol.alive:
            raise NotConnectedError("The BGAPI dongle is gone (unplugged, or its port failed)")

    def supports_unbonded(self) -> bool:
        """True: BGAPI reads and writes without bonding."""
        return True

    # -- events from links (reader thread) ---------------------------------------------------

    def notification(self, link: BGAPILink, handle: int, value: bytes) -> None:
        """Queue a notification for the device of ``link`` on the callback thread."""
        with self._lock:
            entry = self._links.get(link.connection)
        if entry is None or entry[0] is not link:
            return
        device = entry[1]
        if device.listens_to(handle):
            self._dispatcher.submit(device.receive_notification, handle, value, droppable=True)

    def confirm_indication(self, link: BGAPILink) -> None:
        """Confirm an indication on the callback thread (the reader must not wait for a response)."""
        self._dispatcher.submit(self._confirm_indication, link)

    def _confirm_indication(self, link: BGAPILink) -> None:
        try:
            link.confirm_indication(DEFAULT_RESPONSE_TIMEOUT_S)
        except (BGAPIError, NotConnectedError) as exc:
            log.warning("Confirming an indication from %s failed: %s", link.address, exc)

    def lost(self, link: BGAPILink, reason: str) -> None:
        """A link ended without being asked to: tell its device on the callback thread."""
        with self._lock:
            entry = self._links.get(link.connection)
            if entry is None or entry[0] is not link:
                return
            del self._links[link.connection]
            device = entry[1]
            if self._devices.get(device.address) is device:
                del self._devices[device.address]
        self._dispatcher.submit(self._link_lost, device, reason)

    def _link_lost(self, device: BGAPIBLEDevice, reason: str) -> None:
        """Dispatcher thread: tell the device, and start reconnecting if it asked for that."""
        device.link_lost(reason)
        if device.auto_reconnect and self._running:
            self._reconnector.schedule(
                device.address,
                lambda: self.reconnect(device),
                lambda: self._running and device.auto_reconnect,
                lambda: self._close_link(device),
            )

    def _port_lost(self, reason: str) -> None:
        self._protocol.port_lost(reason)

    # -- scanning -------------------------------------------------------------------------------

    @none_means_default
    def scan(
        self,
        timeout: float = 10,
        scan_interval: int = 75,
        scan_window: int = 50,
        active: bool = True,
        discover_mode: int = 2,
        scan_cb: Optional[ScanCallback] = None,
        **kwargs: Any,
    ) -> List[Dict[str, Any]]:
        """Scan for BLE devices.

        Args:
            timeout: seconds to scan.
            scan_interval: scan interval in units of 0.625 ms (4..16384).
            scan_window: scan window in units of 0.625 ms (4..16384, at most the interval).
            active: send scan requests (to get scan responses).
            discover_mode: 0 limited, 1 generic, 2 observation (everything).
            scan_cb: called as ``scan_cb(devices, address, packet_type_name)`` for each
                packet, on the calling thread; returning True ends the scan early.

        Returns:
            One dict per device: ``address``, ``name``, ``rssi``, ``packet_data``
            (per packet type, the advertising fields by name).

        Raises:
            BLEError: the backend is not started.
            NotConnectedError: the dongle is gone.
        """
        seconds = validate.positive_timeout(timeout)
        interval = bounded_int(scan_interval, "scan_interval", 4, 0x4000)
        window = bounded_int(scan_window, "scan_window", 4, 0x4000)
        if window > interval:
            raise ValueError(f"scan_window ({window}) must not exceed scan_interval ({interval})")
        mode = bounded_int(discover_mode, "discover_mode", 0, 2)
        if scan_cb is not None and not callable(scan_cb):
            raise TypeError("scan_cb must be callable")
        self._require_running()
        if kwargs:  # accepted, as pygatt 5.0.0 did, but they mean nothing here
            log.warning("scan() ignores the argument(s) %s", ", ".join(sorted(kwargs)))
        devices: Dict[str, AdvertisingAndScanInfo] = {}
        with self._protocol.inbox(lambda m: m.name == "gap_scan_response") as inbox:
            self._protocol.command(
                "gap_set_scan_parameters",
                check=True,
                scan_interval=interval,
                scan_window=window,
                active=1 if active else 0,
            )
            self._protocol.command("gap_discover", check=True, mode=mode)
            deadline = time.monotonic() + seconds
            try:
                while time.monotonic() < deadline:
                    try:
                        message = inbox.get(deadline, "scan responses")
                    except ExpectedResponseTimeout:
                        break
                    address, packet_type = record_scan_response(devices, message)
                    if scan_cb is not None and scan_cb(devices, address, packet_type):
                        log.info("scan_cb ended the scan early")
                        break
            finally:
                end_procedure(self._protocol)
        log.info("Scan found %d device(s)", len(devices))
        return scan_results(devices)

    # -- connections -------------------------------------------------------------------------

    @none_means_default
    def connect(  # type: ignore[override]
        self,
        address: str,
        timeout: float = 5,
        address_type: BLEAddressType = BLEAddressType.public,
        interval_min: int = 60,
        interval_max: int = 76,
        supervision_timeout: int = 100,
        latency: int = 0,
        *,
        auto_reconnect: bool = False,
    ) -> BGAPIBLEDevice:
        """Connect to a device.

        Args:
            address: the device's address, ``AA:BB:CC:DD:EE:FF``.
            timeout: seconds to wait for the connection.
            address_type: ``BLEAddressType.public`` or ``BLEAddressType.random``.
            interval_min: shortest connection interval, in units of 1.25 ms (6..3200).
            interval_max: longest connection interval, in units of 1.25 ms (6..3200).
            supervision_timeout: link supervision timeout, in units of 10 ms (10..3200).
            latency: slave latency, in connection events (0..500).
            auto_reconnect: reconnect (and resubscribe) whenever the link drops.

        Returns:
            The connected device (the same object if ``address`` is already connected).

        Raises:
            BLEError: the backend is not started.
            NotConnectedError: the connection failed or timed out (the reason is in the message),
                or the dongle is gone.
        """
        address = validate.address(address)
        seconds = validate.positive_timeout(timeout)
        params = ConnectionParams.checked(address_type, interval_min, interval_max, supervision_timeout, latency)
        self._require_running()
        with self._connecting(address, seconds):
            with self._lock:
                existing = self._devices.get(address)
            if existing is not None and existing.connected:  # also when another thread connected it meanwhile
                log.info("Already connected to %s", address)
                return existing
            device = BGAPIBLEDevice(address, None, self)
            device.auto_reconnect = bool(auto_reconnect)
            self._open_link(device, seconds, params)
        return device

    @contextlib.contextmanager
    def _connecting(self, address: str, seconds: float) -> Iterator[None]:
        """One connect at a time per dongle (the firmware runs one connect procedure)."""
        if not self._connect_lock.acquire(timeout=seconds):
            raise NotConnectedError(f"Timed out connecting to {address}: another connect did not finish")
        try:
            yield
        finally:
            self._connect_lock.release()

    def _open_link(self, device: BGAPIBLEDevice, seconds: float, params: ConnectionParams) -> None:
        """Connect ``device`` (new or reconnecting) and register its link; the caller holds ``_connecting``."""
        link = open_connection(self._protocol, device.address, params, seconds, self)
        with self._lock:
            # lost() runs on the reader thread after the link marked itself down, and finds it only
            # once registered: a link that went down before this point is not registered at all.
            if not link.connected:
                raise NotConnectedError(f"The link to {device.address} dropped while it was being opened")
            device.handle = link.connection
            device.connection_params = params
            self._links[link.connection] = (link, device)
            self._devices[device.address] = device
            device.link_up(link)  # under the lock: a lost() for this link comes after it
        log.info("Connected to %s (connection %d)", device.address, link.connection)

    def disconnect(self, device: BGAPIBLEDevice) -> None:
        """Disconnect ``device``, as ``device.disconnect()`` does (no disconnect callback runs).

        Raises:
            NotConnectedError: the device is not this backend's, or was disconnected already.
        """
        if not isinstance(device, BGAPIBLEDevice) or device.backend is not self:
            raise NotConnectedError(f"{device!r} is not a device of this backend")
        device.disconnect()

    def forget(self, device: BGAPIBLEDevice) -> None:
        """Forget ``device`` after its link was closed on purpose (the device's own hook)."""
        with self._lock:
            for handle, (_, known) in list(self._links.items()):
                if known is device:
                    del self._links[handle]
            if self._devices.get(device.address) is device:
                del self._devices[device.address]

    @none_means_default
    def reconnect(self, device: BGAPIBLEDevice, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        """Connect ``device`` again with its earlier parameters and resubscribe.

        Does nothing when the device is still connected.

        Raises:
            NotConnectedError: the connection failed, or the device is not this backend's.
            BLEError: the backend is not started; or resubscribing failed; the new link is closed again, so a later
                attempt connects and resubscribes anew.
        """
        if not isinstance(device, BGAPIBLEDevice) or device.backend is not self:
            raise NotConnectedError(f"{device!r} is not a device of this backend")
        seconds = validate.positive_timeout(timeout)
        self._require_running()
        with self._connecting(device.address, seconds):
            link = self.device_link(device)
            if link is not None and link.connected:
                log.info("%s is still connected", device.address)
                return
            self._open_link(device, seconds, device.connection_params or ConnectionParams())
        resubscribe_or_close(device, lambda: self._close_link(device))

    def _close_link(self, device: BGAPIBLEDevice) -> None:
        """End ``device``'s link, if any, without callbacks, and forget it."""
        link = self.device_link(device)
        device.link_down()
        if link is not None:
            link.disconnect(device.DEFAULT_TIMEOUTS["disconnect"])
        self.forget(device)

    # -- bonds, adapter settings ---------------------------------------------------------------

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Delete every bond stored in the dongle.

        Args:
            address: checked, then ignored, as in pygatt 5.0.0: BGAPI does not say which bond
                belongs to whom.

        Raises:
            ValueError, TypeError: ``address`` is not an address (no bond is deleted).
        """
        if address is not None:
            address = validate.address(address)
        self._require_running()
        if address is not None:
            log.info("clear_bond(%s): BGAPI deletes every bond, not one address's", address)
        with self._protocol.inbox(lambda m: m.name == "sm_bond_status") as inbox:
            count = self._protocol.command("sm_get_bonds")["bonds"]
            deadline = time.monotonic() + DEFAULT_RESPONSE_TIMEOUT_S
            bonds = [inbox.get(deadline, "sm_bond_status")["bond"] for _ in range(count)]
        for bond in reversed(bonds):
            result = self._protocol.command("sm_delete_bonding", handle=bond)["result"]
            if result:
                raise CommandFailed(f"sm_delete_bonding {bond}", result)
        log.info("Deleted %d bond(s)", len(bonds))

    def get_mac(self) -> str:
        """The dongle's own Bluetooth address, such as ``"00:07:80:AA:BB:CC"``.

        As in pygatt 5.0.0 (whose ``get_mac`` returned None), ``self.address`` keeps it as
        the dongle sends it: a tuple of 6 ints, least significant first, which
        :func:`bgapi_address_to_hex` turns into the same text.
        """
        self._require_running()
        mac = str(self._protocol.command("system_address_get")["address"])
        self.address = tuple(codec.address_to_bytes(mac))
        return mac

    def set_bondable(self, bondable: bool) -> None:
        """Allow (True) or refuse (False) new bonds."""
        self._require_running()
        self._protocol.command("sm_set_bondable_mode", bondable=1 if bondable else 0)

    def disable_advertising(self) -> None:
        """Stop the dongle advertising (non-discoverable, non-connectable)."""
        self._require_running()
        self._protocol.command("gap_set_mode", check=True, discover=0, connect=0)

    @none_means_default
    def discover_characteristics(self, connection_handle: int, timeout: float = 30) -> Dict[Any, Characteristic]:
        """Discover the characteristics of the device on ``connection_handle``.

        Raises:
            NotConnectedError: no device on that handle.
        """
        seconds = validate.positive_timeout(timeout)
        with self._lock:
            entry = self._links.get(connection_handle)
        if entry is None:
            raise NotConnectedError(f"No device on connection handle {connection_handle}")
        return entry[0].discover(seconds)

    # -- pygatt 5.0.0's low-level access -----------------------------------------------------

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        """Send a command without waiting: ``send_command("gap_discover", mode=2)`` or a whole frame
        as bytes. Its response is then read with :meth:`expect`.
        """
        self._require_running()
        if len(args) == 1 and isinstance(args[0], (bytes, bytearray)) and not kwargs:
            self._protocol.send_raw(bytes(args[0]))
        elif len(args) == 1 and isinstance(args[0], str):
            self._protocol.send(args[0], **kwargs)
        else:
            raise TypeError("send_command takes a command name and its fields, or a frame as bytes")

    def expect(self, expected: Any, *args: Any, **kwargs: Any) -> Tuple[str, Dict[str, Any]]:
        """Wait for a message nobody else is waiting for, named ``expected``; returns ``(name, fields)``."""
        return self.expect_any([expected], *args, **kwargs)

    def expect_any(
        self,
        expected_packet_choices: Iterable[Any],
        timeout: Optional[float] = None,
        assert_return_success: bool = True,
    ) -> Tuple[str, Dict[str, Any]]:
        """Wait for the first unclaimed message named in ``expected_packet_choices``.

        Args:
            expected_packet_choices: message names (``"gap_end_procedure"``,
                ``"gap_scan_response"``) or objects with such a ``name``.
            timeout: seconds to wait (None: the default response timeout).
            assert_return_success: raise if the message carries a non-zero ``result``.

        Returns:
            ``(name, fields)``.

        Raises:
            ExpectedResponseTimeout: nothing matching came in time.
            CommandFailed: ``assert_return_success`` and a non-zero result.
        """
        names = [_message_name(choice) for choice in expected_packet_choices]
        seconds = DEFAULT_RESPONSE_TIMEOUT_S if timeout is None else validate.positive_timeout(timeout)
        message = self._protocol.wait_unclaimed(names, seconds)
        if assert_return_success and message.get("result"):
            raise CommandFailed(message.name, message["result"])
        return message.name, dict(message.fields)

    # -- for devices --------------------------------------------------------------------------------

    def device_link(self, device: BGAPIBLEDevice) -> Optional[BGAPILink]:
        """The live link of ``device``, if any."""
        with self._lock:
            for link, known in self._links.values():
                if known is device:
                    return link
        return None

    @property
    def protocol(self) -> BGAPIProtocol:
        """The dongle's command/event router (for tests and tools)."""
        return self._protocol

    @property
    def transport(self) -> Optional[SerialTransport]:
        """The open port and its reader (for tests and tools); None before start()."""
        return self._transport

    @property
    def port_name(self) -> Optional[str]:
        """The port in use, None before start()."""
        transport = self._transport
        return transport.port_name if transport is not None else None


__all__ = ["MAX_CONNECTION_ATTEMPTS", "AdvertisingAndScanInfo", "BGAPIBackend", "bgapi_address_to_hex"]
