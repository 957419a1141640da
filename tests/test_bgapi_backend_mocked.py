"""BGAPIBackend with ``serial.Serial`` patched by an in-memory dongle (tests/bgapi_fake.py).

This is how users test code written for pygatt 5.0.0's BGAPI backend: they patch
``serial.Serial``. Every layer of the backend runs for real (reader thread,
codec, command tracker, event routing, dispatcher); only the port is fake.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from typing import Any, Iterator, List, Tuple

import pytest
import serial

from pygatt import BGAPIBackend, BLEAddressType
from pygatt.backends.bgapi import codec
from pygatt.backends.bgapi.bgapi import AdvertisingAndScanInfo, bgapi_address_to_hex
from pygatt.backends.bgapi.device import BGAPIBLEDevice
from pygatt.backends.bgapi.exceptions import BGAPIError, ExpectedResponseTimeout
from pygatt.exceptions import (
    BLEError,
    GATTError,
    NotConnectedError,
    NotificationTimeout,
    ReadNotPermittedError,
    WriteNotPermittedError,
)
from pygatt.util import uuid16_to_uuid
from tests import helpers
from tests.bgapi_fake import LONG_UUID, FakeDongle, FakePortInfo, FakeSerialPort, sample_peripheral

PORT = "/dev/ttyFAKE0"
ADDRESS = "01:23:45:67:89:AB"
SECOND = "11:22:33:44:55:66"


wait_for = functools.partial(helpers.wait_for, timeout=5.0)  # a simulated dongle answers within milliseconds


@pytest.fixture
def dongle(monkeypatch: pytest.MonkeyPatch) -> FakeDongle:
    fake = FakeDongle([sample_peripheral(ADDRESS), sample_peripheral(SECOND)])
    monkeypatch.setattr(FakeSerialPort, "registry", {PORT: fake})
    monkeypatch.setattr(serial, "Serial", FakeSerialPort)
    return fake


@pytest.fixture
def backend(dongle: FakeDongle) -> Iterator[BGAPIBackend]:
    adapter = BGAPIBackend(serial_port=PORT)
    adapter.start(reset=False)
    yield adapter
    adapter.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("pygatt-bgapi-reader")]


@pytest.fixture
def device(backend: BGAPIBackend) -> BGAPIBLEDevice:
    return backend.connect(ADDRESS)


# -- start, ports, reset -----------------------------------------------------------


def test_start_puts_the_dongle_in_a_known_state(dongle: FakeDongle) -> None:
    adapter = BGAPIBackend(serial_port=PORT)
    adapter.start(reset=True, delay_after_reset_s=0)
    try:
        assert dongle.names() == ["system_reset", "gap_set_mode", "sm_set_bondable_mode", "gap_end_procedure"]
        assert dongle.received[1].fields == {"discover": 0, "connect": 0}
        assert adapter.port_name == PORT
    finally:
        adapter.stop()


def test_no_port_finds_the_dongle_by_usb_id(dongle: FakeDongle) -> None:
    ports = [FakePortInfo("/dev/ttyS0", hwid="PNP0501", vid=None, pid=None), FakePortInfo(PORT)]
    adapter = BGAPIBackend(comports=lambda: ports)
    adapter.start(reset=False)
    try:
        assert adapter.port_name == PORT
    finally:
        adapter.stop()


def test_no_dongle_is_a_clear_error(dongle: FakeDongle) -> None:
    ports = [FakePortInfo("/dev/ttyUSB0", hwid="USB VID:PID=0403:6001", vid=0x0403, pid=0x6001)]
    adapter = BGAPIBackend(comports=lambda: ports)
    with pytest.raises(BGAPIError, match=r"No BLED112 \(USB 2458:0001\) found; serial ports seen: /dev/ttyUSB0"):
        adapter.start()


def test_reset_that_renames_the_port_is_followed(dongle: FakeDongle, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {PORT: dongle}
    monkeypatch.setattr(FakeSerialPort, "registry", registry)
    listed = [FakePortInfo(PORT)]

    def renumerate() -> None:  # the USB device goes away and comes back as ttyFAKE1
        registry.clear()
        listed[:] = [FakePortInfo("/dev/ttyFAKE1", hwid="n/a")]  # still enumerating
        registry["/dev/ttyFAKE1"] = dongle

        def settle() -> None:
            time.sleep(0.3)
            listed[:] = [FakePortInfo("/dev/ttyFAKE1")]

        threading.Thread(target=settle, daemon=True).start()

    dongle.on_reset = renumerate
    adapter = BGAPIBackend(comports=lambda: list(listed))
    adapter.start(reset=True, delay_after_reset_s=0)
    try:
        assert adapter.port_name == "/dev/ttyFAKE1"
        assert adapter.connect(ADDRESS).char_read_handle(3) == bytearray(b"\x64")
    finally:
        adapter.stop()


def test_explicit_port_renamed_by_reset_is_found_by_usb_id(dongle: FakeDongle, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {PORT: dongle}
    monkeypatch.setattr(FakeSerialPort, "registry", registry)
    listed = [FakePortInfo(PORT)]

    def renumerate() -> None:
        registry.clear()
        registry["/dev/ttyFAKE1"] = dongle
        listed[:] = [FakePortInfo("/dev/ttyFAKE1")]

    dongle.on_reset = renumerate
    adapter = BGAPIBackend(PORT, comports=lambda: list(listed))
    adapter.start(reset=True, delay_after_reset_s=0)
    try:
        assert adapter.port_name == "/dev/ttyFAKE1"
    finally:
        adapter.stop()


def test_port_that_never_comes_back_fails_in_bounded_time(dongle: FakeDongle, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = {PORT: dongle}
    monkeypatch.setattr(FakeSerialPort, "registry", registry)
    dongle.on_reset = registry.clear
    adapter = BGAPIBackend(PORT, comports=lambda: [])
    started = time.monotonic()
    with pytest.raises(NotConnectedError, match="Could not open the BGAPI dongle after 10 attempts"):
        adapter.start(reset=True, delay_after_reset_s=0)
    assert time.monotonic() - started < 20  # bounded: 10 attempts 0.25 s apart
    assert not [t for t in threading.enumerate() if t.name.startswith("pygatt-bgapi")]


def test_constructor_checks_arguments() -> None:
    with pytest.raises(ValueError):
        BGAPIBackend(serial_port="")
    with pytest.raises(ValueError):
        BGAPIBackend(receive_queue_timeout=0)
    with pytest.raises(TypeError):
        BGAPIBackend(comports=42)  # type: ignore[arg-type]


def test_operations_before_start_raise() -> None:
    """Before start(): BLEError "not started", as the other backends say it (no connection failed)."""
    adapter = BGAPIBackend(serial_port=PORT)
    for call in (lambda: adapter.scan(timeout=0.1), lambda: adapter.connect(ADDRESS), adapter.get_mac):
        with pytest.raises(BLEError, match=r"^The backend is not started; call start\(\) first$") as info:
            call()
        assert not isinstance(info.value, NotConnectedError)
    adapter.stop()  # stop before start is fine
    adapter.stop()


# -- scanning ------------------------------------------------------------------------


def test_scan_returns_devices_with_parsed_advertising_data(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    found = backend.scan(timeout=0.3)
    by_address = {d["address"]: d for d in found}
    assert set(by_address) == {ADDRESS, SECOND}
    entry = by_address[ADDRESS]
    assert entry["name"] == "Fake HRM"
    assert entry["rssi"] == -55
    adv = entry["packet_data"]["connectable_advertisement_packet"]
    assert adv["flags"] == bytearray([6])
    assert adv["complete_list_16-bit_service_class_uuids"] == bytearray(b"\x0d\x18")
    scan = entry["packet_data"]["scan_response_packet"]
    assert scan["complete_local_name"] == "Fake HRM"
    assert scan["ad_type_0x30"] == bytearray(b"\xab\xcd")  # unknown AD type kept, no KeyError
    assert dongle.names()[-3:] == ["gap_set_scan_parameters", "gap_discover", "gap_end_procedure"]
    assert dongle.received[-3].fields == {"scan_interval": 75, "scan_window": 50, "active": 1}
    assert dongle.received[-2].fields == {"mode": 2}


def test_scan_cb_returning_true_ends_the_scan(backend: BGAPIBackend) -> None:
    seen: List[Tuple[str, str]] = []

    def stop_at_first(devices: Any, address: str, packet_type: str) -> bool:
        assert isinstance(devices[address], AdvertisingAndScanInfo)
        seen.append((address, packet_type))
        return True

    started = time.monotonic()
    found = backend.scan(timeout=30, scan_cb=stop_at_first)
    assert time.monotonic() - started < 10
    assert seen == [(ADDRESS, "connectable_advertisement_packet")]
    assert [d["address"] for d in found] == [ADDRESS]


def test_scan_checks_arguments(backend: BGAPIBackend) -> None:
    with pytest.raises(ValueError):
        backend.scan(timeout=-1)
    with pytest.raises(ValueError):
        backend.scan(timeout=1, scan_interval=10, scan_window=20)
    with pytest.raises(TypeError):
        backend.scan(timeout=1, scan_cb="no")  # type: ignore[arg-type]


def test_filtered_scan(backend: BGAPIBackend) -> None:
    assert backend.filtered_scan("HRM", timeout=0.2)
    assert backend.filtered_scan("nothing like it", timeout=0.2) == []


# -- connecting ------------------------------------------------------------------------------


def test_connect_sends_the_parameters(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    device = backend.connect(ADDRESS, address_type=BLEAddressType.random, interval_min=10, interval_max=20,
                             supervision_timeout=300, latency=2)  # fmt: skip
    assert isinstance(device, BGAPIBLEDevice) and device.handle == 0 and device.connected
    sent = [m for m in dongle.received if m.name == "gap_connect_direct"][0]
    assert sent.fields == {"address": ADDRESS, "addr_type": 1, "conn_interval_min": 10, "conn_interval_max": 20,
                           "timeout": 300, "latency": 2}  # fmt: skip
    assert backend.connect(ADDRESS) is device  # already connected: the same device


def test_two_threads_connecting_one_address_share_the_device(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    got: List[BGAPIBLEDevice] = []
    threads = [threading.Thread(target=lambda: got.append(backend.connect(ADDRESS))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 2 and got[0] is got[1]
    assert dongle.names().count("gap_connect_direct") == 1


def test_connect_checks_arguments(backend: BGAPIBackend) -> None:
    with pytest.raises(ValueError):
        backend.connect("01:23:45:67:89")
    with pytest.raises(ValueError):
        backend.connect(ADDRESS, interval_min=100, interval_max=50)
    with pytest.raises(ValueError):
        backend.connect(ADDRESS, latency=501)
    with pytest.raises(ValueError):
        backend.connect(ADDRESS, address_type="other")  # type: ignore[arg-type]


def test_connect_to_absent_device_times_out_with_reason(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    with pytest.raises(NotConnectedError, match="Timed out connecting to AA:AA:AA:AA:AA:AA after 0.3 s"):
        backend.connect("AA:AA:AA:AA:AA:AA", timeout=0.3)
    assert dongle.names()[-1] == "gap_end_procedure"


def test_connection_limit_is_a_named_error(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    dongle.max_connections = 1
    backend.connect(ADDRESS)
    with pytest.raises(NotConnectedError, match=r"connection_limit_exceeded \(0x0209\)"):
        backend.connect(SECOND)


# -- GATT operations ----------------------------------------------------------------------------


def test_discovery_finds_value_handles_and_descriptors(device: BGAPIBLEDevice) -> None:
    chars = device.discover_characteristics()
    heart_rate = chars[uuid16_to_uuid(0x2A37)]
    assert heart_rate.handle == 9
    assert heart_rate.descriptors == {uuid16_to_uuid(0x2901): 10, uuid16_to_uuid(0x2902): 11}
    assert chars[uuid16_to_uuid(0x2A19)].handle == 3
    long_uuid = uuid.UUID(bytes=bytes(reversed(LONG_UUID)))
    assert chars[long_uuid].handle == 7
    assert uuid16_to_uuid(0x2800) not in chars and uuid16_to_uuid(0x2803) not in chars
    assert device.get_handle("2a19") == 3


def test_reads(device: BGAPIBLEDevice) -> None:
    assert device.char_read_handle(3) == bytearray(b"\x64")
    assert device.char_read("00002a19-0000-1000-8000-00805f9b34fb") == bytearray(b"\x64")
    assert device.char_read_long_handle(7) == bytearray(range(50))
    long_uuid = str(uuid.UUID(bytes=bytes(reversed(LONG_UUID))))
    assert device.char_read_long(long_uuid) == bytearray(range(50))
    assert isinstance(device.char_read_handle(3, timeout=2), bytearray)


def test_read_errors_are_typed(device: BGAPIBLEDevice) -> None:
    with pytest.raises(ReadNotPermittedError) as info:
        device.char_read_handle(13)
    error = info.value
    assert isinstance(error, BGAPIError) and isinstance(error, GATTError)  # 5.0.0 caught BGAPIError
    assert error.att_error == 0x02 and error.return_code == 0x0402
    assert "read_not_permitted (0x0402)" in str(error)
    with pytest.raises(GATTError) as info2:
        device.char_read_handle(0x99)
    assert info2.value.att_error == 0x01


def test_a_notification_is_never_taken_for_the_read_value(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    got: List[bytes] = []
    device.subscribe("2a37", callback=lambda h, v: got.append(bytes(v)))
    dongle.notify_before_read = True
    assert device.char_read_handle(9) == bytearray(b"\x00\x3c")
    assert wait_for(lambda: b"\xee\xee" in got)


def test_writes(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    device.char_write_handle(3, bytearray(b"\x10"))
    assert dongle.peripherals[ADDRESS].attribute(3).value == b"\x10"
    assert dongle.received[-1].name == "attclient_attribute_write"
    device.char_write_handle(3, b"\x11", wait_for_response=False)
    assert dongle.received[-1].name == "attclient_write_command"
    assert dongle.peripherals[ADDRESS].attribute(3).value == b"\x11"
    device.char_write_handle(char_handle=3, value=b"\x12")  # pygatt 5.0.0's keyword
    with pytest.raises(WriteNotPermittedError):
        device.char_write_handle(13, b"\x00")
    with pytest.raises(ValueError, match="char_write_long_handle"):
        device.char_write_handle(3, bytes(21))


def test_long_write_uses_prepared_writes(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    value = bytes(range(100, 145))
    device.char_write_long_handle(7, value)
    prepares = [m for m in dongle.received if m.name == "attclient_prepare_write"]
    assert [m["offset"] for m in prepares] == [0, 18, 36]
    assert dongle.received[-1].name == "attclient_execute_write" and dongle.received[-1]["commit"] == 1
    assert dongle.peripherals[ADDRESS].attribute(7).value == value


def test_subscribe_writes_the_discovered_cccd_and_callbacks_run_off_the_reader(
    device: BGAPIBLEDevice, dongle: FakeDongle
) -> None:
    calls: List[Tuple[int, bytearray, str]] = []
    device.subscribe("2a37", callback=lambda h, v: calls.append((h, v, threading.current_thread().name)))
    write = [m for m in dongle.received if m.name == "attclient_attribute_write"][-1]
    assert write["atthandle"] == 11 and write["data"] == b"\x01\x00"  # the 0x2902 found, not value + 1
    assert wait_for(lambda: len(calls) == 3)
    assert [c[1] for c in calls] == [bytearray([0]), bytearray([1]), bytearray([2])]
    assert all(c[0] == 9 and c[2] == "pygatt-bgapi-callbacks" for c in calls)
    device.unsubscribe("2a37")
    assert dongle.received[-1]["data"] == b"\x00\x00"
    calls.clear()
    device.subscribe("2a37", callback=lambda h, v: calls.append((h, v, "")), indication=True)
    assert dongle.received[-1]["data"] == b"\x02\x00"
    assert wait_for(lambda: len(calls) == 3)


def test_indication_left_to_the_host_is_confirmed(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    got: List[bytes] = []
    device.subscribe("2a37", callback=lambda h, v: got.append(bytes(v)), indication=True)
    assert wait_for(lambda: len(got) == 3)
    assert "attclient_indicate_confirm" not in dongle.names()  # type 2: the firmware confirmed them
    dongle.evt("attclient_attribute_value", connection=0, atthandle=9, type=5, value=b"\x42")
    assert wait_for(lambda: "attclient_indicate_confirm" in dongle.names())
    assert got[-1] == b"\x42"
    assert [m for m in dongle.received if m.name == "attclient_indicate_confirm"][0].fields == {"connection": 0}


def test_rssi_bond_mtu(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    assert device.get_rssi() == -61
    device.bond(permanent=True)
    assert [m.name for m in dongle.received[-2:]] == ["sm_set_bondable_mode", "sm_encrypt_start"]
    assert device.exchange_mtu(100) == 23
    assert device.mtu == 23


def test_backend_settings(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    assert backend.get_mac() == "00:07:80:AA:BB:CC"
    # 5.0.0's idiom: get_mac() kept the wire bytes in adapter.address, and bgapi_address_to_hex printed them
    assert backend.address == (0xCC, 0xBB, 0xAA, 0x80, 0x07, 0x00)
    assert bgapi_address_to_hex(backend.address) == "00:07:80:AA:BB:CC"
    backend.set_bondable(True)
    assert dongle.received[-1].fields == {"bondable": 1}
    backend.disable_advertising()
    assert dongle.received[-1].fields == {"discover": 0, "connect": 0}
    backend.clear_bond()
    assert [m["handle"] for m in dongle.received if m.name == "sm_delete_bonding"] == [1, 0]
    assert dongle.bonds == []
    assert backend.supports_unbonded()


def test_compat_send_command_and_expect(backend: BGAPIBackend) -> None:
    backend.send_command("system_address_get")
    name, fields = backend.expect("system_address_get")
    assert name == "system_address_get" and fields == {"address": "00:07:80:AA:BB:CC"}
    backend.send_command(codec.encode_command("gap_end_procedure"))
    with pytest.raises(BGAPIError, match="wrong_state"):
        backend.expect_any(["gap_end_procedure"], timeout=2)
    with pytest.raises(ExpectedResponseTimeout):
        backend.expect("gap_discover", timeout=0.1)
    assert bgapi_address_to_hex(bytes.fromhex("AB8967452301")) == ADDRESS


@pytest.mark.parametrize("name", ["gap_scan_respons", "ble_evt_no_such_event", "", "gap_scan_response\n"])
def test_expect_of_a_name_no_message_has_is_refused_at_once(backend: BGAPIBackend, name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="no BGAPI response or event"):
        backend.expect(name, timeout=5)
    with pytest.raises(ValueError, match="no BGAPI response or event"):
        backend.expect_any(["gap_end_procedure", name], timeout=5)
    assert time.monotonic() - started < 4  # refused, not waited out (5.0.0's expect waited the timeout)


def test_expect_takes_names_with_5_0_0_prefixes_and_objects_with_a_name(backend: BGAPIBackend) -> None:
    class Packet:
        name = "ble_rsp_system_address_get"

    backend.send_command("system_address_get")
    assert backend.expect(Packet())[0] == "system_address_get"
    backend.send_command("system_address_get")
    assert backend.expect("ble_rsp_system_address_get")[0] == "system_address_get"


# -- disconnects, lost links, dead ports --------------------------------------------------------


def test_disconnect_runs_no_callback(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    lost: List[Any] = []
    device.register_disconnect_callback(lost.append)
    device.disconnect()
    assert not device.connected
    assert dongle.received[-1].name == "connection_disconnect"
    assert dongle.connections == {}
    with pytest.raises(NotConnectedError):
        device.char_read_handle(3)
    time.sleep(0.1)
    assert lost == []


def test_remote_disconnect_fires_callbacks_once(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    lost: List[str] = []
    device.register_disconnect_callback(lambda d: lost.append(threading.current_thread().name))
    dongle.drop(0)
    assert wait_for(lambda: lost == ["pygatt-bgapi-callbacks"])
    assert not device.connected
    with pytest.raises(NotConnectedError):
        device.char_read_handle(3)


def test_dead_port_fails_every_connection_once(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    first, second = backend.connect(ADDRESS), backend.connect(SECOND)
    lost: List[str] = []
    first.register_disconnect_callback(lambda d: lost.append(d.address))
    second.register_disconnect_callback(lambda d: lost.append(d.address))
    assert dongle.port is not None
    dongle.port.kill()
    assert wait_for(lambda: sorted(lost) == [ADDRESS, SECOND])
    for device in (first, second):
        with pytest.raises(NotConnectedError):
            device.char_read_handle(3)
    with pytest.raises(NotConnectedError):
        backend.scan(timeout=0.1)
    time.sleep(0.1)
    assert sorted(lost) == [ADDRESS, SECOND]


def test_port_dying_during_a_read_ends_the_read(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    dongle.silent.add("attclient_read_by_handle")
    threading.Timer(0.2, lambda: dongle.port.kill() if dongle.port else None).start()
    with pytest.raises(NotConnectedError, match="BGAPI dongle lost"):
        device.char_read_handle(3, timeout=10)


def test_lost_response_is_a_timeout_naming_the_command(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    dongle.silent.add("system_address_get")
    with pytest.raises(ExpectedResponseTimeout, match="the response to system_address_get") as info:
        backend.protocol.command("system_address_get", wait=0.2)
    assert isinstance(info.value, NotificationTimeout) and isinstance(info.value, BLEError)
    dongle.silent.clear()
    assert backend.get_mac() == "00:07:80:AA:BB:CC"  # the next command works


def test_lost_procedure_end_is_a_timeout(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    dongle.silent.add("attclient_read_by_handle")
    with pytest.raises(NotificationTimeout, match="the response to attclient_read_by_handle"):
        device.char_read_handle(3, timeout=0.3)
    dongle.silent.clear()
    assert device.char_read_handle(3) == bytearray(b"\x64")


def test_garbage_on_the_line_is_skipped(backend: BGAPIBackend, device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    dongle.emit(bytes.fromhex("ff 00 13 37 6e 80 00 00 09 09"))
    assert device.char_read_handle(3) == bytearray(b"\x64")
    transport = backend.transport
    assert transport is not None
    received = transport.bytes_received
    dongle.emit(bytes.fromhex("00 06 00 02 01"))  # looks like a header: the idle line clears it
    assert wait_for(lambda: transport.bytes_received == received + 5 and transport.pending_bytes == 0)
    assert transport.dropped_bytes >= 5
    assert device.char_read_handle(3) == bytearray(b"\x64")


def test_garbage_right_before_a_response_does_not_swallow_it(device: BGAPIBLEDevice, dongle: FakeDongle) -> None:
    dongle.emit(bytes.fromhex("00 06 00 02 01"))  # a response header nobody awaits, no idle gap after it
    assert device.char_read_handle(3, timeout=2) == bytearray(b"\x64")


def test_a_late_response_is_dropped(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    dongle.silent.add("system_address_get")
    with pytest.raises(ExpectedResponseTimeout):
        backend.protocol.command("system_address_get", wait=0.2)
    transport = backend.transport
    assert transport is not None
    dropped = transport.dropped_bytes
    dongle.rsp("system_address_get", address="11:11:11:11:11:11")  # the late answer
    assert wait_for(lambda: transport.dropped_bytes >= dropped + 10)
    dongle.silent.clear()
    assert backend.get_mac() == "00:07:80:AA:BB:CC"
    with pytest.raises(ExpectedResponseTimeout):
        backend.expect("system_address_get", timeout=0.1)  # it was not kept as unclaimed either


def test_event_for_unknown_connection_is_not_fatal(
    backend: BGAPIBackend, dongle: FakeDongle, caplog: pytest.LogCaptureFixture
) -> None:
    dongle.unknown_connection_noise = True
    device = backend.connect(ADDRESS)
    assert device.char_read_handle(3) == bytearray(b"\x64")
    assert "unknown connection handle 7" in caplog.text


def test_several_connections_keep_their_own_answers(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    dongle.peripherals[SECOND].attribute(3).value = b"\x22"
    first, second = backend.connect(ADDRESS), backend.connect(SECOND)
    assert (first.handle, second.handle) == (0, 1)
    errors: List[BaseException] = []

    def hammer(device: BGAPIBLEDevice, expected: bytes) -> None:
        try:
            for _ in range(50):
                assert device.char_read_handle(3) == bytearray(expected)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=hammer, args=(first, b"\x64")),
        threading.Thread(target=hammer, args=(second, b"\x22")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_auto_reconnect_resubscribes(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    device = backend.connect(ADDRESS, auto_reconnect=True)
    got: List[bytes] = []
    device.subscribe("2a37", callback=lambda h, v: got.append(bytes(v)))
    assert wait_for(lambda: len(got) == 3)
    dongle.drop(0)
    assert wait_for(lambda: len(got) == 6 and device.connected, timeout=10)
    assert [m.name for m in dongle.received].count("gap_connect_direct") == 2
    device.disconnect()


def test_a_failed_resubscribe_is_tried_again_by_the_next_reconnect(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    """A reconnect whose CCCD write fails does not count as done: its link is closed again and the
    next attempt reconnects and resubscribes (before, the link stayed up with notifications off)."""
    device = backend.connect(ADDRESS, auto_reconnect=True)
    got: List[bytes] = []
    device.subscribe("2a37", callback=lambda h, v: got.append(bytes(v)))
    assert wait_for(lambda: len(got) == 3)
    write = dongle.cmd_attclient_attribute_write
    refusals = {"left": 1}

    def refuse_once(message: Any) -> None:
        if refusals["left"]:
            refusals["left"] -= 1
            dongle.rsp("attclient_attribute_write", connection=message["connection"], result=0)
            dongle._done(message["connection"], message["atthandle"], 0x0408)  # insufficient authorization
            return
        write(message)

    dongle.cmd_attclient_attribute_write = refuse_once
    dongle.drop(0)
    assert wait_for(lambda: len(got) == 6 and device.connected, timeout=10)
    assert [m.name for m in dongle.received].count("gap_connect_direct") == 3
    device.disconnect()


def test_stop_ends_a_read_waiting_on_a_silent_dongle(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    device = backend.connect(ADDRESS)
    dongle.silent.update({"attclient_read_by_handle", "connection_disconnect"})
    errors: List[BaseException] = []

    def read() -> None:
        try:
            device.char_read_handle(3, timeout=30)
        except BaseException as exc:  # checked below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    started = time.monotonic()
    backend.stop()
    reader.join(10)
    assert time.monotonic() - started < 5  # bounded: the disconnects share one short deadline
    assert not reader.is_alive() and isinstance(errors[0], NotConnectedError)


def test_stop_does_not_wait_for_a_subscribe_the_peer_never_acknowledges(
    backend: BGAPIBackend, dongle: FakeDongle
) -> None:
    """A subscribe holds the device's subscription lock across its CCCD write; ``stop()`` marks the
    device down without that lock, so it returns at once instead of after the write's 30 s."""
    device = backend.connect(ADDRESS)
    dongle.cmd_attclient_attribute_write = lambda message: dongle.rsp(  # accepted, never completed
        "attclient_attribute_write", connection=message["connection"], result=0
    )
    errors: List[BaseException] = []

    def subscribe() -> None:
        try:
            device.subscribe_handle(3, lambda handle, value: None)
        except BaseException as exc:  # checked below
            errors.append(exc)

    subscriber = threading.Thread(target=subscribe)
    subscriber.start()
    assert wait_for(lambda: "attclient_attribute_write" in [m.name for m in dongle.received])
    started = time.monotonic()
    backend.stop()
    subscriber.join(10)
    assert time.monotonic() - started < 5
    assert not subscriber.is_alive() and isinstance(errors[0], NotConnectedError)


