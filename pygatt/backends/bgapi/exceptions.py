"""Exceptions of the BGAPI backend (both pygatt 5.0.0 names, plus precise subclasses)."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from pygatt.backends.bgapi.error_codes import describe
from pygatt.exceptions import BLEError, NotificationTimeout


class BGAPIError(BLEError):
    """An error from the BGAPI backend or the dongle.

    ``return_code`` is the dongle's 16-bit result code when it gave one (else None).
    """

    def __init__(self, message: str = "", return_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.return_code = return_code


class DongleNotFoundError(BGAPIError):
    """No BGAPI dongle was found in the list of serial ports."""


class ExpectedResponseTimeout(BGAPIError):
    """An answer the dongle owed (a response or an event) did not come in time.

    What the backend raises is the subclass :class:`AnswerTimeout`, which is also
    a :class:`~pygatt.exceptions.NotificationTimeout`.

    ``expected`` names what was awaited; ``timeout`` is the wait in seconds.
    """

    def __init__(self, expected_packets: Union[str, Iterable[Any], Any], timeout: Optional[float]) -> None:
        # as in pygatt 5.0.0, whose code (and its users' tests) passed packet-type enums or None,
        # and None for the backend's default timeout
        if isinstance(expected_packets, str):
            expected = expected_packets
        elif isinstance(expected_packets, Iterable):
            expected = " or ".join(str(getattr(p, "name", p)) for p in expected_packets)
        else:
            expected = str(expected_packets)
        super().__init__(f"Timed out after {timeout or 0:.3g} s waiting for {expected}")
        self.expected = expected
        self.timeout = timeout


class AnswerTimeout(ExpectedResponseTimeout, NotificationTimeout):
    """The timeout the BGAPI backend raises: an :class:`ExpectedResponseTimeout` (as in
    pygatt 5.0.0) and a :class:`~pygatt.exceptions.NotificationTimeout`, what every
    backend raises when a peer does not answer in time.
    """


class CommandFailed(BGAPIError):
    """The dongle answered a command with a non-zero result code."""

    def __init__(self, command: str, return_code: int) -> None:
        super().__init__(f"{command} failed: {describe(return_code)}", return_code)
        self.command = command
