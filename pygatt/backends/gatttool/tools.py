"""Which programs the GATTTool backend runs, and how to point it elsewhere.

By default the backend runs the BlueZ programs found on ``PATH``: ``gatttool``,
``hcitool``, ``hciconfig`` and ``bluetoothctl``, exactly as pygatt 5.0.0 did, and
``btmgmt`` for scans that report RSSI.

Two documented ways replace them, for example with the simulated peripheral of
:mod:`pygatt.testing`, without touching the code that uses pygatt:

* the keyword ``tools=ToolCommands(...)`` on :class:`~pygatt.GATTToolBackend`;
* the environment variable ``PYGATT_SIMULATE``: a path to a simulated-world
  description (JSON), or the name of a device that ships with
  :mod:`pygatt.testing` (``heart-rate``). When it is set, every tool is the
  simulator. An empty value means "not set".

Each command is an argument list (a program and the arguments that go before
the backend's own), never a shell string.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import List, Mapping, Optional

SIMULATE_ENV = "PYGATT_SIMULATE"


def _prefix(program: str) -> List[str]:
    return [program]


@dataclass(frozen=True)
class ToolCommands:
    """Argument-list prefixes for the external programs the backend runs."""

    gatttool: List[str] = field(default_factory=lambda: _prefix("gatttool"))
    hcitool: List[str] = field(default_factory=lambda: _prefix("hcitool"))
    hciconfig: List[str] = field(default_factory=lambda: _prefix("hciconfig"))
    bluetoothctl: List[str] = field(default_factory=lambda: _prefix("bluetoothctl"))
    btmgmt: List[str] = field(default_factory=lambda: _prefix("btmgmt"))

    def __post_init__(self) -> None:
        for name in ("gatttool", "hcitool", "hciconfig", "bluetoothctl", "btmgmt"):
            argv = getattr(self, name)
            if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
                raise ValueError(f"ToolCommands.{name} must be a non-empty list of strings, got {argv!r}")
            for arg in argv:
                if "\n" in arg or "\r" in arg or "\0" in arg:
                    raise ValueError(f"ToolCommands.{name} has a control character in {arg!r}")

    @classmethod
    def simulated(cls, world: str, python: Optional[str] = None) -> ToolCommands:
        """Commands that run the simulated peripheral of :mod:`pygatt.testing`.

        ``world`` is a path to a JSON world description or the name of a shipped
        example device (``heart-rate``).
        """
        base = [python or sys.executable, "-m", "pygatt.testing.sim"]
        return cls(
            gatttool=[*base, "gatttool", "--world", world, "--"],
            hcitool=[*base, "hcitool", "--world", world, "--"],
            hciconfig=[*base, "hciconfig", "--world", world, "--"],
            bluetoothctl=[*base, "bluetoothctl", "--world", world, "--"],
            btmgmt=[*base, "btmgmt", "--world", world, "--"],
        )

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> ToolCommands:
        """The default commands, or the simulator when ``PYGATT_SIMULATE`` is set.

        Raises:
            ValueError: ``PYGATT_SIMULATE`` names a world that cannot be loaded (checked here, as
                the BGAPI backend does when it is built, rather than found by a simulated
                program that then fails to start).
        """
        env = os.environ if environ is None else environ
        world = env.get(SIMULATE_ENV, "").strip()
        if world:
            from pygatt.testing import load_world  # only needed, and only imported, for a simulation

            load_world(world)
            return cls.simulated(world)
        return cls()
