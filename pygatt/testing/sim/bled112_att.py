"""The ATT client commands of the simulated BLED112 (``attclient_*``) and notification streams.

Every procedure answers against the peripheral's attribute table after its
``response_delay_s``: attribute values (type 0 read, 3 read by type, 4 read blob, 1 notify,
2 indicate), ``attclient_procedure_completed`` with 0 or ``0x0400 + ATT error``.
One procedure runs at a time per link (another is refused with 0x0181);
``attclient_write_command`` is not a procedure. A peripheral with
``disconnect_after_notifications`` drops the link (0x0213) after that many values. The firmware confirms
indications itself, unless it is built to leave that to the host: then they
come as type 5 and a stream's next indication waits for
``attclient_indicate_confirm``.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Optional

from pygatt.testing.world import Attribute, att_error_code

from .bled112_link import (
    ATT_BASE,
    ATT_INVALID_HANDLE,
    ATT_INVALID_OFFSET,
    ATT_NOT_FOUND,
    ATT_PREPARE_QUEUE_FULL,
    ATT_READ_NOT_PERMITTED,
    ATT_WRITE_NOT_PERMITTED,
    BATCH,
    INVALID_PARAMETER,
    MAX_NOTIFY,
    MAX_PREPARE,
    MAX_PREPARED,
    MAX_READ,
    MAX_READ_BY_TYPE,
    MAX_WRITE,
    NOT_CONNECTED,
    REMOTE_USER_TERMINATED,
    SUCCESS,
    VALUE_INDICATE,
    VALUE_INDICATE_RSP_REQ,
    VALUE_NOTIFY,
    VALUE_READ,
    VALUE_READ_BLOB,
    VALUE_READ_BY_TYPE,
    WRONG_STATE,
    Connection,
    Host,
)

log = logging.getLogger(__name__)

Later = Callable[[float, Callable[[], None], Optional[Connection]], None]


class AttClient:
    """The ``attclient_*`` commands on the dongle's links.

    Args:
        host: where responses and events go.
        later: schedules an action, skipped if the dongle rebooted or the link ended meanwhile.
        links: the dongle's current links by connection handle.
        drop: ends a link with a reason (``connection_disconnected`` follows).
        host_confirms_indications: indications are type 5 and wait for the host's confirmation.
    """

    def __init__(
        self,
        host: Host,
        later: Later,
        links: Callable[[], Dict[int, Connection]],
        drop: Callable[[Connection, int], None],
        host_confirms_indications: bool = False,
    ) -> None:
        self.host = host
        self.later = later
        self.links = links
        self.drop = drop
        self.host_confirms_indications = host_confirms_indications

    def _start_procedure(self, name: str, connection: int, exclusive: bool = True) -> Optional[Connection]:
        """Respond to an ATT command; returns the link when the procedure goes ahead."""
        link = self.links().get(connection)
        if link is None:
            result = NOT_CONNECTED
        elif exclusive and link.busy:
            result = WRONG_STATE
        else:
            result = SUCCESS
        self.host.respond(name, connection=connection, result=result)
        if link is None or result != SUCCESS:
            return None
        link.busy = link.busy or exclusive
        link.ops += 1
        return link

    def _answer(self, link: Connection, action: Callable[[], None]) -> None:
        """Run the procedure's answer after the peripheral's response time.

        When the link has now served the peripheral's ``disconnect_after_ops``, the peer
        drops it right after this answer: scheduled by the answer itself, so it can never
        come first, however late the answer runs.
        """
        limit = link.peripheral.disconnect_after_ops
        last = limit is not None and 0 < limit <= link.ops

        def answer_then_maybe_drop() -> None:
            action()
            if last:
                self.later(0.001, lambda: self.drop(link, REMOTE_USER_TERMINATED), link)

        self.later(link.peripheral.response_delay_s, answer_then_maybe_drop, link)

    def _complete(self, link: Connection, result: int, handle: int) -> None:
        link.busy = False
        self.host.event("attclient_procedure_completed", connection=link.handle, result=result, chrhandle=handle)

    def _size_error(self, name: str, connection: int, data: bytes, limit: int) -> bool:
        if len(data) <= limit:
            return False
        self.host.respond(name, connection=connection, result=INVALID_PARAMETER)
        return True

    def cmd_attclient_find_information(self, connection: int, start: int, end: int) -> None:
        """One attclient_find_information_found per attribute in the range, then completed."""
        link = self._start_procedure("attclient_find_information", connection)
        if link is None:
            return

        def answer() -> None:
            if start == 0 or start > end:
                return self._complete(link, ATT_BASE + ATT_INVALID_HANDLE, start)
            found = list(link.table.in_range(start, end))
            for attribute in found:
                self.host.event(
                    "attclient_find_information_found",
                    connection=link.handle,
                    chrhandle=attribute.handle,
                    uuid=uuid_bytes(attribute.uuid),
                )
            self._complete(link, SUCCESS if found else ATT_BASE + ATT_NOT_FOUND, end if found else start)

        self._answer(link, answer)

    def cmd_attclient_read_by_group_type(self, connection: int, start: int, end: int, uuid: bytes) -> None:
        """Primary services (uuid 0x2800) as attclient_group_found, then completed."""
        link = self._start_procedure("attclient_read_by_group_type", connection)
        if link is None:
            return

        def answer() -> None:
            groups = [s for s in link.table.services if start <= s[0] <= end]
            if uuid != bytes([0x00, 0x28]) or not groups:
                return self._complete(link, ATT_BASE + ATT_NOT_FOUND, start)
            for first, last, service_uuid in groups:
                self.host.event("attclient_group_found", connection=link.handle, start=first, end=last,
                                uuid=uuid_bytes(service_uuid))  # fmt: skip
            self._complete(link, SUCCESS, end)

        self._answer(link, answer)

    def cmd_attclient_read_by_type(self, connection: int, start: int, end: int, uuid: bytes) -> None:
        """Read By Type: the first attribute of type ``uuid`` in the range as a value of type 3
        (read_by_type), then completed; 0x040A when none matches, or the attribute's ATT error."""
        link = self._start_procedure("attclient_read_by_type", connection)
        if link is None:
            return

        def answer() -> None:
            if start == 0 or start > end:
                return self._complete(link, ATT_BASE + ATT_INVALID_HANDLE, start)
            match = next((a for a in link.table.in_range(start, end) if uuid_bytes(a.uuid) == bytes(uuid)), None)
            if match is None:
                return self._complete(link, ATT_BASE + ATT_NOT_FOUND, start)
            error = access_error(match, writing=False)
            if error is not None:
                return self._complete(link, ATT_BASE + error, match.handle)
            value = bytes(match.value[:MAX_READ_BY_TYPE])
            self.host.event("attclient_attribute_value", connection=link.handle, atthandle=match.handle,
                            type=VALUE_READ_BY_TYPE, value=value)  # fmt: skip
            self._complete(link, SUCCESS, match.handle)

        self._answer(link, answer)

    def _accessible(self, link: Connection, handle: int, writing: bool) -> Optional[Attribute]:
        """The attribute at ``handle`` if it may be read (or written); else the procedure is
        completed with the ATT error and None is returned."""
        attribute = link.table.attributes.get(handle)
        error = access_error(attribute, writing)
        if error is not None or attribute is None:
            self._complete(link, ATT_BASE + (error or ATT_INVALID_HANDLE), handle)
            return None
        return attribute

    def cmd_attclient_read_by_handle(self, connection: int, chrhandle: int) -> None:
        """One attribute value (type 0, up to 22 bytes), or completed with the ATT error."""
        link = self._start_procedure("attclient_read_by_handle", connection)
        if link is None:
            return

        def answer() -> None:
            attribute = self._accessible(link, chrhandle, writing=False)
            if attribute is None:
                return
            link.busy = False
            value = bytes(attribute.value[:MAX_READ])
            self.host.event("attclient_attribute_value", connection=link.handle, atthandle=chrhandle,
                            type=VALUE_READ, value=value)  # fmt: skip

        self._answer(link, answer)

    def cmd_attclient_read_long(self, connection: int, chrhandle: int) -> None:
        """Read, then Read Blob: values of type 0 then 4, then completed."""
        link = self._start_procedure("attclient_read_long", connection)
        if link is None:
            return

        def answer() -> None:
            attribute = self._accessible(link, chrhandle, writing=False)
            if attribute is None:
                return
            value = bytes(attribute.value)
            offset, kind = 0, VALUE_READ
            while True:  # Read, then Read Blob while a chunk fills the MTU
                chunk = value[offset : offset + MAX_READ]
                if chunk or kind == VALUE_READ:
                    self.host.event("attclient_attribute_value", connection=link.handle, atthandle=chrhandle,
                                    type=kind, value=chunk)  # fmt: skip
                offset += len(chunk)
                kind = VALUE_READ_BLOB
                if len(chunk) < MAX_READ or offset >= len(value):
                    break
            self._complete(link, SUCCESS, chrhandle)

        self._answer(link, answer)

    def cmd_attclient_attribute_write(self, connection: int, atthandle: int, data: bytes) -> None:
        """Write Request: completed with 0 or the ATT error."""
        if self._size_error("attclient_attribute_write", connection, data, MAX_WRITE):
            return
        link = self._start_procedure("attclient_attribute_write", connection)
        if link is None:
            return

        def answer() -> None:
            attribute = self._accessible(link, atthandle, writing=True)
            if attribute is None:
                return
            self._store(link, attribute, data)
            self._complete(link, SUCCESS, atthandle)

        self._answer(link, answer)

    def cmd_attclient_write_command(self, connection: int, atthandle: int, data: bytes) -> None:
        """Write Command: the response only; nothing tells whether it was applied."""
        if self._size_error("attclient_write_command", connection, data, MAX_WRITE):
            return
        link = self._start_procedure("attclient_write_command", connection, exclusive=False)
        if link is None:
            return

        def apply() -> None:
            attribute = link.table.attributes.get(atthandle)
            if attribute is not None and access_error(attribute, writing=True) is None:
                self._store(link, attribute, data)

        self._answer(link, apply)

    def cmd_attclient_prepare_write(self, connection: int, atthandle: int, offset: int, data: bytes) -> None:
        """Queue part of a long write: completed per part."""
        if self._size_error("attclient_prepare_write", connection, data, MAX_PREPARE):
            return
        link = self._start_procedure("attclient_prepare_write", connection)
        if link is None:
            return

        def answer() -> None:
            attribute = link.table.attributes.get(atthandle)
            error = access_error(attribute, writing=True)
            if error is None and len(link.prepared) >= MAX_PREPARED:
                error = ATT_PREPARE_QUEUE_FULL
            if error is not None:
                return self._complete(link, ATT_BASE + error, atthandle)
            link.prepared.append((atthandle, offset, bytes(data)))
            self._complete(link, SUCCESS, atthandle)

        self._answer(link, answer)

    def cmd_attclient_execute_write(self, connection: int, commit: int) -> None:
        """Apply (commit=1) or drop (0) the queued parts: completed."""
        link = self._start_procedure("attclient_execute_write", connection)
        if link is None:
            return

        def answer() -> None:
            queue, link.prepared = link.prepared, []
            first = queue[0][0] if queue else 0
            if not commit:
                return self._complete(link, SUCCESS, first)
            values: Dict[int, bytearray] = {}
            for handle, offset, data in queue:
                value = values.setdefault(handle, bytearray())
                if offset > len(value):
                    return self._complete(link, ATT_BASE + ATT_INVALID_OFFSET, handle)
                value[offset : offset + len(data)] = data
            for handle, value in values.items():
                self._store(link, link.table.attributes[handle], bytes(value))
            self._complete(link, SUCCESS, first)

        self._answer(link, answer)

    def cmd_attclient_indicate_confirm(self, connection: int) -> None:
        """Confirm the indication of type 5 the link waits on (0x0181 when none waits)."""
        link = self.links().get(connection)
        waiting = link.unconfirmed if link is not None else None
        if link is None:
            result = NOT_CONNECTED
        elif waiting is None:
            result = WRONG_STATE
        else:
            link.unconfirmed = None
            result = SUCCESS
        self.host.respond("attclient_indicate_confirm", result=result)
        if waiting is not None:
            waiting()

    # -- values and notification streams --------------------------------------------------
    def _store(self, link: Connection, attribute: Attribute, value: bytes) -> None:
        attribute.value = bytearray(value)
        if attribute.cccd_of is None:
            return
        flags = int.from_bytes(value[:2].ljust(2, b"\0"), "little")
        target = link.table.attributes.get(attribute.cccd_of)
        stream = target.characteristic.notify if target is not None and target.characteristic else None
        if stream is None or stream.trigger != "subscribe":
            return
        if flags & 0x03:
            self.start_stream(link, attribute.cccd_of, VALUE_INDICATE if flags & 0x02 else VALUE_NOTIFY)
        else:
            link.streams.pop(attribute.cccd_of, None)  # a running stream stops at its next value

    def start_stream(self, link: Connection, value_handle: int, kind: int) -> None:
        """Start (or restart) the notify stream of the characteristic at ``value_handle`` on ``link``."""
        attribute = link.table.attributes[value_handle]
        assert attribute.characteristic is not None and attribute.characteristic.notify is not None
        stream = attribute.characteristic.notify
        generation = link.streams.get(value_handle, 0) + 1
        link.streams[value_handle] = generation
        confirmed_by_host = kind == VALUE_INDICATE and self.host_confirms_indications
        if confirmed_by_host:
            kind = VALUE_INDICATE_RSP_REQ

        def running() -> bool:
            current = link.streams.get(value_handle) == generation
            return link.alive and current and not self._stream_done(link, value_handle)

        def send_one() -> None:
            sequence = link.sent.get(value_handle, 0)
            value = stream.value(sequence)[:MAX_NOTIFY]
            link.sent[value_handle] = sequence + 1
            link.notified += 1
            self.host.event("attclient_attribute_value", connection=link.handle, atthandle=value_handle,
                            type=kind, value=value)  # fmt: skip
            limit = link.peripheral.disconnect_after_notifications
            if limit and link.notified >= limit:
                self.drop(link, REMOTE_USER_TERMINATED)  # the stream stops with the link

        def next_value(action: Callable[[], None], delay: float) -> None:
            if confirmed_by_host:  # every indication is confirmed; the next one waits for it
                link.unconfirmed = lambda: self.later(delay, action, link)
            elif running():
                self.later(delay, action, link)

        def tick() -> None:
            if running():
                send_one()
                next_value(tick, stream.interval_s)

        def burst() -> None:
            for _ in range(1 if confirmed_by_host else BATCH):
                if not running():
                    return
                send_one()
            if confirmed_by_host:
                next_value(burst, 0.0)
            else:
                self.host.when_ready(lambda: self.later(0.0, burst, link))

        if stream.interval_s > 0:
            self.later(stream.interval_s, tick, link)
        else:
            self.later(0.0, burst, link)

    @staticmethod
    def _stream_done(link: Connection, value_handle: int) -> bool:
        attribute = link.table.attributes[value_handle]
        assert attribute.characteristic is not None and attribute.characteristic.notify is not None
        count = attribute.characteristic.notify.count
        return bool(count) and link.sent.get(value_handle, 0) >= count


def access_error(attribute: Optional[Attribute], writing: bool) -> Optional[int]:
    """The ATT error code a read (or write) of ``attribute`` fails with, or None."""
    if attribute is None:
        return ATT_INVALID_HANDLE
    if attribute.characteristic is not None:
        configured = attribute.characteristic.write_error if writing else attribute.characteristic.read_error
        code = att_error_code(configured)
        if code:
            return code
    allowed = attribute.writable if writing else attribute.readable
    if not allowed:
        return ATT_WRITE_NOT_PERMITTED if writing else ATT_READ_NOT_PERMITTED
    return None


def uuid_bytes(full: str) -> bytes:
    """A UUID as BGAPI carries it: 2 bytes for a Bluetooth SIG UUID, else 16, least significant first."""
    text = full.replace("-", "")
    if text.startswith("0000") and text.endswith("00001000800000805f9b34fb"):
        return bytes.fromhex(text[4:8])[::-1]
    return bytes.fromhex(text)[::-1]
