"""Serial ports a simulated dongle serves: a pseudo-terminal or a TCP socket.

Both kinds look the same to the simulator's loop: bytes the host writes arrive
through ``on_data``, bytes the dongle sends go through :meth:`SimulatedPort.send`.
Like a USB serial device, a port knows whether a host has it open ("attached"):
output produced while nobody has the port open is discarded, and ``on_attach``
fires when a host opens it. Everything here runs on the simulator's own thread,
driven by its selector and scheduler; nothing blocks.

- :class:`PtyPort`: ``/dev/pts/N``, opened by the host with ``serial.Serial``. A
  pty master cannot see the slave being opened, so while detached the port
  checks for it every :data:`ATTACH_POLL_S` (the master reports a hang-up while
  no slave is open). A closed pty is hung up and locked rather than freed
  where the system allows it (:meth:`PtyPort.release` frees it): its path
  cannot be opened any more, and its number cannot be handed to another pty
  that a program still holding the old path would then open by mistake.
- :class:`SocketPort`: ``socket://127.0.0.1:PORT``, pyserial's URL handler. The
  newest connection is the attached host; an older one is dropped.

pyserial discards what is waiting on a port it opens (pty and socket alike), so a
port counts as attached :data:`ATTACH_SETTLE_S` after the open was seen, or as
soon as the host writes, whichever comes first.
"""

from __future__ import annotations

import abc
import errno
import fcntl
import logging
import os
import select
import selectors
import socket
import struct
import tty
from typing import TYPE_CHECKING, Callable, List, Optional

if TYPE_CHECKING:
    from .scheduler import Scheduler, Timer

log = logging.getLogger(__name__)

ATTACH_POLL_S = 0.02
ATTACH_SETTLE_S = 0.03
LOW_WATER = 16 * 1024  # below this backlog the port asks for more output
HIGH_WATER = 4 * 1024 * 1024  # beyond this, output the host does not read is dropped
READ_SIZE = 65536
TIOCVHANGUP = 0x5437  # Linux: hang up a tty (needs CAP_SYS_ADMIN)
TIOCSPTLCK = 0x40045431  # Linux: lock a pty's slave against opening


class SimulatedPort(abc.ABC):
    """One serial port of a simulated dongle.

    Args:
        selector: the simulator loop's selector; the port registers its own file descriptors.
        scheduler: the simulator loop's timers.
        on_data: called with the bytes the host wrote.
        on_attach: called when a host opens the port.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        scheduler: Scheduler,
        on_data: Callable[[bytes], None],
        on_attach: Callable[[], None],
    ) -> None:
        self.selector = selector
        self.scheduler = scheduler
        self.on_data = on_data
        self.on_attach = on_attach
        self.attached = False
        self.closed = False
        self._out = bytearray()
        self._waiting: List[Callable[[], None]] = []
        self._overflow_logged = False
        self._settle_timer: Optional[Timer] = None

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """What the host opens: a device path or a pyserial URL."""

    @property
    def backlog(self) -> int:
        """Bytes sent but not yet taken by the operating system."""
        return len(self._out)

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the host (discarded while no host has the port open); the loop
        calls :meth:`flush` before it waits again.
        """
        if self.closed or not self.attached or not data:
            return
        if len(self._out) > HIGH_WATER:
            if not self._overflow_logged:
                log.warning("simulated port %s: the host is not reading; dropping output", self.name)
                self._overflow_logged = True
            return
        self._out += data

    def flush(self) -> None:
        """Hand queued output to the operating system, as much as it takes now."""
        if self._out:
            self._flush()

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the port can take more output (backlog below :data:`LOW_WATER`
        and a host attached): now, or later from the loop.
        """
        if self.attached and len(self._out) < LOW_WATER:
            callback()
        else:
            self._waiting.append(callback)

    def close(self) -> None:
        """Close the port for good; the host sees the device vanish. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.attached = False
        self._out.clear()
        self._waiting.clear()
        self._close_fds()

    @abc.abstractmethod
    def release(self) -> None:
        """Free what :meth:`close` kept reserved."""

    # -- for subclasses -----------------------------------------------------------------
    @abc.abstractmethod
    def _host_fd(self) -> Optional[int]:
        """The descriptor of the host's end while a host has the port open (attached or settling)."""

    def _reading(self) -> bool:
        return self._host_fd() is not None

    def _write_fd(self) -> Optional[int]:
        return self._host_fd() if self.attached else None

    @abc.abstractmethod
    def _close_fds(self) -> None:
        """Unregister and close every descriptor."""

    @abc.abstractmethod
    def _detach(self) -> None:
        """The host closed the port (or its connection failed)."""

    def _opened(self) -> None:
        """A host opened the port: attached once it settled (or when it writes)."""
        self._settle_timer = self.scheduler.after(ATTACH_SETTLE_S, self._settled)

    def _settled(self) -> None:
        self._settle_timer = None
        if self._reading() and not self.attached:
            self._attach_done()

    def _cancel_settle(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None

    def _attach_done(self) -> None:
        self.attached = True
        self._out.clear()
        self._overflow_logged = False
        self.on_attach()
        self._release_waiting()

    def _flush(self) -> None:
        fd = self._write_fd()
        if fd is None:
            return
        try:
            while self._out:
                written = os.write(fd, self._out)
                del self._out[:written]
        except BlockingIOError:
            pass
        except OSError as exc:
            log.debug("simulated port %s: write failed: %s", self.name, exc)
            self._detach()
            return
        self._want_write(bool(self._out))
        if len(self._out) < LOW_WATER:
            self._release_waiting()

    def _release_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()

    def _want_write(self, wanted: bool) -> None:
        fd = self._write_fd()
        if fd is None:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wanted else 0)
        if self.selector.get_key(fd).events != events:
            self.selector.modify(fd, events, self._ready)

    def _ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        fd = self._host_fd()
        if mask & selectors.EVENT_READ and fd is not None:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.ECONNRESET, errno.EBADF):
                    log.debug("simulated port %s: read failed: %s", self.name, exc)
                data = b""
            if not data:
                self._detach()
                return
            if not self.attached:
                self._attach_done()
            self.on_data(data)


