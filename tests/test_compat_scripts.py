"""Unchanged pygatt 5.0.0 user scripts run against the mocked gatttool child."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "compat_scripts"
USER_ADDRESS = "01:23:45:67:89:AB"
USER_UUID = 0xA1E8F5B1  # the 32-bit prefix of the README's a1e8f5b1-696b-... UUID


@pytest.fixture
def user_device(fake_spawn):
    def configure(child):
        child.known_address = USER_ADDRESS
        # read, write, notify; value handle 0x000f, its CCCD 0x0010
        child.add_characteristic(0x1A, "a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b", b"\x2a", cccd=True)
        original = child.cmd_char_write_req

        def write_then_notify(args):
            original(args)
            if args == ["0x0010", "0100"]:
                for n in range(3):
                    child.notify(0x000F, bytes([n, 0xAB]))

        child.cmd_char_write_req = write_then_notify

    fake_spawn.configure = configure
    return fake_spawn


def run(name, capsys):
    runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    return capsys.readouterr().out


def test_readme_read_example(user_device, capsys, monkeypatch):
    monkeypatch.setattr("pygatt.backends.gatttool.gatttool.GATTToolBackend.reset", lambda self: None)
    out = run("read_characteristic.py", capsys)
    assert out == "value: bytearray(b'*')\n"
    assert user_device.children[0].sent[-2] == "char-read-uuid a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b"
    assert not user_device.children[0].alive  # adapter.stop() ended gatttool


def test_readme_notification_example(user_device, capsys, monkeypatch):
    monkeypatch.setattr("pygatt.backends.gatttool.gatttool.GATTToolBackend.reset", lambda self: None)
    out = run("notifications.py", capsys)
    assert out.splitlines() == ["Received data: b'00ab'", "Received data: b'01ab'", "Received data: b'02ab'"]
    assert f"connect {USER_ADDRESS} random" in user_device.children[0].sent


def test_upstream_idioms_and_import_paths(user_device, capsys):
    out = run("errors_and_handles.py", capsys)
    assert out.splitlines() == [
        "connect failed: NotConnectedError",
        "battery handle: 0xc",
        "battery: 90",
        "mtu: 64",
        "characteristics: 5 True",
        "read failed: True",
        "missing uuid: AttributeNotFoundError",
        "not connected after disconnect",
    ]
    sent = user_device.children[0].sent
    assert "char-write-req 0x000f 00ff" in sent and "char-write-cmd 0x000d 0100" in sent
