"""pygatt 5.0.0's whole public surface: names, import paths, signatures, defaults, values.

The table below is pygatt 5.0.0's public API as ``inspect`` reports it on the
released package, written down here in this project's own format so that the
test stands alone. Every row is checked separately, so a failure names exactly
what is missing or different.

How a row is compared with this package:

* the name must import from that path;
* the parameters 5.0.0 shows (``self`` left out) must come first here, in the
  same order, with the same names, the same kind (positional or keyword) and
  the same defaults (equal and of the same type);
* after them this package may add keyword-only parameters (with defaults) and
  ``**kwargs``, nothing else: a call that worked with 5.0.0 works here;
* where 5.0.0's own method also took ``*args, **kwargs`` (written out in the
  table; ``inspect`` listings of 5.0.0 leave them out), anything may follow,
  as 5.0.0 accepted anything there;
* extra methods are fine; 5.0.0's methods must all exist.

The BGAPI rows describe the BGAPI backend (BLED112 dongles); they fail until
that backend is in the package.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import uuid
from typing import Any, Dict, List, Tuple
from unittest import mock

import pytest

import pygatt
from tests.helpers import wait_for

# -- pygatt 5.0.0, method by method -------------------------------------------------------
# Each class maps a method name to its parameters, written as in a ``def`` line without ``self``.

_BLE_DEVICE = {
    "__init__": "address",
    "bond": "permanent=False",
    "char_read": "uuid",
    "char_read_handle": "uuid",  # sic: 5.0.0's base class names the handle parameter "uuid"
    "char_read_long": "uuid",
    "char_read_long_handle": "handle",
    "char_write": "uuid, value, wait_for_response=True",
    "char_write_handle": "handle, value, wait_for_response=True",
    "char_write_long": "uuid, value, wait_for_response=False",
    "char_write_long_handle": "handle, value, wait_for_response=False",
    "disconnect": "",
    "exchange_mtu": "mtu",
    "get_handle": "char_uuid",
    "get_rssi": "",
    "receive_notification": "handle, value",
    "resubscribe_all": "",
    "subscribe": "uuid, callback=None, indication=False, wait_for_response=True",
    "subscribe_handle": "handle, callback=None, indication=False, wait_for_response=True",
    "unsubscribe": "uuid, wait_for_response=True",
    "unsubscribe_handle": "handle, wait_for_response=True",
}

_GATTTOOL_BACKEND = {
    "__init__": "hci_device='hci0', gatttool_logfile=None, cli_options=None, search_window_size=None, max_read=None",
    "bond": "*args, **kwargs",
    "char_read": "uuid, timeout=1",
    "char_read_handle": "handle, timeout=4",
    "char_write_handle": "handle, value, wait_for_response=True, timeout=30",
    "clear_bond": "address=None",
    "connect": "address, timeout=5.0, address_type=BLEAddressType.public, auto_reconnect=False",
    "disconnect": "*args, **kwargs",
    "discover_characteristics": "timeout=5",
    "exchange_mtu": "mtu, timeout=1",
    "filtered_scan": "name_filter='', *args, **kwargs",
    "kill": "",
    "reconnect": "timeout=5.0",
    "reset": "",
    "scan": "timeout=10, run_as_root=False",
    "sendline": "command",
    "start": "reset_on_start=True, initialization_timeout=3",
    "stop": "",
    "supports_unbonded": "",
}

_GATTTOOL_DEVICE = {
    "__init__": "address, backend",
    "bond": "*args, **kwargs",
    "char_read": "uuid, *args, **kwargs",
    "char_read_handle": "handle, *args, **kwargs",
    "char_read_long": "uuid",
    "char_read_long_handle": "handle",
    "char_write": "uuid, value, wait_for_response=True",
    "char_write_handle": "handle, *args, **kwargs",
    "char_write_long": "uuid, value, wait_for_response=False",
    "char_write_long_handle": "handle, value, wait_for_response=False",
    "disconnect": "",
    "discover_characteristics": "*args, **kwargs",
    "exchange_mtu": "mtu, *args, **kwargs",
    "get_handle": "char_uuid",
    "get_rssi": "",
    "receive_notification": "handle, value",
    "register_disconnect_callback": "callback",
    "remove_disconnect_callback": "callback",
    "resubscribe_all": "",
    "subscribe": "uuid, callback=None, indication=False, wait_for_response=True",
    "subscribe_handle": "handle, callback=None, indication=False, wait_for_response=True",
    "unsubscribe": "uuid, wait_for_response=True",
    "unsubscribe_handle": "handle, wait_for_response=True",
}

_BLE_BACKEND = {
    "__init__": "",
    "clear_bond": "address=None",
    "connect": "address, timeout=5.0, **kwargs",
    "filtered_scan": "name_filter='', *args, **kwargs",
    "scan": "*args, **kwargs",
    "start": "",
    "stop": "",
    "supports_unbonded": "",
}

_CHARACTERISTIC = {
    "__init__": "uuid, handle",
    "add_descriptor": "uuid, handle",
}

_BGAPI_BACKEND = {
    "__init__": "serial_port=None, receive_queue_timeout=0.1",
    "clear_bond": "address=None",
    "connect": (
        "address, timeout=5, address_type=BLEAddressType.public, interval_min=60, interval_max=76, "
        "supervision_timeout=100, latency=0"
    ),
    "disable_advertising": "",
    "discover_characteristics": "connection_handle, timeout=30",
    "expect": "expected, *args, **kwargs",
    "expect_any": "expected_packet_choices, timeout=None, assert_return_success=True",
    "filtered_scan": "name_filter='', *args, **kwargs",
    "get_mac": "",
    "scan": "timeout=10, scan_interval=75, scan_window=50, active=True, discover_mode=2, scan_cb=None, **kwargs",
    "send_command": "*args, **kwargs",
    "set_bondable": "bondable",
    "start": "reset=True, delay_after_reset_s=1",
    "stop": "",
    "supports_unbonded": "",
}

_BGAPI_DEVICE = {
    "__init__": "address, handle, backend",
    "bond": "permanent=False",
    "char_read": "uuid, timeout=None",
    "char_read_handle": "handle, timeout=None",
    "char_read_long": "uuid, timeout=None",
    "char_read_long_handle": "handle, timeout=None",
    "char_write": "uuid, value, wait_for_response=True",
    "char_write_handle": "char_handle, value, wait_for_response=True",
    "char_write_long": "uuid, value, wait_for_response=False",
    "char_write_long_handle": "char_handle, value, wait_for_response=False",
    "disconnect": "",
    "discover_characteristics": "",
    "exchange_mtu": "mtu",
    "get_handle": "char_uuid",
    "get_rssi": "",
    "receive_notification": "handle, value",
    "resubscribe_all": "",
    "subscribe": "uuid, callback=None, indication=False, wait_for_response=True",
    "subscribe_handle": "handle, callback=None, indication=False, wait_for_response=True",
    "unsubscribe": "uuid, wait_for_response=True",
    "unsubscribe_handle": "handle, wait_for_response=True",
}

CLASSES: Dict[str, Dict[str, str]] = {
    "pygatt.BLEDevice": _BLE_DEVICE,
    "pygatt.device.BLEDevice": _BLE_DEVICE,
    "pygatt.GATTToolBackend": _GATTTOOL_BACKEND,
    "pygatt.backends.GATTToolBackend": _GATTTOOL_BACKEND,
    "pygatt.backends.gatttool.gatttool.GATTToolBackend": _GATTTOOL_BACKEND,
    "pygatt.backends.gatttool.device.GATTToolBLEDevice": _GATTTOOL_DEVICE,
    "pygatt.backends.BLEBackend": _BLE_BACKEND,
    "pygatt.backends.backend.BLEBackend": _BLE_BACKEND,
    "pygatt.backends.Characteristic": _CHARACTERISTIC,
    "pygatt.backends.backend.Characteristic": _CHARACTERISTIC,
    "pygatt.backends.bgapi.bgapi.BGAPIBackend": _BGAPI_BACKEND,
    "pygatt.backends.bgapi.device.BGAPIBLEDevice": _BGAPI_DEVICE,
    "pygatt.backends.bgapi.bgapi.AdvertisingAndScanInfo": {"__init__": ""},
    "pygatt.backends.bgapi.util.USBSerialDeviceInfo": {"__init__": ""},
}

FUNCTIONS: Dict[str, str] = {
    "pygatt.util.uuid16_to_uuid": "uuid16",
    "pygatt.backends.bgapi.bgapi.bgapi_address_to_hex": "address",
    "pygatt.backends.bgapi.error_codes.get_return_message": "return_code",
    "pygatt.backends.bgapi.util.extract_vid_pid": "info_string",
    "pygatt.backends.bgapi.util.find_usb_serial_devices": "vendor_id=None, product_id=None",
}

CONSTANTS: Dict[str, Any] = {
    "pygatt.backends.backend.DEFAULT_CONNECT_TIMEOUT_S": 5.0,
    "pygatt.backends.gatttool.gatttool.DEFAULT_RECONNECT_DELAY": 1.0,
    "pygatt.backends.bgapi.bgapi.MAX_CONNECTION_ATTEMPTS": 10,
}

# class -> the first two classes after it in its method resolution order, by name
BASES: Dict[str, Tuple[str, str]] = {
    "pygatt.BLEError": ("Exception", "BaseException"),
    "pygatt.exceptions.BLEError": ("Exception", "BaseException"),
    "pygatt.exceptions.NotConnectedError": ("BLEError", "Exception"),
    "pygatt.exceptions.NotificationTimeout": ("BLEError", "Exception"),
    "pygatt.backends.bgapi.exceptions.BGAPIError": ("BLEError", "Exception"),
    "pygatt.backends.bgapi.exceptions.ExpectedResponseTimeout": ("BGAPIError", "BLEError"),
    "pygatt.BGAPIBackend": ("BLEBackend", "object"),
    "pygatt.backends.BGAPIBackend": ("BLEBackend", "object"),
}

ENUMS: Dict[str, Dict[str, int]] = {
    "pygatt.BLEAddressType": {"public": 1, "random": 2},
    "pygatt.backends.BLEAddressType": {"public": 1, "random": 2},
    "pygatt.backends.backend.BLEAddressType": {"public": 1, "random": 2},
}

# one object reachable under several names: every path must give the same object
SAME_OBJECT: List[Tuple[str, ...]] = [
    ("pygatt.BLEError", "pygatt.exceptions.BLEError"),
    ("pygatt.BLEDevice", "pygatt.device.BLEDevice"),
    ("pygatt.BLEAddressType", "pygatt.backends.BLEAddressType", "pygatt.backends.backend.BLEAddressType"),
    (
        "pygatt.GATTToolBackend",
        "pygatt.backends.GATTToolBackend",
        "pygatt.backends.gatttool.gatttool.GATTToolBackend",
    ),
    ("pygatt.backends.BLEBackend", "pygatt.backends.backend.BLEBackend"),
    ("pygatt.backends.Characteristic", "pygatt.backends.backend.Characteristic"),
    ("pygatt.BGAPIBackend", "pygatt.backends.BGAPIBackend", "pygatt.backends.bgapi.bgapi.BGAPIBackend"),
]


# -- reading the table and this package -----------------------------------------------------


def resolve(dotted: str) -> Any:
    """Import ``dotted`` the way a user script would: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            if cut == 1:
                raise
            continue
        for index, name in enumerate(parts[cut:], start=cut):
            if not hasattr(target, name):
                raise AssertionError(f"{'.'.join(parts[:index])} has no attribute {name!r} (looking for {dotted})")
            target = getattr(target, name)
        return target
    raise AssertionError(f"cannot import {dotted}")  # pragma: no cover - the loop returns or raises


