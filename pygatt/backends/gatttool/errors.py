"""Turn what gatttool printed into the exception a caller gets."""

from __future__ import annotations

from typing import Dict, Optional, Type

from pygatt import exceptions
from pygatt.backends.gatttool.parser import ErrorLine

ATT_EXCEPTIONS: Dict[int, Type[exceptions.GATTError]] = {
    0x01: exceptions.InvalidHandleError,
    0x02: exceptions.ReadNotPermittedError,
    0x03: exceptions.WriteNotPermittedError,
    0x05: exceptions.InsufficientAuthenticationError,
    0x07: exceptions.InvalidValueLengthError,
    0x08: exceptions.InsufficientAuthorizationError,
    0x0A: exceptions.AttributeNotFoundError,
    0x0C: exceptions.InsufficientEncryptionError,
    0x0D: exceptions.InvalidValueLengthError,
    0x0F: exceptions.InsufficientEncryptionError,
}


def describe(operation: str, target: Optional[str]) -> str:
    """``"char-read-hnd 0x002a"``: the operation and what it was about."""
    return f"{operation} {target}" if target else operation


def error_from_line(
    line: ErrorLine, operation: str, target: Optional[str], output: Optional[str] = None
) -> exceptions.BLEError:
    """The exception for an ``Error:`` / ``Command Failed:`` line that ended ``operation``."""
    what = describe(operation, target)
    if line.command_failed and line.message.strip() == "Disconnected":
        return exceptions.NotConnectedError(f"{what}: not connected (gatttool: Command Failed: Disconnected)")
    if operation == "connect":  # a btio error during sec-level (bond) leaves the link up
        return exceptions.NotConnectedError(f"{what} failed: {line.message}")
    cls = ATT_EXCEPTIONS.get(line.att_error or -1, exceptions.GATTError)
    return cls(
        f"{what} failed: {line.message}",
        operation=operation,
        target=target,
        reason=line.reason or line.message,
        att_error=line.att_error,
        gatttool_output=output,
    )
