"""``GATTToolBLEDevice``: a device connected through the GATTTool backend.

As in pygatt 5.0.0, the device hands every operation to its backend with
itself first (``backend.char_read(device, uuid)``), so a device built over a
mock backend behaves as users' own tests expect. Everything else -- the handle
cache, subscriptions, callbacks -- is the shared :class:`~pygatt.device.BLEDevice`.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, Dict, Optional

from pygatt.backends.backend import Characteristic
from pygatt.device import BLEDevice
from pygatt.validate import BytesLike, UUIDLike

if TYPE_CHECKING:
    from pygatt.backends.gatttool.gatttool import GATTToolBackend

log = logging.getLogger(__name__)


def _timeout(timeout: Optional[float]) -> Dict[str, Any]:
    """``timeout`` as a keyword for the backend, or nothing to keep the backend's default."""
    return {} if timeout is None else {"timeout": timeout}


class GATTToolBLEDevice(BLEDevice):
    """A BLE device connection initiated by the GATTToolBackend.

    Each connected device has a gatttool process of its own, so several can be
    connected at once. A device counts as connected from its creation until
    :meth:`disconnect` or a lost link. As in 5.0.0, whose device passed its
    arguments on to the backend, a ``timeout`` may also be given by position
    (``device.char_read(uuid, 2)``).

    Args:
        address: the device's BLE address.
        backend: the backend that connected it.
    """

    def __init__(self, address: str, backend: GATTToolBackend) -> None:
        super().__init__(address)
        self._backend = backend

    @property
    def backend(self) -> GATTToolBackend:
        """The backend this device was connected through."""
        return self._backend

    @property
    def mtu(self) -> int:
        """The ATT MTU in use on the link (23 until :meth:`exchange_mtu` raised it)."""
        return self._backend.mtu_of(self)

    def bond(self, permanent: bool = False) -> None:
        """Make the connection bonded and encrypted (``sec-level medium``).

        Args:
            permanent: accepted for compatibility; BlueZ decides.
        """
        self._check_connected()
        self._backend.bond(self, permanent)

    def get_rssi(self) -> int:
        """The RSSI of the connection in dBm (``hcitool rssi``)."""
        self._check_connected()
        return self._backend.get_rssi(self)

    def char_read(self, uuid: UUIDLike, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by UUID (``char-read-uuid``).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait; None for the backend's default (1 s).

        Returns:
            The value.
        """
        self._check_connected()
        return self._backend.char_read(self, uuid, **_timeout(timeout))

    def char_read_handle(self, handle: int, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by handle (``char-read-hnd``).

        Args:
            handle: the attribute handle.
            timeout: seconds to wait; None for the backend's default (4 s).

        Returns:
            The value.
        """
        self._check_connected()
        return self._backend.char_read_handle(self, handle, **_timeout(timeout))

    def char_read_long_handle(self, handle: int, *, timeout: Optional[float] = None) -> bytearray:
        """Read a value longer than one packet by handle (gatttool reads blobs).

        Args:
            handle: the attribute handle.
            timeout: seconds to wait; None for the backend's default (4 s).

        Returns:
            The whole value.
        """
        self._check_connected()
        return self._backend.char_read_long_handle(self, handle, **_timeout(timeout))

    def char_write_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = True, timeout: Optional[float] = None
    ) -> None:
        """Write a value to an attribute handle (``char-write-req`` or ``char-write-cmd``).

        Args:
            handle: the attribute handle.
            value: the bytes to write.
            wait_for_response: use a Write Request and wait for the acknowledgement.
            timeout: seconds to wait; None for the backend's default (30 s).
        """
        self._check_connected()
        self._backend.char_write_handle(self, handle, value, wait_for_response, **_timeout(timeout))

    def char_write_long_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = False, *, timeout: Optional[float] = None
    ) -> None:
        """Write a value longer than one packet (prepared writes) to an attribute handle.

        Args:
            handle: the attribute handle.
            value: the bytes to write (up to 512).
            wait_for_response: accepted for compatibility; a long write is always acknowledged.
            timeout: seconds to wait; None for the backend's default (30 s).
        """
        self._check_connected()
        self._backend.char_write_long_handle(self, handle, value, wait_for_response, **_timeout(timeout))

    def disconnect(self) -> None:
        """Disconnect from the device; connect again through the backend to reuse it.

        Also stops an auto-reconnect in progress.
        """
        reconnecting = self.auto_reconnect and not self.connected
        self.auto_reconnect = False
        if reconnecting:
            return
        self._check_connected()
        self._backend.disconnect(self)
        self.link_down()

    def discover_characteristics(self, timeout: Optional[float] = None) -> Dict[uuid.UUID, Characteristic]:
        """Discover (again) the device's characteristics and cache them.

        Args:
            timeout: seconds the whole discovery may take; None for the backend's default (5 s).

        Returns:
            ``{UUID: Characteristic}``.
        """
        self._check_connected()
        found = self._backend.discover_characteristics(self, **_timeout(timeout))
        self._cache_characteristics(found)
        return found

    def exchange_mtu(self, mtu: int, timeout: Optional[float] = None) -> int:
        """Ask for an ATT MTU; returns the MTU in use (gatttool allows one exchange per connection).

        Args:
            mtu: the MTU wanted, 23..517.
            timeout: seconds to wait; None for the backend's default (1 s).

        Returns:
            The MTU now in use.
        """
        self._check_connected()
        return self._backend.exchange_mtu(self, mtu, **_timeout(timeout))
