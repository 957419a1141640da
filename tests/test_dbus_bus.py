"""The D-Bus backend's bus connection (one reader thread) and its pairing agent.

The connection is tested over a real private dbus-daemon against a small
service written with jeepney's blocking API in a thread of the test, so the
two sides share no code of ours.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Tuple

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_call, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from pygatt.backends.dbus.agent import Agent
from pygatt.backends.dbus.backend import DBusBackend
from pygatt.backends.dbus.bus import (
    BusClosed,
    BusConnection,
    CallTimeout,
    DBusCallError,
    IncomingCall,
    Signal,
    resolve_address,
)
from pygatt.testing.dbus_bus import PrivateBus, find_daemon
from tests.helpers import wait_for

NAME = "org.example.Peer"
IFACE = "org.example.Peer1"


class Peer:
    """A service on the bus, in a thread, written with jeepney's blocking API."""

    def __init__(self, address: str) -> None:
        self.connection = open_dbus_connection(bus=address)
        self.connection.send_and_get_reply(message_bus.RequestName(NAME))
        self.stopping = threading.Event()
        self.answers: List[Any] = []
        self.thread = threading.Thread(target=self.run, name="test-peer", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                message = self.connection.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            if message.header.message_type is not MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member == "Echo":
                self.connection.send(new_method_return(message, "s", (message.body[0],)))
            elif member == "Fail":
                self.connection.send(new_error(message, "org.example.Error.Bad", "s", ("bad thing",)))
            elif member == "Emit":
                for number in range(message.body[0]):
                    emitter = DBusAddress(f"/org/example/item{number % 3}", interface=IFACE)
                    self.connection.send(new_signal(emitter, "Changed", "u", (number,)))
                self.connection.send(new_method_return(message))
            elif member == "CallBack":
                client, path = message.body
                target = DBusAddress(path, bus_name=client, interface="org.example.Client1")
                reply = self.connection.send_and_get_reply(new_method_call(target, "Ask", "s", ("hi",)), timeout=5)
                self.answers.append((reply.header.message_type, reply.header.fields.get(HeaderFields.error_name)))
                self.answers.append(reply.body)
                self.connection.send(new_method_return(message))
            # "Hang" and anything else: never answered

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.connection.close()


@pytest.fixture
def bus() -> Iterator[PrivateBus]:
    if find_daemon() is None:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus-daemon)")
    with PrivateBus() as private:
        yield private


@pytest.fixture
def peer(bus: PrivateBus) -> Iterator[Peer]:
    started = Peer(bus.address)
    yield started
    started.stop()


def connect(address: str, signals: List[Signal], closed: List[str]) -> BusConnection:
    connection = BusConnection(address, signals.append, closed.append)
    connection.open(5)
    return connection


@pytest.mark.dbus
def test_calls_errors_and_timeouts(bus: PrivateBus, peer: Peer) -> None:
    connection = connect(bus.address, [], [])
    try:
        assert connection.unique_name.startswith(":")
        assert connection.call(NAME, "/", IFACE, "Echo", "s", ("hello",)) == ("hello",)
        with pytest.raises(DBusCallError) as failed:
            connection.call(NAME, "/", IFACE, "Fail")
        assert (failed.value.name, failed.value.text) == ("org.example.Error.Bad", "bad thing")
        with pytest.raises(CallTimeout, match="Hang"):
            connection.call(NAME, "/", IFACE, "Hang", timeout=0.2)
        assert connection.call(NAME, "/", IFACE, "Echo", "s", ("still fine",)) == ("still fine",)
        with pytest.raises(DBusCallError) as unknown:
            connection.call("org.example.Nobody", "/", IFACE, "Echo", "s", ("x",))
        assert unknown.value.name == "org.freedesktop.DBus.Error.ServiceUnknown"
    finally:
        connection.close()


@pytest.mark.dbus
def test_calls_from_many_threads_get_their_own_answers(bus: PrivateBus, peer: Peer) -> None:
    connection = connect(bus.address, [], [])
    results: List[Tuple[str, Any]] = []

    def worker(name: str) -> None:
        for number in range(50):
            text = f"{name}-{number}"
            results.append((text, connection.call(NAME, "/", IFACE, "Echo", "s", (text,))[0]))

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    connection.close()
    assert len(results) == 200 and all(sent == got for sent, got in results)


@pytest.mark.dbus
def test_signals_reach_the_handler_in_order_and_a_failing_handler_does_not_stop_the_reader(
    bus: PrivateBus, peer: Peer
) -> None:
    received: List[Signal] = []

    def handler(signal: Signal) -> None:
        if signal.member == "Changed" and signal.body[0] == 3:
            raise RuntimeError("a handler bug")
        received.append(signal)

    connection = BusConnection(bus.address, handler)
    connection.open(5)
    try:
        connection.add_match(f"type='signal',interface='{IFACE}',member='Changed'", 5)
        connection.call(NAME, "/", IFACE, "Emit", "u", (10,))
        assert wait_for(lambda: len([s for s in received if s.member == "Changed"]) == 9)
        changed = [s for s in received if s.member == "Changed"]
        assert [s.body[0] for s in changed] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
        assert changed[0].path == "/org/example/item0" and changed[0].interface == IFACE
        assert changed[0].sender == peer.connection.unique_name
        assert connection.call(NAME, "/", IFACE, "Echo", "s", ("alive",)) == ("alive",)
    finally:
        connection.close()


