"""What the simulated ``org.bluez`` says, without any I/O: names, paths, errors, options.

BlueZ 5.66 facts the mock reproduces, kept apart from the bus so they can be
tested alone: the object paths (which carry ATT handles), the method table with
input signatures (BlueZ dispatches on name *and* signature), the error names and
their exact messages (clients parse them), the parsing of the ``a{sv}`` options
of ``ReadValue``/``WriteValue``/``SetDiscoveryFilter``, and introspection XML.

Options received as ``a{sv}`` arrive here as ``{key: (signature, value)}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import quoteattr

from pygatt.testing.world import ATT_ERROR_TEXTS, PROPERTY_BITS, Characteristic

SERVICE_NAME = "org.bluez"
ROOT = "/"
BLUEZ_PATH = "/org/bluez"

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
SERVICE = "org.bluez.GattService1"
CHARACTERISTIC = "org.bluez.GattCharacteristic1"
DESCRIPTOR = "org.bluez.GattDescriptor1"
AGENT_MANAGER = "org.bluez.AgentManager1"
PROFILE_MANAGER = "org.bluez.ProfileManager1"
GATT_MANAGER = "org.bluez.GattManager1"
AGENT = "org.bluez.Agent1"

CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"
BLUEZ_ERROR = "org.bluez.Error."
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"

#: BlueZ's default messages (``src/error.c``) for the errors that have one.
DEFAULT_MESSAGES = {
    "InvalidArguments": "Invalid arguments in method call",
    "InProgress": "Operation already in progress",
    "AlreadyExists": "Already Exists",
    "NotSupported": "Operation is not supported",
    "NotConnected": "Not Connected",
    "AlreadyConnected": "Already Connected",
    "NotAvailable": "Operation currently not available",
    "DoesNotExist": "Does Not Exist",
    "NotAuthorized": "Operation Not Authorized",
    "NoSuchAdapter": "No such adapter",
    "AgentNotAvailable": "Agent Not Available",
    "NotReady": "Resource Not Ready",
    "AuthenticationFailed": "Authentication Failed",
    "AuthenticationRejected": "Authentication Rejected",
    "AuthenticationCanceled": "Authentication Canceled",
    "AuthenticationTimeout": "Authentication Timeout",
    "ConnectionAttemptFailed": "Page Timeout",
}

#: Connect failures: the errno in gatttool's message -> BlueZ's ``le-connection-*`` reason.
CONNECT_REASONS = {
    111: "le-connection-refused",
    110: "le-connection-timeout",
    16: "le-connection-busy",
    103: "le-connection-abort-by-local",
    104: "le-connection-abort-by-remote",
    22: "le-connection-invalid-arguments",
    112: "le-connection-unknown",
    113: "le-connection-adapter-not-powered",
}

#: A characteristic's ``Flags`` in BlueZ's order (``PROPERTY_BITS`` bit order).
FLAG_ORDER = sorted(PROPERTY_BITS, key=PROPERTY_BITS.__getitem__)


class BluezError(Exception):
    """A D-Bus error reply: its name and its one string argument.

    Args:
        name: the full error name (``org.bluez.Error.Failed``).
        message: the text (body[0]); may be empty.
    """

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def bluez_error(short: str, message: Optional[str] = None) -> BluezError:
    """An ``org.bluez.Error.<short>`` with BlueZ's default text unless ``message`` is given.

    Args:
        short: the last part of the name (``"InProgress"``).
        message: a custom text (``Failed`` and ``NotPermitted`` always have one).

    Returns:
        The error, ready to be raised.
    """
    return BluezError(BLUEZ_ERROR + short, DEFAULT_MESSAGES.get(short, "") if message is None else message)


def att_code_of(error: Union[int, str, None]) -> Optional[int]:
    """The ATT error code of a world's ``read_error``/``write_error`` (a code or gatttool's text).

    Args:
        error: None, an ATT code, or the text gatttool prints for one.

    Returns:
        The code, 0x0E ("unlikely error") for a text no code has, or None.
    """
    if error is None:
        return None
    if isinstance(error, int):
        return error
    for code, text in ATT_ERROR_TEXTS.items():
        if text == error:
            return code
    return 0x0E


def gatt_error(att_code: int) -> BluezError:
    """The error BlueZ's GATT client replies for an ATT error (``create_gatt_dbus_error``).

    Args:
        att_code: the ATT error code; 0 for a failed or cancelled operation (link lost).

    Returns:
        The D-Bus error with BlueZ's exact text.
    """
    if att_code == 0x02:
        return bluez_error("NotPermitted", "Read not permitted")
    if att_code == 0x03:
        return bluez_error("NotPermitted", "Write not permitted")
    if att_code in (0x05, 0x0C, 0x0F):
        return bluez_error("NotPermitted", "Not paired")
    if att_code == 0x07:
        return bluez_error("InvalidArguments", "Invalid offset")
    if att_code == 0x0D:
        return bluez_error("InvalidArguments", "Invalid Length")
    if att_code == 0x08:
        return bluez_error("NotAuthorized")
    if att_code == 0x06:
        return bluez_error("NotSupported")
    if att_code == 0:
        return bluez_error("Failed", "Operation failed")
    return bluez_error("Failed", f"Operation failed with ATT error: 0x{att_code:02x}")


def not_connected() -> BluezError:
    """What a GATT call gets without a link: ``Failed "Not connected"`` (not ``NotConnected``)."""
    return bluez_error("Failed", "Not connected")


def connect_failure(text: Optional[str]) -> BluezError:
    """The ``Device1.Connect`` failure for a world's ``connect_error`` (gatttool's text).

    Args:
        text: gatttool's message, whose ``(errno)`` picks the reason; None for an unreachable peer.

    Returns:
        ``org.bluez.Error.Failed`` with ``le-connection-<reason>``.
    """
    if text is None:
        return bluez_error("Failed", "le-connection-abort-by-local")
    match = re.search(r"\((\d+)\)\s*$", text)
    reason = CONNECT_REASONS.get(int(match.group(1)), "le-connection-unknown") if match else "le-connection-unknown"
    return bluez_error("Failed", reason)


def unknown_method(member: str, signature: str, interface: str) -> BluezError:
    """libdbus/gdbus's reply to a method that does not exist with that signature."""
    return BluezError(
        UNKNOWN_METHOD, f'Method "{member}" with signature "{signature}" on interface "{interface}" doesn\'t exist\n'
    )


