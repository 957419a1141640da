"""Races between threads found in a concurrency review, each against the simulators.

Every scenario that could hang runs its action on a thread joined with a deadline.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import World, load_world
from pygatt.testing.sim.bgapi import SimulatedDongle
from tests.helpers import run_at_once, wait_for

pytestmark = pytest.mark.simulator

HR_ADDRESS = "C4:7C:8D:6A:3E:01"

MakeBackend = Callable[..., Any]


DBUS_AVAILABLE = shutil.which("dbus-daemon") is not None
DBUS = pytest.param(
    "dbus",
    marks=[pytest.mark.dbus, pytest.mark.skipif(not DBUS_AVAILABLE, reason="dbus-daemon is not installed")],
)


def _backends(kind: str, tmp_path: Path) -> Iterator[MakeBackend]:
    """A maker of started backends of ``kind`` on their simulators; stops them all at the end."""
    backends: List[Any] = []
    dongles: List[SimulatedDongle] = []

    def make(world: World) -> Any:
        if kind == "bgapi":
            dongle = SimulatedDongle(world)
            dongles.append(dongle)
            backend: Any = pygatt.BGAPIBackend(dongle.open_pty(), comports=dongle.comports)
        else:
            path = str(world.write(tmp_path / f"world{len(backends)}.json"))
            if kind == "gatttool":
                backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(path))
            else:
                backend = pygatt.DBusBackend(simulate=path)
        backend.start()
        backends.append(backend)
        return backend

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for backend in backends:
        backend.stop()
    for dongle in dongles:
        dongle.close()


@pytest.fixture(params=["gatttool", "bgapi"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBackend]:
    yield from _backends(request.param, tmp_path)


@pytest.fixture(params=["gatttool", "bgapi", DBUS])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeBackend]:
    """make_backend, with the D-Bus backend too."""
    yield from _backends(request.param, tmp_path)


def sensor(**overrides: Any) -> World:
    world = load_world("heart-rate")
    for key, value in overrides.items():
        setattr(world.peripherals[0], key, value)
    return world


def _hold_until_dropped(make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch, backend: Any) -> None:
    """Hold each connect between "the link is up" and "the backend registered it" until the peer has
    dropped that link and the loss was handled as far as it goes without the registration."""
    if make_backend.kind == "gatttool":  # type: ignore[attr-defined]
        import pygatt.backends.gatttool.gatttool as module

        real_link = module.GATTToolLink

        def held_link(session: Any, *args: Any) -> Any:
            assert wait_for(lambda: not session.connected, 3)
            assert wait_for(lambda: backend._dispatcher.pending() == 0, 3)
            time.sleep(0.1)  # the callback thread finishes the loss it took
            return real_link(session, *args)

        monkeypatch.setattr(module, "GATTToolLink", held_link)
    else:
        import pygatt.backends.bgapi.bgapi as module

        real_open = module.open_connection

        def held_open(*args: Any, **kwargs: Any) -> Any:
            link = real_open(*args, **kwargs)
            assert wait_for(lambda: not link.connected, 3)
            return link

        monkeypatch.setattr(module, "open_connection", held_open)


def test_a_link_dropped_before_connect_registered_it_is_not_reported_up(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer drops the link right after it came up, before connect() registered it: connect() fails,
    or the device learns of the loss. It never stays "connected" over a dead link, unheard of."""
    backend = make_backend(sensor(disconnect_after_s=0.2))
    _hold_until_dropped(make_backend, monkeypatch, backend)
    try:
        device = backend.connect(HR_ADDRESS)
    except exceptions.NotConnectedError:
        return
    assert wait_for(lambda: not device.connected, 2), "the device says it is connected over a dead link"


def test_a_link_dropped_before_reconnect_registered_it_is_not_reported_up(
    make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for reconnect(): it fails, or the device hears of the loss (its disconnect callback)."""
    backend = make_backend(sensor(disconnect_after_s=0.2))
    device = backend.connect(HR_ADDRESS)
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    assert wait_for(lambda: drops == [device], 3)
    _hold_until_dropped(make_backend, monkeypatch, backend)
    try:
        backend.reconnect(device, 5)
    except exceptions.NotConnectedError:
        assert not device.connected
        return
    assert wait_for(lambda: not device.connected and len(drops) == 2, 2), "reconnected over a dead link, unheard of"


def test_two_threads_connecting_one_address_get_one_device(make_backend: MakeBackend) -> None:
    """connect() of an address already connected returns its device; so does a connect() racing another
    to the same address: one link, one device (gatttool opened a process and a device for each)."""
    world = sensor(connect_delay_s=0.3)
    backend = make_backend(world)
    results: List[Any] = [None, None]

    def connect(index: int) -> None:
        try:
            results[index] = backend.connect(HR_ADDRESS, timeout=5)
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=connect, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "a connect hung"
    assert results[0] is results[1], results
    assert results[0].char_read_handle(0x0010) == bytearray([0x5A])


def test_connect_while_the_address_auto_reconnects_leaves_one_link(make_backend: MakeBackend) -> None:
    """connect() to an address whose device is auto-reconnecting: afterwards one device holds the link,
    not two (gatttool's connect did not wait for the reconnect, and opened a second link beside it)."""
    world = sensor(disconnect_after_ops=1, connect_delay_s=0.5)
    backend = make_backend(world)
    device = backend.connect(HR_ADDRESS, timeout=5, auto_reconnect=True)
    drops: List[Any] = []
    device.register_disconnect_callback(drops.append)
    device.char_read_handle(0x0010)  # the peer drops the link after this; the reconnect starts at once
    assert wait_for(lambda: drops == [device], 3)
    time.sleep(0.1)  # the reconnect attempt is inside its 0.5 s connect
    other = backend.connect(HR_ADDRESS, timeout=5)
    for thread in [t for t in threading.enumerate() if t.name.startswith("pygatt-reconnect-")]:
        thread.join(10)
        assert not thread.is_alive()
    connected = {id(d): d for d in (device, other) if d.connected}
    assert len(connected) == 1, f"two devices hold a link to {HR_ADDRESS}"


def test_reconnects_of_one_device_from_several_threads_all_succeed(any_backend: MakeBackend) -> None:
    """reconnect() of a dropped device from several threads at once (the caller's and the reconnector's
    may meet the same way): one connects, the others find it connected; none fails (D-Bus raised
    "A connection ... is being opened already" in all but one)."""
    backend = any_backend(sensor(disconnect_after_ops=1, connect_delay_s=0.3))
    device = backend.connect(HR_ADDRESS)
    device.char_read_handle(0x0010)  # the peer drops the link after this
    assert wait_for(lambda: not device.connected, 5)
    assert run_at_once(lambda: backend.reconnect(device, 5), threads=3) == []
    assert device.connected
