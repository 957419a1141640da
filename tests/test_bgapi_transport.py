"""The serial transport on a real pseudo-terminal: the reader thread survives any byte
stream, delivers the frames in it, and reports a dead port once.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Iterator, List, Tuple

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pygatt.backends.bgapi import codec
from pygatt.backends.bgapi.transport import SerialTransport
from pygatt.exceptions import NotConnectedError
from tests import helpers

FRAMES = [
    codec.encode_event("attclient_attribute_value", connection=0, atthandle=3, type=1, value=bytes(range(20))),
    codec.encode_response("gap_end_procedure", result=0),
    codec.encode_event("connection_disconnected", connection=1, reason=0x0216),
]


wait_for = functools.partial(helpers.wait_for, timeout=5.0)  # a simulated dongle answers within milliseconds


class Pty:
    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave  # kept open so the master never sees a hang-up between host opens
        self._fds_open = True

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        fds, self._fds_open = (self.master, self._slave) if self._fds_open else (), False
        for fd in fds:  # once only: a second close could hit a descriptor number reused meanwhile
            os.close(fd)


Opened = Tuple[Pty, SerialTransport, List[codec.Message], List[str]]


@pytest.fixture
def pty_transport() -> Iterator[Opened]:
    pty = Pty()
    messages: List[codec.Message] = []
    lost: List[str] = []
    transport = SerialTransport(pty.path, messages.append, lost.append)
    transport.open()
    yield pty, transport, messages, lost
    transport.close()
    pty.close()


def test_frames_arrive_and_writes_leave(pty_transport: Opened) -> None:
    pty, transport, messages, _ = pty_transport
    for frame in FRAMES:
        pty.send(frame)
    assert wait_for(lambda: len(messages) == 3)
    assert [m.name for m in messages] == ["attclient_attribute_value", "gap_end_procedure", "connection_disconnected"]
    transport.write(codec.encode_command("gap_end_procedure"))
    assert os.read(pty.master, 100) == bytes.fromhex("00 00 06 04")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=300), cut=st.integers(min_value=1, max_value=40))
def test_reader_survives_any_bytes_and_recovers_after_an_idle_gap(
    pty_transport: Opened, garbage: bytes, cut: int
) -> None:
    pty, transport, messages, lost = pty_transport
    messages.clear()
    received = transport.bytes_received
    for start in range(0, len(garbage), cut):
        pty.send(garbage[start : start + cut])
    # the line goes idle: once every byte is read, a partial frame is given up
    assert wait_for(lambda: transport.bytes_received == received + len(garbage) and transport.pending_bytes == 0)
    seen = len(messages)
    stream = b"".join(FRAMES)
    for start in range(0, len(stream), cut):
        pty.send(stream[start : start + cut])
    assert wait_for(lambda: len(messages) >= seen + 3)
    assert [m.name for m in messages[seen:]] == [codec.decode_bytes(f).name for f in FRAMES]
    assert lost == [] and transport.is_open


def test_a_port_in_use_cannot_be_opened_twice(pty_transport: Opened) -> None:
    pty, _, _, _ = pty_transport
    second = SerialTransport(pty.path, lambda m: None, lambda r: None)
    with pytest.raises(serial.SerialException, match="exclusively lock"):
        second.open()
    second.close()


def test_a_port_that_dies_is_reported_once(pty_transport: Opened) -> None:
    pty, transport, _, lost = pty_transport
    pty.close()  # both ends gone: reads fail
    assert wait_for(lambda: len(lost) == 1)
    assert "failed" in lost[0]
    time.sleep(0.2)
    assert len(lost) == 1
    with pytest.raises(NotConnectedError, match="not open"):
        transport.write(b"\x00")
    assert not [t for t in threading.enumerate() if t.name == f"pygatt-bgapi-reader {pty.path}"]


def test_drain_and_close_after_the_port_vanished_do_not_raise(pty_transport: Opened) -> None:
    """A reset re-enumerates the dongle: its tty can vanish between the reset command and the drain.

    pyserial then raises termios.error (not an OSError) from tcdrain; start() must go on to reopen.
    """
    pty, transport, _, lost = pty_transport
    pty.close()
    assert wait_for(lambda: len(lost) == 1)
    transport.drain()
    transport.close()


def test_a_port_whose_open_raises_termios_error_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyserial's open() flushes the new port with tcflush: on a tty vanishing after a reset that raises
    termios.error, which must count as "not there yet", like a SerialException."""
    import termios

    from pygatt.backends.bgapi import ports

    monkeypatch.setattr(ports, "OPEN_RETRY_DELAY_S", 0.0)
    attempts: List[str] = []

    class Flaky:
        def __init__(self, port: str) -> None:
            self.port = port

        def open(self) -> None:
            attempts.append(self.port)
            if len(attempts) == 1:
                raise termios.error(5, "Input/output error")

        def close(self) -> None:
            pass

        def expect_loss(self, expected: bool = True) -> None:
            self.loss_expected = expected  # open_first: a loss while the port is tried is no error

    opened = ports.open_first(lambda: ["/dev/ttyACM0"], Flaky, lambda t: None, lambda t: None)  # type: ignore[arg-type]
    assert opened.port == "/dev/ttyACM0" and attempts == ["/dev/ttyACM0", "/dev/ttyACM0"]
    assert opened.loss_expected is False  # taken for good: losing it from now on is an error