def unknown_object(path: str) -> BluezError:
    """libdbus's reply to a call on a path where nothing is exported."""
    return BluezError(UNKNOWN_OBJECT, f"No such object path '{path}'")


# -- paths -------------------------------------------------------------------------------
def adapter_path(name: str) -> str:
    """``hci0`` -> ``/org/bluez/hci0``."""
    return f"{BLUEZ_PATH}/{name}"


def device_path(adapter: str, address: str) -> str:
    """The device's path: adapter path + ``/dev_`` + upper-case address with ``_``.

    Args:
        adapter: the adapter's path.
        address: the device address, any case.

    Returns:
        e.g. ``/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01``.
    """
    return f"{adapter}/dev_{address.upper().replace(':', '_')}"


def service_path(device: str, start_handle: int) -> str:
    """``serviceSSSS``: the service's start (declaration) handle, ``%04x``."""
    return f"{device}/service{start_handle:04x}"


def characteristic_path(service: str, declaration_handle: int) -> str:
    """``charCCCC``: the characteristic DECLARATION handle (the value is CCCC+1)."""
    return f"{service}/char{declaration_handle:04x}"


def descriptor_path(characteristic: str, handle: int) -> str:
    """``descDDDD``: the descriptor's own handle."""
    return f"{characteristic}/desc{handle:04x}"


def handle_of(path: str) -> int:
    """The handle a GATT object path ends with (as bleak reads it: the last 4 hex digits).

    Args:
        path: a ``serviceSSSS``/``charCCCC``/``descDDDD`` path.

    Returns:
        The handle.

    Raises:
        ValueError: the path does not end in a GATT object name.
    """
    match = re.search(r"/(?:service|char|desc)([0-9a-f]{4})$", path)
    if match is None:
        raise ValueError(f"not a GATT object path: {path!r}")
    return int(match.group(1), 16)


def characteristic_flags(characteristic: Characteristic) -> List[str]:
    """A characteristic's ``Flags`` (its world properties, in bit order)."""
    return [name for name in FLAG_ORDER if name in characteristic.properties]


