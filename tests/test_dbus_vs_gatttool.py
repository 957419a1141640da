"""The same program on DBusBackend and on GATTToolBackend sees the same handles, values and errors.

Both backends run against simulators serving the same JSON world: the D-Bus
backend against the simulated org.bluez on a private dbus-daemon, the gatttool
backend against the simulated gatttool through a real pty. No radio here.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import World, example_world_path, load_world
from pygatt.util import uuid16_to_uuid
from tests.dbus_sim import requires_daemon
from tests.helpers import wait_for

pytestmark = [requires_daemon, pytest.mark.simulator, pytest.mark.dbus]

ADDRESS = "C4:7C:8D:6A:3E:01"
# The GAP service (Device Name, Appearance) is BlueZ's own: it exports no D-Bus objects for it.
HIDDEN_BY_BLUEZ = {uuid16_to_uuid(0x2A00), uuid16_to_uuid(0x2A01)}


@pytest.fixture(scope="module")
def world() -> World:
    return load_world("heart-rate")


@pytest.fixture
def both(world: World, tmp_path: Path) -> Iterator[Tuple[Any, Any]]:
    """A device connected through each backend, on the same world."""
    before = set(threading.enumerate())
    gatttool = pygatt.GATTToolBackend(tools=ToolCommands.simulated(str(example_world_path("heart-rate"))))
    dbus = pygatt.DBusBackend(simulate=str(world.write(tmp_path / "world.json")))
    try:
        gatttool.start(reset_on_start=False)
        dbus.start()
        yield gatttool.connect(ADDRESS), dbus.connect(ADDRESS)
    finally:
        dbus.stop()
        gatttool.stop()
    assert wait_for(lambda: set(threading.enumerate()) <= before, 3)


def described(characteristics: Dict[Any, Any]) -> Dict[Any, Tuple[int, Dict[Any, int]]]:
    return {u: (c.handle, dict(c.descriptors)) for u, c in characteristics.items() if u not in HIDDEN_BY_BLUEZ}


def test_discovery_gives_the_same_handles_and_descriptors(both: Tuple[Any, Any]) -> None:
    gatttool, dbus = both
    from_gatttool = described(gatttool.discover_characteristics())
    from_dbus = described(dbus.discover_characteristics())
    assert from_dbus == from_gatttool
    assert len(from_dbus) >= 6


def test_reads_give_the_same_values_and_errors(both: Tuple[Any, Any]) -> None:
    gatttool, dbus = both
    outcomes: List[Tuple[Any, Any]] = []
    for device in (gatttool, dbus):
        seen: Dict[Any, Any] = {}
        for char_uuid, characteristic in sorted(device.discover_characteristics().items(), key=lambda i: i[1].handle):
            if char_uuid in HIDDEN_BY_BLUEZ:
                continue
            for handle in (characteristic.handle, *characteristic.descriptors.values()):
                try:
                    seen[handle] = bytes(device.char_read_handle(handle))
                except exceptions.GATTError as exc:
                    seen[handle] = (type(exc).__name__, exc.att_error)
        outcomes.append(seen)
    from_gatttool, from_dbus = outcomes
    assert from_dbus == from_gatttool
    assert ("ReadNotPermittedError", 0x02) in from_dbus.values()


def test_the_same_notifications(both: Tuple[Any, Any]) -> None:
    received: List[List[Tuple[int, bytes]]] = []
    for device in both:
        got: List[Tuple[int, bytes]] = []
        device.subscribe("2a37", callback=lambda handle, value, got=got: got.append((handle, bytes(value))))
        assert wait_for(lambda got=got: len(got) == 5)
        received.append(got)
    assert received[0] == received[1]


def test_the_same_write_errors(both: Tuple[Any, Any]) -> None:
    kinds = []
    for device in both:
        with pytest.raises(exceptions.WriteNotPermittedError) as denied:
            device.char_write("2a38", b"\x01")
        kinds.append(denied.value.att_error)
        device.char_write("2a39", b"\x01")
    assert kinds == [0x03, 0x03]
