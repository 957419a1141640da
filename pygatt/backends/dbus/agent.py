"""The pairing agent the backend registers with BlueZ (``org.bluez.Agent1``), so ``bond()`` works.

BlueZ calls the agent during pairing. This one answers without asking anyone:
it accepts Just Works and numeric-comparison pairing, and gives a fixed passkey
or PIN when one was configured (else it refuses, and pairing fails with a clear
error). It answers on the bus reader thread and never runs user code.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

from pygatt.backends.dbus.bus import DBusCallError, IncomingCall

log = logging.getLogger(__name__)

AGENT_INTERFACE = "org.bluez.Agent1"
CAPABILITIES = ("DisplayOnly", "DisplayYesNo", "KeyboardOnly", "NoInputNoOutput", "KeyboardDisplay")
REJECTED = "org.bluez.Error.Rejected"


class Agent:
    """Answers BlueZ's ``Agent1`` calls.

    Args:
        capability: the IO capability announced to BlueZ (``NoInputNoOutput`` means Just Works).
        passkey: the 6-digit passkey (0..999999) to give when the peer asks for one, or None.
        pin_code: the PIN (legacy pairing) to give when asked, or None.

    Raises:
        ValueError: an unknown capability, a passkey out of range, or a PIN that is not 1..16 characters
            or holds a control character.
    """

    def __init__(
        self, capability: str = "KeyboardDisplay", passkey: Optional[int] = None, pin_code: Optional[str] = None
    ) -> None:
        if capability not in CAPABILITIES:
            raise ValueError(f"capability must be one of {', '.join(CAPABILITIES)}, got {capability!r}")
        if passkey is not None and (
            isinstance(passkey, bool) or not isinstance(passkey, int) or not 0 <= passkey <= 999999
        ):
            raise ValueError(f"passkey must be an int within 0..999999, got {passkey!r}")
        if pin_code is not None and (not isinstance(pin_code, str) or not 1 <= len(pin_code) <= 16):
            raise ValueError(f"pin_code must be a str of 1..16 characters, got {pin_code!r}")
        if pin_code is not None and any(ord(c) < 0x20 or c == "\x7f" for c in pin_code):
            # it goes to bluetoothd in a D-Bus reply, where a NUL is an invalid message
            raise ValueError(f"pin_code must not contain control characters (NUL, line breaks), got {pin_code!r}")
        self.capability = capability
        self.passkey = passkey
        self.pin_code = pin_code
        self.calls: List[str] = []  # methods BlueZ called, for logs and tests

    def handle(self, call: IncomingCall) -> Tuple[str, Tuple[Any, ...]]:
        """Answer one call; raises DBusCallError (``org.bluez.Error.Rejected``) to refuse.

        Args:
            call: the incoming ``org.bluez.Agent1`` call.

        Returns:
            The reply's signature and body.
        """
        self.calls.append(call.member)
        log.info("Pairing agent: BlueZ called %s%r", call.member, call.body)
        if call.interface not in (AGENT_INTERFACE, ""):
            raise DBusCallError("org.freedesktop.DBus.Error.UnknownInterface", f"No interface {call.interface}")
        member = call.member
        if member in ("Release", "Cancel", "DisplayPinCode", "DisplayPasskey", "RequestConfirmation"):
            return "", ()  # a confirmation is accepted: both sides show the same number
        if member in ("RequestAuthorization", "AuthorizeService"):
            return "", ()
        if member == "RequestPasskey":
            if self.passkey is None:
                raise DBusCallError(REJECTED, "no passkey configured (DBusBackend(passkey=...))")
            return "u", (self.passkey,)
        if member == "RequestPinCode":
            if self.pin_code is None:
                raise DBusCallError(REJECTED, "no PIN code configured (DBusBackend(pin_code=...))")
            return "s", (self.pin_code,)
        raise DBusCallError("org.freedesktop.DBus.Error.UnknownMethod", f"Agent1 has no method {member}")