# -- options -------------------------------------------------------------------------------
Options = Dict[str, Tuple[str, Any]]  # key -> (signature, value), as received in an a{sv}


def parse_gatt_options(options: Options) -> Tuple[int, Optional[str]]:
    """``offset`` (q) and ``type`` (s) of ReadValue/WriteValue; other keys are ignored.

    Args:
        options: the received ``a{sv}``.

    Returns:
        (offset, type lower-cased or None).

    Raises:
        BluezError: ``InvalidArguments`` for a wrong type.
    """
    offset, kind = 0, None
    if "offset" in options:
        signature, value = options["offset"]
        if signature != "q":
            raise bluez_error("InvalidArguments")
        offset = int(value)
    if "type" in options:
        signature, value = options["type"]
        if signature != "s":
            raise bluez_error("InvalidArguments")
        kind = str(value).lower()
    return offset, kind


FILTER_KEYS = {
    "UUIDs": "as",
    "RSSI": "n",
    "Pathloss": "q",
    "Transport": "s",
    "DuplicateData": "b",
    "Discoverable": "b",
    "Pattern": "s",
}


@dataclass
class DiscoveryFilter:
    """One client's ``SetDiscoveryFilter``."""

    uuids: Optional[List[str]] = None
    rssi: Optional[int] = None
    pathloss: Optional[int] = None
    transport: str = "auto"
    duplicate_data: bool = False
    pattern: str = ""

    def accepts(self, address: str, name: Optional[str], rssi: int, uuids: Sequence[str]) -> bool:
        """Whether an advertisement passes this filter.

        Args:
            address: the advertiser's address.
            name: its advertised name, if any.
            rssi: the report's RSSI.
            uuids: the advertised service UUIDs (128-bit, lower case).

        Returns:
            True when it passes.
        """
        if self.transport == "bredr":
            return False
        if self.rssi is not None and rssi < self.rssi:
            return False
        if self.uuids and not set(u.lower() for u in self.uuids) & set(uuids):
            return False
        if self.pattern:
            return address.upper().startswith(self.pattern.upper()) or (name or "").startswith(self.pattern)
        return True


def parse_discovery_filter(options: Options) -> DiscoveryFilter:
    """``Adapter1.SetDiscoveryFilter``'s dictionary; ``{}`` clears.

    Args:
        options: the received ``a{sv}``.

    Returns:
        The filter.

    Raises:
        BluezError: ``InvalidArguments`` for an unknown key, a wrong type, an RSSI out of
            -127..20, an unknown transport, or RSSI together with Pathloss.
    """
    result = DiscoveryFilter()
    for key, (signature, value) in options.items():
        if FILTER_KEYS.get(key) != signature:
            raise bluez_error("InvalidArguments")
        if key == "UUIDs":
            result.uuids = [str(u).lower() for u in value]
        elif key == "RSSI":
            if not -127 <= int(value) <= 20:
                raise bluez_error("InvalidArguments")
            result.rssi = int(value)
        elif key == "Pathloss":
            result.pathloss = int(value)
        elif key == "Transport":
            if value not in ("auto", "bredr", "le"):
                raise bluez_error("InvalidArguments")
            result.transport = str(value)
        elif key == "DuplicateData":
            result.duplicate_data = bool(value)
        elif key == "Pattern":
            result.pattern = str(value)
    if result.rssi is not None and result.pathloss is not None:
        raise bluez_error("InvalidArguments")
    return result


AGENT_CAPABILITIES = ("DisplayOnly", "DisplayYesNo", "KeyboardOnly", "NoInputNoOutput", "KeyboardDisplay", "")


# -- the method table ---------------------------------------------------------------------------
Method = Tuple[str, str]  # (input signature, output signature)

