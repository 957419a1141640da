"""``GATTToolBackend``: BLE through BlueZ's ``gatttool -I``, driven by pexpect.

The backend's jobs, each handed to a module of its own:

* life cycle and connections (here): start/stop, connect/disconnect/reconnect,
  which device a call is about, notifications and lost links to the devices;
* the adapter tools -- reset, scan, clear_bond, RSSI: :mod:`.adapter`;
* the idle gatttool processes: :mod:`.pool`;
* one gatttool process and its reader thread: :mod:`.session`;
* one connection as the backend contract: :mod:`.link`;
* auto-reconnect: :mod:`pygatt.reconnect`.

The GATT methods keep pygatt 5.0.0's calling conventions: the device comes first
(``adapter.char_read(device, uuid)``), or is left out when exactly one device is
connected (``adapter.char_read(uuid, timeout=2)``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shlex
import threading
import uuid
from typing import IO, Any, Callable, ContextManager, Dict, List, Optional, Sequence, Set, Tuple, TypeVar, Union, cast

from pygatt import validate
from pygatt.backends.backend import (
    DEFAULT_ATT_MTU,
    DEFAULT_CONNECT_TIMEOUT_S,
    BLEAddressType,
    BLEBackend,
    Characteristic,
    address_type_of,
    resubscribe_or_close,
)
from pygatt.backends.gatttool import commands
from pygatt.backends.gatttool.adapter import TOOL_TIMEOUT_S, AdapterTools
from pygatt.backends.gatttool.device import GATTToolBLEDevice
from pygatt.backends.gatttool.link import GATTToolLink
from pygatt.backends.gatttool.parser import Notification, NotificationRun
from pygatt.backends.gatttool.pool import SessionPool
from pygatt.backends.gatttool.session import GATTToolSession, Notifications
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.backends.gatttool.tracker import ATT_TIMEOUT_LOSS
from pygatt.backends.timeouts import TimeoutSlot, none_means_default
from pygatt.backends.turns import Turns
from pygatt.deadline import Deadline
from pygatt.device import BLEDevice, check_command_length, validate_mtu
from pygatt.dispatch import CallbackDispatcher
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout
from pygatt.reconnect import DEFAULT_RECONNECT_DELAY, Reconnector
from pygatt.validate import BytesLike, UUIDLike

log = logging.getLogger(__name__)

DISCONNECT_TIMEOUT_S = 2.0

__all__ = ["DEFAULT_CONNECT_TIMEOUT_S", "DEFAULT_RECONNECT_DELAY", "GATTToolBackend"]

F = TypeVar("F", bound=Callable[..., Any])


def _device_optional(func: F, known: bool = False) -> F:
    """Let a GATT method take its device first, by keyword, or not at all.

    pygatt 5.0.0's backend methods took the device first while ``inspect`` showed
    them without it, and its documentation calls them without it. The wrapper
    accepts ``method(device, ...)``, ``method(..., device=d)`` /
    ``connected_device=d``, and ``method(...)`` for the one connected device;
    ``inspect.signature`` shows the parameters without the device. ``timeout=None``
    is the method's default (see :mod:`pygatt.backends.timeouts`).
    """
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    public = signature.replace(parameters=[parameters[0], *parameters[2:]])
    timeout = TimeoutSlot(func, skip=2) if "timeout" in signature.parameters else None  # None: the default

    @functools.wraps(func)
    def wrapper(self: GATTToolBackend, *args: Any, **kwargs: Any) -> Any:
        device, args = self._device_for_call(func.__name__, args, kwargs, known)
        if timeout is not None:
            args = timeout.fill(args, kwargs)
        return func(self, device, *args, **kwargs)

    wrapper.__signature__ = public  # type: ignore[attr-defined]
    return cast("F", wrapper)


def _cli_arguments(cli_options: Union[str, Sequence[str], None]) -> List[str]:
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


def _check_logfile(logfile: Union[str, os.PathLike[str], IO[str], None]) -> None:
    if logfile is None:
        return
    if isinstance(logfile, (str, os.PathLike)):
        path = os.fspath(logfile)
        if os.path.isdir(path):
            raise ValueError(f"gatttool_logfile {path!r} is a directory; give a file path")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ValueError(f"gatttool_logfile {path!r}: the directory {parent!r} does not exist")
        return
    if not hasattr(logfile, "write"):
        raise TypeError("gatttool_logfile must be a path or a file object with write()")


class GATTToolBackend(BLEBackend):
    """Backend to pygatt that uses BlueZ's interactive gatttool CLI prompt.

    Args:
        hci_device: the adapter gatttool uses (``-i``): ``hci0``, or the adapter's address.
        gatttool_logfile: a file path (or an open text file) receiving gatttool's raw input and output.
        cli_options: more arguments for gatttool: a list, or one string split like a shell would.
        search_window_size: the longest unfinished output line kept while waiting for its end.
        max_read: the largest chunk read from gatttool at once.
        tools: the programs to run (keyword only); by default BlueZ's on PATH, or the
            simulator when ``PYGATT_SIMULATE`` is set. See :class:`ToolCommands`.
    """

    def __init__(
        self,
        hci_device: str = "hci0",
        gatttool_logfile: Union[str, os.PathLike[str], IO[str], None] = None,
        cli_options: Union[str, Sequence[str], None] = None,
        search_window_size: Optional[int] = None,
        max_read: Optional[int] = None,
        *,
        tools: Optional[ToolCommands] = None,
    ) -> None:
        self._hci_device = validate.adapter(hci_device)
        self._cli_options = _cli_arguments(cli_options)
        for name, limit in (("search_window_size", search_window_size), ("max_read", max_read)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"{name} must be a positive int, got {limit!r}")
        _check_logfile(gatttool_logfile)
        self._search_window_size = search_window_size
        self._max_read = max_read
        self._gatttool_logfile = gatttool_logfile
        self._tools = tools if tools is not None else ToolCommands.from_environment()
        self._adapter = AdapterTools(self._tools, self._hci_device)
        self._dispatcher = CallbackDispatcher()
        self._reconnector = Reconnector()
        self._pool = SessionPool(self._new_session)
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._stops = 0  # how many times stop() ran: a start() that sees it change fails
        self._starting: Set[GATTToolSession] = set()  # sessions waiting for their first prompt
        self._running = False
        self._links: Dict[GATTToolBLEDevice, GATTToolLink] = {}
        self._device_of: Dict[GATTToolSession, GATTToolBLEDevice] = {}  # connected sessions only
        self._options: Dict[GATTToolBLEDevice, Tuple[BLEAddressType, float]] = {}
        self._connect_turns = Turns()  # each address's, taken by connect() and reconnect() (see connect)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} hci_device={self._hci_device}>"

    @property
    def notifications_dropped(self) -> int:
        """Notifications dropped because callbacks could not keep up (see :mod:`pygatt.dispatch`)."""
        return self._dispatcher.dropped

    def mtu_of(self, device: GATTToolBLEDevice) -> int:
        """The ATT MTU of ``device``'s link (23 when it has none or never exchanged)."""
        with self._lock:
            link = self._links.get(device)
        return DEFAULT_ATT_MTU if link is None else link.mtu

    def supports_unbonded(self) -> bool:
        """False: BlueZ raises the link's security by itself when an attribute
        asks for it, so a connection may become bonded unasked (as in pygatt 5.0.0).
        """
        return False

    # -- life cycle --------------------------------------------------------------

    def start(self, reset_on_start: bool = True, initialization_timeout: float = 3) -> None:
        """Run gatttool in interactive mode and wait for its prompt.

        A reset that cannot be done (no adapter, no permission) is logged as a
        warning and the start goes on.

        Args:
            reset_on_start: reset the adapter with ``hciconfig <dev> reset`` first.
            initialization_timeout: seconds to wait for gatttool's first prompt.

        Raises:
            ToolError: gatttool could not be started.
            BLEError: :meth:`stop` was called while starting.
        """
        timeout = validate.positive_timeout(initialization_timeout, "initialization_timeout")
        # One start at a time; the backend's lock is not held while waiting for the tools, so a
        # stop() meanwhile returns at once, ends what the start runs and makes the start fail.
        with self._start_lock:
            with self._lock:
                if self._running:
                    log.info("gatttool is already started")
                    return
                stops = self._stops
            if reset_on_start:
                try:
                    self.reset()
                except BLEError as exc:
                    log.warning("Could not reset %s, going on without: %s", self._hci_device, exc)
            self._dispatcher.start()
            self._reconnector.start()
            try:
                with self._lock:
                    if self._stops != stops:
                        raise BLEError("The backend was stopped while starting")
                self._pool.open(timeout)
                with self._lock:
                    if self._stops == stops:
                        self._running = True
                        return
                for session in self._pool.close():
                    session.close()
                raise BLEError("The backend was stopped while starting")
            except BaseException:
                self._reconnector.stop(0.5)
                self._dispatcher.stop(0.2)
                raise

    def stop(self) -> None:
        """Stop the backend: disconnect every device, end gatttool and any scan.

        Safe in every state (never started, starting, scanning, connected,
        gatttool already dead, called twice); returns within about two seconds, and no
        callback runs after it returned.
        """
        with self._lock:
            self._running = False
            self._stops += 1
            devices = list(self._links)
            sessions = [link.session for link in self._links.values()]
            self._links.clear()
            self._device_of.clear()
            self._options.clear()
            sessions.extend(self._pool.close())
            sessions.extend(self._starting)  # still waiting for their first prompt: that wait ends now
        for device in devices:
            device.auto_reconnect = False
            device.link_down()
        self._adapter.stop()
        closers = [threading.Thread(target=s.close, name="pygatt-close", daemon=True) for s in sessions]
        for closer in closers:
            closer.start()
        self._reconnector.stop(0.5)
        for closer in closers:
            closer.join(1.8)
        self._dispatcher.stop(0.2, discard=True)

    def _new_session(self, timeout: float) -> GATTToolSession:
        argv = [*self._tools.gatttool, *self._cli_options, "-i", self._hci_device, "-I"]
        holder: Dict[str, GATTToolSession] = {}

        def on_notifications(batch: Notifications) -> None:
            self._route_notifications(holder["session"], batch)

        def on_link_lost(why: str) -> None:
            self._dispatcher.submit(self._link_lost, holder["session"], why)

        session = GATTToolSession(
            argv,
            on_notifications,
            on_link_lost,
            logfile=self._gatttool_logfile,
            max_read=self._max_read,
            search_window_size=self._search_window_size,
        )
        holder["session"] = session
        with self._lock:
            self._starting.add(session)
            stops = self._stops
        try:
            session.start(timeout)
        except BLEError:
            if self._stops != stops:
                raise NotConnectedError("The backend was stopped while gatttool was starting") from None
            raise
        finally:
            with self._lock:
                self._starting.discard(session)
        return session

    # -- adapter-level operations -----------------------------------------------

    def reset(self) -> None:
        """Run ``hciconfig <dev> reset`` (with ``sudo -n`` when not root).

        It never restarts the bluetooth service.

        Raises:
            ToolError: hciconfig failed; the error quotes it.
        """
        self._adapter.reset()

    @none_means_default
    def scan(self, timeout: float = 10, run_as_root: bool = False, *, tool: str = "hcitool") -> List[Dict[str, Any]]:
        """Scan for BLE devices.

        Args:
            timeout: seconds to scan for.
            run_as_root: run the scan through ``sudo -n`` (passwordless sudo needed).
            tool: ``"hcitool"`` (``hcitool lescan``, as pygatt 5.0.0) or ``"btmgmt"``
                (``btmgmt find -l``, which also reports RSSI, the address type and the AD flags).

        Returns:
            A list of dicts with 'address', 'name' (None for devices that did not
            advertise one) and 'rssi' (dBm; None with hcitool, which does not print it).

        Raises:
            PermissionDeniedError: the tool lacks privileges (the message says how to grant them).
            ToolError: the tool failed.
        """
        return self._adapter.scan(validate.positive_timeout(timeout), run_as_root, tool)

    def kill(self) -> None:
        """End a running scan (it returns what it found so far)."""
        self._adapter.kill()

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Remove the bond with a device using bluetoothctl.

        Args:
            address: the device's address; None removes every bond.
        """
        self._adapter.clear_bond(address)

    def sendline(self, command: str) -> None:
        """Send a raw line to gatttool: the connected device's process when exactly
        one is connected, the idle process when none is.

        Args:
            command: the line (no line break or other control character).
        """
        if not isinstance(command, str):
            raise TypeError("command must be a str")
        self._only_session().send(command)

    def _only_session(self) -> GATTToolSession:
        with self._lock:
            links = list(self._links.values())
            if len(links) > 1:
                raise BLEError(
                    "Several devices are connected ("
                    + ", ".join(sorted(link.address for link in links))
                    + "); call the method on the device instead"
                )
            if links:
                return links[0].session
            spare = self._pool.spare
            if spare is None:
                raise BLEError("The backend is not started; call start() first")
            return spare

    # -- which device a call is about ----------------------------------------------

    def _device_for_call(
        self, method: str, args: Tuple[Any, ...], kwargs: Dict[str, Any], known: bool = False
    ) -> Tuple[GATTToolBLEDevice, Tuple[Any, ...]]:
        """The device a device-first method acts on, and the remaining positional arguments.

        ``known`` widens the choice from the connected devices to every device this
        backend connected and that was not disconnected on purpose (for reconnect).

        Raises:
            TypeError: both ``device`` and ``connected_device`` given.
            NotConnectedError: the device is not connected through this backend, or none is.
            BLEError: no device given and several are connected; or, with ``known``, the
                backend is not started.
        """
        given: Any = None
        for name in ("device", "connected_device"):
            if name in kwargs:
                if given is not None:
                    raise TypeError(f"{method}() got both device and connected_device")
                given = kwargs.pop(name)
        if given is None and args and isinstance(args[0], BLEDevice):
            given, args = args[0], args[1:]
        with self._lock:
            if known and not self._running:  # reconnect() after stop(): nothing failed, nothing can start
                raise BLEError("The backend is not started; call start() first")
            candidates = self._options if known else self._links
            if given is not None:
                if isinstance(given, GATTToolBLEDevice):
                    if given in candidates:  # the common case: a connected device calling its backend
                        return given, args
                    if given.backend is self:
                        raise NotConnectedError(f"Device {given.address} is not connected")
                raise NotConnectedError(f"{given!r} is not a device connected through this backend")
            devices = list(candidates)
        if not devices:
            what = "was" if known else "is"
            raise NotConnectedError(f"{method}(): no device {what} connected through this backend")
        if len(devices) > 1:
            raise BLEError(
                f"{method}(): several devices are connected ("
                + ", ".join(sorted(d.address for d in devices))
                + "); pass the device first or call the method on the device"
            )
        return devices[0], args

    def _link(self, device: GATTToolBLEDevice) -> GATTToolLink:
        with self._lock:
            link = self._links.get(device)
        if link is None or not link.connected:
            raise NotConnectedError(f"Device {device.address} is not connected")
        return link

    # -- connections ---------------------------------------------------------------

    @none_means_default
    def connect(  # type: ignore[override]
        self,
        address: str,
        timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        address_type: Union[BLEAddressType, str] = BLEAddressType.public,
        auto_reconnect: bool = False,
    ) -> GATTToolBLEDevice:
        """Connect to a device.

        Each connected device gets a gatttool process of its own, so several
        devices can be connected at once. An address already connected returns
        its device.

        Args:
            address: the BLE address, e.g. ``"01:23:45:67:89:AB"``.
            timeout: seconds the whole connect may take (starting gatttool included).
            address_type: ``BLEAddressType.public`` or ``BLEAddressType.random``
                (or their names, ``"public"``/``"random"``).
            auto_reconnect: reconnect (and resubscribe) whenever the link drops.

        Returns:
            The connected device.

        Raises:
            NotConnectedError: the connection failed; the message quotes gatttool.
        """
        address = validate.address(address)
        deadline = Deadline(validate.positive_timeout(timeout))
        kind = address_type_of(address_type)
        # one connect or reconnect per address at a time: a second one waits, then finds the first one's device
        with self._connect_turn(address, deadline):
            return self._connect_once(address, kind, deadline, bool(auto_reconnect))

    def _connect_turn(self, address: str, deadline: Deadline) -> ContextManager[None]:
        """Hold ``address``'s connect turn (shared by connect and reconnect), or raise NotConnectedError."""
        busy = f"Timed out connecting to {address}: another connect or reconnect of it went on"
        return self._connect_turns.hold(address, deadline.remaining(), busy)

    def _connect_once(
        self, address: str, kind: BLEAddressType, deadline: Deadline, auto_reconnect: bool
    ) -> GATTToolBLEDevice:
        """:meth:`connect`'s work, with the address's connect turn held."""
        with self._lock:
            if not self._running:
                raise BLEError("The backend is not started; call start() first")
            for device in self._links:
                if device.address == address:
                    log.info("Already connected to %s", address)
                    return device
            for device in self._options:
                if device.address == address and device.auto_reconnect:
                    # its link dropped and it waits to reconnect: the new device takes over, or the
                    # address would end up with two links (a reconnect that still comes is undone)
                    log.info("A new connect to %s stops the auto-reconnect of its earlier device", address)
                    device.auto_reconnect = False
        device = GATTToolBLEDevice(address, self)
        device.auto_reconnect = auto_reconnect
        with self._lock:
            self._options[device] = (kind, deadline.seconds)
        try:
            self._open_link(device, kind, deadline)
        except BaseException:
            with self._lock:
                self._options.pop(device, None)  # a device that never connected is not one to reconnect
            raise
        return device

    def _open_link(self, device: GATTToolBLEDevice, kind: BLEAddressType, deadline: Deadline) -> None:
        """Connect ``device`` on a session of its own, or raise NotConnectedError."""
        session = self._pool.take(deadline.remaining())
        try:
            session.expect_disconnect(False)
            session.connection_reset()
            # A reused process keeps the level an earlier bond() set; start every link at low, as pygatt 5.0.0 did.
            session.run(commands.sec_level("low"), deadline.remaining())
            log.info("Connecting to %s (%s)", device.address, kind.name)
            session.run(commands.connect(device.address, kind.name), deadline.remaining())
        except NotificationTimeout:
            self._pool.connected(session)
            session.close()  # still trying to connect; a fresh process is cleaner than a cancel
            raise NotConnectedError(
                f"Timed out connecting to {device.address} after {deadline.seconds} seconds."
            ) from None
        except BLEError:
            self._pool.give_back(session)
            raise
        if not self._pool.connected(session):
            raise NotConnectedError("The backend was stopped while connecting")
        link = GATTToolLink(session, device.address, self._adapter.rssi)
        with self._lock:
            if not self._running:
                session.close()
                raise NotConnectedError("The backend was stopped while connecting")
            # A drop seen before this point was reported while no device owned the session, so
            # _link_lost ignored it: such a link is never registered. A later drop finds it registered.
            dropped = not link.connected
            if not dropped:
                self._links[device] = link
                self._device_of[session] = device
                device.link_up()  # under the lock: a _link_lost for this link comes after it
        if dropped:
            session.close()  # as _link_lost would have, were the link registered (the cause is unknown here)
            raise NotConnectedError(f"The link to {device.address} dropped while it was being opened")

    @_device_optional
    def disconnect(self, device: GATTToolBLEDevice) -> None:
        """Disconnect from the device. Its gatttool process is kept for the next connect."""
        device.auto_reconnect = False
        with self._lock:
            self._options.pop(device, None)
        self._close_link(device)

    def _forget(self, device: GATTToolBLEDevice) -> Optional[GATTToolLink]:
        with self._lock:
            link = self._links.pop(device, None)
            if link is not None:
                self._device_of.pop(link.session, None)
        return link

    @functools.partial(_device_optional, known=True)
    def reconnect(self, device: GATTToolBLEDevice, timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        """Connect a device again after its link dropped, and resubscribe.

        Does nothing when the device is still connected.

        Args:
            device: a device returned by this backend's :meth:`connect` (may be left
                out when it is the only device this backend knows).
            timeout: seconds the connect may take.

        Raises:
            NotConnectedError: the connection failed.
            BLEError: the backend is not started (or stopped since); or resubscribing failed:
                the new link is closed again, so a later attempt connects and resubscribes anew.
        """
        deadline = Deadline(validate.positive_timeout(timeout))
        # one connect or reconnect of an address at a time (the reconnector's, the caller's and a connect()
        # may meet): the second finds the device connected, instead of opening a second link beside it
        with self._connect_turn(device.address, deadline):
            self._reconnect_once(device, deadline)

    def _reconnect_once(self, device: GATTToolBLEDevice, deadline: Deadline) -> None:
        """:meth:`reconnect`'s work, with the address's connect turn held (see connect)."""
        with self._lock:
            if not self._running:
                raise BLEError("The backend is not started; call start() first")
            if device in self._links and self._links[device].connected:
                log.info("%s is still connected", device.address)
                return
            options = self._options.get(device)
        kind = options[0] if options is not None else BLEAddressType.public
        stale = self._forget(device)
        if stale is not None:
            # The link dropped and its loss still waits for the callback thread (``_link_lost``, which
            # now finds no device for this session and does nothing): the old process is ended here.
            stale.session.close()
        self._open_link(device, kind, deadline)
        resubscribe_or_close(device, lambda: self._close_link(device))

    def _close_link(self, device: GATTToolBLEDevice) -> None:
        """End ``device``'s link without callbacks; its process is kept as the spare while it runs."""
        link = self._forget(device)
        device.link_down()
        if link is None:
            return
        link.disconnect(DISCONNECT_TIMEOUT_S)
        if link.session.alive:
            self._pool.give_back(link.session)

    def _route_notifications(self, session: GATTToolSession, batch: Notifications) -> None:
        """Reader thread: queue one chunk's notifications for its device's callbacks, in order.

        Single notifications go in one hand-off, a run of one handle in another (its values
        are not paired with the handle one by one). Handles nobody subscribed to are dropped
        here, so a flood of them costs no memory.
        """
        device = self._device_of.get(session)
        if device is None:
            return
        listens_to = device.listens_to
        submit = self._dispatcher.submit_batch
        singles: List[Tuple[int, bytes]] = []
        for event in batch:
            if type(event) is NotificationRun:
                if listens_to(event.handle):
                    if singles:
                        submit(device.receive_notifications, singles)
                        singles = []
                    submit(functools.partial(device.receive_run, event.handle), event.values)
            elif listens_to(event.handle):
                singles.append((event.handle, cast("Notification", event).value))
        if singles:
            submit(device.receive_notifications, singles)

    def _link_lost(self, session: GATTToolSession, why: str) -> None:
        """Dispatcher thread: a link went down without being asked to."""
        with self._lock:  # one step: a reconnect() meanwhile may have put a new link in place
            device = self._device_of.pop(session, None)
            if device is None:
                return  # forgotten meanwhile: disconnect(), stop(), or reconnect() took over
            link = self._links.get(device)
            if link is not None and link.session is session:
                del self._links[device]
        if session.alive and why != ATT_TIMEOUT_LOSS:
            self._pool.give_back(session)
        else:
            # reap the process and release its terminal; after its ATT timeout gatttool keeps a dead
            # link it shows as up, so that process is not reused either
            session.close()
        device.link_lost(why)
        if device.auto_reconnect and self._running:
            options = self._options.get(device)
            timeout = options[1] if options is not None else DEFAULT_CONNECT_TIMEOUT_S
            self._reconnector.schedule(
                device.address,
                lambda: self.reconnect(device, timeout),
                lambda: self._running and device.auto_reconnect,
                lambda: self._close_link(device),
            )

    # -- GATT operations (device first, as in pygatt 5.0.0) -----------------------

    @_device_optional
    def bond(self, device: GATTToolBLEDevice, permanent: bool = False) -> None:
        """Raise the link's security (``sec-level medium``), which makes BlueZ pair.

        Raises:
            GATTError: gatttool refused (e.g. ``setsockopt(BT_SECURITY)``); the link stays up.
            NotConnectedError: the link dropped.
        """
        self._link(device).bond(permanent, TOOL_TIMEOUT_S)

    @_device_optional
    def get_rssi(self, device: GATTToolBLEDevice) -> int:
        """The RSSI of the connection, from ``hcitool rssi``.

        Raises:
            BLEError: hcitool gave no RSSI.
        """
        return self._link(device).rssi(TOOL_TIMEOUT_S)

    @_device_optional
    def char_read(self, device: GATTToolBLEDevice, uuid: UUIDLike, timeout: float = 1) -> bytearray:
        """Read a characteristic by UUID (``char-read-uuid``).

        Only the first matching characteristic is returned, and gatttool reads at
        most one packet (MTU - 4 bytes) this way: use char_read_long for more.

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait for the answer.

        Returns:
            The value.
        """
        key = validate.characteristic_uuid(uuid)
        return bytearray(self._link(device).read_uuid(key, validate.positive_timeout(timeout)))

    @_device_optional
    def char_read_handle(self, device: GATTToolBLEDevice, handle: int, timeout: float = 4) -> bytearray:
        """Read a characteristic by handle (``char-read-hnd``).

        gatttool follows values longer than one packet with Read Blob requests.

        Args:
            handle: the attribute handle.
            timeout: seconds to wait for the answer.

        Returns:
            The value.
        """
        handle = validate.handle(handle)
        return bytearray(self._link(device).read_handle(handle, validate.positive_timeout(timeout)))

    @_device_optional
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

        Args:
            handle: the attribute handle.
            value: the bytes to write.
            wait_for_response: use a Write Request and wait for the acknowledgement.
            timeout: seconds to wait.
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        seconds = validate.positive_timeout(timeout)
        link = self._link(device)
        check_command_length(data, link.mtu, wait_for_response)
        link.write_handle(handle, data, bool(wait_for_response), seconds)

    @_device_optional
    def char_read_long(self, device: GATTToolBLEDevice, uuid: UUIDLike, timeout: float = 4) -> bytearray:
        """Read a value longer than one packet by UUID (its handle, then ``char-read-hnd``).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait for the answer.

        Returns:
            The whole value.
        """
        return bytearray(self.char_read_long_handle(device, device.get_handle(uuid), timeout=timeout))

    @_device_optional
    def char_read_long_handle(self, device: GATTToolBLEDevice, handle: int, timeout: float = 4) -> bytearray:
        """Read a value longer than one packet: gatttool's ``char-read-hnd`` reads blobs.

        Args:
            handle: the attribute handle.
            timeout: seconds to wait for the answer.

        Returns:
            The whole value.
        """
        handle = validate.handle(handle)
        return bytearray(self._link(device).read_long_handle(handle, validate.positive_timeout(timeout)))

    @_device_optional
    def char_write_long(
        self,
        device: GATTToolBLEDevice,
        uuid: UUIDLike,
        value: BytesLike,
        wait_for_response: bool = False,
        timeout: float = 30,
    ) -> None:
        """Write a value longer than one packet by UUID (see :meth:`char_write_long_handle`).

        Args:
            uuid: the characteristic's UUID.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility; a long write is always acknowledged.
            timeout: seconds to wait.
        """
        self.char_write_long_handle(device, device.get_handle(uuid), value, wait_for_response, timeout)

    @_device_optional
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

        Args:
            handle: the attribute handle.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility.
            timeout: seconds to wait.
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        self._link(device).write_long_handle(handle, data, validate.positive_timeout(timeout))

    @_device_optional
    def discover_characteristics(
        self, device: GATTToolBLEDevice, timeout: float = 5
    ) -> Dict[uuid.UUID, Characteristic]:
        """Discover the device's characteristics (``characteristics``) and their
        descriptors (``char-desc``).

        Args:
            timeout: seconds the whole discovery may take.

        Returns:
            ``{UUID: Characteristic}``; when a UUID appears more than once, the lowest value handle is kept.
        """
        return self._link(device).discover(validate.positive_timeout(timeout))

    @_device_optional
    def exchange_mtu(self, device: GATTToolBLEDevice, mtu: int, timeout: float = 1) -> int:
        """Ask for an ATT MTU; gatttool allows one exchange per connection.

        Args:
            mtu: the MTU wanted, 23..517.
            timeout: seconds to wait.

        Returns:
            The MTU now in use.
        """
        mtu = validate_mtu(mtu)
        return self._link(device).exchange_mtu(mtu, validate.positive_timeout(timeout))
