"""Commands and their responses, and the routing of events, for one dongle.

* One command is in flight per dongle: :meth:`BGAPIProtocol.command` holds a lock
  from sending a command until its response (same class/id) arrives or its
  deadline passes; the dongle answers commands in order.
* Events go to whoever asked for them, not to a queue every thread shares. A
  caller opens an :class:`EventInbox` with a filter *before* it sends the command
  whose events it wants, so nothing is missed and nothing is stolen: a read on
  connection 1 never sees connection 2's events.
* Notifications and indications (attribute values of type notify/indicate) are
  never given to an inbox: they go to the connection's listener only, so a
  notification is never taken for a read result.
* An event for a connection handle nobody knows is logged, never fatal.
* When the port dies, every inbox and the command in flight fail with
  :class:`~pygatt.exceptions.NotConnectedError` and every connection's listener
  hears ``on_disconnected`` once.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Protocol, Set, Tuple, cast

from pygatt.backends.bgapi import codec
from pygatt.backends.bgapi.codec import AttributeValueType, Kind, Message
from pygatt.backends.bgapi.error_codes import describe
from pygatt.backends.bgapi.exceptions import AnswerTimeout, CommandFailed
from pygatt.exceptions import NotConnectedError

log = logging.getLogger(__name__)

DEFAULT_RESPONSE_TIMEOUT_S = 5.0
UNCLAIMED_KEPT = 256

NOTIFICATION_TYPES = frozenset(
    {AttributeValueType.NOTIFY, AttributeValueType.INDICATE, AttributeValueType.INDICATE_RSP_REQ}
)

MessageFilter = Callable[[Message], bool]


class Writer(Protocol):
    """What the protocol needs from a transport."""

    def write(self, data: bytes) -> None:
        """Send bytes to the dongle."""


class ConnectionListener(Protocol):
    """Receives the unsolicited events of one connection (called on the reader thread: queue, don't block)."""

    def on_notification(self, handle: int, value: bytes, value_type: int) -> None:
        """A notification or indication arrived (``value_type``: an :class:`AttributeValueType`)."""

    def on_disconnected(self, reason: str, code: Optional[int]) -> None:
        """The link ended; ``code`` is the dongle's reason code, None when the port died."""

    def on_status(self, message: Message) -> None:
        """A connection_status event for an established link (encryption, parameters)."""


def connection_of(message: Message) -> Optional[int]:
    """The connection handle an event or response is about, if it names one."""
    if "connection" in message.fields:
        return int(message.fields["connection"])
    if message.name in ("sm_bonding_fail", "sm_encrypt_start"):
        return int(message.fields["handle"])
    return None


class EventInbox:
    """Messages matching a filter, collected from the moment it was opened.

    Args:
        accepts: the filter; called on the reader thread, must be quick.
        connection: the connection it is about (it fails when that link ends), or None.
    """

    def __init__(self, accepts: MessageFilter, connection: Optional[int] = None) -> None:
        self.opened = time.monotonic()
        self.accepts = accepts
        self.connection = connection
        self._queue: queue.Queue[Any] = queue.Queue()
        self._failure: Optional[Exception] = None

    def put(self, message: Message) -> None:
        """Add a matching message (reader thread)."""
        self._queue.put(message)

    def fail(self, error: Exception) -> None:
        """Make the current and every later :meth:`get` raise ``error`` once the queue is empty."""
        if self._failure is None:
            self._failure = error
            self._queue.put(error)

    def get(self, deadline: float, expected: str) -> Message:
        """The next message, waiting until ``deadline`` (``time.monotonic()``).

        Args:
            deadline: when to give up.
            expected: what is awaited, for the timeout's message.

        Raises:
            ExpectedResponseTimeout: nothing came in time.
            NotConnectedError: the link or the port went away.
        """
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                raise AnswerTimeout(expected, round(time.monotonic() - self.opened, 3)) from None
            if isinstance(item, Exception):
                self._queue.put(item)  # stays failed
                raise item
            return cast("Message", item)

    def drain(self) -> List[Message]:
        """Messages already queued, without waiting."""
        items: List[Message] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if isinstance(item, Exception):
                self._queue.put(item)
                return items
            items.append(item)


class _PendingCommand:
    def __init__(self, name: str, msg_class: int, msg_id: int) -> None:
        self.name = name
        self.key = (msg_class, msg_id)
        self.done = threading.Event()
        self.response: Optional[Message] = None
        self.error: Optional[Exception] = None


class BGAPIProtocol:
    """Command/response tracking and event routing over one transport.

    Args:
        response_timeout: default seconds to wait for a command's response.
    """

    def __init__(self, response_timeout: float = DEFAULT_RESPONSE_TIMEOUT_S) -> None:
        self.response_timeout = response_timeout
        self._writer: Optional[Writer] = None
        self._command_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: Optional[_PendingCommand] = None
        self._inboxes: List[EventInbox] = []
        self._listeners: Dict[int, ConnectionListener] = {}
        self._unclaimed: Deque[Message] = collections.deque(maxlen=UNCLAIMED_KEPT)
        self._unclaimed_changed = threading.Condition(self._state_lock)
        self._dead: Optional[str] = None
        self._warned_handles: Set[int] = set()
        self._awaited: Dict[Tuple[int, int], int] = {}  # (class, id) -> responses owed

    # -- wiring -----------------------------------------------------------------

    def attach(self, writer: Writer) -> None:
        """Use ``writer`` for commands from now on (after the port was (re)opened)."""
        with self._state_lock:
            self._writer = writer
            self._dead = None
            self._awaited.clear()

    def detach(self) -> None:
        """Forget the writer (the port is being closed on purpose)."""
        with self._state_lock:
            self._writer = None

    @property
    def alive(self) -> bool:
        """True while a port is attached and has not died."""
        return self._writer is not None and self._dead is None

    def add_listener(self, connection: int, listener: ConnectionListener) -> None:
        """Send the unsolicited events of ``connection`` to ``listener``."""
        with self._state_lock:
            self._listeners[connection] = listener
            self._warned_handles.discard(connection)

    def remove_listener(self, connection: int, listener: Optional[ConnectionListener] = None) -> None:
        """Stop routing ``connection``'s events (only if it is still ``listener``, when given)."""
        with self._state_lock:
            if listener is None or self._listeners.get(connection) is listener:
                self._listeners.pop(connection, None)

    def listener(self, connection: int) -> Optional[ConnectionListener]:
        """The listener of ``connection``, if any."""
        with self._state_lock:
            return self._listeners.get(connection)

    def connections(self) -> List[int]:
        """Connection handles that have a listener."""
        with self._state_lock:
            return sorted(self._listeners)

    # -- inboxes ------------------------------------------------------------------

    def open_inbox(self, accepts: MessageFilter, connection: Optional[int] = None) -> EventInbox:
        """Start collecting messages that ``accepts`` (close it with :meth:`close_inbox`)."""
        inbox = EventInbox(accepts, connection)
        with self._state_lock:
            if self._dead is not None:
                inbox.fail(NotConnectedError(f"BGAPI dongle lost: {self._dead}"))
            self._inboxes.append(inbox)
        return inbox

    def close_inbox(self, inbox: EventInbox) -> None:
        """Stop collecting into ``inbox``."""
        with self._state_lock:
            if inbox in self._inboxes:
                self._inboxes.remove(inbox)

    def inbox(self, accepts: MessageFilter, connection: Optional[int] = None) -> _InboxContext:
        """``with protocol.inbox(filter) as box:`` opens and always closes an inbox."""
        return _InboxContext(self, accepts, connection)

    # -- commands -------------------------------------------------------------------

    def send(self, name: str, **fields: Any) -> None:
        """Send a command that has no response (system_reset), or whose response nobody awaits.

        Raises:
            NotConnectedError: no port, or it failed.
        """
        frame = codec.encode_command(name, **fields)
        with self._command_lock:
            self._write(frame, name)

    def send_raw(self, frame: bytes) -> None:
        """Write a frame as given (5.0.0's ``send_command`` compatibility); its response is unclaimed.

        Raises:
            codec.CodecError: not exactly one whole frame (nothing is sent: the dongle would
                take the bytes of the next command as the rest of a short one).
        """
        if len(frame) < codec.HEADER_SIZE:
            raise codec.CodecError(f"a raw frame has at least {codec.HEADER_SIZE} bytes, got {len(frame)}")
        size = codec.parse_header(frame)[2]
        if len(frame) != codec.HEADER_SIZE + size:
            raise codec.CodecError(
                f"the raw frame's header says {size} payload bytes, it has {len(frame) - codec.HEADER_SIZE}"
            )
        with self._command_lock:
            self._write(frame, "raw frame")

    def command(self, name: str, *, wait: Optional[float] = None, check: bool = False, **fields: Any) -> Message:
        """Send command ``name`` and return its response.

        The response is the next one with the command's class and id. Once the
        command timed out its response is no longer awaited: one that still comes
        while no command of its kind waits is dropped by the decoder (see
        :meth:`expects_response`).

        Args:
            name: the command, as named in the codec's table.
            wait: seconds to wait for the response (default ``response_timeout``).
            check: raise :class:`CommandFailed` if the response's ``result`` is not 0.
            **fields: the command's fields.

        Returns:
            The response message.

        Raises:
            codec.CodecError: bad fields (nothing is sent).
            ExpectedResponseTimeout: no response in time.
            NotConnectedError: no port, or it failed.
            CommandFailed: ``check`` and a non-zero result.
        """
        spec = codec.spec_for(Kind.COMMAND, name)
        if name in codec.COMMANDS_WITHOUT_RESPONSE:
            raise ValueError(f"{name} has no response; use send()")
        payload = codec.encode_payload(spec, fields)  # bad fields fail here, before anything is sent
        frame = codec.Packet(False, spec.msg_class, spec.msg_id, payload).to_bytes()
        seconds = self.response_timeout if wait is None else wait
        deadline = time.monotonic() + seconds
        if not self._command_lock.acquire(timeout=max(0.0, seconds)):
            raise AnswerTimeout(f"a turn to send {name} (another command is in flight)", seconds)
        try:
            pending = _PendingCommand(name, spec.msg_class, spec.msg_id)
            with self._state_lock:
                self._pending = pending
            try:
                self._write(frame, name)
                if not pending.done.wait(max(0.0, deadline - time.monotonic())):
                    self._owe(pending.key, -1)  # a response that still comes is line noise now
                    raise AnswerTimeout(f"the response to {name}", seconds)
            finally:
                with self._state_lock:
                    self._pending = None
        finally:
            self._command_lock.release()
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        result = pending.response.get("result")
        if check and result:
            raise CommandFailed(name, result)
        return pending.response

    def _write(self, frame: bytes, what: str) -> None:
        writer = self._writer
        if writer is None or self._dead is not None:
            raise NotConnectedError(f"Cannot send {what}: the BGAPI dongle is not open ({self._dead or 'stopped'})")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %s %s", what, frame.hex(" "))
        key = (frame[2], frame[3]) if len(frame) >= codec.HEADER_SIZE and not frame[0] & 0x80 else None
        if key is not None and codec.lookup(Kind.RESPONSE, *key) is not None:
            self._owe(key, +1)  # before writing: the answer may come before write() returns
        writer.write(frame)

    def _owe(self, key: Tuple[int, int], change: int) -> None:
        with self._state_lock:
            count = self._awaited.get(key, 0) + change
            if count > 0:
                self._awaited[key] = count
            else:
                self._awaited.pop(key, None)

    def expects_response(self, msg_class: int, msg_id: int) -> bool:
        """True while a response with this class and id is owed (for the decoder, reader thread)."""
        return (msg_class, msg_id) in self._awaited

    # -- compatibility: unclaimed messages ---------------------------------------------

    def wait_unclaimed(self, names: Iterable[str], timeout: float) -> Message:
        """The oldest unclaimed message (a response nobody awaited, an event no inbox took) named in ``names``.

        Raises:
            ExpectedResponseTimeout: none came within ``timeout``.
        """
        wanted = set(names)
        deadline = time.monotonic() + timeout
        with self._unclaimed_changed:
            while True:
                for message in list(self._unclaimed):
                    if message.name in wanted:
                        self._unclaimed.remove(message)
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AnswerTimeout(sorted(wanted), timeout)
                self._unclaimed_changed.wait(remaining)

    # -- the reader's side ---------------------------------------------------------------

    def handle_message(self, message: Message) -> None:
        """Route one message from the dongle (called on the reader thread)."""
        if message.kind is Kind.RESPONSE:
            self._handle_response(message)
        else:
            self._handle_event(message)

    def _handle_response(self, message: Message) -> None:
        self._owe((message.msg_class, message.msg_id), -1)
        with self._state_lock:
            pending = self._pending
            if pending is not None and pending.key == (message.msg_class, message.msg_id) and not pending.done.is_set():
                pending.response = message
                pending.done.set()
                return
            self._keep_unclaimed(message)
        log.debug("Response nobody waits for: %s", message)

    def _keep_unclaimed(self, message: Message) -> None:
        self._unclaimed.append(message)
        self._unclaimed_changed.notify_all()

    def _handle_event(self, message: Message) -> None:
        connection = connection_of(message)
        notification = message.name == "attclient_attribute_value" and message["type"] in NOTIFICATION_TYPES
        with self._state_lock:
            listener = self._listeners.get(connection) if connection is not None else None
            taken = False
            if not notification:  # a notification is never a read result: inboxes never see one
                for inbox in self._inboxes:
                    if inbox.accepts(message):
                        inbox.put(message)
                        taken = True
            if message.name == "connection_disconnected":
                self._fail_connection_inboxes(connection, message)
                self._listeners.pop(int(message["connection"]), None)
            if listener is None and not taken:
                if connection is not None and message.name not in ("connection_status", "connection_disconnected"):
                    self._unknown_connection(connection, message)
                if not notification:
                    self._keep_unclaimed(message)
                return
        if listener is None:
            return
        if notification:
            listener.on_notification(message["atthandle"], message["value"], message["type"])
        elif message.name == "connection_disconnected":
            listener.on_disconnected(describe(message["reason"]), message["reason"])
        elif message.name == "connection_status":
            if message["flags"] & codec.ConnectionFlag.CONNECTED:
                listener.on_status(message)
            else:
                self.remove_listener(int(message["connection"]), listener)
                listener.on_disconnected("connection_status without the connected flag", None)

    def _fail_connection_inboxes(self, connection: Optional[int], message: Message) -> None:
        error = NotConnectedError(f"Connection {connection} ended: {describe(message['reason'])}")
        for inbox in self._inboxes:
            if inbox.connection is not None and inbox.connection == connection and not inbox.accepts(message):
                inbox.fail(error)

    def _unknown_connection(self, connection: Optional[int], message: Message) -> None:
        if connection is None:
            return
        if connection not in self._warned_handles:
            self._warned_handles.add(connection)
            log.warning("Event for unknown connection handle %d ignored: %s", connection, message)
        else:
            log.debug("Event for unknown connection handle %d ignored: %s", connection, message)

    def port_lost(self, reason: str) -> None:
        """The port died: fail everything waiting and tell every connection once (reader thread)."""
        listeners = self._fail_all(f"BGAPI dongle lost: {reason}", reason)
        for listener in listeners:
            try:
                listener.on_disconnected(f"BGAPI dongle lost: {reason}", None)
            except Exception:
                log.exception("A connection listener failed on port loss")

    def shutdown(self, reason: str) -> None:
        """The backend stops: fail every wait at once, forget every connection without telling it."""
        self._fail_all(reason, reason)
        self.detach()

    def _fail_all(self, message: str, reason: str) -> List[ConnectionListener]:
        error = NotConnectedError(message)
        with self._state_lock:
            self._dead = reason
            pending = self._pending
            if pending is not None and not pending.done.is_set():
                pending.error = error
                pending.done.set()
            for inbox in self._inboxes:
                inbox.fail(error)
            listeners = list(self._listeners.values())
            self._listeners.clear()
            self._unclaimed_changed.notify_all()
        return listeners


class _InboxContext:
    def __init__(self, protocol: BGAPIProtocol, accepts: MessageFilter, connection: Optional[int]) -> None:
        self._protocol = protocol
        self._accepts = accepts
        self._connection = connection
        self._inbox: Optional[EventInbox] = None

    def __enter__(self) -> EventInbox:
        self._inbox = self._protocol.open_inbox(self._accepts, self._connection)
        return self._inbox

    def __exit__(self, *exc: Any) -> None:
        if self._inbox is not None:
            self._protocol.close_inbox(self._inbox)
