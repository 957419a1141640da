"""Shared set-up for the tests that run BlueZ's REAL gatttool against the ATT peripheral.

The real ``/usr/bin/gatttool`` runs with the project's LD_PRELOAD shim
(``pygatt/testing/att/l2cap_shim.c``, built here with gcc): its L2CAP socket
becomes a Unix socket to :class:`~pygatt.testing.att.server.ATTPeripheralServer`,
which answers real ATT PDUs from a simulated world. No radio is involved: the
peripheral is software, everything between the library and the ATT bytes is real.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

import pygatt
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import Characteristic, Descriptor, NotifyStream, Peripheral, Service, World
from pygatt.testing.att.realtool import ShimUnavailable, build_shim, missing_requirements, real_gatttool_commands
from pygatt.testing.att.server import ATTPeripheralServer
from pygatt.testing.world import full_uuid, layout

ADDRESS = "AA:BB:CC:00:00:01"
RANDOM_ADDRESS = "5D:2B:9F:11:04:7E"
ABSENT_ADDRESS = "AA:BB:CC:00:00:99"
LONG_VALUE = bytes(range(100))  # more than one packet at MTU 23 (22 bytes)
#: ATT error codes a characteristic of the lab world answers with, one characteristic each.
ERROR_CODES = (0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x80, 0x81, 0x82, 0x83)
NOTIFY_VALUES = ["0101", "0202", "0303", "0404", "0505"]
INDICATE_VALUES = ["a1", "a2", "a3"]
CUSTOM_128 = "12345678-1234-5678-1234-56789abcdef0"

REQUIREMENTS = missing_requirements()
needs_real_gatttool = [
    pytest.mark.realtool,
    pytest.mark.skipif(REQUIREMENTS is not None, reason=f"cannot run the real gatttool: {REQUIREMENTS}"),
]


def uses_real_gatttool(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test ``realtool`` and skip it, saying why, when gatttool or gcc is missing."""
    for mark in needs_real_gatttool:
        test = mark(test)
    return test


def error_uuid(code: int) -> str:
    """The UUID of the lab characteristic that fails with ``code``."""
    return f"{0xE000 + code:04x}"


def lab_world(**peripheral_settings: object) -> World:
    """A peripheral with every kind of characteristic the tests need.

    Args:
        **peripheral_settings: Peripheral fields to override (mtu, response_delay_s, ...).

    Returns:
        The world: the lab peripheral (public address) and a small one with a random address.
    """
    characteristics = [
        Characteristic("ff01", ["read", "write", "write-without-response"], value="00"),
        Characteristic("ff02", ["read"], value=LONG_VALUE.hex()),
        Characteristic(
            "ff03",
            ["notify", "indicate"],
            notify=NotifyStream(trigger="subscribe", interval_s=0.02, count=len(NOTIFY_VALUES), values=NOTIFY_VALUES),
        ),
        Characteristic(
            "ff04",
            ["indicate"],
            notify=NotifyStream(
                trigger="subscribe", interval_s=0.02, count=len(INDICATE_VALUES), values=INDICATE_VALUES
            ),
        ),
        Characteristic("ff05", ["write"], value="00"),  # write only: reads fail with 0x02
        Characteristic("ff06", ["notify"]),  # values only from server.notify()
        Characteristic(CUSTOM_128, ["read", "write"], value="c0ffee", descriptors=[Descriptor("2901", "6c6162")]),
    ]
    errors = [
        Characteristic(error_uuid(code), ["read", "write"], read_error=code, write_error=code) for code in ERROR_CODES
    ]
    settings = {"mtu": 247, **peripheral_settings}
    lab = Peripheral(
        address=ADDRESS,
        name="Lab",
        services=[
            Service("1800", [Characteristic("2a00", ["read"], value=b"Lab".hex())]),
            Service("feed", characteristics),
            Service("fee0", errors),
        ],
        **settings,  # type: ignore[arg-type]
    )
    small = Peripheral(
        address=RANDOM_ADDRESS,
        address_type="random",
        services=[Service("180f", [Characteristic("2a19", ["read"], value="21")])],
    )
    return World(peripherals=[lab, small])


