"""pygatt 5.0.0's BGAPI import paths, signatures and defaults, and pyserial as a dependency."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict

import pytest

import pygatt
from pygatt.backends import BLEAddressType, BLEBackend
from pygatt.backends.bgapi import bgapi, device, error_codes, exceptions, util
from pygatt.exceptions import BLEError, NotificationTimeout


def defaults(function: Callable[..., Any]) -> Dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty and p.kind is not inspect.Parameter.KEYWORD_ONLY
    }


def positional(function: Callable[..., Any]) -> list:
    return [
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def test_import_paths_and_names() -> None:
    assert pygatt.BGAPIBackend is bgapi.BGAPIBackend is pygatt.backends.BGAPIBackend
    assert issubclass(bgapi.BGAPIBackend, BLEBackend)
    assert bgapi.MAX_CONNECTION_ATTEMPTS == 10
    assert issubclass(device.BGAPIBLEDevice, pygatt.BLEDevice)
    assert issubclass(exceptions.BGAPIError, BLEError)
    assert issubclass(exceptions.ExpectedResponseTimeout, exceptions.BGAPIError)
    assert exceptions.ExpectedResponseTimeout.__mro__[1:3] == (exceptions.BGAPIError, BLEError)  # as in 5.0.0
    assert issubclass(exceptions.AnswerTimeout, exceptions.ExpectedResponseTimeout)
    assert issubclass(exceptions.AnswerTimeout, NotificationTimeout)
    assert callable(error_codes.get_return_message)
    assert callable(util.find_usb_serial_devices) and callable(util.extract_vid_pid)
    info = util.USBSerialDeviceInfo()
    assert (info.device_name, info.port_name, info.vendor_id, info.product_id) == (None, None, None, None)
    scan_info = bgapi.AdvertisingAndScanInfo()
    assert (scan_info.name, scan_info.address, scan_info.packet_data) == ("", "", {})


@pytest.mark.parametrize(
    "function, names, expected",
    [
        (bgapi.BGAPIBackend.__init__, ["self", "serial_port", "receive_queue_timeout"],
         {"serial_port": None, "receive_queue_timeout": 0.1}),
        (bgapi.BGAPIBackend.start, ["self", "reset", "delay_after_reset_s"], {"reset": True, "delay_after_reset_s": 1}),
        (bgapi.BGAPIBackend.scan,
         ["self", "timeout", "scan_interval", "scan_window", "active", "discover_mode", "scan_cb"],
         {"timeout": 10, "scan_interval": 75, "scan_window": 50, "active": True, "discover_mode": 2, "scan_cb": None}),
        (bgapi.BGAPIBackend.connect,
         ["self", "address", "timeout", "address_type", "interval_min", "interval_max", "supervision_timeout",
          "latency"],
         {"timeout": 5, "address_type": BLEAddressType.public, "interval_min": 60, "interval_max": 76,
          "supervision_timeout": 100, "latency": 0}),
        (bgapi.BGAPIBackend.clear_bond, ["self", "address"], {"address": None}),
        (bgapi.BGAPIBackend.discover_characteristics, ["self", "connection_handle", "timeout"], {"timeout": 30}),
        (bgapi.BGAPIBackend.expect_any, ["self", "expected_packet_choices", "timeout", "assert_return_success"],
         {"timeout": None, "assert_return_success": True}),
        (bgapi.BGAPIBackend.filtered_scan, ["self", "name_filter"], {"name_filter": ""}),
        (bgapi.BGAPIBackend.set_bondable, ["self", "bondable"], {}),
        (bgapi.BGAPIBackend.get_mac, ["self"], {}),
        (bgapi.BGAPIBackend.disable_advertising, ["self"], {}),
        (bgapi.BGAPIBackend.stop, ["self"], {}),
        (bgapi.bgapi_address_to_hex, ["address"], {}),
        (device.BGAPIBLEDevice.__init__, ["self", "address", "handle", "backend"], {}),
        (device.BGAPIBLEDevice.char_read, ["self", "uuid", "timeout"], {"timeout": None}),
        (device.BGAPIBLEDevice.char_read_handle, ["self", "handle", "timeout"], {"timeout": None}),
        (device.BGAPIBLEDevice.char_read_long, ["self", "uuid", "timeout"], {"timeout": None}),
        (device.BGAPIBLEDevice.char_read_long_handle, ["self", "handle", "timeout"], {"timeout": None}),
        (device.BGAPIBLEDevice.char_write, ["self", "uuid", "value", "wait_for_response"],
         {"wait_for_response": True}),
        (device.BGAPIBLEDevice.char_write_handle, ["self", "char_handle", "value", "wait_for_response"],
         {"wait_for_response": True}),
        (device.BGAPIBLEDevice.char_write_long, ["self", "uuid", "value", "wait_for_response"],
         {"wait_for_response": False}),
        (device.BGAPIBLEDevice.char_write_long_handle, ["self", "char_handle", "value", "wait_for_response"],
         {"wait_for_response": False}),
        (device.BGAPIBLEDevice.bond, ["self", "permanent"], {"permanent": False}),
        (device.BGAPIBLEDevice.subscribe, ["self", "uuid", "callback", "indication", "wait_for_response"],
         {"callback": None, "indication": False, "wait_for_response": True}),
        (device.BGAPIBLEDevice.unsubscribe, ["self", "uuid", "wait_for_response"], {"wait_for_response": True}),
        (device.BGAPIBLEDevice.exchange_mtu, ["self", "mtu"], {}),
        (error_codes.get_return_message, ["return_code"], {}),
        (util.extract_vid_pid, ["info_string"], {}),
        (util.find_usb_serial_devices, ["vendor_id", "product_id"], {"vendor_id": None, "product_id": None}),
    ],
)  # fmt: skip
def test_signatures_and_defaults(function: Callable[..., Any], names: list, expected: Dict[str, Any]) -> None:
    assert positional(function)[: len(names)] == names
    got = defaults(function)
    for name, value in expected.items():
        assert got[name] == value, name


def test_comports_is_keyword_only() -> None:
    parameter = inspect.signature(bgapi.BGAPIBackend.__init__).parameters["comports"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None


def test_pyserial_is_a_runtime_dependency() -> None:
    import pathlib

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("pyserial>=3.5") for dep in project["dependencies"])


def test_find_usb_serial_devices_filters_by_ids() -> None:
    class Port:
        def __init__(self, device: str, hwid: str) -> None:
            self.device, self.hwid, self.description = device, hwid, f"port {device}"

    ports = [
        Port("/dev/ttyACM0", "USB VID:PID=2458:0001 SER=1"),
        Port("COM7", "USB\\VID_2458&PID_0001\\5&1"),
        Port("/dev/ttyUSB0", "USB VID:PID=0403:6001"),
        Port("n/a", "USB VID:PID=2458:0001"),
        Port("/dev/ttyS0", "PNP0501"),
    ]
    found = util.find_usb_serial_devices(0x2458, 0x0001, comports=lambda: ports)
    assert [(f.port_name, f.vendor_id, f.product_id) for f in found] == [
        ("/dev/ttyACM0", 0x2458, 1),
        ("COM7", 0x2458, 1),
    ]
    assert len(util.find_usb_serial_devices(comports=lambda: ports)) == 3
    assert util.extract_vid_pid("USB VID:PID=2458:0001 SER=1") == (0x2458, 0x0001)
    assert util.extract_vid_pid("USB\\VID_2458&PID_0001\\1") == (0x2458, 0x0001)
    assert util.extract_vid_pid("PNP0501") is None
