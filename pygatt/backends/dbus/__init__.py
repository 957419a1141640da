"""The D-Bus backend: BlueZ's supported API, no gatttool (``pip install "pygatt[DBUS]"``).

Layers, top down: :mod:`.backend` (DBusBackend) and :mod:`.device` (DBusBLEDevice);
:mod:`.link` (one peripheral's GATT operations); :mod:`.bus` (one bus connection,
one reader thread) and :mod:`.agent` (the pairing agent); the pure mapping
modules :mod:`.paths`, :mod:`.properties` and :mod:`.errors` (no I/O).
"""

from .backend import DBusBackend
from .device import DBusBLEDevice
from .errors import BluezNotAvailableError

__all__ = ["BluezNotAvailableError", "DBusBLEDevice", "DBusBackend"]
