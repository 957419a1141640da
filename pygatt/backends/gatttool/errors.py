"""Turn what gatttool printed into the exception a caller gets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pygatt import exceptions

if TYPE_CHECKING:
    from pygatt.backends.gatttool.parser import ErrorLine

ATT_EXCEPTIONS = exceptions.ATT_ERROR_CLASSES


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
    return exceptions.gatt_error(
        f"{what} failed: {line.message}",
        line.att_error,
        operation=operation,
        target=target,
        reason=line.reason or line.message,
        gatttool_output=output,
    )
