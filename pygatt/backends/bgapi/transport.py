"""The serial line to a BGAPI dongle: owns the port and the one thread that reads it.

The reader thread turns bytes into :class:`~pygatt.backends.bgapi.codec.Message`
objects with the codec and hands each to ``on_message``; it never runs user code.
When the port fails (unplugged dongle, closed socket) it calls ``on_lost`` once
with the reason and ends; it never dies silently.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, Type

import serial

from pygatt.backends.bgapi import codec
from pygatt.exceptions import NotConnectedError

log = logging.getLogger(__name__)

try:  # pyserial's POSIX ports call termios, whose error is not an OSError (none on Windows)
    import termios

    _TERMIOS_ERRORS: Tuple[Type[Exception], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()

#: What a port that vanished (a dongle reset, a pulled plug) raises from pyserial's calls.
PORT_ERRORS: Tuple[Type[Exception], ...] = (serial.SerialException, OSError, *_TERMIOS_ERRORS)
#: The same, or the port object already half torn down by close().
_PORT_OR_CLOSED_ERRORS: Tuple[Type[Exception], ...] = (*PORT_ERRORS, AttributeError)
#: What read() raises on a port closed under it: pyserial raises TypeError/ValueError then.
_READ_ERRORS: Tuple[Type[Exception], ...] = (*PORT_ERRORS, TypeError, ValueError)

BAUDRATE = 115200
READ_TIMEOUT_S = 0.1  # how often the reader wakes on a silent line; also the idle gap that ends a partial frame
CLOSE_TIMEOUT_S = 2.0

MessageHandler = Callable[[codec.Message], None]
LostHandler = Callable[[str], None]


def is_url(port: str) -> bool:
    """True for pyserial URLs such as ``socket://127.0.0.1:5000`` or ``loop://``."""
    return "://" in port


def open_serial(port: str, timeout: float = READ_TIMEOUT_S) -> Any:
    """Open ``port`` at the dongle's settings: a device path through ``serial.Serial``,
    a URL through ``serial.serial_for_url``.

    Args:
        port: ``/dev/ttyACM0``, ``COM3`` or a pyserial URL.
        timeout: read timeout of the port in seconds.

    Returns:
        The open pyserial port object.

    Raises:
        serial.SerialException: the port cannot be opened.
    """
    if is_url(port):
        return serial.serial_for_url(port, baudrate=BAUDRATE, timeout=timeout, write_timeout=5)
    # exclusive: a second program (or backend) opening the same dongle fails at once instead of
    # stealing half of its bytes (a lock on POSIX; Windows COM ports are always exclusive)
    return serial.Serial(port=port, baudrate=BAUDRATE, timeout=timeout, write_timeout=5, exclusive=True)