class PtyPort(SimulatedPort):
    """A pseudo-terminal: the host opens :attr:`name` (``/dev/pts/N``) as a serial port."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        scheduler: Scheduler,
        on_data: Callable[[bytes], None],
        on_attach: Callable[[], None],
    ) -> None:
        super().__init__(selector, scheduler, on_data, on_attach)
        self._master, slave = os.openpty()
        try:
            self._name = os.ttyname(slave)
            tty.setraw(slave)  # kept by the tty while the master is open: no echo before the host configures it
        finally:
            os.close(slave)
        os.set_blocking(self._master, False)
        self._poll = select.poll()
        self._poll.register(self._master, select.POLLIN)
        self._registered = False
        self._attach_timer: Optional[Timer] = None
        self._watch_for_host()

    @property
    def name(self) -> str:
        return self._name

    def _host_fd(self) -> Optional[int]:
        return self._master if self._registered else None

    def _watch_for_host(self) -> None:
        self._attach_timer = None
        if self.closed:
            return
        hung_up = any(event & select.POLLHUP for _, event in self._poll.poll(0))
        if hung_up:
            self._attach_timer = self.scheduler.after(ATTACH_POLL_S, self._watch_for_host)
            return
        self.selector.register(self._master, selectors.EVENT_READ, self._ready)
        self._registered = True
        log.debug("simulated port %s: opened by the host", self._name)
        self._opened()

    def _detach(self) -> None:
        if not self._registered:
            return
        log.debug("simulated port %s: closed by the host", self._name)
        self._cancel_settle()
        self.selector.unregister(self._master)
        self._registered = False
        self.attached = False
        self._out.clear()
        self._watch_for_host()

    def _close_fds(self) -> None:
        self._cancel_settle()
        if self._attach_timer is not None:
            self._attach_timer.cancel()
        if self._registered:
            self.selector.unregister(self._master)
            self._registered = False
        if not self._retire():
            os.close(self._master)
            self._master = -1

    def _retire(self) -> bool:
        """Hang the slave up (the host sees the device die) and lock it, keeping the master:
        the number stays taken until :meth:`release`. False where the system does not allow it.
        """
        try:
            slave = os.open(self._name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            fcntl.ioctl(slave, TIOCVHANGUP)
            fcntl.ioctl(self._master, TIOCSPTLCK, struct.pack("i", 1))
        except OSError as exc:
            log.debug("simulated port %s: cannot hang up and lock (%s); closing it", self._name, exc)
            return False
        finally:
            os.close(slave)
        return True

    def release(self) -> None:
        """Free the pty's number (after :meth:`close`)."""
        if self.closed and self._master >= 0:
            os.close(self._master)
            self._master = -1


class SocketPort(SimulatedPort):
    """A TCP port on 127.0.0.1: the host opens :attr:`name` (``socket://127.0.0.1:PORT``)."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        scheduler: Scheduler,
        on_data: Callable[[bytes], None],
        on_attach: Callable[[], None],
    ) -> None:
        super().__init__(selector, scheduler, on_data, on_attach)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.setblocking(False)
        self._url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._client: Optional[socket.socket] = None
        selector.register(self._listener, selectors.EVENT_READ, self._accept)

    @property
    def name(self) -> str:
        return self._url

    def _host_fd(self) -> Optional[int]:
        return self._client.fileno() if self._client is not None else None

    def _accept(self, mask: int) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._client is not None:
            log.debug("simulated port %s: a new host connection replaces the old one", self._url)
            self._drop_client()
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self.selector.register(client, selectors.EVENT_READ, self._ready)
        self._opened()

    def _drop_client(self) -> None:
        self._cancel_settle()
        if self._client is None:
            return
        self.selector.unregister(self._client)
        self._client.close()
        self._client = None
        self.attached = False
        self._out.clear()

    def _detach(self) -> None:
        log.debug("simulated port %s: the host disconnected", self._url)
        self._drop_client()

    def release(self) -> None:
        """Nothing to free: a closed socket port keeps nothing."""

    def _close_fds(self) -> None:
        self._drop_client()
        self.selector.unregister(self._listener)
        self._listener.close()
