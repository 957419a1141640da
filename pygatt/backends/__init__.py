"""pygatt backends: the base classes and the available implementations."""

from .backend import DEFAULT_CONNECT_TIMEOUT_S, BLEAddressType, BLEBackend, Characteristic
from .bgapi import BGAPIBackend
from .dbus import DBusBackend, DBusBLEDevice
from .gatttool import GATTToolBackend, GATTToolBLEDevice, ToolCommands

__all__ = [
    "BLEBackend",
    "BLEAddressType",
    "Characteristic",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "BGAPIBackend",
    "DBusBackend",
    "DBusBLEDevice",
    "GATTToolBackend",
    "GATTToolBLEDevice",
    "ToolCommands",
]
