"""``BLEDevice``: a connected BLE peripheral, independent of the backend."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Callable, Dict, List, Optional, Tuple

from pygatt import validate
from pygatt.backends.backend import Characteristic
from pygatt.exceptions import BLEError
from pygatt.util import uuid16_to_uuid
from pygatt.validate import BytesLike, UUIDLike

log = logging.getLogger(__name__)

CCCD_UUID = uuid16_to_uuid(0x2902)
NOTIFY = bytes([0x01, 0x00])
INDICATE = bytes([0x02, 0x00])
NEITHER = bytes([0x00, 0x00])

NotificationCallback = Callable[[int, bytearray], None]


class BLEDevice:
    """An object representing a single BLE device, returned by a backend's
    ``connect``. Backends subclass it and implement the reads and writes; the
    characteristic cache and the subscriptions live here.
    """

    def __init__(self, address: str) -> None:
        """Initialize.

        address -- the BLE address (aka MAC address) of the device as a string.
        """
        self._address = address
        self._characteristics: Dict[uuid.UUID, Characteristic] = {}
        self._discovered = False
        self._callbacks: Dict[int, List[NotificationCallback]] = {}
        # value handle -> (CCCD handle, indication?) for every live subscription
        self._subscriptions: Dict[int, Tuple[int, bool]] = {}
        self._lock = threading.RLock()

    @property
    def address(self) -> str:
        """The device's Bluetooth address."""
        return self._address

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} address={self._address}>"

    def bond(self, permanent: bool = False) -> None:
        """Create a new bond or use an existing bond with the device and make the
        current connection bonded and encrypted.
        """
        raise NotImplementedError()

    def get_rssi(self) -> Optional[int]:
        """Get the receiver signal strength indicator (RSSI) value from the BLE
        device, in dBm.
        """
        raise NotImplementedError()

    def char_read(self, uuid: UUIDLike) -> bytearray:
        """Reads a Characteristic by UUID.

        uuid -- UUID of Characteristic to read as a string.

        Returns a bytearray containing the characteristic value on success.
        """
        raise NotImplementedError()

    def char_read_handle(self, handle: int) -> bytearray:
        """Reads a Characteristic by handle.

        handle -- handle of Characteristic to read.

        Returns a bytearray containing the characteristic value on success.
        """
        raise NotImplementedError()

    def char_read_long(self, uuid: UUIDLike) -> bytearray:
        """Reads a Characteristic by UUID, following values longer than one ATT packet.

        uuid -- UUID of Characteristic to read as a string.

        Returns a bytearray containing the characteristic value on success.
        """
        return self.char_read_long_handle(self.get_handle(uuid))

    def char_read_long_handle(self, handle: int) -> bytearray:
        """Reads a Characteristic by handle, following values longer than one ATT packet.

        handle -- handle of Characteristic to read.

        Returns a bytearray containing the characteristic value on success.
        """
        raise NotImplementedError()

    def char_write(self, uuid: UUIDLike, value: BytesLike, wait_for_response: bool = True) -> None:
        """Writes a value to a given characteristic UUID.

        uuid -- the UUID of the characteristic to write to.
        value -- a bytearray to write to the characteristic.
        wait_for_response -- wait for response after writing.

        A GATT "command" is used when not waiting for a response. The remote
        host will not acknowledge the write.

        Example::

            my_ble_device.char_write('a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b',
                                     bytearray([0x00, 0xFF]))
        """
        return self.char_write_handle(self.get_handle(uuid), value, wait_for_response=wait_for_response)

    def char_write_handle(self, handle: int, value: BytesLike, wait_for_response: bool = True) -> None:
        """Writes a value to a given characteristic handle.

        handle -- the handle to write to.
        value -- a bytearray to write to the characteristic.
        wait_for_response -- wait for response after writing.
        """
        raise NotImplementedError()

    def char_write_long(self, uuid: UUIDLike, value: BytesLike, wait_for_response: bool = False) -> None:
        """Writes a value longer than one ATT packet to a given characteristic UUID.

        uuid -- the UUID of the characteristic to write to.
        value -- a bytearray to write to the characteristic.
        wait_for_response -- wait for response after writing.
        """
        return self.char_write_long_handle(self.get_handle(uuid), value, wait_for_response=wait_for_response)

    def char_write_long_handle(self, handle: int, value: BytesLike, wait_for_response: bool = False) -> None:
        """Writes a value longer than one ATT packet to a given characteristic handle.

        handle -- the handle to write to.
        value -- a bytearray to write to the characteristic.
        wait_for_response -- wait for response after writing.
        """
        raise NotImplementedError()

    def disconnect(self) -> None:
        """Disconnect from the device. This instance of BLEDevice cannot be
        used after calling this method, you must call BLEBackend.connect() again
        to get a fresh connection.
        """
        raise NotImplementedError()

    def discover_characteristics(self) -> Dict[uuid.UUID, Characteristic]:
        """Discover the characteristics (and their descriptors) of the device.

        Returns a dict mapping each characteristic UUID to a Characteristic.
        """
        raise NotImplementedError()

    def exchange_mtu(self, mtu: int) -> int:
        """Request a new MTU from the device; returns the MTU now in use."""
        raise NotImplementedError()

    # -- characteristic cache ------------------------------------------------

    def get_handle(self, char_uuid: UUIDLike) -> int:
        """Look up and return the handle for an attribute by its UUID.

        :param char_uuid: The UUID of the characteristic, as a string (any case,
            full or 16-bit form) or a :class:`uuid.UUID`.
        :type char_uuid: str or uuid.UUID

        The device's characteristics are discovered once, on the first call,
        and cached. Should a UUID appear on several characteristics, the one
        with the lowest value handle is returned. An unknown UUID raises
        :class:`BLEError`.
        """
        return self._characteristic(char_uuid).handle

    def _characteristic(self, char_uuid: UUIDLike) -> Characteristic:
        key = validate.characteristic_uuid(char_uuid, "char_uuid")
        log.debug("Looking up handle for characteristic %s", key)
        with self._lock:
            if not self._discovered:
                self._characteristics = self.discover_characteristics()
                self._discovered = True
            characteristic = self._characteristics.get(key)
        if characteristic is None:
            message = f"No characteristic found matching {key}"
            log.warning(message)
            raise BLEError(message)
        log.debug("Found %s", characteristic)
        return characteristic

    def _cccd_handle(self, value_handle: int) -> int:
        """The Client Characteristic Configuration handle of a value handle.

        Uses the 0x2902 descriptor found by discovery, else value handle + 1.
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
        a callback function to be called whenever a new value arrives.

        :param uuid: UUID as a string of the characteristic to subscribe.
        :param callback: function to be called when a notification/indication is
            received on this characteristic, as ``callback(handle, value)``.
        :param indication: use indications (where each notification is ACKd).
            This is more reliable, but slower.
        :param wait_for_response: wait for the CCCD write to be acknowledged.
        """
        value_handle = self.get_handle(uuid)
        self.subscribe_handle(value_handle, callback, indication, wait_for_response)

    def subscribe_handle(
        self,
        handle: int,
        callback: Optional[NotificationCallback] = None,
        indication: bool = False,
        wait_for_response: bool = True,
    ) -> None:
        """Like subscribe(), but for a characteristic value handle."""
        validate.handle(handle)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        cccd = self._cccd_handle(handle)
        with self._lock:
            callbacks = self._callbacks.setdefault(handle, [])
            added = callback if callback is not None and callback not in callbacks else None
            if added is not None:
                callbacks.append(added)  # before the write, so the first notifications are not missed
            if self._subscriptions.get(handle) == (cccd, indication):
                log.debug("Already subscribed to handle 0x%04x", handle)
                return
            try:
                self.char_write_handle(cccd, INDICATE if indication else NOTIFY, wait_for_response=wait_for_response)
            except BaseException:
                if added is not None:
                    callbacks.remove(added)
                if not callbacks:
                    del self._callbacks[handle]
                raise
            self._subscriptions[handle] = (cccd, indication)
        log.info("Subscribed to handle 0x%04x (%s)", handle, "indication" if indication else "notification")

    def unsubscribe(self, uuid: UUIDLike, wait_for_response: bool = True) -> None:
        """Disable notification for a characteristic and de-register the callback."""
        self.unsubscribe_handle(self.get_handle(uuid), wait_for_response)

    def unsubscribe_handle(self, handle: int, wait_for_response: bool = True) -> None:
        """Like unsubscribe(), but for a characteristic value handle."""
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
        """Reenable all notifications and indications for characteristics this
        device is subscribed to, e.g. after a reconnect.
        """
        with self._lock:
            subscriptions = list(self._subscriptions.items())
        for value_handle, (cccd, indication) in subscriptions:
            log.debug("Resubscribing to handle 0x%04x", value_handle)
            self.char_write_handle(cccd, INDICATE if indication else NOTIFY, wait_for_response=True)

    def receive_notification(self, handle: int, value: BytesLike) -> None:
        """Receive a notification from the connected device and propagate the value
        to all registered callbacks, as ``callback(handle, bytearray(value))``.

        A callback that raises is logged and the others still run.
        """
        with self._lock:
            callbacks = list(self._callbacks.get(handle, ()))
        for callback in callbacks:
            try:
                callback(handle, bytearray(value))  # each callback gets its own copy
            except Exception:
                log.exception("Notification callback %r for handle 0x%04x raised", callback, handle)
