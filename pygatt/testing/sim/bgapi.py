"""A simulated Silicon Labs BLED112 USB dongle speaking binary BGAPI on a real serial port.

:class:`SimulatedDongle` serves one port at a time, a pseudo-terminal (opened
with ``serial.Serial(path)``) or a TCP socket (opened with
``serial.serial_for_url("socket://127.0.0.1:PORT")``), from one thread of its
own: a selector loop with timers, like the simulated gatttool. Bytes from the
host go through pygatt's BGAPI codec (:mod:`pygatt.backends.bgapi.codec`) to
the simulated firmware (:mod:`pygatt.testing.sim.bled112`), whose answers go
back through the codec. The world is the same JSON world the simulated
gatttool uses, so one scenario runs on both backends.

Like the real dongle, ``system_reset`` gets no response: the port vanishes
(the host sees a dead device), links and procedures end, and after
``reset_delay_s`` the dongle comes back on a port with another name, which
:meth:`SimulatedDongle.comports` then reports; the first host to open it gets
a ``system_boot`` event. Bonds survive.

Run as a program: ``python -m pygatt.testing.sim bgapi --world WORLD [--socket]``
prints the port on its first line (and each new name after a reset on a line
of its own) and serves until killed.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import selectors
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar, cast

from pygatt.backends.bgapi.codec import CodecError, FrameDecoder, Packet, decode, encode_event, encode_response

from .bled112 import Firmware
from .bled112_link import Host
from .ports import PtyPort, SimulatedPort, SocketPort
from .scheduler import Scheduler, Timer

if TYPE_CHECKING:
    from pygatt.testing.world import World

log = logging.getLogger(__name__)

T = TypeVar("T")
VENDOR_ID = 0x2458
PRODUCT_ID = 0x0001
CALL_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 5.0
IDLE_FRAME_S = 0.5  # a partial command older than this is given up (the decoder resynchronises)
MAX_RETIRED = 16
ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


@dataclass(frozen=True)
class SimulatedPortInfo:
    """What pyserial's ``serial.tools.list_ports.comports()`` lists for a BLED112, for the simulated port."""

    device: str
    name: str
    description: str = "Low Energy Dongle"
    hwid: str = ""
    vid: int = VENDOR_ID
    pid: int = PRODUCT_ID
    serial_number: str = "1"
    location: str = "1-1:1.0"
    manufacturer: str = "Bluegiga"
    product: str = "Low Energy Dongle"
    interface: Optional[str] = None

    @classmethod
    def for_device(cls, device: str) -> SimulatedPortInfo:
        """The entry for a port at ``device`` (a path or a URL)."""
        hwid = f"USB VID:PID={VENDOR_ID:04X}:{PRODUCT_ID:04X} SER=1 LOCATION=1-1:1.0"
        return cls(device=device, name=device.rsplit("/", 1)[-1], hwid=hwid)

    def usb_description(self) -> str:
        """As pyserial's ListPortInfo.usb_description()."""
        return self.product

    def usb_info(self) -> str:
        """As pyserial's ListPortInfo.usb_info()."""
        return self.hwid

    def __getitem__(self, index: int) -> str:
        return (self.device, self.description, self.hwid)[index]

    def __iter__(self) -> Any:
        return iter((self.device, self.description, self.hwid))


