"""pygatt: a Python module for Bluetooth LE Generic Attribute Profile (GATT)."""

import logging
from importlib import metadata as _metadata

from .backends import BGAPIBackend, BLEAddressType, DBusBackend, GATTToolBackend  # noqa: F401
from .device import BLEDevice  # noqa: F401
from .exceptions import BLEError  # noqa: F401

try:
    __version__ = _metadata.version("pygatt")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["BLEError", "BLEDevice", "GATTToolBackend", "BGAPIBackend", "DBusBackend", "BLEAddressType", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
