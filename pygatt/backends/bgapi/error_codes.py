"""BGAPI result codes: every code a BLED112 returns, with its name and meaning.

A result is a 16-bit number; 0 means success. The high byte says where the
error comes from: 0x01 the BGAPI stack itself, 0x02 the Bluetooth controller
(0x0200 + HCI error), 0x03 the security manager (0x0300 + SMP reason) and 0x04
the remote attribute server (0x0400 + ATT error code).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Optional


class ErrorSpace(enum.IntEnum):
    """Where a result code comes from (its high byte)."""

    BGAPI = 0x01
    BLUETOOTH = 0x02
    SECURITY_MANAGER = 0x03
    ATTRIBUTE_PROTOCOL = 0x04


@dataclass(frozen=True)
class ReturnCode:
    """One known result code."""

    code: int
    name: str
    message: str

    @property
    def space(self) -> Optional[ErrorSpace]:
        """The error space of the code, None if the high byte names none."""
        try:
            return ErrorSpace(self.code >> 8)
        except ValueError:
            return None


SUCCESS = 0
ATT_ERROR_BASE = 0x0400

_TABLE = (
    # BGAPI
    (0x0180, "invalid_parameter", "Command contained invalid parameter"),
    (0x0181, "wrong_state", "Device is in wrong state to receive command"),
    (0x0182, "out_of_memory", "Device has run out of memory"),
    (0x0183, "feature_not_implemented", "Feature is not implemented"),
    (0x0184, "command_not_recognized", "Command was not recognized"),
    (0x0185, "timeout", "Command or procedure failed due to timeout"),
    (0x0186, "not_connected", "Connection handle passed is to command is not a valid handle"),
    (0x0187, "flow", "Command would cause either underflow or overflow error"),
    (0x0188, "user_attribute", "User attribute was accessed through API which is not supported"),
    (0x0189, "invalid_license_key", "No valid license key found"),
    (0x018A, "command_too_long", "Command maximum length exceeded"),
    (0x018B, "out_of_bonds", "Bonding procedure can't be started because device has no space left for bond"),
    # Bluetooth controller (HCI)
    (0x0205, "authentication_failure", "Pairing or authentication failed due to incorrect results"),
    (
        0x0206,
        "pin_or_key_missing",
        "Pairing failed because of missing PIN, or authentication failed: missing key",
    ),
    (0x0207, "memory_capacity_exceeded", "Controller is out of memory"),
    (0x0208, "connection_timeout", "Link supervision timeout has expired"),
    (0x0209, "connection_limit_exceeded", "Controller is at limit of connections it can support"),
    (0x020C, "command_disallowed", "Command requested cannot be executed because the controller is busy"),
    (0x0212, "invalid_command_parameters", "Command contained invalid parameters"),
    (0x0213, "remote_user_terminated_connection", "User on the remote device terminated the connection"),
    (0x0216, "connection_terminated_by_local_host", "Local device terminated the connection"),
    (0x0222, "ll_response_timeout", "Connection terminated due to link-layer procedure timeout"),
    (0x0228, "ll_instant_passed", "Received link-layer control packet where instant was in the past"),
    (0x023A, "controller_busy", "Operation was rejected because the controller is busy"),
    (0x023B, "unacceptable_connection_interval", "Remote device rejected the requested connection interval"),
    (0x023C, "directed_advertising_timeout", "Directed advertising completed without a connection"),
    (0x023D, "mic_failure", "Connection terminated because the message integrity check failed"),
    (0x023E, "connection_failed_to_be_established", "LL initiated a connection but the connection failed"),
    # Security manager (SMP)
    (0x0301, "passkey_entry_failed", "The user input of passkey failed"),
    (0x0302, "oob_data_is_not_available", "Out of band data is not available for authentication"),
    (
        0x0303,
        "authentication_requirements",
        "Pairing cannot be performed: authentication requirements cannot be met",
    ),
    (0x0304, "confirm_value_failed", "The confirm value does not match the calculated compare value"),
    (0x0305, "pairing_not_supported", "Pairing is not supported by the device"),
    (0x0306, "encryption_key_size", "The resultant encryption key size is insufficient"),
    (0x0307, "command_not_supported", "The SMP command received is not supported on this device"),
    (0x0308, "unspecified_reason", "Pairing failed due to an unspecified reason"),
    (0x0309, "repeated_attempts", "Pairing or authentication disallowed because too little time has elapsed"),
    (0x030A, "invalid_parameters", "The command length is invalid or a parameter is outside of the specified range"),
    # Attribute protocol (ATT)
    (0x0401, "invalid_handle", "The attribute handle given was not valid on this server"),
    (0x0402, "read_not_permitted", "The attribute cannot be read"),
    (0x0403, "write_not_permitted", "The attribute cannot be written"),
    (0x0404, "invalid_pdu", "The attribute PDU was invalid"),
    (0x0405, "insufficient_authentication", "The attribute requires authentication before it can be read or written"),
    (0x0406, "request_not_supported", "Attribute server does not support the request received from the client"),
    (0x0407, "invalid_offset", "Offset specified was past the end of the attribute"),
    (0x0408, "insufficient_authorization", "The attribute requires authorization before it can be read or written"),
    (0x0409, "prepare_queue_full", "Too many prepare writes have been queued"),
    (0x040A, "attribute_not_found", "No attribute found within the given attribute handle range"),
    (0x040B, "attribute_not_long", "The attribute cannot be read or written using the Read Blob Request"),
    (
        0x040C,
        "insufficient_encryption_key_size",
        "The encryption key size used on this link is insufficient",
    ),
    (0x040D, "invalid_attribute_value_length", "The attribute value length is invalid for the operation"),
    (0x040E, "unlikely_error", "The attribute request encountered an unlikely error and could not be completed"),
    (0x040F, "insufficient_encryption", "The attribute requires encryption before it can be read or written"),
    (0x0410, "unsupported_group_type", "The attribute type is not a supported grouping attribute"),
    (0x0411, "insufficient_resources", "Insufficient resources to complete the request"),
    (0x0480, "application_error", "Application error code defined by the application"),
)

RETURN_CODES: Dict[int, ReturnCode] = {code: ReturnCode(code, name, message) for code, name, message in _TABLE}

_SPACE_WORDS = {
    ErrorSpace.BGAPI: "BGAPI error",
    ErrorSpace.BLUETOOTH: "Bluetooth error",
    ErrorSpace.SECURITY_MANAGER: "Security manager error",
    ErrorSpace.ATTRIBUTE_PROTOCOL: "Attribute protocol error",
}


def lookup(return_code: int) -> Optional[ReturnCode]:
    """The table entry of ``return_code``, None when it is not a known code."""
    return RETURN_CODES.get(return_code)


def name_of(return_code: int) -> str:
    """A short name for ``return_code``: ``"attribute_not_found"``, ``"success"`` or ``"0x04f3"``."""
    if return_code == SUCCESS:
        return "success"
    entry = RETURN_CODES.get(return_code)
    return entry.name if entry is not None else f"0x{return_code:04x}"


def att_error_of(return_code: int) -> Optional[int]:
    """The ATT error code carried by a result in the 0x04xx space, else None."""
    if return_code >> 8 == ErrorSpace.ATTRIBUTE_PROTOCOL:
        return return_code & 0xFF
    return None


def get_return_message(return_code: int) -> str:
    """The meaning of a BGAPI result code, as pygatt 5.0.0's function of that name.

    Args:
        return_code: the 16-bit ``result`` of a response or event.

    Returns:
        A sentence for known codes, ``"Success"`` for 0, and for an unknown code a
        text naming its space and number.
    """
    if return_code == SUCCESS:
        return "Success"
    entry = RETURN_CODES.get(return_code)
    if entry is not None:
        return entry.message
    try:
        space = _SPACE_WORDS[ErrorSpace(return_code >> 8)]
    except ValueError:
        space = "Unknown return code"
    return f"{space} 0x{return_code:04x}"


def describe(return_code: int) -> str:
    """``"attribute_not_found (0x040a): No attribute found ..."``: name, number and meaning."""
    return f"{name_of(return_code)} (0x{return_code:04x}): {get_return_message(return_code)}"
