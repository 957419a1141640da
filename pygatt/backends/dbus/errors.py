"""D-Bus and BlueZ error names and pygatt's typed exceptions (pure, no I/O).

BlueZ answers a failed call with an error name (``org.bluez.Error.NotPermitted``)
and one string. For GATT operations the string tells the ATT error:
``"Read not permitted"`` is ATT 0x02, ``"Operation failed with ATT error: 0x0a"``
carries the code itself. This module turns both into the exceptions the gatttool
backend raises for the same failure, so user code catches the same classes.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

from pygatt import exceptions

BLUEZ = "org.bluez.Error."
DBUS = "org.freedesktop.DBus.Error."

_ATT_CODE = re.compile(r"^Operation failed with ATT error: (0x[0-9a-fA-F]+)")

# (error name without prefix, message) -> the ATT error BlueZ turned into it
_GATT_MESSAGES: Dict[Tuple[str, str], int] = {
    ("NotPermitted", "Read not permitted"): 0x02,
    ("NotPermitted", "Write not permitted"): 0x03,
    ("NotPermitted", "Not paired"): 0x05,  # also 0x0f and 0x0c: BlueZ says the same for all three
    ("InvalidArguments", "Invalid offset"): 0x07,
    ("InvalidArguments", "Invalid Length"): 0x0D,
    ("NotAuthorized", "Operation Not Authorized"): 0x08,
    ("NotSupported", "Operation is not supported"): 0x06,
}
# org.bluez.Error.Failed texts that mean the link is gone
_NOT_CONNECTED_TEXTS = ("Not connected", "Not Connected")
_BOND_FAILURES = frozenset(
    {
        "AuthenticationFailed",
        "AuthenticationRejected",
        "AuthenticationCanceled",
        "AuthenticationTimeout",
        "ConnectionAttemptFailed",
        "AgentNotAvailable",
    }
)
_UNAVAILABLE = frozenset({"ServiceUnknown", "NameHasNoOwner", "Disconnected"})


class BluezNotAvailableError(exceptions.ToolError, exceptions.NotConnectedError):
    """bluetoothd (the ``org.bluez`` service) is not on the system bus, or the adapter is missing.

    A ToolError, like a missing BlueZ program for the gatttool backend, and a
    NotConnectedError, so ``except NotConnectedError`` around connect() catches it too.
    """


def att_error_of(name: str, message: str) -> Optional[int]:
    """The ATT error code BlueZ's answer stands for, or None when it names none.

    Args:
        name: the D-Bus error name, e.g. ``org.bluez.Error.NotPermitted``.
        message: the error's string.

    Returns:
        The ATT error code, e.g. 0x02 for ``NotPermitted "Read not permitted"``.
    """
    short = name[len(BLUEZ) :] if name.startswith(BLUEZ) else name
    code = _GATT_MESSAGES.get((short, message.strip()))
    if code is not None:
        return code
    match = _ATT_CODE.match(message.strip())
    return int(match.group(1), 16) if match else None


def to_exception(name: str, message: str, operation: str, target: Optional[str] = None) -> exceptions.BLEError:
    """The pygatt exception for a D-Bus error answer.

    Args:
        name: the D-Bus error name.
        message: the error's string (may be empty).
        operation: what was attempted, the D-Bus method (``ReadValue``) or pygatt's word for it.
        target: what it was about: a handle like ``0x002a``, an address, an object path.

    Returns:
        NotConnectedError for a missing link or object, a GATTError subclass for an ATT error,
        PermissionDeniedError when the bus policy refuses us, BluezNotAvailableError when
        bluetoothd is not there, NotificationTimeout when nothing answered, else BLEError.
    """
    what = f"{operation} {target}" if target else operation
    text = message.strip()
    short = name[len(BLUEZ) :] if name.startswith(BLUEZ) else None
    dbus = name[len(DBUS) :] if name.startswith(DBUS) else None
    said = f"{name}: {text}" if text else name
    if dbus == "AccessDenied":
        return exceptions.PermissionDeniedError(
            f"{what}: the D-Bus policy does not let this user talk to BlueZ ({said}). "
            "Allow it in /etc/dbus-1/system.d/ (Debian allows every user by default) or run as a user it allows.",
            output=said,
        )
    if dbus in _UNAVAILABLE:
        return BluezNotAvailableError(
            f"{what}: bluetoothd is not running or not on the system bus ({said}); "
            "start it (systemctl start bluetooth) or check DBUS_SYSTEM_BUS_ADDRESS",
            output=said,
        )
    if dbus == "NoReply":
        return exceptions.NotificationTimeout(f"{what}: BlueZ did not answer in time ({said})")
    if dbus == "UnknownObject":
        return exceptions.NotConnectedError(f"{what}: BlueZ no longer has this object, the device is gone ({said})")
    if dbus == "UnknownMethod":
        return exceptions.BLEError(f"{what}: this BlueZ does not offer the method ({said})")
    if short is None:
        return exceptions.BLEError(f"{what} failed: {said}")
    if short == "NotConnected" or (short == "Failed" and text in _NOT_CONNECTED_TEXTS):
        return exceptions.NotConnectedError(f"{what}: not connected (BlueZ: {said})")
    if short == "Failed" and text.startswith(("le-connection-", "br-connection-")):
        return exceptions.NotConnectedError(f"{what}: the connection failed (BlueZ: {said})")
    if short == "NoSuchAdapter":
        return BluezNotAvailableError(f"{what}: no such Bluetooth adapter ({said})", output=said)
    if short == "NotReady":
        return exceptions.BLEError(f"{what}: the adapter is not ready, is it powered on? ({said})")
    code = att_error_of(name, text)
    if code is not None or short in _BOND_FAILURES or short in ("Failed", "NotPermitted", "NotSupported"):
        return exceptions.gatt_error(
            f"{what} failed: {said}", code, operation=operation, target=target, reason=text or short
        )
    return exceptions.BLEError(f"{what} failed: {said}")


def timeout_error(method: str, target: str, timeout: float) -> exceptions.NotificationTimeout:
    """The exception for a call BlueZ did not answer within its deadline.

    Args:
        method: the D-Bus method called (``ReadValue``).
        target: the object path or what it stood for.
        timeout: the deadline in seconds.
    """
    return exceptions.NotificationTimeout(f"{method} on {target}: no answer from BlueZ within {timeout:g} s")
