"""``AdapterTools``: what the GATTTool backend does to the adapter with BlueZ's short-lived programs.

Reset (``hciconfig``), scan (``hcitool lescan`` or ``btmgmt find``), clear bonds
(``bluetoothctl remove``) and the RSSI of a link (``hcitool rssi``). Running the
programs and reading their output is :mod:`pygatt.backends.gatttool.external`'s job.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pygatt import validate
from pygatt.backends.gatttool import external
from pygatt.exceptions import BLEError, ToolError

if TYPE_CHECKING:
    from pygatt.backends.gatttool.tools import ToolCommands

log = logging.getLogger(__name__)

#: Seconds a short-lived tool (hciconfig, bluetoothctl, hcitool rssi) may run.
TOOL_TIMEOUT_S = 5.0


class AdapterTools:
    """The adapter-level operations of one adapter.

    Args:
        tools: the programs to run.
        hci_device: the adapter, e.g. ``hci0`` (validated).
    """

    def __init__(self, tools: ToolCommands, hci_device: str) -> None:
        self._tools = tools
        self._hci_device = hci_device
        self._lock = threading.Lock()
        self._scanner: Optional[external.Scanner] = None
        self._running = external.RunningTools()  # hciconfig, bluetoothctl, hcitool rssi

    def reset(self) -> None:
        """Run ``hciconfig <dev> reset`` (through ``sudo -n`` when not root).

        Raises:
            ToolError: hciconfig failed; the error quotes it.
        """
        argv = external.with_privileges([*self._tools.hciconfig, self._hci_device, "reset"], as_root=True)
        external.run_tool(argv, TOOL_TIMEOUT_S, f"reset {self._hci_device}", self._running)

    def scan(self, timeout: float, run_as_root: bool, tool: str) -> List[Dict[str, Any]]:
        """Scan for BLE devices with ``hcitool lescan`` or ``btmgmt find -l``.

        Args:
            timeout: seconds to scan for (validated).
            run_as_root: run the scan through ``sudo -n``.
            tool: ``"hcitool"`` or ``"btmgmt"``.

        Returns:
            Dicts with 'address', 'name' and 'rssi' (btmgmt adds 'address_type' and 'flags').

        Raises:
            ValueError: an unknown tool.
            BLEError: a scan already runs.
            ToolError: the tool failed (PermissionDeniedError when it lacks privileges).
        """
        if tool == "hcitool":
            argv = [*self._tools.hcitool, "-i", self._hci_device, "lescan"]
            parse = external.devices_from_lescan
        elif tool == "btmgmt":
            if not self._hci_device.startswith("hci"):
                raise ValueError(f"btmgmt needs the adapter as hciN, not its address {self._hci_device}")
            index = self._hci_device[3:]
            argv = [*self._tools.btmgmt, "--timeout", str(int(timeout) + 1), "--index", index, "find", "-l"]
            parse = external.devices_from_btmgmt
        else:
            raise ValueError(f"tool must be 'hcitool' or 'btmgmt', got {tool!r}")
        argv = external.with_privileges(argv, run_as_root)
        scanner = external.Scanner(argv)
        with self._lock:
            if self._scanner is not None:
                raise BLEError("A scan is already running on this backend")
            self._scanner = scanner
        try:
            output, returncode, ended_by_us = scanner.run(timeout)
        finally:
            with self._lock:
                self._scanner = None
        # hcitool announces a running scan with "LE Scan ..."; btmgmt may find nothing and exit 0
        failed = (returncode != 0 and not ended_by_us) or (tool == "hcitool" and "LE Scan ..." not in output)
        if failed or any(hint in output for hint in external.PERMISSION_HINTS):
            raise external.failure("scan", argv, external.clean(output), returncode)
        devices = parse(output)
        log.info("Found %d BLE devices", len(devices))
        return devices

    def kill(self) -> None:
        """End a running scan (it returns what it found so far)."""
        with self._lock:
            scanner = self._scanner
        if scanner is not None:
            scanner.kill()

    def stop(self) -> None:
        """End a running scan and every short-lived program still running (the backend stops)."""
        self.kill()
        self._running.end_all()

    def clear_bond(self, address: Optional[str]) -> None:
        """Remove the bond with ``address`` (every bond when None) using bluetoothctl.

        Args:
            address: the device's address, or None for all.
        """
        target = "*" if address is None else validate.address(address)
        argv = external.with_privileges([*self._tools.bluetoothctl, "remove", target], as_root=True)
        try:
            output = external.run_tool(argv, TOOL_TIMEOUT_S, f"clear_bond {target}", self._running)
        except ToolError as exc:
            if "not available" in exc.output:
                log.info("No bond to clear for %s", target)
                return
            raise
        log.info("Cleared bond for %s: %s", target, output)

    def rssi(self, address: str, timeout: float) -> int:
        """The RSSI of the link to ``address`` from ``hcitool rssi``.

        Raises:
            BLEError: hcitool gave no RSSI (it quotes hcitool).
        """
        argv = [*self._tools.hcitool, "-i", self._hci_device, "rssi", address]
        output = external.run_tool(argv, min(timeout, TOOL_TIMEOUT_S), f"get_rssi {address}", self._running)
        rssi = external.parse_rssi(output)
        if rssi is None:
            raise BLEError(f"get_rssi {address}: hcitool gave no RSSI: {output!r}")
        return rssi