class SerialTransport:
    """An open port to one dongle and its reader thread.

    Args:
        port: the device path or URL to open.
        on_message: called on the reader thread for every message from the dongle.
        on_lost: called once, on the reader thread, if the port fails while open.
        expects_response: tells the decoder which responses are awaited (see
            :class:`~pygatt.backends.bgapi.codec.FrameDecoder`).
    """

    def __init__(
        self,
        port: str,
        on_message: MessageHandler,
        on_lost: LostHandler,
        expects_response: Optional[Callable[[int, int], bool]] = None,
    ) -> None:
        self.port_name = port
        self._on_message = on_message
        self._on_lost = on_lost
        self._decoder = codec.FrameDecoder(expects_response=expects_response)
        self._serial: Any = None
        self._thread: Optional[threading.Thread] = None
        self._closing = threading.Event()
        self._write_lock = threading.Lock()
        self._lost_reason: Optional[str] = None
        self._lost_lock = threading.Lock()
        self._loss_expected = False  # the port is about to go away on purpose (a reset)
        self.bytes_received = 0

    def __repr__(self) -> str:
        return f"<SerialTransport {self.port_name}>"

    @property
    def is_open(self) -> bool:
        """True while the port is open and has not failed."""
        return self._serial is not None and self._lost_reason is None and not self._closing.is_set()

    @property
    def pending_bytes(self) -> int:
        """Bytes of a frame not complete yet (given up after the line is idle for a moment)."""
        return self._decoder.pending

    @property
    def dropped_bytes(self) -> int:
        """Bytes the decoder had to throw away to stay in step with the frames."""
        return self._decoder.dropped

    def open(self) -> None:
        """Open the port and start the reader thread.

        Raises:
            serial.SerialException: the port cannot be opened.
        """
        self._serial = open_serial(self.port_name)
        try:
            self._serial.reset_input_buffer()
        except _PORT_OR_CLOSED_ERRORS as exc:
            log.debug("Could not flush the input of %s: %s", self.port_name, exc)
        self._thread = threading.Thread(target=self._read_loop, name=f"pygatt-bgapi-reader {self.port_name}")
        self._thread.daemon = True
        self._thread.start()
        log.info("Opened BGAPI port %s", self.port_name)

    def write(self, data: bytes) -> None:
        """Send bytes to the dongle.

        Raises:
            NotConnectedError: the port is closed or failed.
        """
        with self._write_lock:
            if not self.is_open:
                raise NotConnectedError(f"BGAPI port {self.port_name} is not open ({self._lost_reason or 'closed'})")
            try:
                self._serial.write(data)
            except PORT_ERRORS as exc:
                reason = f"writing to {self.port_name} failed: {exc}"
                self._lose(reason)
                raise NotConnectedError(reason) from exc

    def expect_loss(self, expected: bool = True) -> None:
        """Say whether losing the port would be no error, so it is logged quietly.

        It is none while the port is about to go away on purpose (the dongle resets), and
        while it is only being tried (after a reset, the old port may die under the try).
        The loss is reported to ``on_lost`` either way.

        Args:
            expected: True until the port is taken for good.
        """
        self._loss_expected = expected

    def drain(self) -> None:
        """Wait until what was written has left (before closing the port after a reset)."""
        port = self._serial
        if port is None:
            return
        try:
            port.flush()
        except _PORT_OR_CLOSED_ERRORS as exc:
            log.debug("Flushing %s: %s", self.port_name, exc)

    def close(self) -> None:
        """Stop the reader and close the port (idempotent; returns within a couple of seconds)."""
        self._closing.set()
        port = self._serial
        if port is not None:
            cancel = getattr(port, "cancel_read", None)
            if cancel is not None:
                try:
                    cancel()
                except _PORT_OR_CLOSED_ERRORS as exc:
                    log.debug("cancel_read on %s: %s", self.port_name, exc)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_TIMEOUT_S)
            if thread.is_alive():
                log.warning("The reader of %s did not stop within %.1f s", self.port_name, CLOSE_TIMEOUT_S)
        if port is not None:
            try:
                port.close()
            except PORT_ERRORS as exc:
                log.debug("Closing %s: %s", self.port_name, exc)
        self._thread = None
        log.debug("Closed BGAPI port %s", self.port_name)

    def _lose(self, reason: str) -> None:
        with self._lost_lock:
            if self._lost_reason is not None or self._closing.is_set():
                return
            self._lost_reason = reason
        if self._loss_expected:
            log.debug("BGAPI port gone, as expected: %s", reason)
        else:
            log.error("BGAPI port lost: %s", reason)
        try:
            self._on_lost(reason)
        except Exception:
            log.exception("Handling the loss of %s failed", self.port_name)

    def _read_loop(self) -> None:
        port = self._serial
        try:
            while not self._closing.is_set():
                waiting = port.in_waiting
                data = port.read(waiting if waiting > 0 else 1)
                if not data:
                    if self._decoder.pending:
                        log.debug("Line idle with %d bytes of a partial frame; resynchronising", self._decoder.pending)
                        self._deliver_all(self._decoder.expire())
                    continue
                self._deliver_all(self._decoder.feed(data))
                self.bytes_received += len(data)  # counted once handled
        except _READ_ERRORS as exc:
            # pyserial raises TypeError/ValueError from read() on a port closed under it
            if not self._closing.is_set():
                self._lose(f"reading from {self.port_name} failed: {exc}")
        except Exception as exc:  # a bug must not leave the backend waiting on a dead thread
            log.exception("The BGAPI reader failed")
            self._lose(f"reader failed: {exc!r}")

    def _deliver_all(self, packets: List[codec.Packet]) -> None:
        for packet in packets:
            try:
                message = codec.decode(packet)
            except codec.CodecError as exc:  # the decoder only yields well-formed frames; kept for safety
                log.warning("Dropping a BGAPI frame that does not decode: %s", exc)
                continue
            if log.isEnabledFor(logging.DEBUG):
                log.debug("<- %s", message)
            try:
                self._on_message(message)
            except Exception:
                log.exception("Handling %s failed", message)


def wait_until(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value), never negative."""
    return max(0.0, deadline - time.monotonic())
