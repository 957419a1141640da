"""One BGAPI connection to one peripheral: the GATT operations as BGAPI procedures.

Each operation sends a command and waits for the events that finish it, all
within the caller's ``timeout``. Only one ATT procedure runs per connection at a
time (the peer answers one request at a time); other connections of the same
dongle go on in parallel, since the dongle's lock is held only from a command to
its response. Every wait filters on this connection's handle and, where the
event names one, the attribute handle, so answers never cross between links.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Protocol, Tuple

from pygatt.backends.backend import DEFAULT_ATT_MTU, Characteristic, GATTLink
from pygatt.backends.bgapi import codec
from pygatt.backends.bgapi.codec import AttributeValueType, ConnectionFlag, Message
from pygatt.backends.bgapi.discovery import build_characteristics, uuid_from_wire, uuid_to_wire
from pygatt.backends.bgapi.error_codes import describe
from pygatt.backends.bgapi.errors import NOT_CONNECTED, result_error
from pygatt.backends.bgapi.exceptions import BGAPIError, ExpectedResponseTimeout
from pygatt.backends.bgapi.protocol import BGAPIProtocol, EventInbox, MessageFilter
from pygatt.exceptions import NotConnectedError, NotificationTimeout

log = logging.getLogger(__name__)

WRITE_CHUNK = DEFAULT_ATT_MTU - 3  # attclient_attribute_write carries at most 20 bytes
PREPARE_CHUNK = DEFAULT_ATT_MTU - 5  # attclient_prepare_write carries at most 18 bytes
BOGUS_RSSI = 25  # what some firmware reports before it has measured anything
RSSI_ATTEMPTS = 3


class LinkEvents(Protocol):
    """Where a link reports what happens on its own (called on the reader thread: queue, never block)."""

    def notification(self, link: BGAPILink, handle: int, value: bytes) -> None:
        """A notification or indication for ``link``."""

    def confirm_indication(self, link: BGAPILink) -> None:
        """``link`` received an indication the host must confirm (attclient_indicate_confirm), off the reader."""

    def lost(self, link: BGAPILink, reason: str) -> None:
        """``link`` ended without being asked to."""


class BGAPILink(GATTLink):
    """A connection handle on a dongle, with the GATT operations over it.

    Args:
        protocol: the dongle's command/event router.
        address: the peer's address.
        connection: the connection handle the dongle gave.
        events: where notifications and an unasked disconnect are reported.
    """

    def __init__(self, protocol: BGAPIProtocol, address: str, connection: int, events: LinkEvents) -> None:
        self.address = address
        self.connection = connection
        self._protocol = protocol
        self._events = events
        self._procedure = threading.Lock()
        self._connected = True
        self._closing = False
        self.encrypted = False
        self.bonded = False
        self.last_status: Optional[Message] = None

    def __repr__(self) -> str:
        return f"<BGAPILink {self.address} connection={self.connection}>"

    @property
    def connected(self) -> bool:
        """True until the link ends."""
        return self._connected

    # -- events from the router (reader thread) ----------------------------------

    def on_notification(self, handle: int, value: bytes, value_type: int) -> None:
        """Pass a notification or indication on; an indication the firmware left to the host
        to confirm (type ``indicate_rsp_req``) is confirmed, else the peer would stop sending.
        """
        self._events.notification(self, handle, value)
        if value_type == AttributeValueType.INDICATE_RSP_REQ:
            self._events.confirm_indication(self)

    def confirm_indication(self, timeout: float) -> None:
        """Send attclient_indicate_confirm for this connection (not on the reader thread)."""
        response = self._protocol.command("attclient_indicate_confirm", wait=timeout, connection=self.connection)
        if response["result"]:
            log.warning("Confirming an indication from %s: %s", self.address, describe(response["result"]))

    def on_disconnected(self, reason: str, code: Optional[int]) -> None:
        """The link ended; report it unless :meth:`disconnect` asked for it."""
        was_connected = self._connected
        self._connected = False
        if was_connected and not self._closing:
            self._events.lost(self, reason)

    def on_status(self, message: Message) -> None:
        """Keep track of encryption and bonding from connection_status events."""
        self.last_status = message
        self.encrypted = bool(message["flags"] & ConnectionFlag.ENCRYPTED)
        if message["bonding"] != codec.NO_BOND:
            self.bonded = True

    # -- helpers --------------------------------------------------------------------

    def _ours(self, message: Message) -> bool:
        return bool(message.get("connection", message.get("handle")) == self.connection)

    def _start(self, timeout: float, operation: str) -> float:
        """Take this link's procedure lock within ``timeout``; returns the deadline."""
        deadline = time.monotonic() + timeout
        if not self._connected:
            raise NotConnectedError(f"Device {self.address} is not connected")
        if not self._procedure.acquire(timeout=timeout):
            raise NotificationTimeout(f"{operation}: another operation on {self.address} did not finish in {timeout} s")
        return deadline

    def _command(self, name: str, deadline: float, operation: str, target: Optional[str], **fields: Any) -> Message:
        response = self._protocol.command(name, wait=_left(deadline), **fields)
        result = response.get("result", 0)
        if result:
            raise result_error(operation, target, result)
        return response

    def _wait(self, inbox: EventInbox, deadline: float, expected: str) -> Message:
        try:
            return inbox.get(deadline, expected)
        except ExpectedResponseTimeout as exc:
            if not self._connected:
                raise NotConnectedError(f"Device {self.address} disconnected while waiting for {expected}") from exc
            raise

    def _completed(self, handle: int) -> MessageFilter:
        def accepts(message: Message) -> bool:
            return (
                message.name == "attclient_procedure_completed"
                and message["connection"] == self.connection
                and message["chrhandle"] == handle
            )

        return accepts

    # -- GATT operations --------------------------------------------------------------

    def read_handle(self, handle: int, timeout: float) -> bytes:
        """Read one attribute (``attclient_read_by_handle``); a notification is never taken for the value."""
        target = f"0x{handle:04x}"
        deadline = self._start(timeout, "read")
        try:

            def accepts(message: Message) -> bool:
                if message.name == "attclient_attribute_value":
                    return bool(message["connection"] == self.connection and message["atthandle"] == handle)
                return self._completed(handle)(message)

            with self._protocol.inbox(accepts, self.connection) as inbox:
                self._command(
                    "attclient_read_by_handle", deadline, "read", target, connection=self.connection, chrhandle=handle
                )
                message = self._wait(inbox, deadline, f"the value of handle {target}")
            if message.name == "attclient_procedure_completed":
                raise result_error("read", target, message["result"] or 0x040E)
            return bytes(message["value"])
        finally:
            self._procedure.release()

    def read_uuid(self, uuid: uuid.UUID, timeout: float) -> bytes:
        """Read the first value whose type is ``uuid`` (``attclient_read_by_type``)."""
        target = str(uuid)
        deadline = self._start(timeout, "read")
        try:

            def accepts(message: Message) -> bool:
                if not self._ours(message):
                    return False
                if message.name == "attclient_attribute_value":
                    return bool(message["type"] == AttributeValueType.READ_BY_TYPE)
                return message.name == "attclient_procedure_completed"

            with self._protocol.inbox(accepts, self.connection) as inbox:
                self._command(
                    "attclient_read_by_type",
                    deadline,
                    "read",
                    target,
                    connection=self.connection,
                    start=1,
                    end=0xFFFF,
                    uuid=uuid_to_wire(uuid),
                )
                message = self._wait(inbox, deadline, f"a value of {target}")
                if message.name == "attclient_procedure_completed":
                    raise result_error("read", target, message["result"] or 0x040A)
                try:  # the procedure ends with procedure_completed; don't leave it to the next one
                    while inbox.get(deadline, "the end of read by type").name != "attclient_procedure_completed":
                        pass
                except ExpectedResponseTimeout:
                    log.debug("No procedure_completed after read by type on %s", self.address)
            return bytes(message["value"])
        finally:
            self._procedure.release()

    def read_long_handle(self, handle: int, timeout: float) -> bytes:
        """Read a long value (``attclient_read_long``: Read, then Read Blob until the end)."""
        target = f"0x{handle:04x}"
        deadline = self._start(timeout, "read")
        try:

            def accepts(message: Message) -> bool:
                if message.name == "attclient_attribute_value":
                    return bool(message["connection"] == self.connection and message["atthandle"] == handle)
                return self._completed(handle)(message)

            parts: List[bytes] = []
            with self._protocol.inbox(accepts, self.connection) as inbox:
                self._command(
                    "attclient_read_long", deadline, "read", target, connection=self.connection, chrhandle=handle
                )
                while True:
                    message = self._wait(inbox, deadline, f"the rest of handle {target}")
                    if message.name == "attclient_procedure_completed":
                        if message["result"]:
                            raise result_error("read", target, message["result"])
                        return b"".join(parts)
                    parts.append(bytes(message["value"]))
        finally:
            self._procedure.release()

    def write_handle(self, handle: int, value: bytes, with_response: bool, timeout: float) -> None:
        """Write a value: ``attclient_attribute_write`` (acknowledged) or ``attclient_write_command``.

        Raises:
            ValueError: more than 20 bytes (use a long write).
        """
        target = f"0x{handle:04x}"
        if len(value) > WRITE_CHUNK:
            raise ValueError(
                f"BGAPI writes at most {WRITE_CHUNK} bytes in one packet, got {len(value)}; "
                "use char_write_long_handle for longer values"
            )
        deadline = self._start(timeout, "write")
        try:
            if not with_response:
                self._command(
                    "attclient_write_command",
                    deadline,
                    "write",
                    target,
                    connection=self.connection,
                    atthandle=handle,
                    data=value,
                )
                return
            with self._protocol.inbox(self._completed(handle), self.connection) as inbox:
                self._command(
                    "attclient_attribute_write",
                    deadline,
                    "write",
                    target,
                    connection=self.connection,
                    atthandle=handle,
                    data=value,
                )
                message = self._wait(inbox, deadline, f"the acknowledgement of the write to {target}")
            if message["result"]:
                raise result_error("write", target, message["result"])
        finally:
            self._procedure.release()

    def write_long_handle(self, handle: int, value: bytes, timeout: float) -> None:
        """Write a long value: ``attclient_prepare_write`` in 18-byte pieces, then ``attclient_execute_write``."""
        target = f"0x{handle:04x}"
        deadline = self._start(timeout, "write")
        try:
            with self._protocol.inbox(self._completed(handle), self.connection) as inbox:
                try:
                    for offset in range(0, len(value), PREPARE_CHUNK):
                        self._command(
                            "attclient_prepare_write",
                            deadline,
                            "write",
                            target,
                            connection=self.connection,
                            atthandle=handle,
                            offset=offset,
                            data=value[offset : offset + PREPARE_CHUNK],
                        )
                        message = self._wait(inbox, deadline, f"the acknowledgement of a prepared write to {target}")
                        if message["result"]:
                            raise result_error("write", target, message["result"])
                except BGAPIError:
                    self._cancel_prepared(deadline)
                    raise
            with self._protocol.inbox(self._any_completed, self.connection) as inbox:
                self._command(
                    "attclient_execute_write", deadline, "write", target, connection=self.connection, commit=1
                )
                message = self._wait(inbox, deadline, f"the end of the long write to {target}")
            if message["result"]:
                raise result_error("write", target, message["result"])
        finally:
            self._procedure.release()

    def _any_completed(self, message: Message) -> bool:
        return message.name == "attclient_procedure_completed" and message["connection"] == self.connection

    def _cancel_prepared(self, deadline: float) -> None:
        try:
            with self._protocol.inbox(self._any_completed, self.connection) as inbox:
                self._protocol.command(
                    "attclient_execute_write", wait=_left(deadline), connection=self.connection, commit=0
                )
                inbox.get(deadline, "the end of a cancelled long write")
        except (BGAPIError, NotConnectedError) as exc:
            log.debug("Cancelling the prepared writes on %s: %s", self.address, exc)

    def discover(self, timeout: float) -> Dict[uuid.UUID, Characteristic]:
        """List every attribute (``attclient_find_information``) and build the characteristics."""
        deadline = self._start(timeout, "discover")
        try:

            def accepts(message: Message) -> bool:
                if not self._ours(message):
                    return False
                return message.name in ("attclient_find_information_found", "attclient_procedure_completed")

            attributes: List[Tuple[int, uuid.UUID]] = []
            with self._protocol.inbox(accepts, self.connection) as inbox:
                self._command(
                    "attclient_find_information",
                    deadline,
                    "discover",
                    None,
                    connection=self.connection,
                    start=1,
                    end=0xFFFF,
                )
                while True:
                    message = self._wait(inbox, deadline, "the end of service discovery")
                    if message.name == "attclient_procedure_completed":
                        if message["result"] and message["result"] != 0x040A:  # attribute not found: the end
                            raise result_error("discover", None, message["result"])
                        break
                    try:
                        attributes.append((message["chrhandle"], uuid_from_wire(message["uuid"])))
                    except ValueError as exc:
                        log.warning("Skipping attribute 0x%04x: %s", message["chrhandle"], exc)
            found = build_characteristics(attributes)
            log.info("Discovered %d characteristics on %s", len(found), self.address)
            return found
        finally:
            self._procedure.release()

    def exchange_mtu(self, mtu: int, timeout: float) -> int:
        """BLE SDK 1.x has no MTU exchange: the link keeps the default ATT MTU, which is returned."""
        if not self._connected:
            raise NotConnectedError(f"Device {self.address} is not connected")
        if mtu != DEFAULT_ATT_MTU:
            log.warning("BGAPI (BLE SDK 1.x) cannot exchange the ATT MTU; %s keeps %d", self.address, DEFAULT_ATT_MTU)
        return DEFAULT_ATT_MTU

    def bond(self, permanent: bool, timeout: float) -> None:
        """Encrypt the link and bond (``sm_encrypt_start``); ``permanent`` stores the bond in the dongle."""
        deadline = self._start(timeout, "bond")
        try:
            if permanent:
                self._protocol.command("sm_set_bondable_mode", wait=_left(deadline), bondable=1)

            def accepts(message: Message) -> bool:
                if not self._ours(message):
                    return False
                if message.name == "connection_status":
                    return bool(message["flags"] & ConnectionFlag.ENCRYPTED)
                return message.name == "sm_bonding_fail"

            with self._protocol.inbox(accepts, self.connection) as inbox:
                self._command("sm_encrypt_start", deadline, "bond", None, handle=self.connection, bonding=1)
                message = self._wait(inbox, deadline, "the link to be encrypted")
            if message.name == "sm_bonding_fail":
                raise result_error("bond", None, message["result"])
            self.encrypted = True
            self.bonded = self.bonded or permanent
        finally:
            self._procedure.release()

    def rssi(self, timeout: float) -> int:
        """The link's RSSI (``connection_get_rssi``); the firmware's placeholder 25 is asked again."""
        deadline = self._start(timeout, "rssi")
        try:
            value = BOGUS_RSSI
            for attempt in range(RSSI_ATTEMPTS):
                response = self._protocol.command(
                    "connection_get_rssi", wait=_left(deadline), connection=self.connection
                )
                value = response["rssi"]
                if value != BOGUS_RSSI:
                    return int(value)
                log.debug("RSSI %d from %s is the placeholder; asking again (%d)", value, self.address, attempt + 1)
                time.sleep(min(0.1, _left(deadline)))
            raise BGAPIError(f"The dongle reported no RSSI for {self.address} (always {BOGUS_RSSI})")
        finally:
            self._procedure.release()

    def disconnect(self, timeout: float) -> None:
        """End the link (``connection_disconnect``) and wait for it to be gone; always returns."""
        self._closing = True
        if not self._connected:
            return
        deadline = time.monotonic() + timeout

        def accepts(message: Message) -> bool:
            return message.name == "connection_disconnected" and message["connection"] == self.connection

        try:
            with self._protocol.inbox(accepts) as inbox:
                response = self._protocol.command(
                    "connection_disconnect", wait=_left(deadline), connection=self.connection
                )
                if response["result"] and response["result"] != NOT_CONNECTED:
                    log.warning(
                        "Disconnecting %s: %s", self.address, result_error("disconnect", None, response["result"])
                    )
                elif not response["result"]:
                    inbox.get(deadline, "connection_disconnected")
        except (BGAPIError, NotConnectedError) as exc:
            log.warning("Disconnecting %s: %s", self.address, exc)
        finally:
            self._connected = False
            self._protocol.remove_listener(self.connection, self)


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())