METHODS: Dict[str, Dict[str, Method]] = {
    OBJECT_MANAGER: {"GetManagedObjects": ("", "a{oa{sa{sv}}}")},
    PROPERTIES: {"Get": ("ss", "v"), "GetAll": ("s", "a{sv}"), "Set": ("ssv", "")},
    INTROSPECTABLE: {"Introspect": ("", "s")},
    AGENT_MANAGER: {"RegisterAgent": ("os", ""), "UnregisterAgent": ("o", ""), "RequestDefaultAgent": ("o", "")},
    PROFILE_MANAGER: {"RegisterProfile": ("osa{sv}", ""), "UnregisterProfile": ("o", "")},
    GATT_MANAGER: {"RegisterApplication": ("oa{sv}", ""), "UnregisterApplication": ("o", "")},
    ADAPTER: {
        "StartDiscovery": ("", ""),
        "StopDiscovery": ("", ""),
        "SetDiscoveryFilter": ("a{sv}", ""),
        "GetDiscoveryFilters": ("", "as"),
        "RemoveDevice": ("o", ""),
    },
    DEVICE: {
        "Connect": ("", ""),
        "Disconnect": ("", ""),
        "ConnectProfile": ("s", ""),
        "DisconnectProfile": ("s", ""),
        "Pair": ("", ""),
        "CancelPairing": ("", ""),
    },
    SERVICE: {},
    CHARACTERISTIC: {
        "ReadValue": ("a{sv}", "ay"),
        "WriteValue": ("aya{sv}", ""),
        "AcquireWrite": ("a{sv}", "hq"),
        "AcquireNotify": ("a{sv}", "hq"),
        "StartNotify": ("", ""),
        "StopNotify": ("", ""),
    },
    DESCRIPTOR: {"ReadValue": ("a{sv}", "ay"), "WriteValue": ("aya{sv}", "")},
}
#: Only with ``bluetoothd -E`` (experimental); 5.66 introspection shows no out argument.
CONNECT_DEVICE: Method = ("a{sv}", "")
SIGNALS = {
    OBJECT_MANAGER: {"InterfacesAdded": "oa{sa{sv}}", "InterfacesRemoved": "oas"},
    PROPERTIES: {"PropertiesChanged": "sa{sv}as"},
}


def introspection_xml(
    interfaces: Dict[str, Dict[str, Tuple[str, Any]]],
    children: Sequence[str],
    methods: Optional[Dict[str, Dict[str, Method]]] = None,
) -> str:
    """An ``Introspect`` answer: the object's interfaces (methods, signals, properties) and child nodes.

    Args:
        interfaces: interface -> property name -> (signature, value).
        children: names of the child nodes (the last path element).
        methods: the method table to describe (:data:`METHODS` by default).

    Returns:
        The XML text.
    """
    table = METHODS if methods is None else methods
    out = [
        '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
        '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
        "<node>",
    ]
    for name in [INTROSPECTABLE, PROPERTIES, *interfaces]:
        out.append(f"  <interface name={quoteattr(name)}>")
        for member, (inputs, outputs) in table.get(name, {}).items():
            out.append(f"    <method name={quoteattr(member)}>")
            out.extend(f'      <arg type="{sig}" direction="in"/>' for sig in split_signature(inputs))
            out.extend(f'      <arg type="{sig}" direction="out"/>' for sig in split_signature(outputs))
            out.append("    </method>")
        for member, signature in SIGNALS.get(name, {}).items():
            out.append(f"    <signal name={quoteattr(member)}>")
            out.extend(f'      <arg type="{sig}"/>' for sig in split_signature(signature))
            out.append("    </signal>")
        for prop, (signature, _) in interfaces.get(name, {}).items():
            out.append(f'    <property name={quoteattr(prop)} type="{signature}" access="read"/>')
        out.append("  </interface>")
    out.extend(f"  <node name={quoteattr(child)}/>" for child in children)
    out.append("</node>")
    return "\n".join(out) + "\n"


def split_signature(signature: str) -> List[str]:
    """Split a D-Bus signature into its complete types (``"aya{sv}"`` -> ``["ay", "a{sv}"]``).

    Args:
        signature: a valid signature.

    Returns:
        One string per complete type.
    """
    types: List[str] = []
    i = 0
    while i < len(signature):
        end = _type_end(signature, i)
        types.append(signature[i:end])
        i = end
    return types


def _type_end(signature: str, i: int) -> int:
    char = signature[i]
    if char == "a":
        return _type_end(signature, i + 1)
    if char in "({":
        closing = ")" if char == "(" else "}"
        depth, j = 0, i
        while True:
            if signature[j] in "({":
                depth += 1
            elif signature[j] in ")}":
                depth -= 1
                if depth == 0 and signature[j] == closing:
                    return j + 1
            j += 1
    return i + 1
