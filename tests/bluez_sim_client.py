"""A plain blocking jeepney client for the simulated org.bluez tests (not the library's backend).

It keeps every message it receives in arrival order (signals, replies and the
agent calls it answers), so tests can check what came before what.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_call, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

BLUEZ = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
HR_ADDRESS = "C4:7C:8D:6A:3E:01"
TAG_ADDRESS = "5D:2B:9F:11:04:7E"
HR_PATH = "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01"
TAG_PATH = "/org/bluez/hci0/dev_5D_2B_9F_11_04_7E"
CHAR = "org.bluez.GattCharacteristic1"
DESC = "org.bluez.GattDescriptor1"
DEVICE = "org.bluez.Device1"
ADAPTER = "org.bluez.Adapter1"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"


@dataclass
class Reply:
    """A method's answer: ``error`` is None for a method return."""

    member: str
    error: Optional[str]
    body: Tuple[Any, ...]

    @property
    def text(self) -> str:
        """The error's message (body[0])."""
        return str(self.body[0]) if self.body else ""

    def ok(self) -> Tuple[Any, ...]:
        """The body of a successful reply (fails the test with the error otherwise)."""
        assert self.error is None, f"{self.member} failed: {self.error} {self.text!r}"
        return self.body


@dataclass
class Event:
    """One received message: ``kind`` is "signal", "reply" or "call"."""

    kind: str
    member: str
    path: str
    body: Tuple[Any, ...]
    interface: str = ""


@dataclass
class Client:
    """One bus connection (one D-Bus sender) talking to org.bluez."""

    address: str
    answer_agent: Optional[Callable[[str, Tuple[Any, ...]], Tuple[str, Any]]] = None
    enable_fds: bool = False
    events: List[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn = open_dbus_connection(bus=self.address, enable_fds=self.enable_fds)
        self.unique_name = self.conn.unique_name
        self.raw_call(
            message_bus.AddMatch("type='signal',sender='org.bluez'"),
            "AddMatch",
        )

    def close(self) -> None:
        """Leave the bus."""
        self.conn.close()

    def raw_call(self, message: Any, member: str, timeout: float = 5.0) -> Reply:
        """Send ``message`` and collect everything until its reply (agent calls are answered)."""
        serial = next(self.conn.outgoing_serial)
        self.conn.send(message, serial=serial)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {member} within {timeout} s")
            incoming = self.conn.receive(timeout=remaining)
            header = incoming.header
            if header.fields.get(HeaderFields.reply_serial) == serial:
                error = header.fields.get(HeaderFields.error_name) if header.message_type == MessageType.error else None
                self.events.append(Event("reply", member, "", incoming.body))
                return Reply(member, error, incoming.body)
            self._record(incoming)

    def _record(self, incoming: Any) -> None:
        header = incoming.header
        path = header.fields.get(HeaderFields.path, "")
        member = header.fields.get(HeaderFields.member, "")
        interface = header.fields.get(HeaderFields.interface, "")
        if header.message_type == MessageType.signal:
            self.events.append(Event("signal", member, path, incoming.body, interface))
        elif header.message_type == MessageType.method_call:
            self.events.append(Event("call", member, path, incoming.body, interface))
            if self.answer_agent is None:
                self.conn.send(new_error(incoming, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("no agent",)))
                return
            kind, value = self.answer_agent(member, incoming.body)
            if kind == "error":
                self.conn.send(new_error(incoming, value, "s", ("refused by the test",)))
            elif kind == "return":
                signature, body = value
                self.conn.send(new_method_return(incoming, signature, body))
            # kind == "ignore": never answered

    def call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Tuple[Any, ...] = (),
        timeout: float = 5.0,
    ) -> Reply:
        """Call ``member`` on org.bluez and return its reply."""
        message = new_method_call(DBusAddress(path, BLUEZ, interface), member, signature, body)
        return self.raw_call(message, member, timeout)

    def pump(self, seconds: float) -> None:
        """Receive (and record) messages for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self._record(self.conn.receive(timeout=remaining))
            except TimeoutError:
                return

    def wait_signal(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """The first recorded or arriving signal that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.kind == "signal" and predicate(event):
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching signal")
            try:
                self._record(self.conn.receive(timeout=remaining))
            except TimeoutError:
                raise TimeoutError("no matching signal") from None

    def signals(self, member: str, path: Optional[str] = None) -> List[Event]:
        """The recorded signals named ``member`` (from ``path``)."""
        return [e for e in self.events if e.kind == "signal" and e.member == member and path in (None, e.path)]

    def changes(self, path: str, name: str) -> List[Any]:
        """The values property ``name`` took in PropertiesChanged signals from ``path``."""
        values = []
        for event in self.signals("PropertiesChanged", path):
            if name in event.body[1]:
                values.append(event.body[1][name][1])
        return values

    # -- shortcuts -----------------------------------------------------------------------------
    def managed_objects(self) -> Dict[str, Dict[str, Dict[str, Tuple[str, Any]]]]:
        """GetManagedObjects' answer."""
        return self.call("/", OM, "GetManagedObjects").ok()[0]

    def get(self, path: str, interface: str, name: str) -> Any:
        """One property's value."""
        return self.call(path, PROPS, "Get", "ss", (interface, name)).ok()[0][1]

    def connect(self, path: str = HR_PATH) -> None:
        """Connect and wait for ServicesResolved=true."""
        self.call(path, DEVICE, "Connect").ok()
        self.wait_signal(lambda e: e.path == path and e.body[1].get("ServicesResolved") == ("b", True))

    def read(self, path: str, options: Optional[Dict[str, Tuple[str, Any]]] = None, timeout: float = 5.0) -> Reply:
        """ReadValue on a characteristic."""
        return self.call(path, CHAR, "ReadValue", "a{sv}", (options or {},), timeout=timeout)

    def write(self, path: str, value: bytes, kind: Optional[str] = "request", interface: str = CHAR) -> Reply:
        """WriteValue with ``type`` (none when ``kind`` is None)."""
        options = {"type": ("s", kind)} if kind else {}
        return self.call(path, interface, "WriteValue", "aya{sv}", (value, options))