def value_handle(world: World, uuid: str, address: str = ADDRESS) -> int:
    """The value handle the world's layout gives characteristic ``uuid``."""
    peripheral = world.find(address)
    assert peripheral is not None
    wanted = full_uuid(uuid)
    for _declaration, _properties, handle, found in layout(peripheral).characteristics:
        if found == wanted:
            return int(handle)
    raise KeyError(uuid)


@dataclass
class RealToolRig:
    """A running peripheral server and the tool commands that reach it through the real gatttool."""

    server: ATTPeripheralServer
    world: World
    world_path: Path
    tools: ToolCommands

    def handle(self, uuid: str, address: str = ADDRESS) -> int:
        """The value handle of ``uuid``."""
        return value_handle(self.world, uuid, address)

    def opcodes(self, address: str = ADDRESS) -> List[int]:
        """The opcodes of every PDU gatttool sent to ``address`` so far."""
        return [p[0] for p in self.server.received(address)]


@pytest.fixture(scope="session")
def shim_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The L2CAP shim, built once per test session with gcc."""
    if REQUIREMENTS is not None:
        pytest.skip(f"cannot run the real gatttool: {REQUIREMENTS}")
    try:
        return build_shim(tmp_path_factory.mktemp("shim"))
    except ShimUnavailable as exc:
        pytest.skip(f"the L2CAP shim cannot be built here: {exc}")


@pytest.fixture
def rig_factory(shim_library: Path, tmp_path: Path) -> Iterator[Callable[[World], RealToolRig]]:
    """Start an ATT peripheral server for a world; every server started is stopped afterwards."""
    servers: List[ATTPeripheralServer] = []
    dirs: List[str] = []

    def make(world: World) -> RealToolRig:
        socket_dir = tempfile.mkdtemp(prefix="att-", dir="/tmp")  # short: AF_UNIX paths are limited to 107 bytes
        dirs.append(socket_dir)
        world_path = world.write(tmp_path / f"world-{len(servers)}.json")
        server = ATTPeripheralServer(world, socket_dir)
        server.start()
        servers.append(server)
        tools = real_gatttool_commands(shim_library, socket_dir, str(world_path))
        return RealToolRig(server, world, world_path, tools)

    yield make
    for server in servers:
        server.stop()
    for socket_dir in dirs:
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture
def rig(rig_factory: Callable[[World], RealToolRig]) -> RealToolRig:
    """The lab world served over ATT."""
    return rig_factory(lab_world())


def gatttool_children() -> List[int]:
    """PIDs of this process's children that run gatttool (through the shim's ``env`` or directly)."""
    found = []
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"gatttool" in cmdline:
            state = stat.rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(entry.name))
    return found


@pytest.fixture
def backend_factory(rig: RealToolRig) -> Iterator[Callable[..., pygatt.GATTToolBackend]]:
    """Started GATTTool backends on the real gatttool; each is stopped afterwards."""
    backends: List[pygatt.GATTToolBackend] = []

    def make(tools: Optional[ToolCommands] = None, **kwargs: object) -> pygatt.GATTToolBackend:
        backend = pygatt.GATTToolBackend(tools=tools or rig.tools, **kwargs)  # type: ignore[arg-type]
        backend.start(reset_on_start=False)
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.stop()


@pytest.fixture
def backend(backend_factory: Callable[..., pygatt.GATTToolBackend]) -> pygatt.GATTToolBackend:
    """One started backend on the lab world."""
    return backend_factory()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (a deadline for a condition, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Collector:
    """A notification callback that keeps what it got, thread-safely."""

    def __init__(self) -> None:
        self.values: List[bytes] = []
        self.handles: List[int] = []
        self._lock = threading.Lock()

    def __call__(self, handle: int, value: bytearray) -> None:
        with self._lock:
            self.handles.append(handle)
            self.values.append(bytes(value))

    def count(self) -> int:
        with self._lock:
            return len(self.values)
