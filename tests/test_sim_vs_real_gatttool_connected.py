"""The simulated gatttool against the REAL one for connected commands, byte for byte.

Both run on a pty and get the same commands against the same world: the
simulator reads the world itself; the real gatttool reaches it over ATT through
the LD_PRELOAD shim and :class:`~pygatt.testing.att.server.ATTPeripheralServer`.
The only normalisation is of what cannot be equal: the process id and the
clock in GLib's warning on a remote disconnect.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import List, Optional, Sequence, Tuple

import pexpect
import pytest

from pygatt.testing import load_world
from pygatt.testing.att.realtool import gatttool_command
from pygatt.testing.world import layout
from tests.realtool_support import (
    ADDRESS,
    CUSTOM_128,
    RANDOM_ADDRESS,
    error_uuid,
    lab_world,
    needs_real_gatttool,
    rig_factory,  # noqa: F401 - fixtures
    shim_library,  # noqa: F401
    value_handle,
)

pytestmark = needs_real_gatttool

GLIB_WARNING = re.compile(r"\(gatttool:\d+\)(: GLib-.*?)\d\d:\d\d:\d\d\.\d\d\d")


def normalise(text: str) -> str:
    return GLIB_WARNING.sub(r"(gatttool:PID)\1HH:MM:SS.mmm", text)


def transcript(
    argv: Sequence[str], commands: Sequence[str], term: str = "dumb", columns: int = 80
) -> Tuple[List[str], Optional[int]]:
    """What the program printed after its start and after each command, on a pty."""
    env = dict(os.environ, TERM=term, LC_ALL="C")
    child = pexpect.spawn(argv[0], list(argv[1:]), env=env, encoding="utf-8", timeout=5, dimensions=(24, columns))
    child.delaybeforesend = None
    out = []
    try:
        for command in [None, *commands]:
            if command is not None:
                child.sendline(command)
            text, deadline = "", time.monotonic() + 3.0
            while time.monotonic() < deadline:  # gather until the output rests (on a prompt)
                try:
                    text += child.read_nonblocking(65536, timeout=0.25)
                except pexpect.TIMEOUT:
                    if text.endswith("]> ") or text.endswith("descriptor.\r\n"):
                        break
                except pexpect.EOF:
                    text += "<the program ended>"
                    break
            out.append(normalise(text))
            if not child.isalive():
                break
        if child.isalive():
            child.sendline("exit")
            child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return out, child.exitstatus


def compare(rig, shim_library, commands: Sequence[str], term: str = "dumb", columns: int = 80) -> None:  # noqa: F811
    real, real_status = transcript(
        [*gatttool_command(shim_library, rig.server.directory), "-I"], commands, term, columns
    )
    simulated, simulated_status = transcript(
        [sys.executable, "-m", "pygatt.testing.sim", "gatttool", "--world", str(rig.world_path), "--", "-I"],
        commands,
        term,
        columns,
    )
    assert real_status == simulated_status == 0
    for command, expected, got in zip([None, *commands], real, simulated):
        assert got == expected, f"after {command!r}"


def h(uuid: str, address: str = ADDRESS) -> str:
    return f"0x{value_handle(lab_world(), uuid, address):04x}"


def reads() -> List[str]:
    return [
        f"char-read-hnd {h('2a00')}",
        f"char-read-hnd {h('ff07')}",  # an empty value
        "char-read-hnd 0x0001",  # a service declaration
        "char-read-hnd 0x0002",  # a characteristic declaration
        f"char-read-hnd {h('ff02')}",  # long: Read Blob
        f"char-read-hnd {h('ff05')}",  # write only
        "char-read-hnd 0x0fff",
        *[f"char-read-hnd {h(error_uuid(code))}" for code in (0x05, 0x08, 0x0E, 0x0F, 0x81, 0x83)],
        "char-read-uuid 2a00",
        "char-read-uuid ff02",
        "char-read-uuid 2803",  # several matches in one response
        "char-read-uuid 2803 0x0010 0x0020",
        f"char-read-uuid {CUSTOM_128}",
        "char-read-uuid dead",
        f"char-read-uuid {error_uuid(0x08)}",
    ]


def writes() -> List[str]:
    rw = h("ff01")
    return [
        f"char-write-req {rw} 01",
        f"char-read-hnd {rw}",
        f"char-write-req {rw} {'5a' * 20}",
        f"char-write-req {rw} {'a5' * 60}",  # prepared writes
        f"char-read-hnd {rw}",
        f"char-write-req {rw} {'11' * 513}",  # longer than an attribute may be
        f"char-write-req {h('ff02')} 01",  # read only
        f"char-write-req {h(error_uuid(0x0D))} 01",
        f"char-write-req 0x{value_handle(lab_world(), 'ff03') + 1:04x} 010203",  # a CCCD takes 2 bytes
        f"char-write-cmd {rw} 42",
        f"char-read-hnd {rw}",
        f"char-write-cmd {rw} {'77' * 30}",  # cut to MTU - 3
        f"char-read-hnd {rw}",
    ]


def test_discovery_commands(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    compare(
        rig,
        shim_library,
        [
            f"connect {ADDRESS}",
            "primary",
            "primary feed",
            "primary dead",
            "included",
            "included 1 5",
            "characteristics",
            "characteristics 1 10",
            "characteristics 1 ffff ff02",
            "characteristics 100 200",
            "char-desc",
            "char-desc 1 5",
            "char-desc 200 300",
            "disconnect",
        ],
    )


def test_reads(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    compare(rig, shim_library, [f"connect {ADDRESS}", *reads(), "disconnect"])


def test_writes(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    compare(rig, shim_library, [f"connect {ADDRESS}", *writes(), "disconnect"])


def test_mtu_then_reads_and_writes_at_the_new_mtu(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    rw = h("ff01")
    compare(
        rig,
        shim_library,
        [
            f"connect {ADDRESS}",
            "mtu 64",
            "mtu 100",  # once per connection
            "char-read-uuid ff02",
            f"char-read-hnd {h('ff02')}",
            f"char-write-cmd {rw} {'33' * 61}",
            f"char-read-hnd {rw}",
            "disconnect",
            f"connect {ADDRESS}",
            "mtu 10",  # refused, and it still counts as the one exchange
            "mtu 100",
        ],
    )


def test_notifications_and_indications(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    compare(
        rig,
        shim_library,
        [
            f"connect {ADDRESS}",
            f"char-write-req 0x{value_handle(lab_world(), 'ff03') + 1:04x} 0100",
            f"char-write-req 0x{value_handle(lab_world(), 'ff04') + 1:04x} 0200",
            f"char-read-hnd {h('2a00')}",
        ],
    )


@pytest.mark.parametrize("size", [1, 11, 12, 13, 14, 15, 16, 20, 100, 512])
def test_long_lines_echo_like_readline_at_80_columns(rig_factory, shim_library, size):  # noqa: F811
    rig = rig_factory(lab_world())
    rw = h("ff01")
    value = "ab" * size
    compare(
        rig,
        shim_library,
        [f"char-write-cmd {rw} {value}", f"connect {ADDRESS}", f"char-write-cmd {rw} {value}", f"char-read-hnd {rw}"],
    )


@pytest.mark.parametrize("columns", [40, 132, 4096])
def test_long_lines_at_other_widths(rig_factory, shim_library, columns):  # noqa: F811
    rig = rig_factory(lab_world())
    rw = h("ff01")
    commands = [f"connect {ADDRESS}"] + [f"char-write-cmd {rw} {'cd' * n}" for n in (5, 20, 60, 250)]
    compare(rig, shim_library, commands, columns=columns)


@pytest.mark.parametrize("size", [1, 5])
def test_xterm_escapes(rig_factory, shim_library, size):  # noqa: F811
    """Bracketed paste on and off, ``ESC[K`` clears, no paste switch on a redraw.

    Only lines that fit the screen: when a line wraps, readline's redraw with TERM=xterm
    depends on how the typed characters arrive and what the screen showed before
    (seen: the same command echoed three different ways), which the simulator does not imitate.
    The library always runs gatttool with TERM=dumb.
    """
    rig = rig_factory(lab_world())
    rw = h("ff01")
    compare(
        rig,
        shim_library,
        [
            f"char-write-cmd {rw} {'ef' * size}",
            f"connect {ADDRESS}",
            f"char-read-hnd {h('2a00')}",
            f"char-write-cmd {rw} {'ef' * size}",
            f"char-read-hnd {h('ff05')}",
            "disconnect",
        ],
        term="xterm",
    )


def test_the_shipped_heart_rate_world(rig_factory, shim_library):  # noqa: F811
    world = load_world("heart-rate")
    rig = rig_factory(world)
    address = world.peripherals[0].address
    values = [f"char-read-hnd 0x{handle:04x}" for _d, _p, handle, _u in layout(world.peripherals[0]).characteristics]
    compare(
        rig,
        shim_library,
        [
            f"connect {address}",
            "primary",
            "characteristics",
            "char-desc",
            *values,
            "char-read-uuid 2a25",
            "char-write-req 0x0009 0100",  # the heart rate CCCD: five notifications, 0.2 s apart
            "char-write-req 0x0009 0000",
            "mtu 512",
            "char-read-uuid 2a00",
        ],
    )


def test_connect_failures_and_random_addresses(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world())
    compare(
        rig,
        shim_library,
        [
            f"connect {RANDOM_ADDRESS}",  # public by default: nobody answers there
            f"connect {RANDOM_ADDRESS} random",
            "char-read-uuid 2a19",
            "disconnect",
            f"connect {ADDRESS}",
            "connect",  # while connected: ignored
            "sec-level medium",
            "sec-level",
            "disconnect",
            "char-read-hnd 1",
        ],
    )


def test_remote_disconnect(rig_factory, shim_library):  # noqa: F811
    rig = rig_factory(lab_world(disconnect_after_ops=2))
    compare(
        rig,
        shim_library,
        [
            f"connect {ADDRESS}",
            f"char-read-hnd {h('2a00')}",
            f"char-read-hnd {h('2a00')}",  # the peripheral drops the link after answering
            f"char-read-hnd {h('2a00')}",
            f"connect {ADDRESS}",
            f"char-read-hnd {h('2a00')}",
        ],
    )
