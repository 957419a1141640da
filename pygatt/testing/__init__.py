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
    "EXAMPLES",
    "Adapter",
    "Characteristic",
    "Descriptor",
    "NotifyStream",
    "Peripheral",
    "Service",
    "World",
    "example_world_path",
    "load_world",
]


def example_world_path(name: str = "heart-rate") -> Path:
    """Find a world that ships with pygatt.

    Args:
        name: the world's name; ``heart-rate`` is the one there is.

    Returns:
        The path of its JSON file.

    Raises:
        ValueError: no shipped world has that name.
    """
    if name not in EXAMPLES:
        raise ValueError(f"unknown example world {name!r}; known: {', '.join(sorted(EXAMPLES))}")
    return Path(__file__).parent / "examples" / EXAMPLES[name]


def load_world(spec: str) -> World:
    """Load a world.

    Args:
        spec: the name of a shipped world (``heart-rate``) or the path of a JSON world file.

    Returns:
        The world.

    Raises:
        ValueError: no such file or shipped world, or the file does not describe a world.
    """
    path = example_world_path(spec) if spec in EXAMPLES else Path(spec)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"no world file {spec!r} (and no shipped example of that name)") from None
    except OSError as exc:  # a directory, no permission
        raise ValueError(f"cannot read world file {spec!r}: {exc.strerror or exc}") from None
    try:
        return World.from_json(text)  # not JSON: a ValueError already
    except (TypeError, KeyError, AttributeError) as exc:  # JSON, but not laid out as a world
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"world file {spec!r} does not describe a world: {what}") from None