@pytest.mark.dbus
def test_on_reply_sees_a_reply_after_the_signals_before_it_and_before_the_call_returns(
    bus: PrivateBus, peer: Peer
) -> None:
    """on_reply sees a reply's arguments after the signals sent before the reply and before call()
    returns; it is not called for an error reply."""
    order: List[Any] = []

    def handler(signal: Signal) -> None:
        if signal.member == "Changed":
            order.append(signal.body[0])

    connection = BusConnection(bus.address, handler)
    connection.open(5)
    try:
        connection.add_match(f"type='signal',interface='{IFACE}',member='Changed'", 5)
        connection.call(NAME, "/", IFACE, "Emit", "u", (3,), on_reply=lambda body: order.append(("reply", body)))
        order.append("returned")
        assert order == [0, 1, 2, ("reply", ()), "returned"]
        with pytest.raises(DBusCallError):
            connection.call(NAME, "/", IFACE, "Fail", on_reply=lambda body: order.append("failed"))
        assert "failed" not in order
    finally:
        connection.close()


@pytest.mark.dbus
def test_exported_objects_answer_calls_and_unknown_paths_get_unknown_object(bus: PrivateBus, peer: Peer) -> None:
    asked: List[IncomingCall] = []

    def handler(call: IncomingCall) -> Tuple[str, Tuple[Any, ...]]:
        asked.append(call)
        return "s", (f"answer to {call.body[0]}",)

    connection = connect(bus.address, [], [])
    try:
        connection.export("/org/example/client", handler)
        connection.call(NAME, "/", IFACE, "CallBack", "so", (connection.unique_name, "/org/example/client"))
        assert peer.answers[-1] == ("answer to hi",)
        assert asked[0].member == "Ask" and asked[0].interface == "org.example.Client1"
        connection.unexport("/org/example/client")
        connection.call(NAME, "/", IFACE, "CallBack", "so", (connection.unique_name, "/org/example/client"))
        assert peer.answers[-2] == (MessageType.error, "org.freedesktop.DBus.Error.UnknownObject")
    finally:
        connection.close()


@pytest.mark.dbus
def test_close_ends_the_reader_and_fails_later_calls(bus: PrivateBus, peer: Peer) -> None:
    closed: List[str] = []
    before = set(threading.enumerate())
    connection = connect(bus.address, [], closed)
    connection.close()
    assert not connection.is_open
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []
    with pytest.raises(BusClosed):
        connection.call(NAME, "/", IFACE, "Echo", "s", ("x",))
    assert closed == []  # closing it ourselves is not "the bus went away"


@pytest.mark.dbus
def test_the_bus_going_away_fails_pending_calls_and_reports_once(bus: PrivateBus, peer: Peer) -> None:
    closed: List[str] = []
    connection = connect(bus.address, [], closed)
    outcome: List[BaseException] = []

    def hang() -> None:
        try:
            connection.call(NAME, "/", IFACE, "Hang", timeout=30)
        except BaseException as exc:  # recorded and checked below
            outcome.append(exc)

    caller = threading.Thread(target=hang)
    caller.start()
    assert wait_for(lambda: bool(connection.pending_calls()))
    bus.stop()
    caller.join(10)
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], BusClosed)
    assert wait_for(lambda: len(closed) == 1)
    assert not connection.is_open
    connection.close()


def test_no_bus_and_unsupported_addresses(tmp_path: Any) -> None:
    with pytest.raises(ConnectionError, match="cannot connect"):
        BusConnection(f"unix:path={tmp_path}/none.sock", lambda s: None).open(1)
    with pytest.raises(ValueError, match="unsupported D-Bus address"):
        resolve_address("tcp:host=localhost,port=1")
    assert resolve_address("unix:path=/run/x.sock") == "/run/x.sock"


# -- the pairing agent (pure) -------------------------------------------------------------------


def _call(member: str, *body: Any) -> IncomingCall:
    return IncomingCall("/org/pygatt/agent1", "org.bluez.Agent1", member, tuple(body))


def test_agent_answers() -> None:
    agent = Agent(passkey=1234, pin_code="0000")
    device = "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01"
    assert agent.handle(_call("RequestConfirmation", device, 123456)) == ("", ())
    assert agent.handle(_call("RequestAuthorization", device)) == ("", ())
    assert agent.handle(_call("RequestPasskey", device)) == ("u", (1234,))
    assert agent.handle(_call("RequestPinCode", device)) == ("s", ("0000",))
    assert agent.handle(_call("DisplayPasskey", device, 1, 0)) == ("", ())
    assert agent.calls == [
        "RequestConfirmation",
        "RequestAuthorization",
        "RequestPasskey",
        "RequestPinCode",
        "DisplayPasskey",
    ]


def test_agent_without_passkey_or_pin_refuses() -> None:
    agent = Agent()
    for member in ("RequestPasskey", "RequestPinCode"):
        with pytest.raises(DBusCallError) as refused:
            agent.handle(_call(member, "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01"))
        assert refused.value.name == "org.bluez.Error.Rejected"
    with pytest.raises(DBusCallError, match="UnknownMethod"):
        agent.handle(_call("Explode"))


@pytest.mark.parametrize(
    "kwargs",
    [{"capability": "Telepathy"}, {"passkey": 1_000_000}, {"passkey": True}, {"pin_code": ""}, {"pin_code": "1" * 17}],
)
def test_agent_refuses_bad_settings(kwargs: Any) -> None:
    with pytest.raises(ValueError):
        Agent(**kwargs)


@pytest.mark.parametrize("pin", ["12\x0034", "0000\n", "00\r00", "\x00"])
def test_a_pin_code_with_a_nul_or_line_break_is_refused_when_the_backend_is_built(pin: str) -> None:
    # the PIN goes to bluetoothd in a D-Bus reply: a NUL makes the message invalid (the bus drops the
    # connection that sent it), so it is refused before anything reaches the bus
    with pytest.raises(ValueError, match="pin_code"):
        Agent(pin_code=pin)
    with pytest.raises(ValueError, match="pin_code"):
        DBusBackend(pin_code=pin)
