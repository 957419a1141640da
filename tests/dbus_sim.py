"""Shared pieces of the D-Bus backend tests: a world, a private dbus-daemon, the simulated BlueZ.

No Bluetooth adapter exists here: every test that needs a radio runs against the
simulated ``org.bluez`` of :mod:`pygatt.testing.sim.bluez_dbus`, on a real private
``dbus-daemon`` that the fixture starts and stops. The client is a real DBusBackend
talking over the real bus socket.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import pygatt
from pygatt.testing import World
from pygatt.testing.dbus_bus import PrivateBus, find_daemon
from pygatt.testing.sim.bluez_dbus import SimulatedBluez

HR = "C4:7C:8D:6A:3E:01"  # bonded: known to BlueZ from the start
TAG = "5D:2B:9F:11:04:7E"  # random address, unknown until seen advertising
KEYPAD = "E1:5C:00:00:00:0A"  # pairs with a passkey
CUSTOM = "a1e8f5b0-696b-4e4c-87c6-69dfe0b0093b"
LONG = "a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b"
INDICATE = "a1e8f5b2-696b-4e4c-87c6-69dfe0b0093b"
COMMAND = "a1e8f5b3-696b-4e4c-87c6-69dfe0b0093b"
LONG_VALUE = bytes(range(100))

requires_daemon = pytest.mark.skipif(
    find_daemon() is None, reason="dbus-daemon is not installed (apt-get install dbus-daemon)"
)


def world_dict(**hr_overrides: Any) -> Dict[str, Any]:
    """The test world: a heart-rate sensor with extra characteristics, a tag, a keypad."""
    hr: Dict[str, Any] = {
        "address": HR,
        "name": "Pulse HR",
        "rssi": -58,
        "mtu": 247,
        "bonded": True,
        "manufacturer_data": {"004c": "0215"},
        "service_data": {"180d": "01"},
        "advertised_services": ["180d"],
        "services": [
            {
                "uuid": "180d",
                "characteristics": [
                    {
                        "uuid": "2a37",
                        "properties": ["notify"],
                        "value": "0048",
                        "notify": {
                            "trigger": "subscribe",
                            "interval_s": 0.05,
                            "count": 5,
                            "values": ["0048", "004a", "004c", "004b", "0049"],
                        },
                    },
                    {"uuid": "2a38", "properties": ["read"], "value": "01"},
                    {"uuid": "2a39", "properties": ["write"], "value": "00"},
                ],
            },
            {
                "uuid": "180f",
                "characteristics": [
                    {
                        "uuid": "2a19",
                        "properties": ["read", "notify"],
                        "value": "5a",
                        "descriptors": [{"uuid": "2901", "value": "42617474657279"}],
                    },
                ],
            },
            {
                "uuid": CUSTOM,
                "characteristics": [
                    {"uuid": LONG, "properties": ["read", "write"], "value": LONG_VALUE.hex()},
                    {"uuid": INDICATE, "properties": ["indicate"], "value": "00"},
                    {"uuid": COMMAND, "properties": ["read", "write-without-response"], "value": "00"},
                ],
            },
            {
                "uuid": "180a",
                "characteristics": [
                    {"uuid": "2a29", "properties": ["read"], "value": "707967617474"},
                    {"uuid": "2a25", "properties": ["read"], "value": "", "read_error": 2},
                    {"uuid": "2a26", "properties": ["read"], "value": "", "read_error": 0x0A},
                ],
            },
        ],
    }
    hr.update(hr_overrides)
    return {
        "adapter": {"name": "hci0"},
        "peripherals": [
            hr,
            {
                "address": TAG,
                "name": None,
                "address_type": "random",
                "rssi": -81,
                "services": [
                    {
                        "uuid": "180f",
                        "characteristics": [{"uuid": "2a19", "properties": ["read", "notify"], "value": "21"}],
                    }
                ],
            },
            {
                "address": KEYPAD,
                "name": "Keypad",
                "pairing": "passkey",
                "passkey": 654321,
                "services": [
                    {"uuid": "180f", "characteristics": [{"uuid": "2a19", "properties": ["read"], "value": "07"}]}
                ],
            },
        ],
    }


@dataclass
class Rig:
    """A private bus, a simulated BlueZ on it and a started DBusBackend pointed at it."""

    bus: PrivateBus
    bluez: SimulatedBluez
    backend: pygatt.DBusBackend
    world: World


def make_rig(world: Optional[World] = None, experimental: bool = False, **backend_kwargs: Any) -> Rig:
    """Start everything; the caller stops it with stop_rig."""
    world = world or World.from_dict(world_dict())
    bus = PrivateBus()
    bus.start()
    bluez = SimulatedBluez(world, bus.address, adapter="hci0", experimental=experimental, temporary_timeout_s=30)
    try:
        bluez.start()
        backend = pygatt.DBusBackend(bus_address=bus.address, **backend_kwargs)
        backend.start()
    except BaseException:
        bluez.stop()
        bus.stop()
        raise
    return Rig(bus, bluez, backend, world)


def stop_rig(rig: Rig) -> None:
    rig.backend.stop()
    rig.bluez.stop()
    rig.bus.stop()


def running_rig() -> Iterator[Rig]:
    """Body of the ``rig`` fixtures: a started rig; at the end checks that no pygatt thread is left."""
    before = set(threading.enumerate())
    started = make_rig()
    try:
        yield started
    finally:
        stop_rig(started)
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive() and t.name.startswith("pygatt")]
    assert leftover == [], f"threads left behind: {leftover}"


class Collector:
    """A notification callback that records what it gets and on which thread."""

    def __init__(self) -> None:
        self.values: List[Tuple[int, bytes]] = []
        self.threads: List[str] = []
        self.event = threading.Event()
        self.expected = 0

    def __call__(self, handle: int, value: bytearray) -> None:
        self.values.append((handle, bytes(value)))
        self.threads.append(threading.current_thread().name)
        if self.expected and len(self.values) >= self.expected:
            self.event.set()

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        self.expected = count
        if len(self.values) >= count:
            return True
        return self.event.wait(timeout)
