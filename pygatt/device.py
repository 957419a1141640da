"""``BLEDevice``: a connected BLE peripheral, the same for every backend.

Everything that does not depend on how the bytes travel lives here: argument
checks, the characteristic cache behind :meth:`BLEDevice.get_handle`,
subscriptions and their CCCD writes, notification and disconnect callbacks,
and resubscribing after a reconnect. The GATT operations themselves go to a
:class:`~pygatt.backends.backend.GATTLink`, the contract each backend fulfils;
a backend's device subclass (``GATTToolBLEDevice``, ``BGAPIBLEDevice``, ...)
keeps pygatt 5.0.0's constructor and only routes operations.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

from pygatt import validate
from pygatt.backends.backend import DEFAULT_ATT_MTU, Characteristic, GATTLink, no_such_characteristic
from pygatt.exceptions import NotConnectedError
from pygatt.util import uuid16_to_uuid
from pygatt.validate import BytesLike, UUIDLike

log = logging.getLogger(__name__)

CCCD_UUID = uuid16_to_uuid(0x2902)
NOTIFY = bytes([0x01, 0x00])
INDICATE = bytes([0x02, 0x00])
NEITHER = bytes([0x00, 0x00])

NotificationCallback = Callable[[int, bytearray], None]
#: Called with the device (typed loosely so a callback may take a backend's device subclass).
DisconnectCallback = Callable[[Any], None]


class BLEDevice:
    """A BLE device returned by a backend's ``connect``.

    A device counts as connected from its creation until :meth:`disconnect`
    (as in pygatt 5.0.0) or until its backend reports the link lost.

    Args:
        address: the BLE address (aka MAC address) of the device as a string.
    """

    #: Seconds each operation waits when the caller gives no timeout; backends override.
    DEFAULT_TIMEOUTS: ClassVar[Dict[str, float]] = {
        "read": 4.0,
        "read_uuid": 4.0,
        "write": 30.0,
        "discover": 30.0,
        "mtu": 4.0,
        "bond": 30.0,
        "rssi": 4.0,
        "disconnect": 2.0,
    }

    #: Whether a zero-length value may be written with char_write_handle (ATT allows it; a
    #: backend whose transport cannot send one, such as gatttool, leaves it False).
    EMPTY_WRITES: ClassVar[bool] = False

    def __init__(self, address: str) -> None:
        self._address = address
        self._characteristics: Dict[uuid.UUID, Characteristic] = {}
        self._discovered = False
        # value handle -> its callbacks; a tuple replaced whole on every change, so the callback
        # thread reads it without the lock (which a subscribe holds across its CCCD write)
        self._callbacks: Dict[int, Tuple[NotificationCallback, ...]] = {}
        # value handle -> (CCCD handle, indication?) for every live subscription
        self._subscriptions: Dict[int, Tuple[int, bool]] = {}
        # Serialises discovery and subscribing, and is held across their GATT calls; so the link's
        # state below has a lock of its own, which never waits for the peer: a backend marking the
        # device down (stop(), a disconnect) is never held up by an operation still in flight.
        self._lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._link: Optional[GATTLink] = None
        self._connected = True
        self._disconnect_callbacks: List[DisconnectCallback] = []
        self._callback_lock = threading.Lock()
        self.auto_reconnect = False

    @property
    def address(self) -> str:
        """The device's Bluetooth address."""
        return self._address

    @property
    def connected(self) -> bool:
        """True from creation until :meth:`disconnect` or a lost link (and again after a reconnect)."""
        return self._connected

    @property
    def mtu(self) -> int:
        """The ATT MTU in use on the link (23 until :meth:`exchange_mtu` raised it)."""
        link = self._link
        return link.mtu if link is not None else DEFAULT_ATT_MTU

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} address={self._address}>"

    # -- for backends ---------------------------------------------------------------

    def link_up(self, link: Optional[GATTLink] = None) -> None:
        """Mark the device connected (called by its backend after a connect or reconnect).

        Args:
            link: the link that now carries this device's operations (backends
                whose device routes operations itself pass None).
        """
        with self._state_lock:
            if link is not None:
                self._link = link
            self._connected = True

    def link_down(self) -> None:
        """Mark the device disconnected without callbacks (called by its backend on disconnect())."""
        with self._state_lock:
            self._connected = False
            self._link = None

    def link_lost(self, reason: str) -> None:
        """The link dropped without being asked to: mark the device disconnected and
        run the disconnect callbacks once.

        Called by the backend on its callback thread, never on a reader thread.

        Args:
            reason: why the link went away, for the log.
        """
        with self._state_lock:
            was_connected = self._connected
            self._connected = False
            self._link = None
        if not was_connected:
            return
        log.warning("Lost the connection to %s: %s", self._address, reason)
        with self._callback_lock:
            callbacks = list(self._disconnect_callbacks)
        for callback in callbacks:
            try:
                callback(self)
            except BaseException:  # sys.exit() in a callback too: the callback thread must go on
                log.exception("Disconnect callback %r raised", callback)

    def listens_to(self, handle: int) -> bool:
        """True when a notification on ``handle`` has somewhere to go (a callback).

        Backends use it to drop unwanted notifications before queueing them.
        """
        return handle in self._callbacks

    def _require_link(self) -> GATTLink:
        self._check_connected()
        link = self._link
        if link is None or not link.connected:
            raise NotConnectedError(f"Device {self._address} is not connected")
        return link

    def _check_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"Device {self._address} is not connected")

    def _timeout(self, timeout: Optional[float], operation: str) -> float:
        if timeout is None:
            return self.DEFAULT_TIMEOUTS[operation]
        return validate.positive_timeout(timeout)

    # -- GATT operations (through the backend's link) --------------------------------

    def bond(self, permanent: bool = False) -> None:
        """Create a new bond or use an existing bond with the device and make the
        current connection bonded and encrypted.

        Args:
            permanent: keep the bond after the link ends, where the backend lets us choose.
        """
        self._require_link().bond(bool(permanent), self._timeout(None, "bond"))

    def get_rssi(self) -> Optional[int]:
        """Get the receiver signal strength indicator (RSSI) of the link.

        Returns:
            The RSSI in dBm.
        """
        return self._require_link().rssi(self._timeout(None, "rssi"))

    def char_read(self, uuid: UUIDLike, *, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by UUID.

        Args:
            uuid: the characteristic's UUID (a string in any form, or a :class:`uuid.UUID`).
            timeout: seconds to wait; None for the backend's default.

        Returns:
            The value.
        """
        key = validate.characteristic_uuid(uuid)
        return bytearray(self._require_link().read_uuid(key, self._timeout(timeout, "read_uuid")))

    def char_read_handle(self, uuid: int, *, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by handle.

        Args:
            uuid: the attribute handle to read (the parameter keeps the name it has in
                pygatt 5.0.0's base class; backends' devices call it ``handle``).
            timeout: seconds to wait; None for the backend's default.

        Returns:
            The value.
        """
        handle = validate.handle(uuid, "handle")
        return bytearray(self._require_link().read_handle(handle, self._timeout(timeout, "read")))

    def char_read_long(self, uuid: UUIDLike, *, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by UUID, following values longer than one ATT packet.

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait; None for the backend's default.

        Returns:
            The whole value.
        """
        return self.char_read_long_handle(self.get_handle(uuid), timeout=timeout)

    def char_read_long_handle(self, handle: int, *, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by handle, following values longer than one ATT packet.

        Args:
            handle: the attribute handle to read.
            timeout: seconds to wait; None for the backend's default.

        Returns:
            The whole value.
        """
        handle = validate.handle(handle)
        return bytearray(self._require_link().read_long_handle(handle, self._timeout(timeout, "read")))

    def char_write(
        self, uuid: UUIDLike, value: BytesLike, wait_for_response: bool = True, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value to the characteristic with this UUID.

        A GATT "command" is used when not waiting for a response: the peer does
        not acknowledge the write.

        Args:
            uuid: the characteristic's UUID.
            value: the bytes to write.
            wait_for_response: use a Write Request and wait for the acknowledgement.
            timeout: seconds to wait; None for the backend's default.

        Example::

            my_ble_device.char_write('a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b',
                                     bytearray([0x00, 0xFF]))
        """
        # timeout only when given: a subclass written for pygatt 5.0.0 overrides
        # char_write_handle(handle, value, wait_for_response=True) without it
        self.char_write_handle(self.get_handle(uuid), value, wait_for_response=wait_for_response, **_given(timeout))

    def char_write_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = True, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value to an attribute handle.

        Args:
            handle: the attribute handle to write.
            value: the bytes to write.
            wait_for_response: use a Write Request and wait for the acknowledgement.
            timeout: seconds to wait; None for the backend's default.

        Raises:
            ValueError: a write without response longer than one packet (MTU - 3),
                which a peer would receive cut short.
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value, allow_empty=self.EMPTY_WRITES)
        seconds = self._timeout(timeout, "write")
        link = self._require_link()
        check_command_length(data, link.mtu, wait_for_response)
        link.write_handle(handle, data, bool(wait_for_response), seconds)

    def char_write_long(
        self, uuid: UUIDLike, value: BytesLike, wait_for_response: bool = False, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value longer than one ATT packet to the characteristic with this UUID.

        Args:
            uuid: the characteristic's UUID.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility; a long write is always acknowledged.
            timeout: seconds to wait; None for the backend's default.
        """
        self.char_write_long_handle(
            self.get_handle(uuid), value, wait_for_response=wait_for_response, **_given(timeout)
        )

    def char_write_long_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = False, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value longer than one ATT packet (prepared writes) to an attribute handle.

        Args:
            handle: the attribute handle to write.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility; a long write is always acknowledged.
            timeout: seconds to wait; None for the backend's default.
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        self._require_link().write_long_handle(handle, data, self._timeout(timeout, "write"))

    def disconnect(self) -> None:
        """Disconnect from the device.

        This instance cannot be used afterwards: call the backend's ``connect()``
        again for a fresh connection. No disconnect callback runs for it.
        """
        link = self._link
        self.link_down()
        if link is not None:
            link.disconnect(self.DEFAULT_TIMEOUTS["disconnect"])

    def discover_characteristics(self, *, timeout: Optional[float] = None) -> Dict[uuid.UUID, Characteristic]:
        """Discover (again) the characteristics and their descriptors, and cache them.

        Args:
            timeout: seconds to wait; None for the backend's default.

        Returns:
            ``{UUID: Characteristic}``; a UUID found on several characteristics
            keeps the one with the lowest value handle.
        """
        found = self._require_link().discover(self._timeout(timeout, "discover"))
        self._cache_characteristics(found)
        return found

    def _cache_characteristics(self, found: Dict[uuid.UUID, Characteristic]) -> None:
        with self._lock:
            self._characteristics = found
            self._discovered = True

    def exchange_mtu(self, mtu: int, *, timeout: Optional[float] = None) -> int:
        """Ask the peer for a larger ATT MTU.

        Args:
            mtu: the MTU wanted, 23..517.
            timeout: seconds to wait; None for the backend's default.

        Returns:
            The MTU now in use.
        """
        mtu = validate_mtu(mtu)
        return self._require_link().exchange_mtu(mtu, self._timeout(timeout, "mtu"))

    # -- disconnect callbacks ---------------------------------------------------------

    def register_disconnect_callback(self, callback: DisconnectCallback) -> None:
        """Call ``callback(device)`` when the link drops without :meth:`disconnect` being called.

        Args:
            callback: a callable taking the device; it runs on the backend's callback thread.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        with self._callback_lock:
            if callback not in self._disconnect_callbacks:
                self._disconnect_callbacks.append(callback)

    def remove_disconnect_callback(self, callback: DisconnectCallback) -> None:
        """Stop calling ``callback`` on disconnect (no error if it was not registered).

        Args:
            callback: a callable given to :meth:`register_disconnect_callback`.
        """
        with self._callback_lock:
            if callback in self._disconnect_callbacks:
                self._disconnect_callbacks.remove(callback)

    # -- characteristic cache ------------------------------------------------

    def get_handle(self, char_uuid: UUIDLike) -> int:
        """Look up the value handle of a characteristic by its UUID.

        The characteristics are discovered once, on the first call, and cached.
        Should a UUID appear on several characteristics, the one with the lowest
        value handle is returned.

        Args:
            char_uuid: the UUID, as a string (any case, full or 16-bit form) or a :class:`uuid.UUID`.

        Returns:
            The value handle.

        Raises:
            AttributeNotFoundError: no characteristic has this UUID (a :class:`BLEError`, as
                pygatt 5.0.0 raised; ``att_error`` 0x0A, as a peer answers a read of it).
        """
        return self._characteristic(char_uuid).handle

    def _characteristic(self, char_uuid: UUIDLike) -> Characteristic:
        key = validate.characteristic_uuid(char_uuid, "char_uuid")
        characteristic = self._find_characteristic(key)
        if characteristic is None:
            # pygatt 5.0.0's words, in the error a peer gives for a read of it
            raise no_such_characteristic("get_handle", key, f"No characteristic found matching {key}")
        return characteristic

    def _find_characteristic(self, char_uuid: UUIDLike) -> Optional[Characteristic]:
        """The characteristic with this UUID, discovering them first if not done yet.

        Args:
            char_uuid: the UUID, as a string or a :class:`uuid.UUID`.

        Returns:
            The characteristic (the lowest value handle of those with this UUID), or
            None when the device has none.
        """
        key = validate.characteristic_uuid(char_uuid, "char_uuid")
        log.debug("Looking up handle for characteristic %s", key)
        with self._lock:
            if not self._discovered:
                self._cache_characteristics(self.discover_characteristics())
            return self._characteristics.get(key)

    def _cccd_handle(self, value_handle: int) -> int:
        """The Client Characteristic Configuration handle of a value handle:
        the 0x2902 descriptor found by discovery, else value handle + 1.
        """
        with self._lock:
            characteristics = list(self._characteristics.values())
        for characteristic in characteristics:
            if characteristic.handle == value_handle and CCCD_UUID in characteristic.descriptors:
                return characteristic.descriptors[CCCD_UUID]
        return value_handle + 1

    # -- subscriptions -------------------------------------------------------

    def subscribe(
        self,
        uuid: UUIDLike,
        callback: Optional[NotificationCallback] = None,
        indication: bool = False,
        wait_for_response: bool = True,
    ) -> None:
        """Enable notifications or indications for a characteristic and register
        a callback to be called whenever a new value arrives.

        Args:
            uuid: the characteristic's UUID.
            callback: called as ``callback(handle, value)`` on the backend's callback thread.
            indication: use indications (each acknowledged by us) instead of notifications.
            wait_for_response: wait for the CCCD write to be acknowledged.
        """
        self.subscribe_handle(self.get_handle(uuid), callback, indication, wait_for_response)

    def subscribe_handle(
        self,
        handle: int,
        callback: Optional[NotificationCallback] = None,
        indication: bool = False,
        wait_for_response: bool = True,
    ) -> None:
        """Like :meth:`subscribe`, for a characteristic value handle.

        Args:
            handle: the characteristic's value handle.
            callback: called as ``callback(handle, value)`` on the backend's callback thread.
            indication: use indications instead of notifications.
            wait_for_response: wait for the CCCD write to be acknowledged.
        """
        validate.handle(handle)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        cccd = self._cccd_handle(handle)
        with self._lock:
            before = self._callbacks.get(handle)
            if callback is not None and callback not in (before or ()):
                # before the write, so the first notifications are not missed
                self._callbacks[handle] = (*(before or ()), callback)
            elif before is None:
                self._callbacks[handle] = ()
            if self._subscriptions.get(handle) == (cccd, indication):
                log.debug("Already subscribed to handle 0x%04x", handle)
                return
            try:
                self.char_write_handle(cccd, INDICATE if indication else NOTIFY, wait_for_response=wait_for_response)
            except BaseException:
                if before is None:
                    del self._callbacks[handle]
                else:
                    self._callbacks[handle] = before
                raise
            self._subscriptions[handle] = (cccd, indication)
        log.info("Subscribed to handle 0x%04x (%s)", handle, "indication" if indication else "notification")

    def unsubscribe(self, uuid: UUIDLike, wait_for_response: bool = True) -> None:
        """Disable notifications for a characteristic and forget its callbacks.

        Args:
            uuid: the characteristic's UUID.
            wait_for_response: wait for the CCCD write to be acknowledged.
        """
        self.unsubscribe_handle(self.get_handle(uuid), wait_for_response)

    def unsubscribe_handle(self, handle: int, wait_for_response: bool = True) -> None:
        """Like :meth:`unsubscribe`, for a characteristic value handle.

        Args:
            handle: the characteristic's value handle.
            wait_for_response: wait for the CCCD write to be acknowledged.
        """
        validate.handle(handle)
        with self._lock:
            self._callbacks.pop(handle, None)
            subscription = self._subscriptions.pop(handle, None)
            if subscription is None:
                log.debug("Not subscribed to handle 0x%04x", handle)
                return
            self.char_write_handle(subscription[0], NEITHER, wait_for_response=wait_for_response)
        log.info("Unsubscribed from handle 0x%04x", handle)

    def resubscribe_all(self) -> None:
        """Enable again every notification and indication this device is subscribed
        to, e.g. after a reconnect.
        """
        with self._lock:
            subscriptions = list(self._subscriptions.items())
        for value_handle, (cccd, indication) in subscriptions:
            log.debug("Resubscribing to handle 0x%04x", value_handle)
            self.char_write_handle(cccd, INDICATE if indication else NOTIFY, wait_for_response=True)

    def receive_notification(self, handle: int, value: BytesLike) -> None:
        """Pass a notification's value to every callback registered for its handle,
        as ``callback(handle, bytearray(value))``.

        Backends call it on their callback thread. A callback that raises is
        logged and the others still run.

        Args:
            handle: the value handle the notification came from.
            value: the notified value.
        """
        _deliver(self._callbacks.get(handle, ()), handle, value)

    def receive_notifications(self, notifications: Sequence[Tuple[int, BytesLike]]) -> None:
        """:meth:`receive_notification` for each ``(handle, value)``, in order, in one call.

        Backends hand over a whole chunk of notifications this way. A callback that
        unsubscribes stops the delivery of the rest of the chunk to it. Where
        ``receive_notification`` is overridden (or patched, as tests do), it is
        called for each pair, as pygatt 5.0.0's backends did.

        Args:
            notifications: ``(handle, value)`` pairs.
        """
        deliver = self.receive_notification
        if getattr(deliver, "__func__", None) is not BLEDevice.receive_notification:
            for handle, value in notifications:
                deliver(handle, value)
            return
        callbacks_of = self._callbacks.get
        for handle, value in notifications:
            _deliver(callbacks_of(handle, ()), handle, value)

    def receive_run(self, handle: int, values: Sequence[BytesLike]) -> None:
        """:meth:`receive_notifications` for values of one handle in a row, in one call.

        The same deliveries, in the same order, without pairing each value with its handle
        (a backend that decodes a flood into runs hands them over this way).

        Args:
            handle: the value handle every value came from.
            values: the notified values, in order.
        """
        deliver = self.receive_notification
        if getattr(deliver, "__func__", None) is not BLEDevice.receive_notification:
            for value in values:
                deliver(handle, value)
            return
        callbacks_of = self._callbacks.get
        for value in values:
            for callback in callbacks_of(handle, ()):  # looked up per value: a callback may unsubscribe
                try:
                    callback(handle, bytearray(value))
                except BaseException:  # as in _deliver
                    log.exception("Notification callback %r for handle 0x%04x raised", callback, handle)


def _given(timeout: Optional[float]) -> Dict[str, float]:
    """``timeout`` as a keyword argument, or none at all when it is None (the callee's default)."""
    return {} if timeout is None else {"timeout": timeout}


def _deliver(callbacks: Tuple[NotificationCallback, ...], handle: int, value: BytesLike) -> None:
    """Call each callback with its own copy of ``value``; one that raises is logged, the others still run."""
    for callback in callbacks:
        try:
            callback(handle, bytearray(value))
        except BaseException:  # sys.exit() or KeyboardInterrupt raised by a callback too: delivery goes on
            log.exception("Notification callback %r for handle 0x%04x raised", callback, handle)


def validate_mtu(mtu: object) -> int:
    """Return an ATT MTU, an int within 23..517.

    Raises:
        ValueError: not an int in range.
    """
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 23 <= mtu <= 517:
        raise ValueError(f"mtu must be an int within 23..517, got {mtu!r}")
    return mtu


def check_command_length(data: bytes, mtu: int, wait_for_response: bool) -> None:
    """Refuse a write without response that does not fit one packet (MTU - 3 bytes).

    Raises:
        ValueError: the value is too long to be written without response.
    """
    if not wait_for_response and len(data) > mtu - 3:
        raise ValueError(
            f"value is {len(data)} bytes, more than the {mtu - 3} a write without response "
            f"carries at MTU {mtu}; use wait_for_response=True or exchange_mtu first"
        )