class SimulatedDongle(Host):
    """A BLED112 on a pty or a socket, backed by a world.

    Args:
        world: the peripherals the dongle can see (shared with the caller; read on the dongle's thread).
        max_connections: links the firmware allows at once (stock firmware: 3).
        address: the dongle's own Bluetooth address.
        reset_delay_s: how long the port is gone after ``system_reset``.
        host_confirms_indications: behave like firmware built to leave indication confirmations
            to the host: indications come as attribute values of type 5, and a stream's next
            indication waits for ``attclient_indicate_confirm``.

    Raises:
        ValueError: a bad address or connection count.

    Attributes:
        commands_received: ``(name, fields)`` of every command the dongle decoded, in order.
    """

    def __init__(
        self,
        world: World,
        *,
        max_connections: int = 3,
        address: str = "00:07:80:AA:BB:CC",
        reset_delay_s: float = 0.2,
        host_confirms_indications: bool = False,
    ) -> None:
        if not isinstance(address, str) or not ADDRESS_RE.match(address):
            raise ValueError(f"not a Bluetooth address (want 'XX:XX:XX:XX:XX:XX'): {address!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or not 1 <= max_connections <= 8:
            raise ValueError(f"max_connections must be an int from 1 to 8, got {max_connections!r}")
        if reset_delay_s < 0:
            raise ValueError("reset_delay_s cannot be negative")
        self.world = world
        self.address = address.upper()
        self.reset_delay_s = reset_delay_s
        self.commands_received: List[Tuple[str, Dict[str, Any]]] = []
        self._selector = selectors.DefaultSelector()
        self._scheduler = Scheduler()
        self._firmware = Firmware(
            world, self, self._scheduler, max_connections, self.address, host_confirms_indications
        )
        self._decoder = FrameDecoder(from_host=True)
        self._idle_timer: Optional[Timer] = None
        self._port: Optional[SimulatedPort] = None
        self._retired: Deque[SimulatedPort] = deque()  # closed ports whose names stay reserved
        self._published: Optional[str] = None  # the port comports() reports
        self._boot_pending = False
        self._drop_responses = 0
        self._early = bytearray()  # injected before any host had the port open
        self._calls: Deque[Callable[[], None]] = deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, self._woken)
        self._thread: Optional[threading.Thread] = None
        self._running = False
        self._closed = False
        self._lock = threading.Lock()

    # -- public API (any thread) ----------------------------------------------------------
    def open_pty(self) -> str:
        """Serve on a new pseudo-terminal.

        Returns:
            The slave's path (``/dev/pts/N``), to open with ``serial.Serial``.

        Raises:
            RuntimeError: the dongle is closed or already serves a port.
        """
        return self._call(lambda: self._open(PtyPort))

    def open_socket(self) -> str:
        """Serve on a TCP port of 127.0.0.1.

        Returns:
            ``socket://127.0.0.1:PORT``, to open with ``serial.serial_for_url``.

        Raises:
            RuntimeError: the dongle is closed or already serves a port.
        """
        return self._call(lambda: self._open(SocketPort))

    def comports(self) -> List[SimulatedPortInfo]:
        """The dongle as pyserial's port list would show it: its current port, or nothing
        while it is unplugged or re-enumerating after a reset.
        """
        published = self._published
        return [SimulatedPortInfo.for_device(published)] if published else []

    @property
    def port(self) -> Optional[str]:
        """The current port's path or URL (None while there is none)."""
        return self._published

    def inject_garbage(self, data: bytes) -> None:
        """Send ``data`` to the host as it is, between frames (when no host has the port open yet:
        as soon as one opens it).
        """
        payload = bytes(data)
        self._call(lambda: self._send_raw(payload))

    def drop_next_response(self) -> None:
        """Do not send the response to the next command (its events still come)."""
        self._call(self._count_drop)

    def disconnect(self, address: str, reason: int = 0x0213) -> None:
        """The peripheral at ``address`` ends its link: ``connection_disconnected`` with ``reason``.

        Raises:
            ValueError: a bad address or reason, or no link to that peripheral.
        """
        if not isinstance(address, str) or not ADDRESS_RE.match(address):
            raise ValueError(f"not a Bluetooth address: {address!r}")
        if isinstance(reason, bool) or not isinstance(reason, int) or not 0 <= reason <= 0xFFFF:
            raise ValueError(f"reason must be a 16-bit code, got {reason!r}")
        if not self._call(lambda: self._firmware.remote_disconnect(address, reason)):
            raise ValueError(f"the simulated dongle has no link to {address.upper()}")

    def kill_port(self) -> None:
        """The dongle is unplugged: its port dies, every link ends without an event, the port list
        is empty. ``open_pty``/``open_socket`` plug it in again (bonds kept, ``system_boot`` sent).
        """
        self._call(self._kill)

    def close(self) -> None:
        """Stop the thread and close every port and descriptor. Idempotent; always returns."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._post(self._stop)
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error("simulated BLED112: its thread did not stop within %s s", JOIN_TIMEOUT_S)
                return
        self._release()

    def __enter__(self) -> SimulatedDongle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- Host: what the firmware sends (dongle thread) ---------------------------------------
    def respond(self, name: str, **fields: Any) -> None:
        """Encode and send a response, unless a dropped response was asked for."""
        if self._drop_responses:
            self._drop_responses -= 1
            log.info("simulated BLED112: dropping the response to %s", name)
            return
        if self._port is not None:
            self._port.send(encode_response(name, **fields))

    def event(self, name: str, **fields: Any) -> None:
        """Encode and send an event."""
        if self._port is not None:
            self._port.send(encode_event(name, **fields))

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the port takes more output (never, if there is no port)."""
        if self._port is not None:
            self._port.when_ready(callback)

    # -- thread plumbing --------------------------------------------------------------------
    def _call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the dongle's thread (starting it if needed) and return its result."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the simulated dongle is closed")
            if self._thread is None:
                self._running = True
                self._thread = threading.Thread(target=self._loop, name="simulated-bled112", daemon=True)
                self._thread.start()
        if threading.current_thread() is self._thread:
            return function()
        done = threading.Event()
        outcome: List[Any] = []

        def run() -> None:
            try:
                outcome.append((True, function()))
            except Exception as exc:  # handed back to the calling thread
                outcome.append((False, exc))
            finally:
                done.set()

        self._post(run)
        if not done.wait(CALL_TIMEOUT_S):
            raise RuntimeError(f"the simulated dongle did not answer within {CALL_TIMEOUT_S} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return cast("T", value)

    def _post(self, function: Callable[[], None]) -> None:
        self._calls.append(function)
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # already woken

    def _woken(self, mask: int) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        while self._calls:
            self._calls.popleft()()

    def _loop(self) -> None:
        try:
            while self._running:
                try:
                    self._scheduler.run_due()
                    if self._port is not None:
                        self._port.flush()  # may ask for more output: the timeout is taken after it
                    for key, mask in self._selector.select(self._scheduler.next_delay()):
                        key.data(mask)
                        if not self._running:
                            break
                except Exception:
                    log.exception("simulated BLED112: error in its loop; carrying on")
        finally:
            self._running = False

    def _stop(self) -> None:
        self._running = False

    def _release(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port.release()
            self._port = None
        while self._retired:
            self._retired.popleft().release()
        self._published = None
        self._scheduler.clear()
        self._selector.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    # -- ports (dongle thread) ----------------------------------------------------------------
    def _open(self, kind: Callable[..., SimulatedPort]) -> str:
        if self._port is not None:
            raise RuntimeError(f"the simulated dongle already serves {self._port.name}")
        self._port = kind(self._selector, self._scheduler, self._received, self._attached)
        self._published = self._port.name
        log.info("simulated BLED112 on %s", self._port.name)
        return self._port.name

    def _attached(self) -> None:
        self._decoder.reset()
        if self._boot_pending:
            self._boot_pending = False
            self._firmware.boot_event()
        if self._early and self._port is not None:
            self._port.send(bytes(self._early))
            self._early.clear()

    def _received(self, data: bytes) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("simulated BLED112 read %s", data.hex(" "))
        if self._handle(self._decoder.feed(data)):
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._decoder.pending:
            self._idle_timer = self._scheduler.after(IDLE_FRAME_S, self._expire_partial)

    def _handle(self, packets: List[Packet]) -> bool:
        """Run the commands in ``packets``; True when one was a reset (the rest are lost with the port)."""
        for packet in packets:
            try:
                message = decode(packet, from_host=True)
            except CodecError as exc:
                log.warning("simulated BLED112: undecodable command: %s", exc)
                continue
            self.commands_received.append((message.name, dict(message.fields)))
            log.debug("simulated BLED112 <- %s", message)
            if message.name == "system_reset":
                self._reset()
                return True
            self._firmware.command(message.name, dict(message.fields))
        return False

    def _expire_partial(self) -> None:
        """A partial command sat too long: drop it, run whatever complete commands were behind it."""
        self._idle_timer = None
        self._handle(self._decoder.expire())

    def _reset(self) -> None:
        """system_reset: the port vanishes now and comes back under another name later."""
        old = self._port
        assert old is not None
        self._published = None  # before the port dies: a host that sees it dead must not find it listed
        self._firmware.reboot()
        self._decoder.reset()
        replacement = type(old)(self._selector, self._scheduler, self._received, self._attached)  # a new name
        self._retire(old)
        self._port = replacement
        self._boot_pending = True
        log.info("simulated BLED112: reset; %s is gone, %s appears in %s s", old.name, replacement.name,
                 self.reset_delay_s)  # fmt: skip

        def reappear() -> None:
            if self._port is replacement:
                self._published = replacement.name

        self._scheduler.after(self.reset_delay_s, reappear)

    def _kill(self) -> None:
        self._published = None
        if self._port is not None:
            log.info("simulated BLED112: %s dies", self._port.name)
            self._retire(self._port)
            self._port = None
        self._firmware.reboot()
        self._decoder.reset()
        self._boot_pending = True

    def _retire(self, port: SimulatedPort) -> None:
        """Close ``port``; its name stays reserved while the dongle lives (the last few of them)."""
        port.close()
        self._retired.append(port)
        while len(self._retired) > MAX_RETIRED:
            self._retired.popleft().release()

    def _send_raw(self, data: bytes) -> None:
        if self._port is not None and self._port.attached:
            self._port.send(data)
        elif self._port is not None:
            self._early += data

    def _count_drop(self) -> None:
        self._drop_responses += 1


def run(world: World, argv: List[str]) -> int:
    """The ``bgapi`` program: serve a simulated dongle until SIGTERM or SIGINT.

    Prints the port (a pty path, or with ``--socket`` a ``socket://`` URL) on the first line of
    stdout, and each new port after a reset on a line of its own.

    Args:
        world: the world to serve.
        argv: ``[--socket] [--max-connections N] [--address ADDRESS]``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m pygatt.testing.sim bgapi")
    parser.add_argument("--socket", action="store_true", help="serve on a TCP socket instead of a pty")
    parser.add_argument("--max-connections", type=int, default=3)
    parser.add_argument("--address", default="00:07:80:AA:BB:CC")
    options = parser.parse_args(argv)
    try:
        dongle = SimulatedDongle(world, max_connections=options.max_connections, address=options.address)
    except ValueError as exc:
        sys.stderr.write(f"pygatt simulator: {exc}\n")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        shown = dongle.open_socket() if options.socket else dongle.open_pty()
        print(shown, flush=True)
        while not stop.wait(0.2):
            current = dongle.port
            if current and current != shown:
                shown = current
                print(shown, flush=True)
    except BrokenPipeError:
        pass
    finally:
        dongle.close()
    return 0
