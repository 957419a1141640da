"""``DBusBLEDevice``: a device connected through the D-Bus backend.

Everything but routing is the shared :class:`~pygatt.device.BLEDevice`: the
handle cache, subscriptions (their CCCD writes become StartNotify/StopNotify in
:class:`~pygatt.backends.dbus.link.DBusLink`), callbacks and resubscribing.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, ClassVar, Dict, Optional

from pygatt import validate
from pygatt.backends.backend import Characteristic
from pygatt.backends.dbus.link import DBusLink
from pygatt.device import BLEDevice
from pygatt.exceptions import NotConnectedError
from pygatt.validate import BytesLike, UUIDLike

if TYPE_CHECKING:
    from pygatt.backends.dbus.backend import DBusBackend

log = logging.getLogger(__name__)


class DBusBLEDevice(BLEDevice):
    """A BLE device connected through the DBusBackend (BlueZ over D-Bus).

    The same handle-based API as the other backends: handles are the ATT
    handles gatttool would print for the same peripheral.

    Args:
        address: the device's BLE address.
        backend: the backend that connected it.
    """

    DEFAULT_TIMEOUTS: ClassVar[Dict[str, float]] = {**BLEDevice.DEFAULT_TIMEOUTS, "discover": 5.0, "disconnect": 3.0}

    def __init__(self, address: str, backend: DBusBackend) -> None:
        super().__init__(address)
        self._backend = backend

    @property
    def backend(self) -> DBusBackend:
        """The backend this device was connected through."""
        return self._backend

    # A timeout may be given by position in these, as GATTToolBLEDevice takes it (pygatt 5.0.0's
    # gatttool device passed its arguments on to the backend): switching backends keeps such calls working.

    def char_read(self, uuid: UUIDLike, timeout: Optional[float] = None) -> bytearray:
        """Read a characteristic by UUID (its handle from discovery, then ``ReadValue``).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds to wait; None for the default (4 s).

        Returns:
            The value.
        """
        return super().char_read(uuid, timeout=timeout)

    def char_read_handle(self, handle: int, timeout: Optional[float] = None) -> bytearray:
        """Read an attribute by handle (BlueZ reads the whole value, following with Read Blob).

        Args:
            handle: the attribute handle to read.
            timeout: seconds to wait; None for the default (4 s).

        Returns:
            The value.
        """
        return super().char_read_handle(handle, timeout=timeout)

    def char_write_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = True, timeout: Optional[float] = None
    ) -> None:
        """Write a value to an attribute handle (``WriteValue``, as a request or a command).

        Args:
            handle: the attribute handle.
            value: the bytes to write.
            wait_for_response: a Write Request, acknowledged by the peer; else a Write Command.
            timeout: seconds to wait; None for the default (30 s).
        """
        super().char_write_handle(handle, value, wait_for_response, timeout=timeout)

    def discover_characteristics(self, timeout: Optional[float] = None) -> Dict[uuid.UUID, Characteristic]:
        """Discover (again) the characteristics BlueZ resolved, and cache them.

        Args:
            timeout: seconds to wait; None for the default (5 s).

        Returns:
            ``{UUID: Characteristic}``.
        """
        return super().discover_characteristics(timeout=timeout)

    def exchange_mtu(self, mtu: int, timeout: Optional[float] = None) -> int:
        """The ATT MTU BlueZ negotiated (BlueZ exchanges it itself; ``mtu`` is checked, not sent).

        Args:
            mtu: the MTU wanted, 23..517.
            timeout: seconds to wait; None for the default (4 s).

        Returns:
            The MTU in use.
        """
        return super().exchange_mtu(mtu, timeout=timeout)

    def char_read_long_handle(self, handle: int, *, timeout: Optional[float] = None, offset: int = 0) -> bytearray:
        """Read a characteristic by handle, following values longer than one ATT packet.

        BlueZ does the Read and Read Blob requests itself.

        Args:
            handle: the attribute handle to read.
            timeout: seconds to wait; None for the default (4 s).
            offset: start reading this many bytes into the value (D-Bus backend only).

        Returns:
            The value from ``offset`` to its end.
        """
        handle = validate.handle(handle)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= validate.MAX_ATTRIBUTE_LENGTH:
            raise ValueError(f"offset must be an int within 0..{validate.MAX_ATTRIBUTE_LENGTH}, got {offset!r}")
        seconds = self._timeout(timeout, "read")
        link = self._require_link()
        if not isinstance(link, DBusLink):
            raise NotConnectedError(f"Device {self.address} is not connected through the D-Bus backend")
        return bytearray(link.read_long_handle(handle, seconds, offset))

    def subscription_kind(self, handle: int) -> Optional[str]:
        """What BlueZ enabled for the subscription to a characteristic (D-Bus backend only).

        BlueZ's ``StartNotify`` chooses: notifications whenever the characteristic offers
        them, indications only when it offers nothing else, whatever ``indication=`` asked
        :meth:`subscribe` for.

        Args:
            handle: the characteristic's value handle.

        Returns:
            ``"notification"`` or ``"indication"``; None when it is not enabled on the
            current link (not subscribed, or not connected).
        """
        handle = validate.handle(handle)
        link = self._link
        return link.delivery(handle) if isinstance(link, DBusLink) else None

    def disconnect(self) -> None:
        """Disconnect from the device (no disconnect callback runs); also stops an auto-reconnect in progress.

        A reconnect attempt in flight is cancelled and has ended when this returns: the
        device stays disconnected, on BlueZ's side too.
        """
        reconnecting = self.auto_reconnect and not self.connected
        self.auto_reconnect = False
        if reconnecting:
            self._backend.cancel_reconnect(self)
            return
        self._check_connected()
        self._backend.disconnect(self)
