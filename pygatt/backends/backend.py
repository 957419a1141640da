"""The backend-agnostic base classes: ``BLEBackend``, ``Characteristic``, ``BLEAddressType``."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Dict, List, Optional
from uuid import UUID

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5.0


class BLEAddressType(Enum):
    """The address type of a remote device: ``public`` or ``random``."""

    public = "public"
    random = "random"


class BLEBackend:
    """Abstract base class representing a Bluetooth adapter backend. See the
    ``pygatt.backends`` module for available implementations.
    """

    def start(self) -> None:
        """Initialize any resources required to run the backend, e.g. background
        threads, USB device connections, etc.
        """
        raise NotImplementedError()

    def stop(self) -> None:
        """Stop and free any resources required while the backend is running."""
        raise NotImplementedError()

    def supports_unbonded(self) -> bool:
        """Return True if the backend supports unbonded communication - this is
        to make detecting the GATTTool backend easier.
        """
        return True

    def connect(self, address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S, **kwargs: Any) -> Any:
        """Return a BLEDevice for the device at the given address.

        address -- the BLE address of the device, e.g. "01:23:45:67:89:AB".
        timeout -- seconds to wait for the connection to succeed.
        """
        raise NotImplementedError()

    def scan(self, *args: Any, **kwargs: Any) -> List[Dict[str, Any]]:
        """Perform a BLE scan and return a list of dicts, each with at least an
        'address' and a 'name' (None when the device did not advertise one).
        """
        raise NotImplementedError()

    def filtered_scan(self, name_filter: str = "", *args: Any, **kwargs: Any) -> List[Dict[str, Any]]:
        """Scan for BLE devices and keep those whose name contains name_filter.

        Devices without a name never match a non-empty filter.
        """
        devices = self.scan(*args, **kwargs)
        return [device for device in devices if name_filter in (device.get("name") or "")]

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Remove a bond (pairing) with a device, or all bonds if address is None."""
        raise NotImplementedError()


class Characteristic:
    """A GATT characteristic, including its value handle and any descriptors
    found for it (``descriptors`` maps a descriptor UUID to its handle).
    """

    def __init__(self, uuid: UUID, handle: int) -> None:
        """
        uuid -- the UUID of the characteristic.
        handle -- the value handle of the characteristic.
        """
        self.uuid = uuid
        self.handle = handle
        self.descriptors: Dict[UUID, int] = {}

    def add_descriptor(self, uuid: UUID, handle: int) -> None:
        """Record a descriptor of this characteristic.

        uuid -- the UUID of the descriptor.
        handle -- the handle of the descriptor.
        """
        self.descriptors[uuid] = handle

    def __str__(self) -> str:
        return f"<{self.__class__.__name__} uuid={self.uuid} handle={self.handle}>"

    __repr__ = __str__
