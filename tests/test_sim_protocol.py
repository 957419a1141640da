"""The simulated gatttool's connected-state output, byte for byte against docs/gatttool-protocol.md.

These are the formats as written down; tests/test_sim_vs_real_gatttool_connected.py
compares the simulator with the real binary (through the ATT peripheral and its shim).
"""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

from pygatt.testing import load_world

pytestmark = pytest.mark.simulator

ADDRESS = "C4:7C:8D:6A:3E:01"
BLUE_PROMPT = f"\x1b[0;94m[{ADDRESS}]\x1b[0m[LE]> "


@pytest.fixture
def gatttool(tmp_path):
    world = load_world("heart-rate")
    world.peripherals[0].disconnect_after_ops = 12
    path = world.write(tmp_path / "world.json")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pygatt.testing.sim", "gatttool", "--world", str(path), "--", "-I"],
        env=dict(os.environ, TERM="dumb"),
        encoding="utf-8",
        timeout=5,
    )
    child.delaybeforesend = None
    child.expect_exact("[                 ][LE]> ")
    child.sendline(f"connect {ADDRESS}")
    child.expect_exact(f"Attempting to connect to {ADDRESS}\r\n[{ADDRESS}][LE]> ")
    child.expect_exact("Connection successful\r\n" + BLUE_PROMPT)
    yield child
    child.close(force=True)


def exchange(child, command, expected):
    child.sendline(command)
    child.expect_exact(command + "\r\n" + BLUE_PROMPT)  # the prompt comes back before the answer
    child.expect_exact(expected)


def test_value_lines_end_with_a_space_and_use_the_exact_separators(gatttool):
    exchange(gatttool, "char-read-hnd 0x0010", "\rCharacteristic value/descriptor: 5a \r\n" + BLUE_PROMPT)
    exchange(gatttool, "char-read-uuid 2a19", "\rhandle: 0x0010 \t value: 5a \r\n" + BLUE_PROMPT)
    exchange(gatttool, "char-read-hnd 10", "\rCharacteristic value/descriptor: 5a \r\n")  # base 16, 0x optional


def test_discovery_lines(gatttool):
    exchange(
        gatttool,
        "primary",
        "\rattr handle: 0x0001, end grp handle: 0x0005 uuid: 00001800-0000-1000-8000-00805f9b34fb\r\n",
    )
    exchange(
        gatttool,
        "characteristics 0x0007 0x0009",
        "\rhandle: 0x0007, char properties: 0x10, char value handle: 0x0008, "
        "uuid: 00002a37-0000-1000-8000-00805f9b34fb\r\n",
    )
    exchange(gatttool, "char-desc 0x0009 0x0009", "\rhandle: 0x0009, uuid: 00002902-0000-1000-8000-00805f9b34fb\r\n")


def test_errors_are_red_and_exact(gatttool):
    exchange(
        gatttool,
        "char-read-hnd 0x0017",
        "\r\x1b[0;91mError: \x1b[0mCharacteristic value/descriptor read failed: Attribute can't be read\r\n",
    )
    gatttool.sendline("char-write-req 0x0003")
    gatttool.expect_exact("char-write-req 0x0003\r\nUsage: char-write-req <handle> <new value>\r\n" + BLUE_PROMPT)
    gatttool.sendline("char-write-req 0 01")
    gatttool.expect_exact("\x1b[0;91mError: \x1b[0mA valid handle is required\r\n")


def test_notifications_and_indications(gatttool):
    exchange(gatttool, "char-write-req 0x0009 0200", "\rCharacteristic value was written successfully\r\n")
    gatttool.expect_exact("\rIndication   handle = 0x0008 value: 00 48 \r\n" + BLUE_PROMPT)
    exchange(gatttool, "char-write-req 0x0011 0100", "\rCharacteristic value was written successfully\r\n")


def test_mtu_trap_and_write_cmd_silence(gatttool):
    gatttool.sendline("mtu 10")
    gatttool.expect_exact("\x1b[0;91mError: \x1b[0mInvalid value. Minimum MTU size is 23\r\n")
    gatttool.sendline("mtu 100")
    gatttool.expect_exact("\x1b[0;91mCommand Failed: \x1b[0mMTU exchange can only occur once per connection.\r\n")
    gatttool.sendline("char-write-cmd 0x0011 0100")
    gatttool.expect_exact("char-write-cmd 0x0011 0100\r\n" + BLUE_PROMPT)
    gatttool.sendline("sec-level")
    gatttool.expect_exact("sec-level\r\nsec-level: low\r\n")


def test_remote_disconnect_is_a_glib_warning_and_an_uncoloured_prompt(gatttool):
    for _ in range(12):
        gatttool.sendline("char-read-hnd 0x0003")
    gatttool.expect(r"\(gatttool:\d+\): GLib-.*WARNING.* \*\*: .*: Invalid file descriptor\.")
    gatttool.sendline("char-read-hnd 0x0003")
    gatttool.expect_exact("\x1b[0;91mCommand Failed: \x1b[0mDisconnected\r\n" + f"[{ADDRESS}][LE]> ")


def test_eof_exits_cleanly(gatttool):
    gatttool.sendeof()
    gatttool.expect(pexpect.EOF)
    gatttool.close()
    assert gatttool.exitstatus == 0
