"""Where the dongle is: the port given, or found by USB id, and again after a reset.

A BLED112 is a USB serial device (vendor 2458, product 0001). A reset makes it
leave the bus and come back, possibly under another port name, and for a moment
its port may be listed but not openable, or openable and about to die. This
module finds the candidates and opens the first that works, within a bounded
number of attempts.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Type

from pygatt.backends.bgapi import util
from pygatt.backends.bgapi.exceptions import BGAPIError, DongleNotFoundError
from pygatt.backends.bgapi.transport import PORT_ERRORS
from pygatt.exceptions import NotConnectedError

if TYPE_CHECKING:
    from pygatt.backends.bgapi.transport import SerialTransport

log = logging.getLogger(__name__)

#: Why a candidate port may fail to open or answer (pyserial's open() can raise termios.error too).
_OPEN_ERRORS: Tuple[Type[Exception], ...] = (*PORT_ERRORS, ValueError, NotConnectedError, BGAPIError)

MAX_CONNECTION_ATTEMPTS = 10
OPEN_RETRY_DELAY_S = 0.25

Candidates = Callable[[], List[str]]


class PortFinder:
    """The dongle's port: the one given, else the first BLED112 in the port list.

    Args:
        serial_port: a port name or URL, or None to search by USB id.
        comports: the port-list function (default: pyserial's ``comports``).
    """

    def __init__(self, serial_port: Optional[str], comports: Optional[util.ComportsFunction]) -> None:
        self.serial_port = serial_port
        self.comports = comports

    def list_ports(self) -> List[Any]:
        """Every serial port listed now (a failing list counts as empty)."""
        try:
            return list((self.comports or util.default_comports)())
        except Exception as exc:  # a port list that fails is "no ports", not a crash
            log.warning("Listing serial ports failed: %s", exc)
            return []

    def dongle_ports(self) -> List[str]:
        """The ports of BLED112 dongles listed now."""
        found = util.find_usb_serial_devices(util.BLED112_VENDOR_ID, util.BLED112_PRODUCT_ID, comports=self.list_ports)
        return [info.port_name for info in found if info.port_name]

    def locate(self) -> str:
        """The port to open first.

        Raises:
            DongleNotFoundError: no port given and no BLED112 listed (the message lists what was seen).
        """
        if self.serial_port is not None:
            return self.serial_port
        ports = self.dongle_ports()
        if ports:
            log.info("Found a BLED112 at %s", ports[0])
            return ports[0]
        seen = ", ".join(util.describe_port(p) for p in self.list_ports()) or "none"
        raise DongleNotFoundError(f"No BLED112 (USB 2458:0001) found; serial ports seen: {seen}")

    def after_reset(self, old: str, before: List[str]) -> Candidates:
        """Where the dongle may be after a reset: its old name first (when given, or still
        listed), then BLED112 ports that were not listed before the reset, then (when no
        port was given) any BLED112.

        Args:
            old: the port the reset was sent on.
            before: the BLED112 ports listed before the reset.
        """

        def candidates() -> List[str]:
            now = self.dongle_ports()
            ordered = [old] if self.serial_port is not None or old in now else []
            ordered += [p for p in now if p not in before and p not in ordered]
            if self.serial_port is None:
                ordered += [p for p in now if p not in ordered]
            return ordered

        return candidates


def open_first(
    candidates: Candidates,
    make: Callable[[str], SerialTransport],
    ready: Callable[[SerialTransport], None],
    give_up: Callable[[SerialTransport], None],
) -> SerialTransport:
    """Open the first candidate port that opens and is ``ready``, in up to MAX_CONNECTION_ATTEMPTS rounds.

    Args:
        candidates: the ports to try, asked again every round.
        make: a transport for a port (not opened yet).
        ready: checks an opened transport (attaches it, talks to the dongle); raises if it is not usable.
        give_up: undoes ``ready`` for a transport that failed.

    Returns:
        The open, ready transport.

    Raises:
        NotConnectedError: no candidate worked in any round (the last reason is in the message).
    """
    errors: List[str] = []
    for attempt in range(1, MAX_CONNECTION_ATTEMPTS + 1):
        for port in candidates():
            transport = make(port)
            transport.expect_loss()  # a port dying while it is tried is one more failed candidate
            try:
                transport.open()
                ready(transport)
            except _OPEN_ERRORS as exc:
                # a port still enumerating, or the old port dying under us just after a reset
                errors.append(f"{port}: {exc}")
                log.debug("Opening %s failed (attempt %d): %s", port, attempt, exc)
                give_up(transport)
                transport.close()
                continue
            transport.expect_loss(False)  # from now on, losing it is an error
            return transport
        if attempt < MAX_CONNECTION_ATTEMPTS:
            time.sleep(OPEN_RETRY_DELAY_S)
    last = errors[-1] if errors else "no BLED112 in the port list"
    raise NotConnectedError(f"Could not open the BGAPI dongle after {MAX_CONNECTION_ATTEMPTS} attempts ({last})")
