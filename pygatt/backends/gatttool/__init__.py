"""The GATTTool backend: BlueZ's ``gatttool -I`` driven through pexpect."""

from .device import GATTToolBLEDevice
from .gatttool import GATTToolBackend
from .tools import ToolCommands

__all__ = ["GATTToolBLEDevice", "GATTToolBackend", "ToolCommands"]
