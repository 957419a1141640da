"""The command/response tracker and event router alone: no port, no thread of its own.

A fake writer records frames and, where a test says so, answers them by
calling ``handle_message`` as the reader thread would.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Tuple

import pytest

from pygatt.backends.bgapi import codec
from pygatt.backends.bgapi.exceptions import CommandFailed, ExpectedResponseTimeout
from pygatt.backends.bgapi.protocol import BGAPIProtocol
from pygatt.exceptions import NotConnectedError


def message(frame: bytes) -> codec.Message:
    return codec.decode_bytes(frame)


class Writer:
    def __init__(self, protocol: BGAPIProtocol, answer: Optional[Callable[[codec.Message], List[bytes]]] = None):
        self.protocol = protocol
        self.answer = answer
        self.sent: List[codec.Message] = []

    def write(self, data: bytes) -> None:
        command = codec.decode_bytes(data, from_host=True)
        self.sent.append(command)
        if self.answer is not None:
            for frame in self.answer(command):
                self.protocol.handle_message(message(frame))


class Listener:
    def __init__(self) -> None:
        self.notifications: List[Tuple[int, bytes, int]] = []
        self.disconnects: List[Tuple[str, Optional[int]]] = []
        self.statuses: List[codec.Message] = []

    def on_notification(self, handle: int, value: bytes, value_type: int) -> None:
        self.notifications.append((handle, value, value_type))

    def on_disconnected(self, reason: str, code: Optional[int]) -> None:
        self.disconnects.append((reason, code))

    def on_status(self, status: codec.Message) -> None:
        self.statuses.append(status)


def test_response_matched_by_class_and_id() -> None:
    protocol = BGAPIProtocol()

    def answer(command: codec.Message) -> List[bytes]:
        return [
            codec.encode_response("gap_end_procedure", result=0),  # not ours: left unclaimed
            codec.encode_event("attclient_procedure_completed", connection=0, result=0, chrhandle=1),
            codec.encode_response("system_address_get", address="00:07:80:AA:BB:CC"),
        ]

    protocol.attach(Writer(protocol, answer))
    response = protocol.command("system_address_get")
    assert response.name == "system_address_get" and response["address"] == "00:07:80:AA:BB:CC"
    assert protocol.wait_unclaimed(["gap_end_procedure"], 0.1)["result"] == 0


def test_bad_fields_send_nothing() -> None:
    protocol = BGAPIProtocol()
    writer = Writer(protocol)
    protocol.attach(writer)
    with pytest.raises(codec.CodecError):
        protocol.command("gap_discover", mode=300)
    with pytest.raises(ValueError, match="no response"):
        protocol.command("system_reset", boot_in_dfu=0)
    assert writer.sent == []


def test_timeout_and_check() -> None:
    protocol = BGAPIProtocol()
    protocol.attach(Writer(protocol))  # never answers
    with pytest.raises(ExpectedResponseTimeout, match="the response to gap_discover"):
        protocol.command("gap_discover", wait=0.05, mode=2)
    protocol.attach(Writer(protocol, lambda c: [codec.encode_response("gap_discover", result=0x0181)]))
    with pytest.raises(CommandFailed, match=r"gap_discover failed: wrong_state \(0x0181\)"):
        protocol.command("gap_discover", check=True, mode=2)
    assert protocol.command("gap_discover", mode=2)["result"] == 0x0181


def test_not_attached_is_not_connected() -> None:
    with pytest.raises(NotConnectedError):
        BGAPIProtocol().command("gap_end_procedure")


def test_events_go_to_the_inbox_of_their_connection_only() -> None:
    protocol = BGAPIProtocol()
    done = lambda c: lambda m: m.name == "attclient_procedure_completed" and m["connection"] == c  # noqa: E731
    with protocol.inbox(done(0), connection=0) as zero, protocol.inbox(done(1), connection=1) as one:
        protocol.handle_message(message(codec.encode_event("attclient_procedure_completed", connection=1, result=0,
                                                           chrhandle=5)))  # fmt: skip
        protocol.handle_message(message(codec.encode_event("attclient_procedure_completed", connection=0, result=0,
                                                           chrhandle=6)))  # fmt: skip
        assert zero.get(time.monotonic() + 1, "x")["chrhandle"] == 6
        assert one.get(time.monotonic() + 1, "x")["chrhandle"] == 5
        assert zero.drain() == [] and one.drain() == []


def test_notifications_never_reach_an_inbox() -> None:
    protocol = BGAPIProtocol()
    listener = Listener()
    protocol.add_listener(0, listener)
    value = lambda kind: message(codec.encode_event("attclient_attribute_value", connection=0, atthandle=3,  # noqa: E731
                                                    type=kind, value=b"\x01"))  # fmt: skip
    with protocol.inbox(lambda m: m.name == "attclient_attribute_value", connection=0) as inbox:
        protocol.handle_message(value(codec.AttributeValueType.NOTIFY))
        protocol.handle_message(value(codec.AttributeValueType.INDICATE))
        protocol.handle_message(value(codec.AttributeValueType.READ))
        assert [m["type"] for m in inbox.drain()] == [0]
    assert listener.notifications == [(3, b"\x01", 1), (3, b"\x01", 2)]


def test_unknown_connection_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    protocol = BGAPIProtocol()
    notification = codec.encode_event("attclient_attribute_value", connection=9, atthandle=3, type=1, value=b"")
    for _ in range(3):
        protocol.handle_message(message(notification))
    assert caplog.text.count("unknown connection handle 9") == 1  # warned once, then debug


def test_disconnect_event_fails_waiting_inboxes_and_tells_the_listener() -> None:
    protocol = BGAPIProtocol()
    listener = Listener()
    protocol.add_listener(2, listener)
    with protocol.inbox(lambda m: m.name == "attclient_procedure_completed", connection=2) as inbox:
        protocol.handle_message(message(codec.encode_event("connection_disconnected", connection=2, reason=0x0208)))
        with pytest.raises(NotConnectedError, match=r"connection_timeout \(0x0208\)"):
            inbox.get(time.monotonic() + 1, "x")
    assert listener.disconnects[0][1] == 0x0208
    assert protocol.connections() == []


def test_port_loss_fails_everything_once() -> None:
    protocol = BGAPIProtocol()
    protocol.attach(Writer(protocol))  # never answers
    listeners = [Listener(), Listener()]
    protocol.add_listener(0, listeners[0])
    protocol.add_listener(1, listeners[1])
    errors: List[BaseException] = []

    def wait_for_response() -> None:
        try:
            protocol.command("system_address_get", wait=10)
        except BaseException as exc:  # checked below
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_response)
    waiter.start()
    inbox = protocol.open_inbox(lambda m: True)
    time.sleep(0.1)
    protocol.port_lost("unplugged")
    waiter.join(5)
    assert not waiter.is_alive()
    assert isinstance(errors[0], NotConnectedError) and "unplugged" in str(errors[0])
    with pytest.raises(NotConnectedError):
        inbox.get(time.monotonic() + 1, "x")
    assert [len(listener.disconnects) for listener in listeners] == [1, 1]
    with pytest.raises(NotConnectedError):
        protocol.command("gap_end_procedure")
