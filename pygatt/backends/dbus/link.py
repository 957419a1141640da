"""``DBusLink``: one connection to one peripheral through BlueZ's D-Bus objects.

The link turns pygatt's handle-based operations into calls on the device's
``GattCharacteristic1``/``GattDescriptor1`` objects, using the handle map of
:mod:`pygatt.backends.dbus.properties`. It learns about the link's state from
signals the backend routes to it (``device_changed``, ``value_changed``,
``objects_changed``, ``removed``; all called on the bus reader thread, all quick)
and reports notifications and link loss through two callables the backend gives
it, which only queue work on the backend's callback dispatcher.

Every operation takes a ``timeout``: a deadline for the whole operation,
retries included. A method BlueZ never answers ends in NotificationTimeout.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from pygatt.backends.backend import Characteristic, GATTLink, no_such_characteristic
from pygatt.backends.dbus import errors, paths, properties
from pygatt.backends.dbus.bus import BusClosed, BusConnection, CallTimeout, DBusCallError, ReplyHook
from pygatt.backends.dbus.properties import CHARACTERISTIC, DESCRIPTOR, DEVICE, GattTable
from pygatt.deadline import Deadline
from pygatt.exceptions import (
    BLEError,
    InvalidHandleError,
    NotConnectedError,
    WriteNotPermittedError,
)

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
IN_PROGRESS = "org.bluez.Error.InProgress"
IN_PROGRESS_RETRY_S = 0.01
CLEANUP_TIMEOUT_S = 1.0
NOTIFY_ON = (bytes([0x01, 0x00]), bytes([0x02, 0x00]))
NOTIFY_OFF = bytes([0x00, 0x00])
GATT_METHODS = ("ReadValue", "WriteValue", "StartNotify", "StopNotify")

NotificationSink = Callable[[int, bytes], None]
LossSink = Callable[[str], None]


def enabled_kind(flags: List[str]) -> str:
    """What BlueZ's ``StartNotify`` enables on a characteristic with these ``Flags``.

    BlueZ writes 0x0001 to the CCCD whenever the characteristic offers notifications,
    0x0002 only when it offers indications alone: a client cannot choose.

    Args:
        flags: the characteristic's ``Flags`` property.

    Returns:
        ``"notification"`` or ``"indication"``.
    """
    return "notification" if "notify" in flags else "indication"


class _Reads:
    """The reads of one characteristic in flight, and the ``Value`` signals held meanwhile.

    BlueZ signals a read's value before it replies, and joins a read at the same offset
    to the one in flight: joined reads share ONE such echo. So each held value records
    how many read replies had come when it arrived, and a reply takes as its echo only a
    value that arrived after the previous reply (for joined reads: the first takes the
    echo, the others find none and leave a notification with the same bytes alone).
    """

    __slots__ = ("count", "held", "replies")

    def __init__(self) -> None:
        self.count = 0  # reads in flight
        self.replies = 0  # read replies seen so far (on the reader thread)
        self.held: List[Tuple[bytes, int]] = []  # (value, replies seen when it arrived), in arrival order


class DBusLink(GATTLink):
    """The link to one device (the backend contract's GATTLink): its object path, state and GATT operations.

    Args:
        bus: the backend's bus connection.
        hci_device: the adapter, e.g. ``hci0``.
        address: the device's address (validated, upper case).
        on_notification: gets ``(value handle, value)`` for every Value change on a characteristic.
        on_lost: gets a reason once when the link drops without disconnect() being called.
    """

    def __init__(
        self,
        bus: BusConnection,
        hci_device: str,
        address: str,
        on_notification: NotificationSink,
        on_lost: LossSink,
    ) -> None:
        self.address = address
        self.path = paths.device_path(hci_device, address)
        self._bus = bus
        self._on_notification = on_notification
        self._on_lost = on_lost
        self._state = threading.Condition()
        self._connected = False
        self._resolved = False
        self._up = False  # connect() finished and disconnect() not called
        self._lost = False  # was up, then dropped by itself (on_lost called)
        self._closing = False  # disconnect() was called: a connection attempt in flight gives up
        self._disconnects = 0  # Connected=false signals seen since the connection attempt began
        self._open_done = threading.Event()  # clear while open() runs
        self._open_done.set()
        self._gone: Optional[str] = None  # why the link cannot come back (device removed, bus gone)
        self._mtu: Optional[int] = None
        self._table: Optional[GattTable] = None
        self._lock = threading.Lock()
        self._reads: Dict[str, _Reads] = {}  # char path -> its reads in flight and the values held meanwhile
        self._notifying: Set[str] = set()
        self._delivery: Dict[int, str] = {}  # value handle -> what StartNotify enabled ("notification"...)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.address} {'up' if self._up else 'down'}>"

    # -- state ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the link is up (BlueZ says Connected and disconnect() was not called)."""
        return self._up and self._connected

    @property
    def lost(self) -> bool:
        """True once the link was up and then dropped by itself (BlueZ said Connected=false, or went away)."""
        return self._lost

    @property
    def mtu(self) -> int:
        """The ATT MTU BlueZ negotiated (23 until known)."""
        return self._mtu or properties.DEFAULT_ATT_MTU

    # -- called on the reader thread by the backend's signal router ----------------------

    def device_changed(self, changed: Dict[str, Any], invalidated: List[str]) -> None:
        """Device1 properties changed (reader thread).

        Args:
            changed: the changed properties, unwrapped.
            invalidated: the names of properties that went away.
        """
        lost = False
        with self._state:
            if "Connected" in changed:
                self._connected = bool(changed["Connected"])
                if not self._connected:
                    self._disconnects += 1
                    self._resolved = False
                    lost = self._up
                    self._lost = self._lost or lost
                    self._up = False
            if "ServicesResolved" in changed:
                self._resolved = bool(changed["ServicesResolved"])
            self._state.notify_all()
        if lost:
            self._mtu = None
            self._on_lost("BlueZ reported the device disconnected (Connected=false)")

    def value_changed(self, char_path: str, changed: Dict[str, Any]) -> None:
        """GattCharacteristic1 properties changed under this device (reader thread).

        A ``Value`` change is a notification, unless a read of that characteristic is in
        flight: BlueZ signals a read's value too, so it is held until the read answers.

        Args:
            char_path: the characteristic's object path.
            changed: the changed properties, unwrapped.
        """
        if "MTU" in changed:
            self._mtu = int(changed["MTU"])
        if "Value" not in changed:
            return
        value = bytes(changed["Value"])
        with self._lock:
            reads = self._reads.get(char_path)
            if reads is not None:  # a read is in flight: this may be its echo, decided when it answers
                reads.held.append((value, reads.replies))
                return
        self._on_notification(paths.value_handle(char_path), value)

    def objects_changed(self) -> None:
        """GATT objects appeared or went away under the device: build the handle map again when needed."""
        self._table = None

    def removed(self, reason: str) -> None:
        """The device object went away (or BlueZ did): the link is down for good.

        Args:
            reason: why, for the disconnect callbacks' log and later errors.
        """
        with self._state:
            self._gone = reason
            lost = self._up
            self._lost = self._lost or lost
            self._up = self._connected = self._resolved = False
            self._state.notify_all()
        self._table = None
        if lost:
            self._on_lost(reason)

    # -- connection ------------------------------------------------------------------------

    def open(self, timeout: float) -> None:
        """Connect (``Device1.Connect``) and wait until BlueZ has resolved the services.

        Fails at once when the device disconnects after Connect's reply but before
        ``ServicesResolved``, and when :meth:`disconnect` is called meanwhile (the
        connection it may have made is taken down again).

        Args:
            timeout: seconds for the whole connection.

        Raises:
            NotConnectedError: the connection failed, was cancelled, or did not complete
                in ``timeout`` seconds.
        """
        with self._state:
            if self._closing:
                raise NotConnectedError(f"Connecting to {self.address} was cancelled: disconnect() was called")
            self._gone = None
            self._open_done.clear()
        try:
            self._open(timeout)
        finally:
            self._open_done.set()

    def _open(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        self._seed_state(deadline)
        with self._state:
            # BlueZ signals Connected=true before Connect's reply: a Connected=false seen since
            # here that is still the last word after the reply means the new link dropped
            # (one from an earlier link is followed by this attempt's Connected=true)
            self._disconnects = 0
        log.info("Connecting to %s", self.address)
        try:
            self._call(self.path, DEVICE, "Connect", timeout=deadline, target=self.address)
        except NotConnectedError:
            raise
        except BLEError as exc:
            if isinstance(exc, errors.BluezNotAvailableError):
                raise
            self._cancel_connect()
            raise NotConnectedError(f"Failed to connect to {self.address}: {exc}") from exc
        with self._state:
            while True:
                ready = self._connected and self._resolved and not self._closing
                dropped = self._disconnects > 0 and not self._connected
                if ready or dropped or self._closing or self._gone is not None or deadline.expired:
                    break
                self._state.wait(deadline.remaining())
            gone, closing = self._gone, self._closing
            if ready:
                self._up = True
        if not ready:
            self._cancel_connect()
            if gone is not None:
                raise NotConnectedError(f"Connecting to {self.address} failed: {gone}")
            if closing:
                raise NotConnectedError(f"Connecting to {self.address} was cancelled: disconnect() was called")
            if dropped:
                raise NotConnectedError(
                    f"Connecting to {self.address} failed: the device disconnected while BlueZ was resolving "
                    "its services (Connected=false before ServicesResolved)"
                )
            raise NotConnectedError(f"Timed out connecting to {self.address} after {timeout:g} seconds.")
        self._table = None
        log.info("Connected to %s", self.address)

    def _seed_state(self, deadline: Deadline) -> None:
        """Read Connected/ServicesResolved once; later changes come as signals."""
        try:
            found = self._call(self.path, PROPERTIES, "GetAll", "s", (DEVICE,), deadline, self.address)
        except errors.BluezNotAvailableError:
            raise
        except NotConnectedError as exc:
            raise NotConnectedError(f"BlueZ does not know {self.address}: {exc}") from exc
        state = properties.unwrap(found[0])
        with self._state:
            self._connected = bool(state.get("Connected", False))
            self._resolved = bool(state.get("ServicesResolved", False))

    def _cancel_connect(self) -> None:
        try:
            self._call(self.path, DEVICE, "Disconnect", timeout=Deadline(CLEANUP_TIMEOUT_S), target=self.address)
        except BLEError as exc:
            log.debug("Cancelling the connection to %s: %s", self.address, exc)

    def disconnect(self, timeout: float) -> None:
        """End notify sessions and the link (``Device1.Disconnect``); no disconnect callbacks fire.

        ``Device1.Disconnect`` also cancels a Connect in flight: an :meth:`open` running on
        another thread fails, and this waits (within ``timeout``) until it has ended, so no
        connection it made is left behind.

        Always returns: when BlueZ does not confirm within ``timeout`` (or is gone), that is
        logged and the link is forgotten anyway.
        """
        deadline = Deadline(timeout)
        with self._state:
            self._closing = True
            self._state.notify_all()  # an open() waiting for the services gives up
            self._up = False
        with self._lock:
            notifying = list(self._notifying)
            self._notifying.clear()
            self._delivery.clear()
        for char_path in notifying:
            try:
                self._call(char_path, CHARACTERISTIC, "StopNotify", timeout=deadline, target=char_path)
            except BLEError as exc:
                log.debug("StopNotify on %s: %s", char_path, exc)
        try:
            self._call(self.path, DEVICE, "Disconnect", timeout=deadline, target=self.address)
        except NotConnectedError:
            log.info("%s was already disconnected", self.address)
        except BLEError as exc:
            log.warning("BlueZ did not confirm the disconnect of %s: %s", self.address, exc)
        else:
            log.info("Disconnected from %s", self.address)
        if not self._open_done.wait(deadline.remaining()):
            log.warning("The connection attempt to %s did not end within %g s", self.address, timeout)

    # -- GATT ---------------------------------------------------------------------------------

    def discover(self, timeout: float) -> Dict[uuid.UUID, Characteristic]:
        """Read BlueZ's objects under the device again.

        Args:
            timeout: seconds for the whole discovery.

        Returns:
            ``{UUID: Characteristic}`` with value handles and descriptor handles (the CCCD is
            the 0x2902 child); the lowest value handle wins for a repeated UUID.
        """
        self._table = None
        return self._gatt(Deadline(timeout)).to_characteristics()

    def read_handle(self, handle: int, timeout: float) -> bytes:
        """Read the attribute at ``handle`` (BlueZ follows long values with Read Blob)."""
        return self.read_long_handle(handle, timeout)

    def read_long_handle(self, handle: int, timeout: float, offset: int = 0) -> bytes:
        """Read the whole value at ``handle`` (``ReadValue``; BlueZ follows with Read Blob).

        Args:
            handle: a value, descriptor, declaration or service handle.
            timeout: seconds for the whole read.
            offset: where in the value to start.

        Returns:
            The value from ``offset`` on.

        Raises:
            InvalidHandleError: no attribute has this handle.
        """
        deadline = Deadline(timeout)
        table = self._gatt(deadline)
        target = f"0x{handle:04x}"
        options = properties.read_options(offset)
        char = table.characteristics.get(handle)
        if char is not None:
            return self._read_char(char.path, options, deadline, target)
        if handle in table.descriptors:
            path = table.descriptors[handle][0]
            return bytes(self._call(path, DESCRIPTOR, "ReadValue", "a{sv}", (options,), deadline, target)[0])
        declared = table.characteristics.get(handle + 1)
        if declared is not None:  # a declaration: BlueZ has no object for it, its bytes are known
            return properties.declaration_value(declared.flags, declared.value_handle, declared.uuid)[offset:]
        if handle in table.services:
            return properties.uuid_bytes(table.services[handle])[offset:]
        raise InvalidHandleError(
            f"ReadValue {target} failed: Invalid handle",
            operation="ReadValue",
            target=target,
            reason="Invalid handle",
            att_error=0x01,
        )

    def read_uuid(self, char_uuid: uuid.UUID, timeout: float) -> bytes:
        """Read the first characteristic with this UUID.

        Args:
            char_uuid: the characteristic's UUID.
            timeout: seconds for the read.

        Returns:
            At most one packet (MTU - 4 bytes), as an ATT Read By Type gives it.

        Raises:
            AttributeNotFoundError: no characteristic has this UUID.
        """
        deadline = Deadline(timeout)
        char = self._gatt(deadline).by_uuid(char_uuid)
        if char is None:
            raise no_such_characteristic("ReadValue", char_uuid)
        value = self._read_char(char.path, {}, deadline, str(char_uuid))
        return value[: self.mtu - 4]

    def _read_char(self, path: str, options: Dict[str, Any], deadline: Deadline, target: str) -> bytes:
        """ReadValue on a characteristic, keeping its ``Value`` echo from being taken for a notification.

        While reads of ``path`` are in flight, its Value signals are held (see :class:`_Reads`);
        each reply drops its echo, and the last read to end passes the rest on as notifications.
        """
        with self._lock:
            reads = self._reads.get(path)
            if reads is None:
                reads = self._reads[path] = _Reads()
            reads.count += 1

        def answered(body: Tuple[Any, ...]) -> None:
            self._drop_echo(reads, bytes(body[0]) if body else b"")

        try:
            found = self._call(path, CHARACTERISTIC, "ReadValue", "a{sv}", (options,), deadline, target, answered)
            return bytes(found[0])
        finally:
            self._release_held(path, reads)

    def _drop_echo(self, reads: _Reads, value: bytes) -> None:
        """A read's reply came (reader thread, before later signals): drop its Value echo.

        The echo came after the previous reply, if any; a read BlueZ joined to an earlier
        one finds none there, and drops nothing.
        """
        with self._lock:
            held = reads.held
            for index in range(len(held) - 1, -1, -1):
                seen, after = held[index]
                if after < reads.replies:
                    break  # came before the previous reply: not this read's echo
                if seen == value:
                    del held[index]
                    break
            reads.replies += 1

    def _release_held(self, path: str, reads: _Reads) -> None:
        """A read ended; the last one passes on the notifications held meanwhile."""
        with self._lock:
            reads.count -= 1
            if reads.count:
                return
            if self._reads.get(path) is reads:
                del self._reads[path]
            released = [value for value, _ in reads.held]
            reads.held.clear()
        handle = paths.value_handle(path)
        for item in released:
            self._on_notification(handle, item)

    def write_handle(self, handle: int, value: bytes, with_response: bool, timeout: float) -> None:
        """Write ``value`` at ``handle``: a request or a command for a characteristic.

        A write of 01 00 / 02 00 / 00 00 to a CCCD becomes StartNotify / StopNotify,
        the only way BlueZ lets a client change a CCCD.

        Args:
            handle: a value, descriptor or CCCD handle.
            value: the bytes to write.
            with_response: a Write Request (acknowledged) rather than a Write Command.
            timeout: seconds for the write.

        Raises:
            InvalidHandleError: no attribute has this handle.
            WriteNotPermittedError: a declaration or service handle.
            ValueError: a CCCD value other than 01 00, 02 00 or 00 00.
        """
        deadline = Deadline(timeout)
        table = self._gatt(deadline)
        target = f"0x{handle:04x}"
        char = table.characteristics.get(handle)
        if char is not None:
            options = properties.write_options(with_response)
            self._call(char.path, CHARACTERISTIC, "WriteValue", "aya{sv}", (value, options), deadline, target)
            return
        configured = table.cccds.get(handle)
        if configured is not None:
            self._configure(configured, value, deadline, target)
            return
        if handle in table.descriptors:
            path = table.descriptors[handle][0]
            self._call(path, DESCRIPTOR, "WriteValue", "aya{sv}", (value, {}), deadline, target)
            return
        if handle + 1 in table.characteristics or handle in table.services:
            raise WriteNotPermittedError(
                f"WriteValue {target} failed: Attribute can't be written",
                operation="WriteValue",
                target=target,
                reason="Write not permitted",
                att_error=0x03,
            )
        raise InvalidHandleError(
            f"WriteValue {target} failed: Invalid handle",
            operation="WriteValue",
            target=target,
            reason="Invalid handle",
            att_error=0x01,
        )

    def write_long_handle(self, handle: int, value: bytes, timeout: float) -> None:
        """Write a long value: a write request that BlueZ splits into prepared writes when needed."""
        self.write_handle(handle, value, True, timeout)

    def _configure(self, char: properties.CharacteristicObject, value: bytes, deadline: Deadline, target: str) -> None:
        if value in NOTIFY_ON:
            wanted = "indication" if value == NOTIFY_ON[1] else "notification"
            enabled = enabled_kind(char.flags)
            if {"notify", "indicate"} & set(char.flags) and enabled != wanted:
                log.warning("%s: asked for %ss, BlueZ enables %ss", char.uuid, wanted, enabled)
            self._call(char.path, CHARACTERISTIC, "StartNotify", timeout=deadline, target=target)
            with self._lock:
                self._notifying.add(char.path)
                self._delivery[char.value_handle] = enabled
        elif value == NOTIFY_OFF:
            with self._lock:
                self._notifying.discard(char.path)
                self._delivery.pop(char.value_handle, None)
            try:
                self._call(char.path, CHARACTERISTIC, "StopNotify", timeout=deadline, target=target)
            except BLEError as exc:
                if "No notify session started" not in str(exc):
                    raise
        else:
            raise ValueError(f"a CCCD takes 01 00, 02 00 or 00 00 through BlueZ, got {value.hex()}")

    def delivery(self, value_handle: int) -> Optional[str]:
        """What BlueZ enabled for a characteristic this link subscribed to.

        Args:
            value_handle: the characteristic's value handle.

        Returns:
            ``"notification"`` or ``"indication"``; None when no ``StartNotify`` of this
            link enabled it (never subscribed, unsubscribed, or the link was closed).
        """
        with self._lock:
            return self._delivery.get(value_handle)

    def exchange_mtu(self, mtu: int, timeout: float) -> int:
        """BlueZ exchanges the MTU itself when it connects (asking for 517).

        Args:
            mtu: the MTU wanted (BlueZ has already chosen; a difference is logged).
            timeout: seconds to read the characteristic's MTU property.

        Returns:
            The MTU BlueZ negotiated.
        """
        deadline = Deadline(timeout)
        table = self._gatt(deadline)
        if not table.characteristics:
            log.info("No characteristic to read the MTU from; assuming %d", self.mtu)
            return self.mtu
        path = table.characteristics[min(table.characteristics)].path
        try:
            found = self._call(path, PROPERTIES, "Get", "ss", (CHARACTERISTIC, "MTU"), deadline, "MTU")
        except BLEError as exc:
            if "No such property" not in str(exc):
                raise
            log.info("This BlueZ does not report the MTU; assuming %d", self.mtu)
            return self.mtu
        self._mtu = int(properties.unwrap({"MTU": found[0]})["MTU"])
        if mtu != self._mtu:
            log.info("Asked for MTU %d; BlueZ negotiated %d by itself", mtu, self._mtu)
        return self._mtu

    def bond(self, permanent: bool, timeout: float) -> None:
        """Pair (``Device1.Pair``, answered by the backend's agent); already paired is fine.

        Args:
            permanent: also mark the device trusted, so BlueZ keeps and reuses the bond.
            timeout: seconds for pairing.
        """
        deadline = Deadline(timeout)
        try:
            self._call(self.path, DEVICE, "Pair", timeout=deadline, target=self.address)
        except BLEError as exc:
            if "AlreadyExists" not in str(exc):
                raise
            log.info("%s is already paired", self.address)
        if permanent:
            self._call(self.path, PROPERTIES, "Set", "ssv", (DEVICE, "Trusted", ("b", True)), deadline, self.address)

    def rssi(self, timeout: float) -> int:
        """The last RSSI BlueZ knows (from advertisements: BlueZ reads none from a live link).

        Args:
            timeout: seconds for the property read.

        Returns:
            The RSSI in dBm.

        Raises:
            BLEError: BlueZ has no RSSI for the device (it only has one while a scan sees it).
        """
        try:
            found = self._call(self.path, PROPERTIES, "Get", "ss", (DEVICE, "RSSI"), Deadline(timeout), "RSSI")
        except BLEError as exc:
            if "No such property" not in str(exc):
                raise
            raise BLEError(
                f"get_rssi {self.address}: BlueZ has no RSSI for the device; it reports RSSI only from "
                "advertisements seen during a scan, not for a connected link"
            ) from None
        return int(properties.unwrap({"RSSI": found[0]})["RSSI"])

    # -- plumbing ------------------------------------------------------------------------------

    def _still_connected(self, deadline: Deadline) -> bool:
        """After a bare "Operation failed" (ATT request cancelled): is the link still up? Asks BlueZ."""
        if not self._connected or self._gone is not None:
            return False
        try:
            found = self._bus.call(
                BLUEZ, self.path, PROPERTIES, "Get", "ss", (DEVICE, "Connected"), deadline.remaining()
            )
        except (DBusCallError, CallTimeout, BusClosed):
            return False
        return bool(properties.unwrap({"Connected": found[0]})["Connected"])

    def _gatt(self, deadline: Deadline) -> GattTable:
        table = self._table
        if table is None:
            if not self.connected:
                raise NotConnectedError(f"Device {self.address} is not connected")
            objects = self._call("/", OBJECT_MANAGER, "GetManagedObjects", timeout=deadline, target=self.address)[0]
            table = GattTable.from_objects(objects, self.path)
            self._table = table
        return table

    def _call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Tuple[Any, ...] = (),
        timeout: Optional[Deadline] = None,
        target: Optional[str] = None,
        on_reply: Optional[ReplyHook] = None,
    ) -> Tuple[Any, ...]:
        """Call org.bluez within the deadline; InProgress is retried; errors become pygatt's exceptions.

        ``on_reply`` sees a successful reply on the reader thread (see :meth:`BusConnection.call`).
        """
        deadline = timeout or Deadline(5.0)
        while True:
            if self._gone is not None and interface != PROPERTIES:
                raise NotConnectedError(f"{member} {target or path}: {self._gone}")
            try:
                return self._bus.call(BLUEZ, path, interface, member, signature, body, deadline.remaining(), on_reply)
            except DBusCallError as exc:
                if exc.name == IN_PROGRESS and not deadline.expired:
                    time.sleep(min(IN_PROGRESS_RETRY_S, deadline.remaining()))
                    continue
                error = errors.to_exception(exc.name, exc.text, member, target)
                if exc.text == "Operation failed" and member in GATT_METHODS and not self._still_connected(deadline):
                    raise NotConnectedError(f"{member} {target or path}: the link dropped ({exc})") from None
                raise error from None
            except CallTimeout:
                raise errors.timeout_error(member, target or path, deadline.seconds) from None
            except BusClosed as exc:
                raise NotConnectedError(f"{member} {target or path}: the D-Bus connection is gone ({exc})") from None
