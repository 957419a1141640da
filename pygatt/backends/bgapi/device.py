"""``BGAPIBLEDevice``: a device connected through a BLED112 dongle.

Everything but the constructor and a few names pygatt 5.0.0 used is the shared
:class:`~pygatt.device.BLEDevice`; the GATT operations run on the device's
:class:`~pygatt.backends.bgapi.link.BGAPILink`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, Dict, Optional

from pygatt.backends.backend import GATTLink
from pygatt.device import BLEDevice
from pygatt.exceptions import NotConnectedError
from pygatt.validate import BytesLike, UUIDLike

if TYPE_CHECKING:
    from pygatt.backends.bgapi.bgapi import BGAPIBackend
    from pygatt.backends.bgapi.connecting import ConnectionParams

log = logging.getLogger(__name__)


class BGAPIBLEDevice(BLEDevice):
    """A BLE device connected through a :class:`~pygatt.backends.bgapi.bgapi.BGAPIBackend`.

    Several devices can be connected through one dongle at once (a stock BLED112
    allows 3); each has its own connection handle and its own event routing.

    Args:
        address: the device's BLE address.
        handle: the connection handle the dongle gave (None until connected).
        backend: the backend that connected it.
    """

    DEFAULT_TIMEOUTS: ClassVar[Dict[str, float]] = {
        "read": 10.0,
        "read_uuid": 10.0,
        "write": 30.0,
        "discover": 30.0,
        "mtu": 4.0,
        "bond": 30.0,
        "rssi": 5.0,
        "disconnect": 5.0,
    }

    #: pygatt 5.0.0's BGAPI device wrote a zero-length value as given.
    EMPTY_WRITES: ClassVar[bool] = True

    def __init__(self, address: str, handle: Optional[int], backend: BGAPIBackend) -> None:
        super().__init__(address)
        self._handle = handle
        self._backend = backend
        self._disconnected = False  # disconnect() or the backend's stop() ended it (5.0.0's cleared handle)
        #: the parameters of the last connect (a reconnect uses them again)
        self.connection_params: Optional[ConnectionParams] = None

    @property
    def handle(self) -> Optional[int]:
        """The dongle's connection handle for this device."""
        return self._handle

    @handle.setter
    def handle(self, value: Optional[int]) -> None:
        self._handle = value

    @property
    def backend(self) -> BGAPIBackend:
        """The backend this device was connected through."""
        return self._backend

    def char_read(self, uuid: UUIDLike, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by UUID: its value handle from discovery, then a read by handle
        (as pygatt 5.0.0 did; the firmware's read-by-type path is not used).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait (positional too, as in pygatt 5.0.0); None for the default (10 s).

        Returns:
            The value.

        Raises:
            AttributeNotFoundError: the device has no characteristic with this UUID (from
                :meth:`get_handle`; the GATTTool backend gets it from the peer).
        """
        return self.char_read_handle(self.get_handle(uuid), timeout)  # as 5.0.0: an overridden get_handle counts

    def char_read_handle(self, handle: int, timeout: Optional[float] = None) -> bytearray:
        """Read an attribute by handle (``attclient_read_by_handle``).

        Args:
            handle: the attribute handle.
            timeout: seconds to wait (positional too, as in pygatt 5.0.0); None for the default (10 s).

        Returns:
            The value.
        """
        return super().char_read_handle(handle, timeout=timeout)

    def char_read_long(self, uuid: UUIDLike, timeout: Optional[float] = None) -> bytearray:
        """Read a long value by UUID (``attclient_read_long``).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait (positional too, as in pygatt 5.0.0); None for the default (10 s).

        Returns:
            The whole value.
        """
        return super().char_read_long(uuid, timeout=timeout)

    def char_read_long_handle(self, handle: int, timeout: Optional[float] = None) -> bytearray:
        """Read a long value by handle (``attclient_read_long``: Read, then Read Blob).

        Args:
            handle: the attribute handle.
            timeout: seconds to wait (positional too, as in pygatt 5.0.0); None for the default (10 s).

        Returns:
            The whole value.
        """
        return super().char_read_long_handle(handle, timeout=timeout)

    def char_write_handle(
        self, char_handle: int, value: BytesLike, wait_for_response: bool = True, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value to an attribute handle (``char_handle``: pygatt 5.0.0's name).

        Args:
            char_handle: the attribute handle.
            value: the bytes to write (at most 20, and it may be empty; longer values need
                char_write_long_handle).
            wait_for_response: use an acknowledged write request.
            timeout: seconds to wait; None for the default (30 s).
        """
        super().char_write_handle(char_handle, value, wait_for_response, timeout=timeout)

    def char_write_long_handle(
        self, char_handle: int, value: BytesLike, wait_for_response: bool = False, *, timeout: Optional[float] = None
    ) -> None:
        """Write a long value (prepared writes, always acknowledged) to an attribute handle.

        Args:
            char_handle: the attribute handle.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility.
            timeout: seconds to wait; None for the default (30 s).
        """
        super().char_write_long_handle(char_handle, value, wait_for_response, timeout=timeout)

    def mark_disconnected(self) -> None:
        """The backend stopped: the device is down, as after ``disconnect()`` (no callbacks)."""
        self._disconnected = True
        self.link_down()

    def link_up(self, link: Optional[GATTLink] = None) -> None:
        """Mark the device connected (a connect or reconnect): ``disconnect()`` may be called again."""
        self._disconnected = False
        super().link_up(link)

    def disconnect(self) -> None:
        """Disconnect from the device (also stops an auto-reconnect in progress).

        As in 5.0.0, a link the peer dropped may still be disconnected quietly; only a
        device this program disconnected already (or whose backend stopped) refuses.

        Raises:
            NotConnectedError: ``disconnect()`` or the backend's ``stop()`` ended it already.
        """
        if self._disconnected:
            raise NotConnectedError(f"Device {self.address} was disconnected already")
        self._disconnected = True
        self.auto_reconnect = False
        try:
            super().disconnect()
        finally:
            self._backend.forget(self)