def test_disconnect_after_stop_raises_as_in_500(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    """5.0.0's stop() disconnected every device, so a later disconnect() found no connection."""
    device = backend.connect(ADDRESS)
    backend.stop()
    with pytest.raises(NotConnectedError):
        device.disconnect()


def test_stop_disconnects_every_device(backend: BGAPIBackend, dongle: FakeDongle) -> None:
    backend.connect(ADDRESS)
    backend.connect(SECOND)
    backend.stop()
    assert dongle.connections == {}
    assert [m.name for m in dongle.received].count("connection_disconnect") == 2


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00\x00\x06",  # shorter than a header
        b"\x00\x05\x06\x03",  # the header promises 5 payload bytes, none follow
        codec.encode_command("gap_end_procedure") + b"\x00",  # one byte more than the header says
    ],
)
def test_send_command_refuses_a_raw_frame_that_is_not_one_whole_frame(
    backend: BGAPIBackend, dongle: FakeDongle, frame: bytes
) -> None:
    port = dongle.port
    before = list(port.writes)
    with pytest.raises(ValueError, match="frame"):
        backend.send_command(frame)
    assert port.writes == before  # nothing half-sent: the dongle would take the next command's bytes as the rest
    assert backend.get_mac() == "00:07:80:AA:BB:CC"


