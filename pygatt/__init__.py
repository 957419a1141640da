"""pygatt: a Python module for Bluetooth LE Generic Attribute Profile (GATT)."""

import logging

from .backends import BGAPIBackend, BLEAddressType, DBusBackend, GATTToolBackend  # noqa: F401
from .device import BLEDevice  # noqa: F401
from .exceptions import BLEError  # noqa: F401

__version__ = "5.1.0.dev0"

__all__ = ["BLEError", "BLEDevice", "GATTToolBackend", "BGAPIBackend", "DBusBackend", "BLEAddressType", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
