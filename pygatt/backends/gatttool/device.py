"""``GATTToolBLEDevice``: a device connected through the GATTTool backend."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar, cast

from pygatt.backends.backend import DEFAULT_CONNECT_TIMEOUT_S, BLEAddressType, Characteristic
from pygatt.device import BLEDevice
from pygatt.exceptions import NotConnectedError
from pygatt.validate import BytesLike, UUIDLike

if TYPE_CHECKING:
    from pygatt.backends.gatttool.gatttool import GATTToolBackend
    from pygatt.backends.gatttool.session import GATTToolSession

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
DisconnectCallback = Callable[["GATTToolBLEDevice"], None]


def connection_required(func: F) -> F:
    """Raise NotConnectedError if the device is not connected."""

    @functools.wraps(func)
    def wrapper(self: GATTToolBLEDevice, *args: Any, **kwargs: Any) -> Any:
        if not self._connected:
            raise NotConnectedError(f"Device {self._address} is not connected")
        return func(self, *args, **kwargs)

    return cast(F, wrapper)


class GATTToolBLEDevice(BLEDevice):
    """A BLE device connection initiated by the GATTToolBackend.

    The device defers to the backend for all functionality; each connected
    device has a gatttool process of its own, so several can be connected at once.
    """

    def __init__(self, address: str, backend: GATTToolBackend) -> None:
        super().__init__(address)
        self._backend = backend
        self._connected = False
        self._session: Optional[GATTToolSession] = None
        self._address_type = BLEAddressType.public
        self._auto_reconnect = False
        self._connect_timeout = DEFAULT_CONNECT_TIMEOUT_S
        self._mtu = 23
        self._disconnect_callbacks: List[DisconnectCallback] = []
        self._callback_lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """True while the link to the device is up."""
        return self._connected

    @connection_required
    def bond(self, permanent: bool = False) -> None:
        """Make the connection bonded and encrypted (``sec-level medium``)."""
        self._backend.bond(self, permanent)

    @connection_required
    def get_rssi(self) -> int:
        """The RSSI of the connection in dBm (``hcitool rssi``)."""
        return cast(int, self._backend.get_rssi(self))

    @connection_required
    def char_read(self, uuid: UUIDLike, *args: Any, **kwargs: Any) -> bytearray:
        """Reads a Characteristic by UUID; returns a bytearray. Takes ``timeout=1``."""
        return cast(bytearray, self._backend.char_read(self, uuid, *args, **kwargs))

    @connection_required
    def char_read_handle(self, handle: int, *args: Any, **kwargs: Any) -> bytearray:
        """Reads a Characteristic by handle; returns a bytearray. Takes ``timeout=4``."""
        return cast(bytearray, self._backend.char_read_handle(self, handle, *args, **kwargs))

    @connection_required
    def char_read_long_handle(self, handle: int, *args: Any, **kwargs: Any) -> bytearray:
        """Reads a long Characteristic value by handle (Read Blob); returns a bytearray."""
        return cast(bytearray, self._backend.char_read_long_handle(self, handle, *args, **kwargs))

    @connection_required
    def char_write_handle(self, handle: int, value: BytesLike, wait_for_response: bool = True, **kwargs: Any) -> None:
        """Writes a value to a given characteristic handle. Takes ``timeout=30``."""
        self._backend.char_write_handle(self, handle, value, wait_for_response, **kwargs)

    @connection_required
    def char_write_long_handle(
        self, handle: int, value: BytesLike, wait_for_response: bool = False, **kwargs: Any
    ) -> None:
        """Writes a long value (prepared writes) to a given characteristic handle."""
        self._backend.char_write_long_handle(self, handle, value, wait_for_response, **kwargs)

    @connection_required
    def disconnect(self) -> None:
        """Disconnect from the device; connect again through the backend to reuse it."""
        self._backend.disconnect(self)

    @connection_required
    def discover_characteristics(self, timeout: float = 5) -> Dict[uuid.UUID, Characteristic]:
        """Discover (again) the device's characteristics and cache them."""
        characteristics = cast(Dict[uuid.UUID, Characteristic], self._backend.discover_characteristics(self, timeout))
        with self._lock:
            self._characteristics = characteristics
            self._discovered = True
        return characteristics

    @connection_required
    def exchange_mtu(self, mtu: int, timeout: float = 1) -> int:
        """Request an ATT MTU; returns the MTU in use (once per connection)."""
        return cast(int, self._backend.exchange_mtu(self, mtu, timeout))

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

    def _fire_disconnected(self) -> None:
        with self._callback_lock:
            callbacks = list(self._disconnect_callbacks)
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("Disconnect callback %r raised", callback)
