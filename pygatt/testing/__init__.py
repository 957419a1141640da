"""A simulated BLE world for testing code that uses pygatt, without a radio.

The simulated programs in ``pygatt.testing.sim`` behave like BlueZ's
``gatttool -I``, ``hcitool``, ``hciconfig``, ``bluetoothctl`` and ``btmgmt`` as
far as pygatt (and a person at the terminal) can see, backed by a
:class:`World` described in JSON. Point the library at them with
``PYGATT_SIMULATE=heart-rate`` (or a path to a world file), or with
``GATTToolBackend(tools=ToolCommands.simulated(world))``.
"""

from __future__ import annotations

from pathlib import Path

from .world import Adapter, Characteristic, Descriptor, NotifyStream, Peripheral, Service, World

EXAMPLES = {"heart-rate": "heart_rate.json"}

__all__ = [
    "Adapter",
    "Characteristic",
    "Descriptor",
    "NotifyStream",
    "Peripheral",
    "Service",
    "World",
    "EXAMPLES",
    "example_world_path",
    "load_world",
]


def example_world_path(name: str = "heart-rate") -> Path:
    """The path of a world that ships with pygatt (``heart-rate``)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example world {name!r}; known: {', '.join(sorted(EXAMPLES))}")
    return Path(__file__).parent / "examples" / EXAMPLES[name]


def load_world(spec: str) -> World:
    """Load a world from a JSON file path or the name of a shipped example."""
    path = example_world_path(spec) if spec in EXAMPLES else Path(spec)
    try:
        return World.from_json(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no world file {spec!r} (and no shipped example of that name)") from None
