"""``DBusBLEDevice``: a device connected through the D-Bus backend."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from pygatt import validate
from pygatt.backends.backend import Characteristic
from pygatt.backends.dbus.link import DBusLink
from pygatt.device import BLEDevice
from pygatt.exceptions import NotConnectedError
from pygatt.validate import BytesLike, UUIDLike

if TYPE_CHECKING:
    from pygatt.backends.dbus.backend import DBusBackend

log = logging.getLogger(__name__)

DisconnectCallback = Callable[["DBusBLEDevice"], None]
READ_TIMEOUT_S = 4.0
READ_UUID_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 30.0
DISCOVER_TIMEOUT_S = 5.0
MTU_TIMEOUT_S = 1.0
BOND_TIMEOUT_S = 30.0
RSSI_TIMEOUT_S = 2.0
DISCONNECT_TIMEOUT_S = 3.0


class DBusBLEDevice(BLEDevice):
    """A BLE device connected through the DBusBackend (BlueZ over D-Bus).

    The same handle-based API as the other backends: handles are the ATT
    handles gatttool would print for the same peripheral.
    """

    def __init__(self, address: str, backend: DBusBackend) -> None:
        super().__init__(address)
        self._backend = backend
        self._link: Optional[DBusLink] = None
        self.auto_reconnect = False
        self.connect_timeout = 5.0
        self._disconnect_callbacks: List[DisconnectCallback] = []
        self._callback_lock = threading.Lock()

    # -- the link (set by the backend) --------------------------------------------------

    def attach(self, link: Optional[DBusLink]) -> None:
        """Use ``link`` for every operation (None: not connected). Called by the backend."""
        self._link = link

    @property
    def link(self) -> Optional[DBusLink]:
        """The current link, None while not connected."""
        return self._link

    @property
    def connected(self) -> bool:
        """True while the link to the device is up."""
        link = self._link
        return link is not None and link.connected

    def _up(self) -> DBusLink:
        link = self._link
        if link is None or not link.connected:
            raise NotConnectedError(f"Device {self._address} is not connected")
        return link

    # -- the pygatt 5.0.0 device API ---------------------------------------------------------

    def bond(self, permanent: bool = False) -> None:
        """Pair with the device through BlueZ (``Device1.Pair``, answered by the backend's agent).

        permanent -- also mark the device trusted, so BlueZ keeps and reuses the bond.
        """
        self._up().bond(bool(permanent), BOND_TIMEOUT_S)

    def get_rssi(self) -> int:
        """The last RSSI BlueZ knows for the device, from its advertisements.

        Raises BLEError when BlueZ has none (BlueZ 5.66 reads no RSSI from a live link).
        """
        return self._up().rssi(RSSI_TIMEOUT_S)

    def char_read(self, uuid: UUIDLike, timeout: float = READ_UUID_TIMEOUT_S) -> bytearray:
        """Read the first characteristic with this UUID; one packet, as gatttool's char-read-uuid."""
        key = validate.characteristic_uuid(uuid)
        return bytearray(self._up().read_uuid(key, validate.positive_timeout(timeout)))

    def char_read_handle(self, handle: int, timeout: float = READ_TIMEOUT_S) -> bytearray:
        """Read the attribute at ``handle``; returns a bytearray."""
        handle = validate.handle(handle)
        return bytearray(self._up().read_handle(handle, validate.positive_timeout(timeout)))

    def char_read_long_handle(self, handle: int, timeout: float = READ_TIMEOUT_S, offset: int = 0) -> bytearray:
        """Read a long value at ``handle`` (Read + Read Blob, done by BlueZ), from ``offset`` on."""
        handle = validate.handle(handle)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= validate.MAX_ATTRIBUTE_LENGTH:
            raise ValueError(f"offset must be an int within 0..{validate.MAX_ATTRIBUTE_LENGTH}, got {offset!r}")
        return bytearray(self._up().read_long_handle(handle, validate.positive_timeout(timeout), offset))

    def char_write_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = True, timeout: float = WRITE_TIMEOUT_S
    ) -> None:
        """Write to ``handle``: a Write Request when waiting for a response, else a Write Command.

        A write without response must fit one packet (MTU - 3 bytes).
        """
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        timeout = validate.positive_timeout(timeout)
        link = self._up()
        if not wait_for_response and len(data) > link.mtu - 3:
            raise ValueError(
                f"value is {len(data)} bytes, more than the {link.mtu - 3} a write without response "
                f"carries at MTU {link.mtu}; use wait_for_response=True"
            )
        link.write_handle(handle, data, bool(wait_for_response), timeout)

    def char_write_long_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = False, timeout: float = WRITE_TIMEOUT_S
    ) -> None:
        """Write a long value (prepared writes, done by BlueZ); always acknowledged by the peer."""
        handle = validate.handle(handle)
        data = validate.value_bytes(value)
        self._up().write_long_handle(handle, data, validate.positive_timeout(timeout))

    def disconnect(self) -> None:
        """Disconnect from the device; connect again through the backend to reuse it."""
        self._backend.disconnect(self)

    def discover_characteristics(self, timeout: float = DISCOVER_TIMEOUT_S) -> Dict[uuid.UUID, Characteristic]:
        """Discover (again) the device's characteristics and cache them."""
        characteristics = self._up().discover(validate.positive_timeout(timeout))
        with self._lock:
            self._characteristics = characteristics
            self._discovered = True
        return characteristics

    def exchange_mtu(self, mtu: int, timeout: float = MTU_TIMEOUT_S) -> int:
        """Returns the ATT MTU in use: BlueZ negotiates it itself when connecting (asking for 517)."""
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 23 <= mtu <= 517:
            raise ValueError(f"mtu must be an int within 23..517, got {mtu!r}")
        return self._up().exchange_mtu(mtu, validate.positive_timeout(timeout))

    # -- disconnect callbacks -----------------------------------------------------------------

    def register_disconnect_callback(self, callback: DisconnectCallback) -> None:
        """Call ``callback(device)`` when the link drops without disconnect() being called."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        with self._callback_lock:
            if callback not in self._disconnect_callbacks:
                self._disconnect_callbacks.append(callback)

    def remove_disconnect_callback(self, callback: DisconnectCallback) -> None:
        """Stop calling ``callback`` on disconnect (no error if it was not registered)."""
        with self._callback_lock:
            if callback in self._disconnect_callbacks:
                self._disconnect_callbacks.remove(callback)

    def link_lost(self, reason: str) -> None:
        """The link dropped (called on the dispatcher thread): run the disconnect callbacks once."""
        log.warning("Lost the connection to %s: %s", self._address, reason)
        with self._callback_lock:
            callbacks = list(self._disconnect_callbacks)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("Disconnect callback %r raised", callback)
