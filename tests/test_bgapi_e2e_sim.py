"""BGAPIBackend end to end against the simulated BLED112 of pygatt.testing.

No dongle exists on this machine: every test here talks to the simulated dongle
(``pygatt.testing.sim.bgapi.SimulatedDongle``) through a real pseudo-terminal,
opened with a real ``serial.Serial``, or through a real TCP socket opened with
``serial.serial_for_url``. The world is the shipped ``heart-rate`` example, the
same one the simulated gatttool serves.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Iterator, List, Tuple

import pytest

from pygatt import BGAPIBackend, BLEAddressType
from pygatt.backends.bgapi.device import BGAPIBLEDevice
from pygatt.backends.bgapi.exceptions import BGAPIError, ExpectedResponseTimeout
from pygatt.exceptions import NotConnectedError, ReadNotPermittedError
from pygatt.testing import load_world
from pygatt.testing.sim.bgapi import SimulatedDongle
from tests import helpers

pytestmark = pytest.mark.simulator

HRM = "C4:7C:8D:6A:3E:01"
OTHER = "5D:2B:9F:11:04:7E"


wait_for = functools.partial(helpers.wait_for, timeout=5.0)  # a simulated dongle answers within milliseconds


@pytest.fixture
def dongle() -> Iterator[SimulatedDongle]:
    simulated = SimulatedDongle(load_world("heart-rate"), reset_delay_s=0.1)
    yield simulated
    simulated.close()


@pytest.fixture(params=["pty", "socket"])
def backend(request: pytest.FixtureRequest, dongle: SimulatedDongle) -> Iterator[BGAPIBackend]:
    port = dongle.open_pty() if request.param == "pty" else dongle.open_socket()
    adapter = BGAPIBackend(port, comports=dongle.comports)
    adapter.start(reset=False)
    yield adapter
    adapter.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("pygatt-bgapi-reader")]


@pytest.fixture
def device(backend: BGAPIBackend) -> BGAPIBLEDevice:
    return backend.connect(HRM)


def test_scan_sees_the_world(backend: BGAPIBackend) -> None:
    found = {d["address"]: d for d in backend.scan(timeout=0.5)}
    assert set(found) == {HRM, OTHER}
    assert found[HRM]["name"] == "Pulse HR" and found[HRM]["rssi"] == -58
    assert found[HRM]["packet_data"]["scan_response_packet"]["complete_local_name"] == "Pulse HR"
    assert found[OTHER]["rssi"] == -81


def test_read_write_discover(device: BGAPIBLEDevice) -> None:
    assert device.char_read("2a00") == bytearray(b"Pulse HR")
    assert device.char_read_long("2a00") == bytearray(b"Pulse HR")
    chars = device.discover_characteristics()
    assert len(chars) == 8
    handle = device.get_handle("2a39")
    device.char_write_handle(handle, b"\x01")
    device.char_write("2a39", b"\x02", wait_for_response=False)
    with pytest.raises(ReadNotPermittedError) as info:
        device.char_read("2a25")
    assert isinstance(info.value, BGAPIError) and info.value.att_error == 2


def test_subscribe_gets_the_notify_stream_on_the_callback_thread(device: BGAPIBLEDevice) -> None:
    got: List[Tuple[bytes, str]] = []
    device.subscribe("2a37", callback=lambda h, v: got.append((bytes(v), threading.current_thread().name)))
    assert wait_for(lambda: len(got) == 5)
    assert [v for v, _ in got] == [bytes.fromhex(x) for x in ("0048", "004a", "004c", "004b", "0049")]
    assert {name for _, name in got} == {"pygatt-bgapi-callbacks"}


def test_random_address_and_several_connections(backend: BGAPIBackend) -> None:
    first = backend.connect(HRM)
    second = backend.connect(OTHER, address_type=BLEAddressType.random)
    assert first.handle != second.handle
    results: List[bytes] = []

    def read(device: BGAPIBLEDevice) -> None:
        for _ in range(20):
            results.append(bytes(device.char_read("2a19")))

    threads = [threading.Thread(target=read, args=(d,)) for d in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(set(results)) == [b"\x21", b"\x5a"] and len(results) == 40
    assert results.count(b"\x5a") == 20


def test_rssi_bond_mac(device: BGAPIBLEDevice, backend: BGAPIBackend) -> None:
    assert isinstance(device.get_rssi(), int)
    device.bond()
    assert backend.get_mac() == "00:07:80:AA:BB:CC"
    assert device.exchange_mtu(247) == 23


def test_remote_disconnect_fires_the_callback(device: BGAPIBLEDevice, dongle: SimulatedDongle) -> None:
    lost: List[str] = []
    device.register_disconnect_callback(lambda d: lost.append(d.address))
    dongle.disconnect(HRM)
    assert wait_for(lambda: lost == [HRM])
    with pytest.raises(NotConnectedError):
        device.char_read("2a00")


def test_unplugged_dongle_fails_every_link_once(backend: BGAPIBackend, dongle: SimulatedDongle) -> None:
    first = backend.connect(HRM)
    second = backend.connect(OTHER, address_type=BLEAddressType.random)
    lost: List[str] = []
    for d in (first, second):
        d.register_disconnect_callback(lambda dev: lost.append(dev.address))
    dongle.kill_port()
    assert wait_for(lambda: sorted(lost) == sorted([HRM, OTHER]))
    with pytest.raises(NotConnectedError):
        first.char_read_handle(3)
    time.sleep(0.2)
    assert len(lost) == 2


def test_garbage_and_a_lost_response(device: BGAPIBLEDevice, backend: BGAPIBackend, dongle: SimulatedDongle) -> None:
    dongle.inject_garbage(bytes.fromhex("ff 13 00 80 6e 80 05 04"))
    transport = backend.transport
    assert transport is not None
    assert wait_for(lambda: transport.dropped_bytes == 8 and transport.pending_bytes == 0)
    assert device.char_read("2a00") == bytearray(b"Pulse HR")
    dongle.drop_next_response()
    with pytest.raises(ExpectedResponseTimeout, match="system_address_get"):
        backend.protocol.command("system_address_get", wait=0.3)
    assert device.char_read("2a00") == bytearray(b"Pulse HR")


def test_reset_finds_the_renamed_port(dongle: SimulatedDongle) -> None:
    dongle.open_pty()
    adapter = BGAPIBackend(comports=dongle.comports)
    try:
        adapter.start(reset=True, delay_after_reset_s=0.05)
        first_port = adapter.port_name
        assert first_port == dongle.port
        adapter.stop()
        adapter.start(reset=True, delay_after_reset_s=0.05)
        assert adapter.port_name == dongle.port != first_port
        assert adapter.connect(HRM).char_read("2a00") == bytearray(b"Pulse HR")
    finally:
        adapter.stop()


def test_reset_over_a_socket_url(dongle: SimulatedDongle) -> None:
    url = dongle.open_socket()
    adapter = BGAPIBackend(url, comports=dongle.comports)
    try:
        adapter.start(reset=True, delay_after_reset_s=0.05)
        assert adapter.port_name == dongle.port and adapter.port_name != url
        assert adapter.connect(HRM).char_read("2a00") == bytearray(b"Pulse HR")
    finally:
        adapter.stop()


@pytest.mark.parametrize("kind, delay_s", [("socket", 0.05), ("pty", 0.3)])
def test_the_port_vanishing_on_a_reset_is_no_error(
    dongle: SimulatedDongle, caplog: pytest.LogCaptureFixture, kind: str, delay_s: float
) -> None:
    """After system_reset the dongle's port goes away on purpose: the reader seeing it go logs no
    "port lost" error (the CLI would print it as ``pygatt: error:`` on a command that succeeds).

    With a pty and a delay longer than the dongle's reset (0.1 s), the old port, tried first
    after the reset, dies under the try while the dongle is back on another one: that is one
    more failed candidate, not a lost port either."""
    url = dongle.open_socket() if kind == "socket" else dongle.open_pty()
    adapter = BGAPIBackend(url, comports=dongle.comports)
    try:
        with caplog.at_level(logging.DEBUG, logger="pygatt"):
            for _ in range(3):  # the reader sees the port go in some runs only
                adapter.start(reset=True, delay_after_reset_s=delay_s)
                adapter.stop()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        adapter.stop()


def test_pygatt_simulate_starts_a_simulated_dongle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYGATT_SIMULATE", "heart-rate")
    adapter = BGAPIBackend()
    assert "simulated-bled112" not in [t.name for t in threading.enumerate()]  # nothing runs before start()
    try:
        adapter.start()
        assert adapter.port_name is not None and adapter.port_name.startswith("socket://127.0.0.1:")
        assert adapter.connect(HRM).char_read("2a00") == bytearray(b"Pulse HR")
        assert [t for t in threading.enumerate() if t.name == "simulated-bled112"]
    finally:
        adapter.stop()
    names = [t.name for t in threading.enumerate()]
    assert "simulated-bled112" not in names  # stop() closed the simulator it started
    assert not [n for n in names if n.startswith("pygatt-bgapi")]


def test_pygatt_simulate_with_an_unknown_world(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYGATT_SIMULATE", "/no/such/world.json")
    with pytest.raises(ValueError, match="no world file"):
        BGAPIBackend()
