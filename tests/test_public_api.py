"""pygatt 5.0.0's public names, import paths, signatures and defaults."""

from __future__ import annotations

import inspect
import logging
import uuid

import pytest

import pygatt


def defaults(function):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and parameter.kind is not inspect.Parameter.KEYWORD_ONLY
    }


def test_top_level_names_and_null_handler():
    for name in ("BLEError", "BLEDevice", "GATTToolBackend", "BGAPIBackend", "BLEAddressType"):
        assert hasattr(pygatt, name), name
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("pygatt").handlers)


def test_import_paths():
    from pygatt.backends import BGAPIBackend, BLEAddressType, BLEBackend, Characteristic, GATTToolBackend  # noqa: F401
    from pygatt.backends.backend import DEFAULT_CONNECT_TIMEOUT_S
    from pygatt.backends.gatttool.device import GATTToolBLEDevice
    from pygatt.backends.gatttool.gatttool import GATTToolBackend as Deep
    from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout
    from pygatt.util import uuid16_to_uuid

    assert DEFAULT_CONNECT_TIMEOUT_S == 5.0
    assert Deep is pygatt.GATTToolBackend is GATTToolBackend
    assert issubclass(GATTToolBLEDevice, pygatt.BLEDevice)
    assert issubclass(NotConnectedError, BLEError) and issubclass(NotificationTimeout, BLEError)
    assert pygatt.BLEError is BLEError
    assert [member.name for member in BLEAddressType] == ["public", "random"]
    assert uuid16_to_uuid(0x2902) == uuid.UUID("00002902-0000-1000-8000-00805f9b34fb")


def test_notification_timeout_keeps_gatttool_output():
    error = pygatt.exceptions.NotificationTimeout("waited", gatttool_output="tail")
    assert str(error) == "waited" and error.gatttool_output == "tail"
    assert pygatt.exceptions.NotificationTimeout().gatttool_output is None


def test_bgapi_backend_imports_and_says_it_is_not_available():
    with pytest.raises(pygatt.BLEError, match="not available in this release"):
        pygatt.BGAPIBackend()


@pytest.mark.parametrize(
    "function, expected",
    [
        (
            pygatt.GATTToolBackend.__init__,
            {
                "hci_device": "hci0",
                "gatttool_logfile": None,
                "cli_options": None,
                "search_window_size": None,
                "max_read": None,
            },
        ),
        (pygatt.GATTToolBackend.start, {"reset_on_start": True, "initialization_timeout": 3}),
        (pygatt.GATTToolBackend.scan, {"timeout": 10, "run_as_root": False}),
        (
            pygatt.GATTToolBackend.connect,
            {"timeout": 5.0, "address_type": pygatt.BLEAddressType.public, "auto_reconnect": False},
        ),
        (pygatt.GATTToolBackend.char_read, {"timeout": 1}),
        (pygatt.GATTToolBackend.char_read_handle, {"timeout": 4}),
        (pygatt.GATTToolBackend.char_write_handle, {"wait_for_response": True, "timeout": 30}),
        (pygatt.GATTToolBackend.discover_characteristics, {"timeout": 5}),
        (pygatt.GATTToolBackend.exchange_mtu, {"timeout": 1}),
        (pygatt.GATTToolBackend.clear_bond, {"address": None}),
        (pygatt.GATTToolBackend.filtered_scan, {"name_filter": ""}),
        (pygatt.BLEDevice.bond, {"permanent": False}),
        (pygatt.BLEDevice.char_write, {"wait_for_response": True}),
        (pygatt.BLEDevice.char_write_long, {"wait_for_response": False}),
        (pygatt.BLEDevice.subscribe, {"callback": None, "indication": False, "wait_for_response": True}),
        (pygatt.BLEDevice.subscribe_handle, {"callback": None, "indication": False, "wait_for_response": True}),
        (pygatt.BLEDevice.unsubscribe, {"wait_for_response": True}),
        (pygatt.BLEDevice.unsubscribe_handle, {"wait_for_response": True}),
    ],
)
def test_signature_defaults(function, expected):
    assert defaults(function) == expected


def test_positional_order_of_upstream_calls():
    params = list(inspect.signature(pygatt.GATTToolBackend.__init__).parameters)
    assert params[1:6] == ["hci_device", "gatttool_logfile", "cli_options", "search_window_size", "max_read"]
    assert list(inspect.signature(pygatt.backends.Characteristic.__init__).parameters)[1:] == ["uuid", "handle"]
    assert list(inspect.signature(pygatt.backends.GATTToolBLEDevice.__init__).parameters)[1:] == ["address", "backend"]
    for name in ("bond", "get_rssi", "char_read", "char_read_handle", "char_read_long", "char_read_long_handle",
                 "char_write", "char_write_handle", "char_write_long", "char_write_long_handle", "disconnect",
                 "subscribe", "unsubscribe", "subscribe_handle", "unsubscribe_handle", "get_handle",
                 "receive_notification", "exchange_mtu", "resubscribe_all", "register_disconnect_callback",
                 "remove_disconnect_callback"):  # fmt: skip
        assert callable(getattr(pygatt.backends.GATTToolBLEDevice, name)), name
    for name in ("start", "stop", "supports_unbonded", "connect", "scan", "filtered_scan", "clear_bond", "reset",
                 "kill", "sendline", "char_read", "char_read_handle", "char_write_handle", "discover_characteristics",
                 "exchange_mtu", "disconnect", "bond"):  # fmt: skip
        assert callable(getattr(pygatt.GATTToolBackend, name)), name
    assert pygatt.GATTToolBackend().supports_unbonded() is False  # as in pygatt 5.0.0
    assert pygatt.backends.BLEBackend().supports_unbonded() is True


def test_max_read_and_search_window_size_reach_the_session(fake_spawn):
    backend = pygatt.GATTToolBackend(max_read=512, search_window_size=2048)
    backend.start(reset_on_start=False)
    try:
        session = backend._pool.spare
        assert fake_spawn.kwargs[0]["maxread"] == 512 and session._max_read == 512
        assert session._decoder._max_pending == 2048
    finally:
        backend.stop()
    for bad in (0, -1, "10", 1.5):
        with pytest.raises(ValueError):
            pygatt.GATTToolBackend(max_read=bad)
