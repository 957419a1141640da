"""The exit statuses of ``pygatt`` and which error gives which."""

from __future__ import annotations

from enum import IntEnum

from pygatt.backends.bgapi.exceptions import DongleNotFoundError
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout, ToolError


class ExitStatus(IntEnum):
    """What ``pygatt`` exits with; documented in ``--help`` and docs/cli.md."""

    OK = 0
    BLE_ERROR = 1
    USAGE = 2
    NOT_CONNECTED = 3
    TIMEOUT = 4
    TOOL = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


EPILOG = """\
exit status:
  0    success
  1    BLE error reported by the device or gatttool (e.g. read not permitted)
  2    usage error: bad command, option, address, UUID, handle or value
  3    not connected: the connection failed or was lost
  4    timeout: no answer in time (subscribe: fewer than --count values within --timeout)
  5    adapter or BlueZ tool problem: no adapter or dongle, no permission, tool missing
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); 141 output pipe closed

Errors are one line on stderr: "pygatt: error: ...".
"""


def status_of(error: Exception) -> ExitStatus:
    """Choose the exit status for an error raised while running a command.

    The most specific pygatt exception decides: every one of them is a
    :class:`~pygatt.exceptions.BLEError`, which on its own means status 1.

    Args:
        error: a BLEError, or a ValueError for a value the device cannot take.

    Returns:
        The exit status.
    """
    if isinstance(error, (ToolError, DongleNotFoundError)):  # includes PermissionDeniedError
        return ExitStatus.TOOL
    if isinstance(error, NotConnectedError):
        return ExitStatus.NOT_CONNECTED
    if isinstance(error, NotificationTimeout):
        return ExitStatus.TIMEOUT
    if isinstance(error, BLEError):
        return ExitStatus.BLE_ERROR
    return ExitStatus.USAGE  # a ValueError: a value this device cannot take, e.g. too long
