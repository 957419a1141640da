"""The simulated gatttool against the REAL one, byte for byte, where no radio is needed.

Both run on a pty with TERM=dumb and get the same commands; on this machine the
real gatttool has no adapter, so the simulator runs a world without one too.
Whatever differs is a bug in the simulator (or a difference to explain here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pexpect
import pytest

from pygatt.testing import World
from pygatt.testing.world import Adapter

pytestmark = [
    pytest.mark.bluez,
    pytest.mark.skipif(
        shutil.which("gatttool") is None, reason="BlueZ's gatttool is not installed (apt-get install bluez)"
    ),
]

COMMANDS = [
    "help",
    "char-read-hnd 0x0001",
    "char-read-uuid 2a19",
    "char-write-req 0x0001 0100",
    "char-write-cmd 0x0001 0100",
    "characteristics",
    "char-desc",
    "primary",
    "mtu 50",
    "sec-level",
    "sec-level HIGH",
    "sec-level",
    "sec-level bogus",
    "bogus-command",
    "",
    "connect",
    "connect 11:22:33:44:55:66",
    "char-read-hnd 1",
    "disconnect",
]


def transcript(argv, commands):
    child = pexpect.spawn(argv[0], argv[1:], env=dict(os.environ, TERM="dumb", LC_ALL="C"), encoding="utf-8", timeout=5)
    child.delaybeforesend = None
    out = []
    try:
        for command in [None, *commands]:
            if command is not None:
                child.sendline(command)
            text, deadline = "", time.monotonic() + 1.5
            while time.monotonic() < deadline:  # gather until the output settles on a prompt
                try:
                    text += child.read_nonblocking(65536, timeout=0.15)
                except pexpect.TIMEOUT:
                    if text.endswith("]> "):
                        break
            out.append(text)
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return out, child.exitstatus


def test_simulator_prints_what_real_gatttool_prints_without_an_adapter(tmp_path):
    world = World(adapter=Adapter(present=False)).write(tmp_path / "no-adapter.json")
    real, real_status = transcript(["gatttool", "-i", "hci0", "-I"], COMMANDS)
    simulated, simulated_status = transcript(
        [sys.executable, "-m", "pygatt.testing.sim", "gatttool", "--world", str(world), "--", "-i", "hci0", "-I"],
        COMMANDS,
    )
    assert real_status == simulated_status == 0
    for command, expected, got in zip([None, *COMMANDS], real, simulated):
        assert got == expected, f"after {command!r}"


@pytest.mark.parametrize(
    "tool, args",
    [
        ("hcitool", ["-i", "hci0", "lescan"]),
        ("hcitool", ["-i", "hci0", "rssi", "11:22:33:44:55:66"]),
        ("hciconfig", ["hci0", "reset"]),
        ("btmgmt", ["--timeout", "2", "--index", "0", "find", "-l"]),
    ],
)
def test_simulated_tools_fail_like_the_real_ones_without_an_adapter(tmp_path, tool, args):
    # bluetoothctl is not compared: without a system D-Bus the real one aborts (SIGABRT), seen on these machines
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    world = World(adapter=Adapter(present=False)).write(tmp_path / "no-adapter.json")
    env = dict(os.environ, LC_ALL="C")
    real = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)
    simulated = subprocess.run(
        [sys.executable, "-m", "pygatt.testing.sim", tool, "--world", str(world), "--", *args],
        capture_output=True,
        text=True,
        timeout=10,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert (simulated.returncode, simulated.stdout, simulated.stderr) == (real.returncode, real.stdout, real.stderr)
