"""Simulated ``hcitool``, ``hciconfig``, ``bluetoothctl`` and ``btmgmt``.

Each prints what the BlueZ 5.66 program prints for the world's adapter and
peripherals, with the same exit statuses, so scan, reset, clear_bond and RSSI
can be tested without a radio.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING, List

from .terminal import eprint

if TYPE_CHECKING:
    from pygatt.testing.world import World

SCAN_ERRORS = {
    "permission": "Set scan parameters failed: Operation not permitted",
    "busy": "Set scan parameters failed: Input/output error",
    "no-device": "Could not open device: No such device",
}


def _wait_for_sigint(limit_s: float = 3600.0) -> None:
    """Sleep until SIGINT arrives (then return), as a scan does, or until ``limit_s`` passes.

    Args:
        limit_s: the longest sleep, in seconds.
    """
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    deadline = time.monotonic() + limit_s
    while not interrupted and time.monotonic() < deadline:
        time.sleep(0.02)


def _adapter_arg(argv: List[str], default: str = "hci0") -> str:
    if "-i" in argv and argv.index("-i") + 1 < len(argv):
        return argv[argv.index("-i") + 1]
    return default


def hcitool(world: World, argv: List[str]) -> int:
    """Simulate ``hcitool [-i hciX] lescan`` (until SIGINT) and ``hcitool [-i hciX] rssi ADDR``.

    Args:
        world: the simulated world.
        argv: the program's arguments, as the backend passes them.

    Returns:
        The exit status the real program would have.
    """
    adapter = _adapter_arg(argv)
    if not world.adapter.present:
        eprint("Invalid device: Address family not supported by protocol")
        return 1
    if not world.adapter.answers_to(adapter):
        eprint("Could not open device: No such device")
        return 1
    if "rssi" in argv:
        address = argv[argv.index("rssi") + 1] if argv.index("rssi") + 1 < len(argv) else ""
        peripheral = world.find(address)
        if peripheral is None:
            eprint("Not connected.")
            return 1
        print(f"RSSI return value: {peripheral.rssi}", flush=True)
        return 0
    if "lescan" not in argv:
        eprint("simulated hcitool: only lescan and rssi are supported")
        return 1
    if world.adapter.scan_error:
        eprint(SCAN_ERRORS.get(world.adapter.scan_error, world.adapter.scan_error))
        return 1
    print("LE Scan ...", flush=True)
    for peripheral in world.peripherals:
        print(f"{peripheral.address.upper()} (unknown)", flush=True)  # ADV_IND
        if peripheral.name:
            print(f"{peripheral.address.upper()} {peripheral.name}", flush=True)  # SCAN_RSP
    _wait_for_sigint()
    return 0


def hciconfig(world: World, argv: List[str]) -> int:
    """Simulate ``hciconfig hciX reset``.

    Args:
        world: the simulated world.
        argv: the program's arguments, as the backend passes them.

    Returns:
        The exit status the real program would have.
    """
    if not world.adapter.present:
        eprint("Can't open HCI socket.: Address family not supported by protocol")
        return 1
    if not argv or not world.adapter.answers_to(argv[0]):
        eprint("Can't get device info: No such device")
        return 1
    if world.adapter.reset_error:
        eprint(world.adapter.reset_error)
        return 1
    return 0


def bluetoothctl(world: World, argv: List[str]) -> int:
    """Simulate ``bluetoothctl remove ADDR|*``.

    Args:
        world: the simulated world.
        argv: the program's arguments, as the backend passes them.

    Returns:
        The exit status the real program would have.
    """
    if not world.adapter.present:
        print("No default controller available", flush=True)
        return 1
    if len(argv) < 2 or argv[0] != "remove":
        print("Missing <dev> argument" if argv[:1] == ["remove"] else "Invalid command", flush=True)
        return 1
    targets = [p for p in world.peripherals if p.bonded]
    if argv[1] != "*":
        targets = [p for p in targets if p.address.upper() == argv[1].upper()]
        if not targets:
            print(f"Device {argv[1]} not available", flush=True)
            return 1
    for peripheral in targets:
        print(f"[DEL] Device {peripheral.address.upper()} {peripheral.name or peripheral.address}", flush=True)
        print("Device has been removed", flush=True)
    return 0


def btmgmt(world: World, argv: List[str]) -> int:
    """Simulate ``btmgmt [--timeout N] [--index I] find [-l]``.

    Args:
        world: the simulated world.
        argv: the program's arguments, as the backend passes them.

    Returns:
        The exit status the real program would have.
    """
    if not world.adapter.present:
        eprint("Unable to open mgmt_socket")
        return 1
    index = argv[argv.index("--index") + 1] if "--index" in argv else "0"
    limit = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 10.0
    if f"hci{index}" != world.adapter.name:
        eprint(f"Reading info for index {index} failed: Invalid Index (0x11)")
        return 1
    print("Discovery started", flush=True)
    print(f"hci{index} type 6 discovering on", flush=True)
    for p in world.peripherals:
        kind = "LE Random" if p.address_type == "random" else "LE Public"
        tail = f"name {p.name}" if p.name else "eir_len 3"
        print(f"hci{index} dev_found: {p.address.upper()} type {kind} rssi {p.rssi} flags 0x0000 AD flags 0x06 {tail}")
    sys.stdout.flush()
    _wait_for_sigint(limit)
    print(f"hci{index} type 6 discovering off", flush=True)
    return 0