class Expected:
    """One parameter as 5.0.0 shows it: name, kind, default (``inspect.Parameter.empty`` when required)."""

    def __init__(self, name: str, kind: Any, default: Any = inspect.Parameter.empty) -> None:
        self.name = name
        self.kind = kind
        self.default = default


def expected_parameters(text: str) -> List[Expected]:
    """Parse a row's parameter text (a ``def`` line's parameters) into Expected parameters."""
    tree = ast.parse(f"def row({text}): pass")
    arguments = tree.body[0].args  # type: ignore[attr-defined]
    namespace = {"BLEAddressType": pygatt.BLEAddressType}
    plain = arguments.args
    defaults = [inspect.Parameter.empty] * (len(plain) - len(arguments.defaults)) + [
        eval(compile(ast.Expression(node), "<row>", "eval"), namespace) for node in arguments.defaults
    ]
    result = [Expected(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, d) for a, d in zip(plain, defaults)]
    if arguments.vararg is not None:
        result.append(Expected(arguments.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    if arguments.kwarg is not None:
        result.append(Expected(arguments.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return result


def shown_parameters(function: Any, drop_self: bool) -> List[inspect.Parameter]:
    if function is object.__init__:
        return []  # no __init__ of its own (as 5.0.0's BLEBackend): takes no arguments
    parameters = list(inspect.signature(function).parameters.values())
    return parameters[1:] if drop_self else parameters


def show(parameters: List[Any]) -> str:
    out = []
    for p in parameters:
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "")
        default = "" if p.default is inspect.Parameter.empty else f"={p.default!r}"
        out.append(f"{prefix}{p.name}{default}")
    return "(" + ", ".join(out) + ")"


def check_parameters(where: str, actual: List[inspect.Parameter], expected: List[Expected]) -> None:
    """Assert that ``actual`` (this package) accepts every call 5.0.0's ``expected`` accepted, as described above."""
    named = [e for e in expected if e.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    open_ended = any(e.kind is inspect.Parameter.VAR_POSITIONAL for e in expected)
    shown_500 = show(named) + (" + *args, **kwargs" if open_ended else "")
    message = f"{where}: pygatt 5.0.0 shows {shown_500}, here {show(actual)}"
    assert len(actual) >= len(named), message
    for want, have in zip(named, actual):
        assert have.name == want.name, message
        assert have.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, message
        if want.default is inspect.Parameter.empty:
            assert have.default is inspect.Parameter.empty, message
        else:
            assert have.default == want.default and type(have.default) is type(want.default), message
    if open_ended:
        return
    for extra in actual[len(named) :]:
        keyword_only = extra.kind is inspect.Parameter.KEYWORD_ONLY and extra.default is not inspect.Parameter.empty
        assert keyword_only or extra.kind is inspect.Parameter.VAR_KEYWORD, (
            f"{message}: {extra.name!r} must be keyword-only with a default (or **kwargs)"
        )


METHOD_ROWS = [(path, method, text) for path, methods in CLASSES.items() for method, text in methods.items()]


@pytest.mark.parametrize("path, method, text", METHOD_ROWS, ids=[f"{p}.{m}" for p, m, _ in METHOD_ROWS])
def test_method_signature_as_in_500(path, method, text):
    cls = resolve(path)
    assert inspect.isclass(cls), f"{path} is not a class"
    assert hasattr(cls, method), f"{path} has no method {method}"
    static = inspect.getattr_static(cls, method)
    drop_self = not isinstance(static, (staticmethod, classmethod))
    check_parameters(f"{path}.{method}", shown_parameters(getattr(cls, method), drop_self), expected_parameters(text))


@pytest.mark.parametrize("path, text", list(FUNCTIONS.items()), ids=list(FUNCTIONS))
def test_function_signature_as_in_500(path, text):
    function = resolve(path)
    assert callable(function) and not inspect.isclass(function), f"{path} is not a function"
    check_parameters(path, shown_parameters(function, drop_self=False), expected_parameters(text))


@pytest.mark.parametrize("path, value", list(CONSTANTS.items()), ids=list(CONSTANTS))
def test_constant_as_in_500(path, value):
    constant = resolve(path)
    assert constant == value and type(constant) is type(value), f"{path} is {constant!r}, 5.0.0 has {value!r}"


@pytest.mark.parametrize("path, bases", list(BASES.items()), ids=list(BASES))
def test_class_hierarchy_as_in_500(path, bases):
    cls = resolve(path)
    assert inspect.isclass(cls), f"{path} is not a class"
    shown = tuple(c.__name__ for c in cls.__mro__[1:3])
    assert shown == bases, f"{path} derives from {shown}, in 5.0.0 from {bases}"


@pytest.mark.parametrize("path, members", list(ENUMS.items()), ids=list(ENUMS))
def test_enum_members_and_values_as_in_500(path, members):
    enum = resolve(path)
    assert [m.name for m in enum] == list(members)
    for name, value in members.items():
        assert getattr(enum, name).value == value, f"{path}.{name}.value"
        assert enum(value) is getattr(enum, name), f"{path}({value})"
        assert enum[name] is getattr(enum, name)
    assert repr(enum.public) == "<BLEAddressType.public: 1>"  # how 5.0.0's connect() default is shown


@pytest.mark.parametrize("paths", SAME_OBJECT, ids=[p[0] for p in SAME_OBJECT])
def test_import_paths_name_the_same_object(paths):
    objects = [resolve(path) for path in paths]
    assert all(o is objects[0] for o in objects), f"{paths} are not one object"


def check_instance_signatures(label: str, instance: object, table: Dict[str, str]) -> None:
    """Every method of ``table`` as ``inspect.signature`` shows it on ``instance``: 5.0.0's parameters."""
    for method, text in table.items():
        if method == "__init__":
            continue
        check_parameters(
            f"{label}.{method}", shown_parameters(getattr(instance, method), drop_self=False), expected_parameters(text)
        )


def test_gatttool_backend_signatures_on_an_instance():
    """What ``inspect.signature(adapter.char_read)`` shows a user: 5.0.0's parameters, the device not among them."""
    check_instance_signatures("GATTToolBackend()", pygatt.GATTToolBackend(), _GATTTOOL_BACKEND)


def test_gatttool_device_signatures_on_an_instance():
    device = resolve("pygatt.backends.gatttool.device.GATTToolBLEDevice")("11:22:33:44:55:66", mock.MagicMock())
    check_instance_signatures("GATTToolBLEDevice(...)", device, _GATTTOOL_DEVICE)


@pytest.mark.parametrize(
    "call, backend_method, backend_args",
    [
        (lambda d: d.char_read("2a19", 2), "char_read", ("2a19",)),
        (lambda d: d.char_read_handle(0x000C, 2), "char_read_handle", (0x000C,)),
        (lambda d: d.char_write_handle(0x000C, b"\x01", True, 2), "char_write_handle", (0x000C, b"\x01", True)),
        (lambda d: d.discover_characteristics(2), "discover_characteristics", ()),
        (lambda d: d.exchange_mtu(100, 2), "exchange_mtu", (100,)),
    ],
    ids=["char_read", "char_read_handle", "char_write_handle", "discover_characteristics", "exchange_mtu"],
)
def test_gatttool_device_takes_the_timeout_by_position_as_500_did(call, backend_method, backend_args):
    """5.0.0's GATTToolBLEDevice passed ``*args`` on to its backend, where ``timeout`` came next:
    ``device.char_read(uuid, 2)`` worked there and must reach the backend as that timeout here."""
    backend = mock.MagicMock()
    backend.discover_characteristics.return_value = {}
    device = resolve("pygatt.backends.gatttool.device.GATTToolBLEDevice")("11:22:33:44:55:66", backend)
    call(device)
    getattr(backend, backend_method).assert_called_once_with(device, *backend_args, timeout=2)


@pytest.mark.parametrize(
    "call, link_method, link_args",
    [
        (lambda d: d.char_read("2a19", 2), "read_uuid", (uuid.UUID("00002a19-0000-1000-8000-00805f9b34fb"),)),
        (lambda d: d.char_read_handle(0x000C, 2), "read_handle", (0x000C,)),
        (lambda d: d.char_write_handle(0x000C, b"\x01", True, 2), "write_handle", (0x000C, b"\x01", True)),
        (lambda d: d.discover_characteristics(2), "discover", ()),
        (lambda d: d.exchange_mtu(100, 2), "exchange_mtu", (100,)),
    ],
    ids=["char_read", "char_read_handle", "char_write_handle", "discover_characteristics", "exchange_mtu"],
)
def test_dbus_device_takes_the_timeout_by_position_as_the_gatttool_device_does(call, link_method, link_args):
    """Switching GATTToolBackend for DBusBackend keeps ``device.char_read(uuid, 2)`` working: the
    D-Bus device takes the timeout by position too, and its link gets it."""
    link = mock.MagicMock(mtu=23)
    link.discover.return_value = {}
    device = pygatt.backends.dbus.DBusBLEDevice("11:22:33:44:55:66", mock.MagicMock())
    device.link_up(link)
    call(device)
    getattr(link, link_method).assert_called_once_with(*link_args, 2)


# -- details beyond the listing --------------------------------------------------------------


def test_top_level_all_and_null_handler():
    for name in ("BLEError", "BLEDevice", "GATTToolBackend", "BGAPIBackend", "BLEAddressType"):
        assert name in pygatt.__all__, name
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("pygatt").handlers)


def test_uuid16_to_uuid():
    from pygatt.util import uuid16_to_uuid

    assert uuid16_to_uuid(0x2902) == uuid.UUID("00002902-0000-1000-8000-00805f9b34fb")


def test_address_type_from_its_5_0_0_value_and_name():
    from pygatt.backends import BLEAddressType

    assert BLEAddressType(1) is BLEAddressType.public and BLEAddressType(2) is BLEAddressType.random
    assert BLEAddressType["random"].name == "random"


def test_notification_timeout_keeps_gatttool_output():
    error = pygatt.exceptions.NotificationTimeout("waited", gatttool_output="tail")
    assert str(error) == "waited" and error.gatttool_output == "tail"
    assert pygatt.exceptions.NotificationTimeout().gatttool_output is None


def test_supports_unbonded_as_in_500():
    assert pygatt.GATTToolBackend().supports_unbonded() is False


def test_bgapi_backend_is_available_and_opens_nothing_until_started():
    backend = pygatt.BGAPIBackend(serial_port="/dev/does-not-exist")
    assert backend.port_name is None
    backend.stop()  # never started: nothing to do
    assert pygatt.backends.BLEBackend().supports_unbonded() is True


def test_our_keyword_only_additions():
    """This package's additions are keyword-only, after 5.0.0's parameters."""
    init = inspect.signature(pygatt.GATTToolBackend.__init__).parameters["tools"]
    assert init.kind is inspect.Parameter.KEYWORD_ONLY and init.default is None
    scan = inspect.signature(pygatt.GATTToolBackend.scan).parameters["tool"]
    assert scan.kind is inspect.Parameter.KEYWORD_ONLY and scan.default == "hcitool"


def test_max_read_reaches_the_gatttool_child_and_limits_are_checked(fake_spawn):
    backend = pygatt.GATTToolBackend(max_read=512, search_window_size=2048)
    backend.start(reset_on_start=False)
    try:
        assert wait_for(lambda: fake_spawn.child.read_sizes == {512})
    finally:
        backend.stop()
    for name in ("max_read", "search_window_size"):
        for bad in (0, -1, "10", 1.5, True):
            with pytest.raises(ValueError):
                pygatt.GATTToolBackend(**{name: bad})
