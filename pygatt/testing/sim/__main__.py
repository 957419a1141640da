"""Entry point: ``python -m pygatt.testing.sim TOOL --world WORLD -- TOOL-ARGUMENTS``.

TOOL is gatttool, hcitool, hciconfig, bluetoothctl, btmgmt or bgapi (a simulated
BLED112 dongle: ``bgapi --world WORLD [--socket]`` prints its port and serves it);
WORLD a JSON world file or the name of a shipped example (``heart-rate``).

``python -m pygatt.testing.sim bluez --world WORLD [--bus ADDRESS | --private-bus] [--adapter hciX] [--experimental]``
serves a simulated ``org.bluez`` on a D-Bus bus (``$DBUS_SYSTEM_BUS_ADDRESS`` by
default, or a private dbus-daemon it starts and whose address it prints) until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from pygatt.testing import load_world
from pygatt.testing.sim import bgapi, gatttool, tools

PROGRAMS = {
    "gatttool": gatttool.run,
    "hcitool": tools.hcitool,
    "hciconfig": tools.hciconfig,
    "bluetoothctl": tools.bluetoothctl,
    "btmgmt": tools.btmgmt,
    "bgapi": bgapi.run,
}
USAGE = (
    "usage: python -m pygatt.testing.sim {gatttool,hcitool,hciconfig,bluetoothctl,btmgmt,bgapi} --world W -- ARGS\n"
    "       python -m pygatt.testing.sim bluez --world W [--bus ADDRESS | --private-bus] [--adapter A] [--experimental]"
)


def bluez_main(argv: List[str]) -> int:
    """The simulated org.bluez as a program.

    Args:
        argv: the arguments after ``bluez``.

    Returns:
        The exit status (2 for bad arguments).
    """
    parser = argparse.ArgumentParser(prog="python -m pygatt.testing.sim bluez")
    parser.add_argument("--world", required=True, help="a world file or a shipped example name")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bus", default=os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"), help="the D-Bus address")
    where.add_argument("--private-bus", action="store_true", help="start a private dbus-daemon and print its address")
    parser.add_argument("--adapter", default=None, help="the adapter name (the world's by default)")
    parser.add_argument("--experimental", action="store_true", help="export Adapter1.ConnectDevice")
    options = parser.parse_args(argv)
    if not options.bus and not options.private_bus:
        parser.error("--bus (or --private-bus) is required when DBUS_SYSTEM_BUS_ADDRESS is not set")
    try:
        world = load_world(options.world)
    except (ValueError, TypeError, KeyError) as exc:
        sys.stderr.write(f"pygatt simulator: cannot load world {options.world!r}: {exc}\n")
        return 2
    from pygatt.testing.sim.bluez_dbus import run_until_stopped  # needs dbus-fast

    bus = None if options.private_bus else options.bus
    return run_until_stopped(world, bus, adapter=options.adapter, experimental=options.experimental)


def main(argv: Optional[List[str]] = None) -> int:
    """Run one simulated program: ``PROGRAM --world WORLD -- ARGS``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``); WORLD is a shipped
            world's name or a world file.

    Returns:
        The program's exit status; 2 for a usage error or a world that cannot be loaded.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["bluez"]:
        try:
            return bluez_main(args[1:])
        except SystemExit as exc:
            return int(exc.code or 0)
    if len(args) < 3 or args[0] not in PROGRAMS or args[1] != "--world":
        sys.stderr.write(USAGE + "\n")
        return 2
    program, world_spec, rest = args[0], args[2], args[3:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    try:
        world = load_world(world_spec)
    except (ValueError, TypeError, KeyError) as exc:
        sys.stderr.write(f"pygatt simulator: cannot load world {world_spec!r}: {exc}\n")
        return 2
    return PROGRAMS[program](world, rest)


if __name__ == "__main__":
    sys.exit(main())
