"""The GATT server side of one link: ATT requests in, responses out (no I/O, no clock).

:class:`LinkResponder` answers each PDU a client sends from a peripheral's
attribute table (:func:`pygatt.testing.world.layout`), as a GATT server does:
permissions and the world's configured errors become Error Responses, long
values are read with Read Blob and written with prepared writes, and writes to
a CCCD are reported so that the I/O side can start or stop a notification stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from pygatt.testing.att import pdu
from pygatt.testing.world import CCCD, PRIMARY_SERVICE, Attribute, Layout, full_uuid

log = logging.getLogger(__name__)

#: How many Prepare Write Requests one link may queue before Execute Write.
PREPARE_QUEUE_LIMIT = 128
PRIMARY = full_uuid(PRIMARY_SERVICE)
SECONDARY = full_uuid("2801")
CCCD_UUID = full_uuid(CCCD)
#: Requests that start a gatttool command (discovery counts once, at its first range).
_COMMAND_STARTS = (pdu.EXCHANGE_MTU_REQ, pdu.READ_REQ, pdu.WRITE_REQ, pdu.WRITE_CMD, pdu.EXECUTE_WRITE_REQ)
_DISCOVERY = (pdu.FIND_INFO_REQ, pdu.FIND_BY_TYPE_VALUE_REQ, pdu.READ_BY_TYPE_REQ, pdu.READ_BY_GROUP_TYPE_REQ)


@dataclass
class Outcome:
    """What handling one PDU produced.

    Attributes:
        response: the PDU to send back, or None (commands and confirmations).
        subscriptions: (value handle, CCCD flags) for each CCCD written.
        confirmed: True when the PDU confirmed an indication.
        operation: True when the PDU starts a new operation (for ``disconnect_after_ops``).
    """

    response: Optional[bytes] = None
    subscriptions: List[Tuple[int, int]] = field(default_factory=list)
    confirmed: bool = False
    operation: bool = False


class _Failure(Exception):
    """An ATT error to answer with."""

    def __init__(self, handle: int, code: int) -> None:
        super().__init__(f"ATT error 0x{code:02x} at handle 0x{handle:04x}")
        self.handle = handle
        self.code = code


class LinkResponder:
    """Answers the ATT requests of one connection.

    Args:
        table: the peripheral's attributes (a fresh layout per connection).
        server_mtu: the MTU the peripheral offers in Exchange MTU.
    """

    def __init__(self, table: Layout, server_mtu: int) -> None:
        self.table = table
        self.server_mtu = max(pdu.DEFAULT_MTU, server_mtu)
        self.mtu = pdu.DEFAULT_MTU
        self._prepared: List[Tuple[int, int, bytes]] = []

    # -- entry point --------------------------------------------------------------------

    def handle(self, data: bytes) -> Outcome:
        """Answer one PDU from the client.

        Args:
            data: the PDU.

        Returns:
            The response (if any) and the side effects to act on.
        """
        opcode = data[0] if data else 0
        try:
            request = pdu.decode_request(data)
        except pdu.PDUError as exc:
            log.debug("Malformed PDU %s: %s", data.hex(), exc)
            if pdu.is_command(opcode):
                return Outcome()
            return Outcome(pdu.error_response(opcode, exc.handle, pdu.INVALID_PDU))
        outcome = Outcome(operation=self._starts_operation(request, opcode))
        try:
            outcome.response = self._answer(request, outcome)
        except _Failure as failure:
            outcome.response = pdu.error_response(opcode, failure.handle, failure.code)
        if pdu.is_command(opcode):
            outcome.response = None
        return outcome

    @staticmethod
    def _starts_operation(request: pdu.Request, opcode: int) -> bool:
        if opcode in _COMMAND_STARTS:
            return True
        return opcode in _DISCOVERY and getattr(request, "start", 0) == 0x0001

    def _answer(self, request: pdu.Request, outcome: Outcome) -> Optional[bytes]:
        if isinstance(request, pdu.ExchangeMTURequest):
            self.mtu = max(pdu.DEFAULT_MTU, min(request.mtu, self.server_mtu))
            return pdu.exchange_mtu_response(self.server_mtu)
        if isinstance(request, pdu.FindInformationRequest):
            return self._find_information(request)
        if isinstance(request, pdu.FindByTypeValueRequest):
            return self._find_by_type_value(request)
        if isinstance(request, pdu.ReadByTypeRequest):
            return self._read_by_type(request)
        if isinstance(request, pdu.ReadByGroupTypeRequest):
            return self._read_by_group_type(request)
        if isinstance(request, pdu.ReadRequest):
            value = self._readable(request.handle)
            return pdu.read_response(value[: self.mtu - 1])
        if isinstance(request, pdu.ReadBlobRequest):
            value = self._readable(request.handle)
            if request.offset > len(value):
                raise _Failure(request.handle, pdu.INVALID_OFFSET)
            return pdu.read_blob_response(value[request.offset : request.offset + self.mtu - 1])
        if isinstance(request, (pdu.WriteRequest, pdu.WriteCommand)):
            attribute = self._writable(request.handle)
            self._store(attribute, request.value, outcome)
            return pdu.write_response()
        if isinstance(request, pdu.PrepareWriteRequest):
            self._writable(request.handle)
            if len(self._prepared) >= PREPARE_QUEUE_LIMIT:
                raise _Failure(request.handle, pdu.PREPARE_QUEUE_FULL)
            self._prepared.append((request.handle, request.offset, request.value))
            return pdu.prepare_write_response(request.handle, request.offset, request.value)
        if isinstance(request, pdu.ExecuteWriteRequest):
            return self._execute(request.flags, outcome)
        if isinstance(request, pdu.HandleValueConfirmation):
            outcome.confirmed = True
            return None
        raise _Failure(0, pdu.REQUEST_NOT_SUPPORTED)

    # -- permissions -------------------------------------------------------------------

    def _attribute(self, handle: int) -> Attribute:
        attribute = self.table.attributes.get(handle)
        if attribute is None:
            raise _Failure(handle, pdu.INVALID_HANDLE)
        return attribute

    def _readable(self, handle: int) -> bytes:
        attribute = self._attribute(handle)
        if attribute.read_error_code is not None:
            raise _Failure(handle, attribute.read_error_code)
        if not attribute.readable:
            raise _Failure(handle, pdu.READ_NOT_PERMITTED)
        return bytes(attribute.value)

    def _writable(self, handle: int) -> Attribute:
        attribute = self._attribute(handle)
        if attribute.write_error_code is not None:
            raise _Failure(handle, attribute.write_error_code)
        if not attribute.writable:
            raise _Failure(handle, pdu.WRITE_NOT_PERMITTED)
        return attribute

    def _store(self, attribute: Attribute, value: bytes, outcome: Outcome) -> None:
        if len(value) > pdu.MAX_VALUE_LENGTH:
            raise _Failure(attribute.handle, pdu.INVALID_ATTRIBUTE_VALUE_LENGTH)
        if attribute.cccd_of is not None:
            if len(value) != 2:
                raise _Failure(attribute.handle, pdu.INVALID_ATTRIBUTE_VALUE_LENGTH)
            outcome.subscriptions.append((attribute.cccd_of, int.from_bytes(value, "little")))
        attribute.value = bytearray(value)

    def _execute(self, flags: int, outcome: Outcome) -> bytes:
        queued, self._prepared = self._prepared, []
        if flags == 0x00:
            return pdu.execute_write_response()
        if flags != 0x01:
            raise _Failure(0, pdu.INVALID_PDU)
        values: Dict[int, bytearray] = {}
        for handle, offset, part in queued:
            value = values.setdefault(handle, bytearray())
            if offset > len(value):
                raise _Failure(handle, pdu.INVALID_OFFSET)
            value[offset : offset + len(part)] = part
        for handle, value in values.items():
            self._store(self._attribute(handle), bytes(value), outcome)
        return pdu.execute_write_response()

    # -- discovery -------------------------------------------------------------------------

    @staticmethod
    def _check_range(start: int, end: int) -> None:
        if start == 0 or start > end:
            raise _Failure(start, pdu.INVALID_HANDLE)

    def _find_information(self, request: pdu.FindInformationRequest) -> bytes:
        self._check_range(request.start, request.end)
        entries: List[Tuple[int, bytes]] = []
        for attribute in self.table.in_range(request.start, request.end):
            uuid = pdu.uuid_to_att(attribute.uuid)
            if entries and (len(uuid) != len(entries[0][1]) or 2 + (len(entries) + 1) * (2 + len(uuid)) > self.mtu):
                break
            entries.append((attribute.handle, uuid))
        if not entries:
            raise _Failure(request.start, pdu.ATTRIBUTE_NOT_FOUND)
        return pdu.find_information_response(entries)

    def _find_by_type_value(self, request: pdu.FindByTypeValueRequest) -> bytes:
        self._check_range(request.start, request.end)
        if request.type not in (PRIMARY, SECONDARY):
            raise _Failure(request.start, pdu.ATTRIBUTE_NOT_FOUND)
        ranges: List[Tuple[int, int]] = []
        for start, end, uuid in self.table.services:
            if request.start <= start <= request.end and pdu.uuid_to_att(uuid) == request.value:
                if 1 + (len(ranges) + 1) * 4 > self.mtu:
                    break
                ranges.append((start, end))
        if not ranges:
            raise _Failure(request.start, pdu.ATTRIBUTE_NOT_FOUND)
        return pdu.find_by_type_value_response(ranges)

    def _read_by_type(self, request: pdu.ReadByTypeRequest) -> bytes:
        self._check_range(request.start, request.end)
        limit = min(self.mtu - 4, 253)
        entries: List[Tuple[int, bytes]] = []
        for attribute in self.table.in_range(request.start, request.end):
            if attribute.uuid != request.type:
                continue
            if not entries:
                value = self._readable(attribute.handle)[:limit]  # an error on the first match is the answer
            elif attribute.read_error_code is not None or not attribute.readable:
                break
            else:
                value = bytes(attribute.value)[:limit]
            if entries and (len(value) != len(entries[0][1]) or 2 + (len(entries) + 1) * (2 + len(value)) > self.mtu):
                break
            entries.append((attribute.handle, value))
        if not entries:
            raise _Failure(request.start, pdu.ATTRIBUTE_NOT_FOUND)
        return pdu.read_by_type_response(entries)

    def _read_by_group_type(self, request: pdu.ReadByGroupTypeRequest) -> bytes:
        self._check_range(request.start, request.end)
        if request.type not in (PRIMARY, SECONDARY):
            raise _Failure(request.start, pdu.UNSUPPORTED_GROUP_TYPE)
        entries: List[Tuple[int, int, bytes]] = []
        if request.type == PRIMARY:
            for start, end, uuid in self.table.services:
                if not request.start <= start <= request.end:
                    continue
                value = pdu.uuid_to_att(uuid)
                if entries and (
                    len(value) != len(entries[0][2]) or 2 + (len(entries) + 1) * (4 + len(value)) > self.mtu
                ):
                    break
                entries.append((start, end, value))
        if not entries:
            raise _Failure(request.start, pdu.ATTRIBUTE_NOT_FOUND)
        return pdu.read_by_group_type_response(entries)
