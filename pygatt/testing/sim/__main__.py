"""Entry point: ``python -m pygatt.testing.sim TOOL --world WORLD -- TOOL-ARGUMENTS``.

TOOL is gatttool, hcitool, hciconfig, bluetoothctl or btmgmt; WORLD a JSON
world file or the name of a shipped example (``heart-rate``).
"""

from __future__ import annotations

import sys
from typing import List, Optional

from pygatt.testing import load_world
from pygatt.testing.sim import gatttool, tools

PROGRAMS = {
    "gatttool": gatttool.run,
    "hcitool": tools.hcitool,
    "hciconfig": tools.hciconfig,
    "bluetoothctl": tools.bluetoothctl,
    "btmgmt": tools.btmgmt,
}
USAGE = "usage: python -m pygatt.testing.sim {gatttool,hcitool,hciconfig,bluetoothctl,btmgmt} --world W -- ARGS"


def main(argv: Optional[List[str]] = None) -> int:
    """Run one simulated program: ``PROGRAM --world WORLD -- ARGS``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``); WORLD is a shipped
            world's name or a world file.

    Returns:
        The program's exit status; 2 for a usage error or a world that cannot be loaded.
    """
    args = list(sys.argv[1:] if argv is None else argv)
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
