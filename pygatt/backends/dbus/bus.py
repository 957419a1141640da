"""One connection to a D-Bus message bus, with ONE reader thread (jeepney underneath).

The reader thread parses every incoming message and does only three quick
things with it: completes the pending call it answers, hands a signal to the
owner's signal handler (which must only route or queue, never run user code),
or answers a method call on an object we export (the pairing agent). Calls are
made from any thread and each one has a deadline.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

try:
    from jeepney import DBusAddress, HeaderFields, Message, MessageType, Parser
    from jeepney import new_error as _new_error
    from jeepney import new_method_call as _new_method_call
    from jeepney import new_method_return as _new_method_return
    from jeepney.bus import get_bus
    from jeepney.io.blocking import prep_socket

    JEEPNEY_MISSING: Optional[str] = None
except ImportError as exc:  # the DBUS extra is not installed; say so when a connection is made
    JEEPNEY_MISSING = str(exc)

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
RECEIVE_SIZE = 65536
JOIN_TIMEOUT_S = 2.0


class DBusCallError(Exception):
    """A call was answered with a D-Bus error.

    Attributes:
        name: the error name, e.g. ``org.bluez.Error.Failed``.
        text: the error's string (empty when it carried none).
    """

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name
        self.text = text


class CallTimeout(Exception):
    """A call got no answer within its deadline."""


class BusClosed(Exception):
    """The connection to the bus is closed (by us, or the bus went away)."""


@dataclass(frozen=True)
class Signal:
    """A signal as the reader thread hands it on.

    Attributes:
        path: the emitting object's path.
        interface: the signal's interface.
        member: the signal's name.
        body: its arguments, parsed (a variant is a ``(signature, value)`` pair).
        sender: the unique bus name that sent it.
    """

    path: str
    interface: str
    member: str
    body: Tuple[Any, ...]
    sender: str


@dataclass(frozen=True)
class IncomingCall:
    """A method call to an object we export.

    Attributes:
        path: the object path called.
        interface: the interface named in the call.
        member: the method.
        body: its arguments.
        sender: the unique bus name of the caller.
    """

    path: str
    interface: str
    member: str
    body: Tuple[Any, ...]
    sender: str = ""


# What an exported object's handler returns: (reply signature, reply body); raise DBusCallError to refuse.
CallHandler = Callable[[IncomingCall], Tuple[str, Tuple[Any, ...]]]
SignalHandler = Callable[[Signal], None]
# Sees a successful reply's arguments on the reader thread, in order with the signals around it.
ReplyHook = Callable[[Tuple[Any, ...]], None]


def resolve_address(address: Optional[str]) -> str:
    """The socket address of ``address`` (a D-Bus address string), or of the system bus when None.

    The system bus is ``DBUS_SYSTEM_BUS_ADDRESS`` when set, else ``/var/run/dbus/system_bus_socket``.
    Only ``unix:path=`` and ``unix:abstract=`` addresses are supported.

    Raises:
        ValueError: the address names no supported transport.
    """
    try:
        return str(get_bus(address if address else "SYSTEM"))
    except (StopIteration, ValueError, RuntimeError) as exc:
        raise ValueError(f"unsupported D-Bus address {address!r}: only unix:path= and unix:abstract= work") from exc


class BusConnection:
    """A connection to one bus; thread-safe calls; one reader thread.

    Args:
        address: a D-Bus address (``unix:path=…``); None for the system bus.
        on_signal: called on the reader thread for every signal; must return quickly.
        on_closed: called once on the reader thread when the bus goes away (not after close()).
    """

    def __init__(
        self,
        address: Optional[str],
        on_signal: SignalHandler,
        on_closed: Optional[Callable[[str], None]] = None,
    ) -> None:
        if JEEPNEY_MISSING is not None:
            raise ImportError(f"the D-Bus backend needs jeepney: pip install 'pygatt[DBUS]' ({JEEPNEY_MISSING})")
        self._address = address
        self._on_signal = on_signal
        self._on_closed = on_closed
        self._sock: Optional[socket.socket] = None
        self._parser = Parser()
        self._serials = itertools.count(1)
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: Dict[int, concurrent.futures.Future[Message]] = {}
        self._reply_hooks: Dict[int, ReplyHook] = {}  # by serial, for calls made with on_reply
        self._exported: Dict[str, CallHandler] = {}
        self._reader: Optional[threading.Thread] = None
        self._closing = False
        self._closed_reason: Optional[str] = None
        self.unique_name = ""

    @property
    def is_open(self) -> bool:
        """True while the connection is up."""
        return self._sock is not None and self._closed_reason is None

    def open(self, timeout: float) -> None:
        """Connect, authenticate and say Hello, all within ``timeout`` seconds.

        Raises:
            ConnectionError: the bus cannot be reached (no socket, refused, or no answer in time).
            ValueError: the address is not supported.
        """
        target = resolve_address(self._address)
        try:
            self._sock = prep_socket(target, enable_fds=False, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to the D-Bus bus at {target}: {exc}") from exc
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="pygatt-dbus-reader", daemon=True)
        self._reader.start()
        try:
            self.unique_name = str(self.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", timeout=timeout)[0])
        except (CallTimeout, BusClosed, DBusCallError) as exc:
            self.close()
            raise ConnectionError(f"the D-Bus bus at {target} did not accept us: {exc}") from exc
        log.debug("Connected to %s as %s", target, self.unique_name)

    def close(self) -> None:
        """Close the connection and end the reader thread; pending calls fail with BusClosed."""
        with self._lock:
            self._closing = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already down
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(JOIN_TIMEOUT_S)
            if reader.is_alive():
                log.warning("The D-Bus reader thread did not end within %.1f s", JOIN_TIMEOUT_S)
        if sock is not None:
            sock.close()
        self._fail_pending("the connection was closed")

    # -- calls ------------------------------------------------------------------

    def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        timeout: float = 5.0,
        on_reply: Optional[ReplyHook] = None,
    ) -> Tuple[Any, ...]:
        """Call a method and wait at most ``timeout`` seconds for its answer.

        Args:
            destination: the bus name to call.
            path: the object path.
            interface: the method's interface.
            member: the method's name.
            signature: the arguments' D-Bus signature.
            body: the arguments.
            timeout: seconds to wait for the answer.
            on_reply: called on the reader thread with a successful reply's arguments, after
                the signals that came before the reply and before any that come after it (and
                before this call returns); it must be quick. Not called for an error or a timeout.

        Returns:
            The reply's arguments.

        Raises:
            DBusCallError: the answer was an error.
            CallTimeout: no answer in time.
            BusClosed: the connection is (or went) down.
        """
        address = DBusAddress(path, bus_name=destination, interface=interface)
        message = _new_method_call(address, member, signature or None, tuple(body))
        future: concurrent.futures.Future[Message] = concurrent.futures.Future()
        serial = next(self._serials)
        with self._lock:
            if self._sock is None or self._closed_reason is not None or self._closing:
                raise BusClosed(self._closed_reason or "the connection is closed")
            self._pending[serial] = future
            if on_reply is not None:
                self._reply_hooks[serial] = on_reply
        try:
            self._send(message, serial)
            reply = future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise CallTimeout(f"{interface}.{member} on {path}: no answer within {timeout:g} s") from None
        finally:
            with self._lock:
                self._pending.pop(serial, None)
                self._reply_hooks.pop(serial, None)
        if reply.header.message_type is MessageType.error:
            name = str(reply.header.fields.get(HeaderFields.error_name, "org.freedesktop.DBus.Error.Failed"))
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DBusCallError(name, text)
        return tuple(reply.body)

    def pending_calls(self) -> int:
        """How many calls wait for their answer."""
        with self._lock:
            return len(self._pending)

    def add_match(self, rule: str, timeout: float) -> None:
        """Ask the bus to send us the signals ``rule`` matches."""
        self.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", "s", (rule,), timeout=timeout)

    def export(self, path: str, handler: CallHandler) -> None:
        """Answer method calls to ``path`` with ``handler`` (run on the reader thread; keep it quick)."""
        with self._lock:
            self._exported[path] = handler

    def unexport(self, path: str) -> None:
        """Stop answering calls to ``path``."""
        with self._lock:
            self._exported.pop(path, None)

    def _send(self, message: Message, serial: int) -> None:
        data = message.serialise(serial=serial)
        sock = self._sock
        if sock is None:
            raise BusClosed("the connection is closed")
        try:
            with self._send_lock:
                sock.sendall(data)
        except OSError as exc:
            raise BusClosed(f"cannot send to the bus: {exc}") from exc

    # -- the reader thread ---------------------------------------------------------

    def _read(self) -> None:
        sock = self._sock
        reason = "the bus closed the connection"
        try:
            while sock is not None:
                data = sock.recv(RECEIVE_SIZE)
                if not data:
                    break
                self._parser.add_data(data)
                message = self._parser.get_next_message()
                while message is not None:
                    self._route(message)
                    message = self._parser.get_next_message()
        except OSError as exc:
            reason = f"the connection to the bus broke: {exc}"
        except Exception:
            log.exception("The D-Bus reader thread failed")
            reason = "the D-Bus reader thread failed"
        with self._lock:
            closing = self._closing
            self._closed_reason = "the connection was closed" if closing else reason
        self._fail_pending(self._closed_reason or reason)
        if not closing and self._on_closed is not None:
            log.warning("D-Bus connection lost: %s", reason)
            self._on_closed(reason)

    def _route(self, message: Message) -> None:
        kind = message.header.message_type
        fields = message.header.fields
        if kind is MessageType.signal:
            signal = Signal(
                str(fields.get(HeaderFields.path, "")),
                str(fields.get(HeaderFields.interface, "")),
                str(fields.get(HeaderFields.member, "")),
                tuple(message.body),
                str(fields.get(HeaderFields.sender, "")),
            )
            try:
                self._on_signal(signal)
            except Exception:
                log.exception("Handling the signal %s.%s from %s failed", signal.interface, signal.member, signal.path)
        elif kind is MessageType.method_call:
            self._answer(message)
        else:
            serial = fields.get(HeaderFields.reply_serial, -1)
            with self._lock:
                future = self._pending.pop(serial, None)
                hook = self._reply_hooks.pop(serial, None)
            if future is None or future.done():
                return
            if hook is not None and kind is MessageType.method_return:
                try:
                    hook(tuple(message.body))
                except Exception:
                    log.exception("A reply hook failed")
            future.set_result(message)

    def _answer(self, message: Message) -> None:
        fields = message.header.fields
        call = IncomingCall(
            str(fields.get(HeaderFields.path, "")),
            str(fields.get(HeaderFields.interface, "")),
            str(fields.get(HeaderFields.member, "")),
            tuple(message.body),
            str(fields.get(HeaderFields.sender, "")),
        )
        with self._lock:
            handler = self._exported.get(call.path)
        if handler is None:
            reply = _new_error(
                message, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"No such object path '{call.path}'",)
            )
        else:
            try:
                signature, body = handler(call)
                reply = _new_method_return(message, signature or None, body)
            except DBusCallError as exc:
                reply = _new_error(message, exc.name, "s", (exc.text,))
            except Exception as exc:
                log.exception("Handler for %s.%s on %s raised", call.interface, call.member, call.path)
                reply = _new_error(message, "org.freedesktop.DBus.Error.Failed", "s", (str(exc),))
        try:
            self._send(reply, next(self._serials))
        except BusClosed as exc:
            log.debug("Could not answer %s: %s", call.member, exc)

    def _fail_pending(self, reason: str) -> None:
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
            self._reply_hooks.clear()
        for future in pending:
            if not future.done():
                future.set_exception(BusClosed(reason))
