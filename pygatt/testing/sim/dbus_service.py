"""A D-Bus service's transport: one dbus-fast connection on an asyncio loop in a thread of its own.

:class:`BusService` connects to a bus, owns a well-known name and hands every
incoming method call to a handler, which answers by hand (:meth:`BusService.reply`,
:meth:`BusService.fail`) now or later. It also sends signals, runs timers and
coroutines on its loop, and tells the handler when a client leaves the bus. It
knows nothing of BlueZ; :mod:`pygatt.testing.sim.bluez_dbus` is built on it.

All methods but :meth:`start`, :meth:`stop`, :meth:`run_soon` and :attr:`running`
must be called on the service's own thread (from the handler or a timer).
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
import time
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Optional, Set, Tuple

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
WRITABLE_TIMEOUT_S = 10.0
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"

Properties = Dict[str, Tuple[str, Any]]  # name -> (signature, value)


class Var:
    """A value that travels inside a D-Bus variant: its signature and the value."""

    __slots__ = ("signature", "value")

    def __init__(self, signature: str, value: Any) -> None:
        self.signature = signature
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Var) and (self.signature, self.value) == (other.signature, other.value)

    def __hash__(self) -> int:
        return hash((self.signature, repr(self.value)))

    def __repr__(self) -> str:
        return f"Var({self.signature!r}, {self.value!r})"


def wire(value: Any) -> Any:
    """A plain value as dbus-fast sends it (every :class:`Var` inside becomes a ``Variant``)."""
    if isinstance(value, Var):
        return Variant(value.signature, wire(value.value))
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire(item) for item in value]
    return value


def unwire(value: Any) -> Any:
    """A received argument as a plain value: ``a{sv}`` -> ``{key: (signature, value)}``, ``v`` -> :class:`Var`."""
    if isinstance(value, Variant):
        return Var(value.signature, value.value)
    if isinstance(value, dict) and value and all(isinstance(item, Variant) for item in value.values()):
        return {key: (item.signature, item.value) for key, item in value.items()}
    return value


def variants(props: Properties) -> Dict[str, Variant]:
    """``{name: (signature, value)}`` as an ``a{sv}`` dbus-fast sends."""
    return {name: Variant(signature, wire(value)) for name, (signature, value) in props.items()}


class PacedMessageBus(MessageBus):
    """dbus-fast's asyncio bus, plus a way to wait until its socket takes more data.

    dbus-fast writes at once when its queue is empty and treats ``EAGAIN`` from a full
    socket as a broken connection, so a fast producer (a notification stream) must
    wait for the socket before each message.
    """

    def wait_writable(self, timeout: float) -> bool:
        """Block until the bus socket is writable or ``timeout`` passes; True when writable."""
        if self._fd is None:
            return False
        return bool(select.select([], [self._fd], [], timeout)[1])


class BusService:
    """Own ``name`` on the bus at ``bus_address`` and pass method calls to ``on_call``.

    Args:
        bus_address: the D-Bus address.
        name: the well-known name to own (refused if someone owns it).
        on_call: called on the service thread with each method call for us; it answers
            (now or later) or raises.
        on_client_left: called with a unique name when that client leaves the bus.
        thread_name: the thread's name.
        unix_fds: negotiate unix file descriptor passing (to hand out sockets).
    """

    def __init__(
        self,
        bus_address: str,
        name: str,
        on_call: Callable[[Message], None],
        on_client_left: Callable[[str], None],
        thread_name: str,
        unix_fds: bool = False,
    ) -> None:
        self.bus_address = bus_address
        self.unix_fds = unix_fds
        self.name = name
        self.on_call = on_call
        self.on_client_left = on_client_left
        self.thread_name = thread_name
        self.unique_name = ""
        self.gone = False  # True once we left the bus
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._bus: Optional[PacedMessageBus] = None
        self._closing = threading.Event()
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None
        self._stopping: Optional[asyncio.Event] = None
        self._tasks: Set[asyncio.Task[None]] = set()

    # -- any thread ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the service's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Connect, own the name, start answering.

        Args:
            timeout: seconds to wait.

        Raises:
            RuntimeError: the bus refused us or did not answer in time.
        """
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.thread_name}: no bus connection within {timeout:g} s")
        if self._start_error is not None:
            error = self._start_error
            self.stop()
            raise RuntimeError(f"{self.thread_name} could not start: {error}") from error

    def stop(self) -> None:
        """Leave the bus and end the thread. Always returns."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        self._closing.set()
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                log.debug("%s: the loop closed meanwhile", self.thread_name)
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            log.warning("%s: the thread did not end within %g s", self.thread_name, STOP_TIMEOUT_S)
        self._thread = None

    def run_soon(self, action: Callable[[], Any], timeout: float) -> Any:
        """Run ``action`` on the service thread and return its result.

        Args:
            action: what to run.
            timeout: seconds to wait for it.

        Returns:
            What ``action`` returned.

        Raises:
            RuntimeError: the service is not running.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or not self.running:
            raise RuntimeError(f"{self.thread_name} is not running")

        async def run() -> Any:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    # -- the service thread -----------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # handed to start() through _start_error
            self._start_error = exc
            log.debug("%s failed: %s", self.thread_name, exc)
        finally:
            self._ready.set()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        bus = PacedMessageBus(bus_address=self.bus_address, negotiate_unix_fd=self.unix_fds)
        await asyncio.wait_for(bus.connect(), START_TIMEOUT_S)
        self._bus = bus
        self.unique_name = bus.unique_name or ""
        bus.add_message_handler(self._on_message)
        match = "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[match],
            )
        )
        reply = await bus.request_name(self.name, NameFlag.DO_NOT_QUEUE)
        if reply != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {self.name}: {reply.name}")
        self._ready.set()
        await self._stopping.wait()
        self.leave()

    def _on_message(self, message: Message) -> bool:
        if message.message_type == MessageType.SIGNAL:
            if message.member == "NameOwnerChanged" and message.sender == "org.freedesktop.DBus":
                name, _, new_owner = message.body
                if name.startswith(":") and not new_owner:
                    self.on_client_left(name)
            return False
        if message.message_type != MessageType.METHOD_CALL:
            return False  # replies to our own calls go to their waiters
        self.on_call(message)
        return True

    def leave(self) -> None:
        """Disconnect from the bus now (the name loses its owner; pending callers get NoReply)."""
        if not self.gone and self._bus is not None:
            self.gone = True
            self._bus.disconnect()

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` on this thread after ``delay`` seconds."""
        assert self._loop is not None
        self._loop.call_later(max(0.0, delay), action)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coroutine`` as a task of this loop (cancelled at stop)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def future(self) -> asyncio.Future[Any]:
        """A new future of this loop."""
        assert self._loop is not None
        return self._loop.create_future()

    async def call(self, message: Message) -> Message:
        """Call a method of another client (an agent) and wait for its reply."""
        assert self._bus is not None
        return await self._bus.call(message)

    def send(self, message: Message, then: Optional[Callable[[], None]] = None) -> None:
        """Send ``message`` (nothing once we left the bus), then run ``then`` once it is written.

        Args:
            message: the message.
            then: runs once the message left (or could not leave); e.g. closes a file descriptor it carried.
        """
        if self.gone or self._bus is None or not self._writable():
            if then is not None:
                then()
            return
        written = self._bus.send(message)
        if then is not None:
            written.add_done_callback(lambda _: then())

    def _writable(self) -> bool:
        """Wait (blocking this thread: back-pressure) until the bus takes data; False if it never does."""
        assert self._bus is not None
        deadline = time.monotonic() + WRITABLE_TIMEOUT_S
        while not self._bus.wait_writable(0.1):
            if self._closing.is_set() or time.monotonic() > deadline:
                log.warning("%s: the bus takes no more data; a message is dropped", self.thread_name)
                return False
        return True

    def watch(self, fd: int, action: Callable[[], None]) -> None:
        """Run ``action`` on this thread whenever ``fd`` is readable."""
        assert self._loop is not None
        self._loop.add_reader(fd, action)

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd``."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)

    def reply(self, call: Message, signature: str = "", body: Optional[List[Any]] = None) -> None:
        """Answer ``call`` with a method return."""
        self.send(Message.new_method_return(call, signature, [wire(v) for v in (body or [])]))

    def fail(self, call: Message, name: str, text: str) -> None:
        """Answer ``call`` with the error ``name`` and its one string."""
        self.send(Message.new_error(call, name, text))

    def signal(self, path: str, interface: str, member: str, signature: str, body: List[Any]) -> None:
        """Broadcast a signal from ``path``."""
        self.send(Message.new_signal(path, interface, member, signature, body))

    def properties_changed(
        self, path: str, interface: str, changed: Properties, invalidated: Iterable[str] = ()
    ) -> None:
        """``org.freedesktop.DBus.Properties.PropertiesChanged`` from ``path``."""
        body = [interface, variants(changed), list(invalidated)]
        self.signal(path, PROPERTIES, "PropertiesChanged", "sa{sv}as", body)

    def interfaces_added(self, manager: str, path: str, interfaces: Dict[str, Properties]) -> None:
        """``InterfacesAdded`` for ``path``, sent from the object manager's path."""
        body = {name: variants(props) for name, props in interfaces.items()}
        self.signal(manager, OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", [path, body])

    def interfaces_removed(self, manager: str, path: str, interfaces: List[str]) -> None:
        """``InterfacesRemoved`` for ``path``, sent from the object manager's path."""
        self.signal(manager, OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, interfaces])