@pytest.mark.parametrize("delay", [float("nan"), float("inf")])
def test_start_refuses_a_reset_delay_that_is_not_finite_before_touching_the_dongle(
    dongle: FakeDongle, delay: float
) -> None:
    # NaN and inf failed in time.sleep() only after system_reset had gone out
    adapter = BGAPIBackend(serial_port=PORT)
    try:
        with pytest.raises(ValueError, match="delay_after_reset_s"):
            adapter.start(reset=True, delay_after_reset_s=delay)
        assert dongle.names() == []
    finally:
        adapter.stop()


@pytest.mark.parametrize("port", ["/dev/ttyACM0\x00", "/dev/ttyACM0\n", "socket://127.0.0.1:5000\r", "COM3\x1b"])
def test_a_serial_port_with_a_control_character_is_refused_when_the_backend_is_built(port: str) -> None:
    # no port name or pyserial URL holds one; such a name was tried MAX_CONNECTION_ATTEMPTS times
    # by start() before a NotConnectedError (as the pygatt command's --port refuses it at once)
    with pytest.raises(ValueError, match="serial_port"):
        BGAPIBackend(serial_port=port)


@pytest.mark.parametrize("bad", ["not an address", "01:23:45:67:89:AB\nx", 42])
def test_clear_bond_refuses_a_bad_address_before_deleting_any_bond(
    backend: BGAPIBackend, dongle: FakeDongle, bad: Any
) -> None:
    # the address was only logged, and every bond in the dongle deleted: a typo wiped them all
    bonds = list(dongle.bonds)
    sent = dongle.names()
    assert bonds
    with pytest.raises((ValueError, TypeError), match="address"):
        backend.clear_bond(bad)
    assert dongle.bonds == bonds and dongle.names() == sent


def test_stop_during_a_start_ends_it_and_leaves_no_reader(dongle: FakeDongle) -> None:
    # stop() while start() waited out delay_after_reset_s found no transport to close; the start then
    # reopened the dongle and left the backend running, its reader thread alive, after stop() returned
    adapter = BGAPIBackend(serial_port=PORT)
    errors: List[BaseException] = []

    def start() -> None:
        try:
            adapter.start(reset=True, delay_after_reset_s=1.5)
        except BLEError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        assert wait_for(lambda: "system_reset" in dongle.names())
        adapter.stop()
        starter.join(5)
        assert not starter.is_alive()
        assert len(errors) == 1, "a start() that stop() interrupted must fail"
        assert adapter.transport is None
        assert not [t for t in threading.enumerate() if t.name.startswith("pygatt-bgapi-reader")]
    finally:
        starter.join(5)
        adapter.stop()
