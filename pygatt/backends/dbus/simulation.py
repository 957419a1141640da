"""``PYGATT_SIMULATE`` for the D-Bus backend: a private bus with a simulated BlueZ on it."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Mapping, Optional

from pygatt.backends.dbus.errors import BluezNotAvailableError

log = logging.getLogger(__name__)

SIMULATE_ENV = "PYGATT_SIMULATE"


class Simulation:
    """A private ``dbus-daemon`` and the simulated ``org.bluez`` of :mod:`pygatt.testing`.

    Args:
        world: a simulated-world JSON path or the name of a shipped example (``heart-rate``).
        hci_device: the adapter the simulated BlueZ offers.
    """

    def __init__(self, world: str, hci_device: str) -> None:
        self.world = world
        self.hci_device = hci_device
        self._bus: Any = None
        self._bluez: Any = None

    @classmethod
    def from_environment(cls, hci_device: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Simulation]:
        """A simulation when ``PYGATT_SIMULATE`` is set (and not empty), else None."""
        env = os.environ if environ is None else environ
        world = env.get(SIMULATE_ENV, "").strip()
        return cls(world, hci_device) if world else None

    def check(self) -> None:
        """Load the world once, so that one that cannot be loaded is refused before anything starts.

        Raises:
            ValueError: no such world, or not a world.
        """
        importlib.import_module("pygatt.testing").load_world(self.world)

    def start(self) -> str:
        """Start the bus and the simulated BlueZ; returns the bus address.

        Raises:
            ValueError: no such world.
            BluezNotAvailableError: dbus-daemon is missing or the simulated BlueZ did not start.
        """
        testing = importlib.import_module("pygatt.testing")
        dbus_bus = importlib.import_module("pygatt.testing.dbus_bus")
        try:
            bluez_dbus = importlib.import_module("pygatt.testing.sim.bluez_dbus")
        except ImportError as exc:
            raise BluezNotAvailableError(
                f"The simulated BlueZ needs dbus-fast: pip install 'dbus-fast>=2.21' ({exc})"
            ) from exc
        world = testing.load_world(self.world)
        self._bus = dbus_bus.PrivateBus()
        try:
            self._bus.start()
            self._bluez = bluez_dbus.SimulatedBluez(world, self._bus.address, adapter=self.hci_device)
            self._bluez.start()
        except RuntimeError as exc:  # no dbus-daemon, or the simulated BlueZ could not start
            self.stop()
            raise BluezNotAvailableError(f"Cannot start the simulated BlueZ for {self.world!r}: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        log.info("Simulating BlueZ with world %s on %s", self.world, self._bus.address)
        return str(self._bus.address)

    def stop(self) -> None:
        """Stop the simulated BlueZ and the bus (safe to call twice)."""
        bluez, self._bluez = self._bluez, None
        bus, self._bus = self._bus, None
        if bluez is not None:
            bluez.stop()
        if bus is not None:
            bus.stop()
