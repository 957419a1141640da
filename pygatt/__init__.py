"""pygatt: a Python module for Bluetooth LE Generic Attribute Profile (GATT)."""

import logging
from importlib import metadata as _metadata
from pathlib import Path as _Path

from .backends import BGAPIBackend, BLEAddressType, DBusBackend, GATTToolBackend
from .device import BLEDevice
from .exceptions import BLEError


def _installed_version() -> str:
    """This package's version from its installed metadata (pyproject.toml holds the one copy).

    A source tree that was never installed -- or next to another installed
    "pygatt", such as upstream 5.0.0 -- reports ``0+unknown`` rather than
    another distribution's version.
    """
    try:
        distribution = _metadata.distribution("pygatt")
    except _metadata.PackageNotFoundError:
        return "0+unknown"
    installed = _Path(str(distribution.locate_file("pygatt/__init__.py"))).resolve()
    if installed.exists() and installed != _Path(__file__).resolve():
        return "0+unknown"  # another copy is installed (an editable install has no file there)
    return distribution.version


__version__ = _installed_version()

__all__ = ["BGAPIBackend", "BLEAddressType", "BLEDevice", "BLEError", "DBusBackend", "GATTToolBackend", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
