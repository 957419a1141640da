"""Details of pygatt 5.0.0's behaviour that its listing does not show, found by a fidelity review.

Each test is a piece of code written for pygatt 5.0.0 (a user's own ``BLEDevice`` subclass,
a mocked timeout, ...) that must run unchanged here. No network, no adapter.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Tuple

import pytest
import serial

import pygatt
from pygatt import BLEDevice
from pygatt.backends import Characteristic
from pygatt.backends.bgapi.exceptions import BGAPIError, ExpectedResponseTimeout
from pygatt.backends.bgapi.util import USBSerialDeviceInfo
from tests.bgapi_fake import FakeDongle, FakeSerialPort, sample_peripheral
from tests.helpers import ADDRESS, FakeFactory
from tests.helpers import wait_for as helpers_wait_for

SCRATCH = uuid.UUID("0000ff01-0000-1000-8000-00805f9b34fb")


class DeviceOf500(BLEDevice):
    """A device as a 5.0.0 user wrote one (a custom backend's device, or a test double): it
    overrides the primitives with 5.0.0's signatures and relies on the base class for the rest.
    """

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.writes: List[Tuple[Any, ...]] = []

    def discover_characteristics(self) -> Dict[uuid.UUID, Characteristic]:
        return {SCRATCH: Characteristic(SCRATCH, 0x0010)}

    def char_write_handle(self, handle: int, value: Any, wait_for_response: bool = True) -> None:  # type: ignore[override]
        self.writes.append(("write", handle, bytes(value), wait_for_response))

    def char_write_long_handle(self, handle: int, value: Any, wait_for_response: bool = False) -> None:  # type: ignore[override]
        self.writes.append(("long", handle, bytes(value), wait_for_response))


def test_base_char_write_calls_a_500_style_char_write_handle() -> None:
    """5.0.0's ``BLEDevice.char_write`` called ``char_write_handle(handle, value, wait_for_response=...)``."""
    device = DeviceOf500("11:22:33:44:55:66")
    device.char_write(SCRATCH, bytearray([0x01]))
    device.char_write(str(SCRATCH), bytearray([0x02]), False)
    assert device.writes == [("write", 0x0010, b"\x01", True), ("write", 0x0010, b"\x02", False)]


def test_base_char_write_long_calls_a_500_style_char_write_long_handle() -> None:
    device = DeviceOf500("11:22:33:44:55:66")
    device.char_write_long(SCRATCH, bytes(30))
    device.char_write_long(SCRATCH, bytes(30), wait_for_response=True)
    assert device.writes == [("long", 0x0010, bytes(30), False), ("long", 0x0010, bytes(30), True)]


@pytest.mark.parametrize(
    "expected, timeout",
    [("attclient_procedure_completed", None), (["gap_scan_response", 7], 1.5), (None, 2), ("x", 0)],
)
def test_expected_response_timeout_builds_as_in_500(expected: Any, timeout: Any) -> None:
    """5.0.0 built the message with ``%s`` and ``timeout or 0``: any packets, a None timeout."""
    error = ExpectedResponseTimeout(expected, timeout)
    assert isinstance(error, BGAPIError)
    assert "Timed out" in str(error)


# -- GATTToolBackend(hci_device=<the adapter's address>) -------------------------------------------

ADAPTER_ADDRESS = "00:1A:7D:DA:71:13"


def test_gatttool_backend_takes_the_adapter_by_its_address(fake_spawn: FakeFactory) -> None:
    """5.0.0 handed ``hci_device`` to ``gatttool -i`` as given, and gatttool (like hciconfig and
    hcitool) takes an adapter's address as well as its ``hciN`` name: a script that names its
    adapter by address, which stays the same when ``hciN`` numbers change, must still start.
    """
    backend = pygatt.GATTToolBackend(hci_device=ADAPTER_ADDRESS)
    backend.start(reset_on_start=False)
    try:
        argv = fake_spawn.argv[0]
        assert argv[argv.index("-i") + 1] == ADAPTER_ADDRESS
        assert backend.connect(ADDRESS).char_read_handle(0x000C) == bytearray([0x5A])
    finally:
        backend.stop()


@pytest.mark.parametrize("bad", ["hci", "00:1A:7D:DA:71", "hci0\n", "", "hci0 -I"])
def test_gatttool_backend_still_refuses_other_adapter_names(bad: str) -> None:
    with pytest.raises(ValueError):
        pygatt.GATTToolBackend(hci_device=bad)


def test_a_btmgmt_scan_needs_the_hci_name() -> None:
    """btmgmt takes an adapter index only: named by address, the adapter cannot be scanned with it."""
    backend = pygatt.GATTToolBackend(hci_device=ADAPTER_ADDRESS)
    with pytest.raises(ValueError, match="hciN"):
        backend.scan(timeout=1, tool="btmgmt")


# -- pygatt.backends.bgapi.util.USBSerialDeviceInfo as text -----------------------------------------


def test_usb_serial_device_info_prints_as_in_500() -> None:
    """5.0.0 scripts list dongles with ``print(info)``: ``<name> VID=0x.... PID=0x.... on <port>``."""
    info = USBSerialDeviceInfo()
    info.device_name, info.port_name, info.vendor_id, info.product_id = "Low Energy Dongle", "/dev/ttyACM0", 0x2458, 1
    assert str(info) == "Low Energy Dongle VID=0x2458 PID=0x0001 on /dev/ttyACM0"
    info.vendor_id = info.product_id = None
    assert str(info) == "Low Energy Dongle VID=None PID=None on /dev/ttyACM0"
    info.vendor_id = 0x2458  # a half-known port still has a repr (for logs)
    assert repr(info) == "<USBSerialDeviceInfo /dev/ttyACM0 0x2458:None 'Low Energy Dongle'>"


# -- BGAPI: a zero-length write ----------------------------------------------------------------------

BGAPI_PORT = "/dev/ttyFAKE0"
BGAPI_ADDRESS = "01:23:45:67:89:AB"


@pytest.fixture
def dongle(monkeypatch: pytest.MonkeyPatch) -> FakeDongle:
    fake = FakeDongle([sample_peripheral(BGAPI_ADDRESS)])
    monkeypatch.setattr(FakeSerialPort, "registry", {BGAPI_PORT: fake})
    monkeypatch.setattr(serial, "Serial", FakeSerialPort)
    return fake


def test_bgapi_writes_an_empty_value_as_500_did(dongle: FakeDongle) -> None:
    """ATT allows a zero-length value, and 5.0.0's BGAPI device wrote ``bytearray()`` as given
    (some peripherals take an empty write as a command); here it raised ValueError.
    """
    adapter = pygatt.BGAPIBackend(serial_port=BGAPI_PORT)
    adapter.start(reset=False)
    try:
        device = adapter.connect(BGAPI_ADDRESS)
        device.char_write_handle(3, bytearray())
        assert dongle.peripherals[BGAPI_ADDRESS].attribute(3).value == b""  # type: ignore[union-attr]
        device.char_write_handle(3, b"\x07")
        device.char_write("2a19", bytearray(), wait_for_response=False)
        assert helpers_wait_for(lambda: dongle.peripherals[BGAPI_ADDRESS].attribute(3).value == b"")  # type: ignore[union-attr]
    finally:
        adapter.stop()


def test_bgapi_char_read_looks_the_handle_up_with_get_handle(dongle: FakeDongle) -> None:
    """5.0.0's BGAPI ``char_read`` called ``self.get_handle``: a device whose handles a program
    knows (get_handle overridden or patched, to skip discovery) read them; here the lookup went
    around it."""
    adapter = pygatt.BGAPIBackend(serial_port=BGAPI_PORT)
    adapter.start(reset=False)
    try:
        device = adapter.connect(BGAPI_ADDRESS)
        asked: List[Any] = []

        def known_handles(char_uuid: Any) -> int:
            asked.append(char_uuid)
            return 3

        device.get_handle = known_handles  # type: ignore[method-assign]
        expected = dongle.peripherals[BGAPI_ADDRESS].attribute(3).value  # type: ignore[union-attr]
        assert device.char_read("0000abcd-0000-1000-8000-00805f9b34fb") == bytearray(expected)
        assert asked == ["0000abcd-0000-1000-8000-00805f9b34fb"]
    finally:
        adapter.stop()


def test_gatttool_still_refuses_an_empty_value(backend: pygatt.GATTToolBackend) -> None:
    """gatttool's char-write-req needs a value (it prints its usage), so 5.0.0 never wrote one there."""
    device = backend.connect(ADDRESS)
    with pytest.raises(ValueError, match="empty"):
        device.char_write_handle(0x000D, bytearray())


# -- UUID strings in every form uuid.UUID() reads ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{0000ff01-0000-1000-8000-00805f9b34fb}",
        "urn:uuid:0000ff01-0000-1000-8000-00805f9b34fb",
        "URN:UUID:{0000FF01-0000-1000-8000-00805F9B34FB}",
    ],
)
def test_get_handle_reads_uuid_strings_as_uuid_does(text: str) -> None:
    """5.0.0's get_handle turned a string into ``uuid.UUID(char_uuid)``, which also reads the
    braced and ``urn:uuid:`` forms (as Windows tools and RFC 4122 print UUIDs).
    """
    assert DeviceOf500("11:22:33:44:55:66").get_handle(text) == 0x0010
