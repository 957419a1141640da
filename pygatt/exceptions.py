"""Exceptions raised by pygatt.

``BLEError``, ``NotConnectedError`` and ``NotificationTimeout`` are the names
pygatt 5.0.0 user code catches; every other exception here derives from one of
them, so existing ``except`` clauses keep working while new code can be precise.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class BLEError(Exception):
    """Exception raised by pygatt: the base class of every error for a Bluetooth problem."""


class NotConnectedError(BLEError):
    """Raised when the device is not connected (or the connection was lost)."""


class NotificationTimeout(BLEError):
    """Raised when an expected answer from the device did not arrive in time.

    The message names the command that was waiting.

    Attributes:
        gatttool_output: the last lines gatttool printed before the timeout, to show
            what the tool said while the library waited (``None`` with other backends).
    """

    gatttool_output: Optional[str]

    def __init__(self, msg: Optional[str] = None, gatttool_output: Optional[str] = None) -> None:
        super().__init__(msg)
        self.gatttool_output = gatttool_output


class GATTError(BLEError):
    """A GATT operation failed with an error reported by gatttool or the peer.

    The subclasses below name the common ATT errors; each carries the same
    attributes. Build one with :func:`gatt_error`, which picks the subclass for
    an ATT error code.

    The message quotes what gatttool or the peer said; each other constructor
    argument sets the attribute of the same name.

    Attributes:
        operation: what was attempted, e.g. ``"char-read-hnd"``.
        target: the handle (``"0x002a"``) or UUID the operation was about.
        reason: the error in gatttool's (or the backend's) own words, e.g.
            ``"Attribute can't be read"``.
        att_error: the ATT error code (``0x02`` for "read not permitted"), when
            the answer names one; else ``None``.
        gatttool_output: the last lines gatttool printed before the error
            (``None`` with other backends).
    """

    operation: Optional[str]
    target: Optional[str]
    reason: Optional[str]
    att_error: Optional[int]
    gatttool_output: Optional[str]

    def __init__(
        self,
        message: str,
        operation: Optional[str] = None,
        target: Optional[str] = None,
        reason: Optional[str] = None,
        att_error: Optional[int] = None,
        gatttool_output: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.target = target
        self.reason = reason
        self.att_error = att_error
        self.gatttool_output = gatttool_output


class InvalidHandleError(GATTError):
    """The attribute handle does not exist on the peer (ATT 0x01)."""


class ReadNotPermittedError(GATTError):
    """The attribute cannot be read (ATT 0x02)."""


class WriteNotPermittedError(GATTError):
    """The attribute cannot be written (ATT 0x03)."""


class InsufficientAuthenticationError(GATTError):
    """The attribute needs an authenticated (bonded) link (ATT 0x05)."""


class InsufficientAuthorizationError(GATTError):
    """The attribute needs authorization (ATT 0x08)."""


class InsufficientEncryptionError(GATTError):
    """The attribute needs an encrypted link (ATT 0x0f) or a longer key (ATT 0x0c)."""


class AttributeNotFoundError(GATTError):
    """No attribute matched within the range searched (ATT 0x0a)."""


class InvalidValueLengthError(GATTError):
    """The value has a length the peer does not accept (ATT 0x0d, 0x07)."""


class ToolError(BLEError):
    """An external BlueZ program (hcitool, hciconfig, bluetoothctl, btmgmt) failed.

    The message quotes the program; each other constructor argument sets the
    attribute of the same name.

    Attributes:
        output: what the program printed.
        returncode: its exit status: negative for a signal, ``None`` when it had
            to be killed.
    """

    output: str
    returncode: Optional[int]

    def __init__(self, message: str, output: str = "", returncode: Optional[int] = None) -> None:
        super().__init__(message)
        self.output = output
        self.returncode = returncode


class PermissionDeniedError(ToolError):
    """An external program needs more privileges (run as root or grant capabilities)."""


#: The exception class for each ATT error code; codes not listed map to :class:`GATTError`.
ATT_ERROR_CLASSES: Dict[int, Type[GATTError]] = {
    0x01: InvalidHandleError,
    0x02: ReadNotPermittedError,
    0x03: WriteNotPermittedError,
    0x05: InsufficientAuthenticationError,
    0x07: InvalidValueLengthError,
    0x08: InsufficientAuthorizationError,
    0x0A: AttributeNotFoundError,
    0x0C: InsufficientEncryptionError,
    0x0D: InvalidValueLengthError,
    0x0F: InsufficientEncryptionError,
}


def gatt_error(
    message: str,
    att_error: Optional[int],
    operation: Optional[str] = None,
    target: Optional[str] = None,
    reason: Optional[str] = None,
    gatttool_output: Optional[str] = None,
) -> GATTError:
    """Build the typed :class:`GATTError` for an ATT error code, the same for every backend.

    Args:
        message: the exception's message.
        att_error: the ATT error code (``None`` when the peer's answer named none).
        operation: what was attempted, e.g. ``"char-read-hnd"`` or ``"read"``.
        target: the handle (``"0x002a"``) or UUID the operation was about.
        reason: the backend's own words for the error.
        gatttool_output: gatttool's recent output (GATTTool backend only).

    Returns:
        An instance of the subclass for ``att_error`` (e.g. :class:`ReadNotPermittedError`
        for 0x02), or of :class:`GATTError` itself for other codes.
    """
    cls = ATT_ERROR_CLASSES.get(att_error if att_error is not None else -1, GATTError)
    return cls(
        message,
        operation=operation,
        target=target,
        reason=reason,
        att_error=att_error,
        gatttool_output=gatttool_output,
    )
