"""pygatt backends: the base classes and the available implementations."""

from .backend import DEFAULT_CONNECT_TIMEOUT_S, BLEAddressType, BLEBackend, Characteristic
from .bgapi import BGAPIBackend
from .dbus import DBusBackend, DBusBLEDevice
from .gatttool import GATTToolBackend, GATTToolBLEDevice, ToolCommands

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "BGAPIBackend",
    "BLEAddressType",
    "BLEBackend",
    "Characteristic",
    "DBusBLEDevice",
    "DBusBackend",
    "GATTToolBLEDevice",
    "GATTToolBackend",
    "ToolCommands",
]
