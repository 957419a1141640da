"""A software BLE peripheral speaking ATT over Unix sockets: one thread, one selector.

:class:`ATTPeripheralServer` listens, for every connectable peripheral of a
:class:`~pygatt.testing.world.World`, on ``<directory>/<ADDRESS>-<public|random>``
(an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket: one ATT PDU per packet). With the
LD_PRELOAD shim of :mod:`pygatt.testing.att.realtool`, BlueZ's real ``gatttool``
connects there instead of to a radio. Each accepted connection is a link with
its own attribute table (writes last as long as the link, as in the simulated
gatttool), answered by :class:`~pygatt.testing.att.responder.LinkResponder`.

The world's behaviour settings apply: ``mtu`` (offered in Exchange MTU),
``response_delay_s`` (every response is sent that late), ``disconnect_after_ops``,
``disconnect_after_s`` and ``disconnect_after_notifications`` (the peripheral
closes the link: a remote disconnect), ``connectable`` and ``address_type`` (no socket, so gatttool's
connect is refused) and the characteristics' ``notify`` streams (started by a
CCCD write, or at connect; indications wait for their confirmation).
``connect_delay_s`` and ``connect_error`` have no equivalent here.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Tuple, Union

from pygatt.testing.att import pdu
from pygatt.testing.att.responder import LinkResponder, Outcome
from pygatt.testing.world import NotifyStream, Peripheral, World, layout

log = logging.getLogger(__name__)

#: PDUs kept per peripheral for :meth:`ATTPeripheralServer.received`.
RECEIVED_KEPT = 100_000
#: A stream with ``interval_s == 0`` keeps at most this many PDUs queued on its link.
BURST = 64


def socket_name(address: str, address_type: str) -> str:
    """The file name a peripheral listens on: ``AA:BB:CC:DD:EE:FF-public`` (what the shim connects to)."""
    return f"{address.upper()}-{'random' if address_type == 'random' else 'public'}"


class _Stream:
    """A notification stream running on one link."""

    def __init__(self, value_handle: int, spec: NotifyStream, indication: bool) -> None:
        self.value_handle = value_handle
        self.spec = spec
        self.indication = indication
        self.sent = 0
        self.waiting = False  # an indication is out, not yet confirmed

    @property
    def finished(self) -> bool:
        return bool(self.spec.count) and self.sent >= self.spec.count


class _Link:
    """One accepted connection."""

    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket, peripheral: Peripheral) -> None:
        self.id = next(self._ids)
        self.sock = sock
        self.peripheral = peripheral
        self.responder = LinkResponder(layout(peripheral), peripheral.mtu)
        self.outgoing: Deque[bytes] = collections.deque()
        self.indications: Deque[Tuple[bytes, Optional[_Stream]]] = collections.deque()
        self.indication_out: Optional[Tuple[bytes, Optional[_Stream]]] = None
        self.streams: Dict[int, _Stream] = {}
        self.ops = 0
        self.notified = 0  # notifications and indications sent
        self.open = True
        self.close_when_drained = False


class ATTPeripheralServer:
    """Serves a world's peripherals over ATT on Unix sockets, from one thread.

    Args:
        world: the peripherals to serve (the same JSON world as the simulated gatttool).
        directory: where the listening sockets are created (short paths: a Unix
            socket path has at most 107 bytes).
    """

    def __init__(self, world: World, directory: Union[str, Path]) -> None:
        self.world = world
        self.directory = Path(directory)
        self._selector = selectors.DefaultSelector()
        self._listeners: Dict[socket.socket, Peripheral] = {}
        self._links: Dict[int, _Link] = {}
        self._timers: List[Tuple[float, int, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._calls: Deque[Callable[[], None]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: Optional[threading.Thread] = None
        self._running = False
        self._lock = threading.Lock()
        self._received: Dict[str, Deque[bytes]] = {}
        self._peak: Dict[str, int] = {}
        self._notified: Dict[str, int] = {}
        #: how many connections were accepted so far
        self.accepted = 0

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Create the listening sockets and start the server thread.

        Raises:
            OSError: when a socket cannot be created (e.g. the directory is missing).
            RuntimeError: when the server was already started.
        """
        if self._thread is not None:
            raise RuntimeError("the ATT peripheral server is already started")
        for peripheral in self.world.peripherals:
            if not peripheral.connectable:
                continue
            path = self.directory / socket_name(peripheral.address, peripheral.address_type)
            if len(os.fsencode(path)) > 107:
                raise OSError(f"socket path too long for AF_UNIX: {path}")
            path.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            listener.bind(str(path))
            listener.listen(8)
            listener.setblocking(False)
            self._listeners[listener] = peripheral
            self._selector.register(listener, selectors.EVENT_READ, ("accept", listener))
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="pygatt-att-peripheral", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Close every link and listening socket and end the thread (within ``timeout``)."""
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the ATT peripheral thread did not end within %s s", timeout)
        self._thread = None

    def __enter__(self) -> ATTPeripheralServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls (any thread) --------------------------------------------------------------

    def call_soon(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the server thread."""
        with self._lock:
            self._calls.append(action)
        self._wake()

    def drop_links(self, address: Optional[str] = None) -> None:
        """Close the links to ``address`` (every link when None): a remote disconnect."""
        self.call_soon(lambda: self._drop_matching(address))

    def notify(self, address: str, handle: int, value: bytes, indication: bool = False) -> None:
        """Send one notification (or indication) on every link to ``address``."""
        self.call_soon(lambda: self._notify_matching(address, handle, bytes(value), indication))

    def links(self, address: Optional[str] = None) -> int:
        """How many links are open (to ``address``, or in all)."""
        with self._lock:
            return sum(1 for link in self._links.values() if address in (None, link.peripheral.address.upper()))

    def peak_links(self, address: str) -> int:
        """The most links to ``address`` that were ever open at the same time."""
        with self._lock:
            return self._peak.get(address.upper(), 0)

    def notifications_sent(self, address: str) -> int:
        """How many notifications and indications were handed to the links to ``address``."""
        with self._lock:
            return self._notified.get(address.upper(), 0)

    def received(self, address: str) -> List[bytes]:
        """The PDUs clients sent to ``address`` so far, oldest first (the last 100,000)."""
        with self._lock:
            return list(self._received.get(address.upper(), ()))

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or shutting down

    # -- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while self._running:
                timeout = self._run_due_timers()
                for key, events in self._selector.select(timeout):
                    kind, target = key.data
                    if kind == "accept":
                        self._accept(target)
                    elif kind == "wake":
                        self._drain_wake()
                    elif kind == "link":
                        self._on_link_event(target, events)
        except Exception:
            log.exception("the ATT peripheral server failed")
        finally:
            self._shut_down()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._calls:
                    return
                action = self._calls.popleft()
            action()

    def _shut_down(self) -> None:
        for link in list(self._links.values()):
            self._close(link, "server stopped")
        for listener in list(self._listeners):
            self._selector.unregister(listener)
            path = listener.getsockname()
            listener.close()
            if path:
                Path(path).unlink(missing_ok=True)
        self._listeners.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _after(self, delay: float, link: _Link, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._counter), link.id, action))

    def _run_due_timers(self) -> Optional[float]:
        while self._timers:
            when, _, link_id, action = self._timers[0]
            now = time.monotonic()
            if when > now:
                return when - now
            heapq.heappop(self._timers)
            if link_id in self._links:
                action()
        return None

    # -- links --------------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        link = _Link(sock, self._listeners[listener])
        address = link.peripheral.address.upper()
        with self._lock:
            self._links[link.id] = link
            open_now = sum(1 for other in self._links.values() if other.peripheral.address.upper() == address)
            self._peak[address] = max(self._peak.get(address, 0), open_now)
        self.accepted += 1
        self._selector.register(sock, selectors.EVENT_READ, ("link", link))
        log.debug("link %d to %s is up", link.id, link.peripheral.address)
        if link.peripheral.disconnect_after_s:
            self._after(link.peripheral.disconnect_after_s, link, lambda: self._close(link, "disconnect_after_s"))
        for attribute in link.responder.table.attributes.values():
            spec = attribute.characteristic.notify if attribute.characteristic else None
            if spec is not None and spec.trigger == "connect":
                self._start_stream(link, attribute.handle, spec, indication=False)

    def _on_link_event(self, link: _Link, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(link)
        if not link.open or not events & selectors.EVENT_READ:
            return
        try:
            data = link.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(link, f"receive failed: {exc}")
            return
        if not data:
            self._close(link, "the client closed the link")
            return
        self._record(link, data)
        outcome = link.responder.handle(data)
        self._act(link, outcome)

    def _record(self, link: _Link, data: bytes) -> None:
        with self._lock:
            kept = self._received.setdefault(link.peripheral.address.upper(), collections.deque(maxlen=RECEIVED_KEPT))
            kept.append(data)

    def _act(self, link: _Link, outcome: Outcome) -> None:
        if outcome.confirmed:
            self._confirmed(link)
        for value_handle, flags in outcome.subscriptions:
            self._subscription(link, value_handle, flags)
        closing = False
        if outcome.operation:
            link.ops += 1
            limit = link.peripheral.disconnect_after_ops
            closing = bool(limit) and link.ops >= (limit or 0)
        if outcome.response is None and not closing:
            return
        response = outcome.response

        def respond() -> None:
            if response is not None:
                self._send(link, response)
            if closing:
                link.close_when_drained = True
                self._flush(link)

        delay = link.peripheral.response_delay_s
        if delay > 0:
            self._after(delay, link, respond)
        else:
            respond()

    def _send(self, link: _Link, data: bytes) -> None:
        link.outgoing.append(data)
        self._flush(link)

    def _flush(self, link: _Link) -> None:
        """Send what is queued; top up streams that send as fast as the client reads."""
        if not self._write_out(link):
            return
        if link.close_when_drained:
            self._close(link, "disconnect_after_ops")
            return
        pumping = [s for s in link.streams.values() if s.spec.interval_s <= 0 and not s.indication and not s.finished]
        for stream in pumping:
            self._fill(link, stream)
        if pumping and self._write_out(link):
            # more to send: come back when the socket is writable, after reading what the client sent
            self._selector.modify(link.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, ("link", link))

    def _write_out(self, link: _Link) -> bool:
        """Send queued PDUs until the socket is full; True when the queue is empty and the link open."""
        while link.open and link.outgoing:
            try:
                link.sock.send(link.outgoing[0])
            except BlockingIOError:
                self._selector.modify(link.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, ("link", link))
                return False
            except OSError as exc:
                self._close(link, f"send failed: {exc}")
                return False
            link.outgoing.popleft()
        if link.open:
            self._selector.modify(link.sock, selectors.EVENT_READ, ("link", link))
        return link.open

    def _close(self, link: _Link, why: str) -> None:
        if not link.open:
            return
        link.open = False
        log.debug("link %d to %s is down: %s", link.id, link.peripheral.address, why)
        with self._lock:
            self._links.pop(link.id, None)
        try:
            self._selector.unregister(link.sock)
        except (KeyError, ValueError):
            pass
        try:
            link.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        link.sock.close()

    def _drop_matching(self, address: Optional[str]) -> None:
        for link in list(self._links.values()):
            if address is None or link.peripheral.address.upper() == address.upper():
                self._close(link, "dropped on request")

    def _notify_matching(self, address: str, handle: int, value: bytes, indication: bool) -> None:
        for link in list(self._links.values()):
            if link.peripheral.address.upper() == address.upper():
                self._emit(link, handle, value, indication, None)

    # -- notifications and indications ---------------------------------------------------------

    def _count_notification(self, link: _Link) -> None:
        """Count one notification or indication; drop the link after the world's limit."""
        link.notified += 1
        with self._lock:
            address = link.peripheral.address.upper()
            self._notified[address] = self._notified.get(address, 0) + 1
        limit = link.peripheral.disconnect_after_notifications
        if limit and link.notified >= limit:
            link.close_when_drained = True

    def _emit(self, link: _Link, handle: int, value: bytes, indication: bool, stream: Optional[_Stream]) -> None:
        value = value[: link.responder.mtu - 3]  # a notification carries at most MTU - 3 bytes
        self._count_notification(link)
        if not indication:
            self._send(link, pdu.notification(handle, value))
            return
        link.indications.append((pdu.indication(handle, value), stream))
        self._next_indication(link)

    def _next_indication(self, link: _Link) -> None:
        if link.indication_out is None and link.indications:
            link.indication_out = link.indications.popleft()
            self._send(link, link.indication_out[0])

    def _confirmed(self, link: _Link) -> None:
        out, link.indication_out = link.indication_out, None
        if out is not None and out[1] is not None:
            stream = out[1]
            stream.waiting = False
            if link.streams.get(stream.value_handle) is stream and not stream.finished:
                self._after(stream.spec.interval_s, link, lambda: self._tick(link, stream))
        self._next_indication(link)

    def _subscription(self, link: _Link, value_handle: int, flags: int) -> None:
        attribute = link.responder.table.attributes.get(value_handle)
        spec = attribute.characteristic.notify if attribute and attribute.characteristic else None
        if spec is None or spec.trigger != "subscribe":
            return
        current = link.streams.get(value_handle)
        if not flags & 0x03:
            link.streams.pop(value_handle, None)
            return
        indication = not flags & 0x01  # both bits set: notify (no confirmations to wait for)
        if current is not None and current.indication == indication:
            return
        self._start_stream(link, value_handle, spec, indication)

    def _start_stream(self, link: _Link, value_handle: int, spec: NotifyStream, indication: bool) -> None:
        stream = _Stream(value_handle, spec, indication)
        link.streams[value_handle] = stream
        self._after(spec.interval_s, link, lambda: self._tick(link, stream))

    def _tick(self, link: _Link, stream: _Stream) -> None:
        if link.streams.get(stream.value_handle) is not stream or stream.finished or stream.waiting:
            return
        if stream.spec.interval_s <= 0 and not stream.indication:
            self._flush(link)  # tops the stream up as the client reads
            return
        stream.waiting = stream.indication
        self._emit(link, stream.value_handle, stream.spec.value(stream.sent), stream.indication, stream)
        stream.sent += 1
        if not stream.indication and not stream.finished:
            self._after(stream.spec.interval_s, link, lambda: self._tick(link, stream))

    def _fill(self, link: _Link, stream: _Stream) -> None:
        """Queue up to BURST values of a stream that has no interval."""
        while len(link.outgoing) < BURST and not stream.finished and not link.close_when_drained:
            value = stream.spec.value(stream.sent)
            stream.sent += 1
            self._count_notification(link)
            link.outgoing.append(pdu.notification(stream.value_handle, value[: link.responder.mtu - 3]))
