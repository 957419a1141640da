"""An in-memory BLED112 for the mocked-serial tests: a fake ``serial.Serial`` whose
other end answers BGAPI commands like a dongle, built on the library's codec.

It is deliberately small and synchronous: each command written is answered at
once (response first, then its events). Tests change its behaviour through
attributes (``silent``, ``notify_before_read``, ...) and inject frames with
:meth:`FakeDongle.emit`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import serial

from pygatt.backends.bgapi import codec

CCCD = 0x2902


def u16(n: int) -> bytes:
    return n.to_bytes(2, "little")


@dataclass
class Attribute:
    handle: int
    uuid: bytes  # wire order (LSB first)
    value: bytes = b""
    readable: bool = True
    writable: bool = True


@dataclass
class FakePeripheral:
    address: str
    name: str = "Fake"
    attributes: List[Attribute] = field(default_factory=list)

    def attribute(self, handle: int) -> Optional[Attribute]:
        return next((a for a in self.attributes if a.handle == handle), None)


LONG_UUID = bytes(range(0x10, 0x20))  # wire order


def sample_peripheral(address: str = "01:23:45:67:89:AB") -> FakePeripheral:
    """Battery service, a long custom characteristic, heart rate with a CCCD, an unreadable one."""
    attrs = [
        Attribute(1, u16(0x2800), u16(0x180F)),
        Attribute(2, u16(0x2803), bytes([0x12]) + u16(3) + u16(0x2A19)),
        Attribute(3, u16(0x2A19), b"\x64"),
        Attribute(4, u16(CCCD), b"\x00\x00"),
        Attribute(5, u16(0x2800), LONG_UUID),
        Attribute(6, u16(0x2803), bytes([0x0A]) + u16(7) + LONG_UUID),
        Attribute(7, LONG_UUID, bytes(range(50))),
        Attribute(8, u16(0x2803), bytes([0x10]) + u16(9) + u16(0x2A37)),
        Attribute(9, u16(0x2A37), b"\x00\x3c"),
        Attribute(10, u16(0x2901), b"Heart rate"),  # a descriptor before the CCCD: CCCD is not value + 1
        Attribute(11, u16(CCCD), b"\x00\x00"),
        Attribute(12, u16(0x2803), bytes([0x02]) + u16(13) + u16(0x2A00)),
        Attribute(13, u16(0x2A00), b"secret", readable=False, writable=False),
    ]
    return FakePeripheral(address, "Fake HRM", attrs)


class FakeDongle:
    """The dongle's side: decodes commands, produces responses and events."""

    def __init__(self, peripherals: Optional[List[FakePeripheral]] = None, max_connections: int = 3) -> None:
        self.peripherals: Dict[str, FakePeripheral] = {p.address: p for p in (peripherals or [sample_peripheral()])}
        self.max_connections = max_connections
        self.connections: Dict[int, str] = {}
        self.decoder = codec.FrameDecoder(from_host=True)
        self.received: List[codec.Message] = []
        self.silent: Set[str] = set()  # commands to leave unanswered
        self.notify_before_read = False
        self.notify_on_subscribe = 3
        self.unknown_connection_noise = False
        self.bonds: List[int] = [0, 1]
        self.prepared: Dict[int, bytearray] = {}
        self.port: Optional[FakeSerialPort] = None
        self.on_reset: Optional[Any] = None
        self.address = "00:07:80:AA:BB:CC"

    # -- I/O ------------------------------------------------------------------------

    def emit(self, frame: bytes) -> None:
        assert self.port is not None
        self.port.push(frame)

    def receive(self, data: bytes) -> None:
        for packet in self.decoder.feed(data):
            message = codec.decode(packet, from_host=True)
            self.received.append(message)
            if message.name in self.silent:
                continue
            handler = getattr(self, "cmd_" + message.name, None)
            assert handler is not None, f"fake dongle does not implement {message.name}"
            handler(message)

    def names(self) -> List[str]:
        return [m.name for m in self.received]

    def rsp(self, name: str, **fields: Any) -> None:
        self.emit(codec.encode_response(name, **fields))

    def evt(self, name: str, **fields: Any) -> None:
        self.emit(codec.encode_event(name, **fields))

    def peripheral(self, connection: int) -> Optional[FakePeripheral]:
        address = self.connections.get(connection)
        return self.peripherals.get(address) if address else None

    # -- system, gap, sm ------------------------------------------------------------------

    def cmd_system_reset(self, m: codec.Message) -> None:
        self.connections.clear()
        if self.on_reset is not None:
            self.on_reset()

    def cmd_system_address_get(self, m: codec.Message) -> None:
        self.rsp("system_address_get", address=self.address)

    def cmd_system_get_connections(self, m: codec.Message) -> None:
        self.rsp("system_get_connections", maxconn=self.max_connections)

    def cmd_gap_set_mode(self, m: codec.Message) -> None:
        self.rsp("gap_set_mode", result=0)

    def cmd_sm_set_bondable_mode(self, m: codec.Message) -> None:
        self.rsp("sm_set_bondable_mode")

    def cmd_gap_end_procedure(self, m: codec.Message) -> None:
        self.rsp("gap_end_procedure", result=0x0181)

    def cmd_gap_set_scan_parameters(self, m: codec.Message) -> None:
        self.rsp("gap_set_scan_parameters", result=0)

    def cmd_gap_discover(self, m: codec.Message) -> None:
        self.rsp("gap_discover", result=0)
        for p in self.peripherals.values():
            adv = bytes([2, 0x01, 0x06, 3, 0x03]) + u16(0x180D)
            self.evt("gap_scan_response", rssi=-60, packet_type=0, sender=p.address, address_type=0, bond=0xFF,
                     data=adv)  # fmt: skip
            name = p.name.encode()
            scan = bytes([len(name) + 1, 0x09]) + name + bytes([3, 0x30, 0xAB, 0xCD])
            self.evt("gap_scan_response", rssi=-55, packet_type=4, sender=p.address, address_type=0, bond=0xFF,
                     data=scan)  # fmt: skip

    def cmd_gap_connect_direct(self, m: codec.Message) -> None:
        address = m["address"]
        if len(self.connections) >= self.max_connections:
            self.rsp("gap_connect_direct", result=0x0209, connection_handle=0)
            return
        handle = next(h for h in range(8) if h not in self.connections)
        self.rsp("gap_connect_direct", result=0, connection_handle=handle)
        if address not in self.peripherals:
            return  # keeps trying until gap_end_procedure
        self.connections[handle] = address
        if self.unknown_connection_noise:
            self.evt("attclient_attribute_value", connection=7, atthandle=3, type=1, value=b"\x01")
        self.evt("connection_status", connection=handle, flags=0x05, address=address, address_type=0,
                 conn_interval=m["conn_interval_min"], timeout=m["timeout"], latency=0, bonding=0xFF)  # fmt: skip

    def cmd_connection_disconnect(self, m: codec.Message) -> None:
        handle = m["connection"]
        if handle not in self.connections:
            self.rsp("connection_disconnect", connection=handle, result=0x0186)
            return
        self.rsp("connection_disconnect", connection=handle, result=0)
        del self.connections[handle]
        self.evt("connection_disconnected", connection=handle, reason=0x0216)

    def drop(self, handle: int, reason: int = 0x0208) -> None:
        del self.connections[handle]
        self.evt("connection_disconnected", connection=handle, reason=reason)

    def cmd_connection_get_rssi(self, m: codec.Message) -> None:
        self.rsp("connection_get_rssi", connection=m["connection"], rssi=-61)

    def cmd_sm_encrypt_start(self, m: codec.Message) -> None:
        handle = m["handle"]
        self.rsp("sm_encrypt_start", handle=handle, result=0)
        address = self.connections[handle]
        self.evt("connection_status", connection=handle, flags=0x03, address=address, address_type=0,
                 conn_interval=60, timeout=100, latency=0, bonding=0)  # fmt: skip
        self.evt("sm_bond_status", bond=0, keysize=16, mitm=0, keys=0x03)

    def cmd_sm_get_bonds(self, m: codec.Message) -> None:
        self.rsp("sm_get_bonds", bonds=len(self.bonds))
        for bond in self.bonds:
            self.evt("sm_bond_status", bond=bond, keysize=16, mitm=0, keys=0x03)

    def cmd_sm_delete_bonding(self, m: codec.Message) -> None:
        if m["handle"] in self.bonds:
            self.bonds.remove(m["handle"])
        self.rsp("sm_delete_bonding", result=0)

    # -- attclient --------------------------------------------------------------------------

    def _done(self, connection: int, handle: int, result: int = 0) -> None:
        self.evt("attclient_procedure_completed", connection=connection, result=result, chrhandle=handle)

    def cmd_attclient_find_information(self, m: codec.Message) -> None:
        c = m["connection"]
        self.rsp("attclient_find_information", connection=c, result=0)
        p = self.peripheral(c)
        assert p is not None
        for a in p.attributes:
            if m["start"] <= a.handle <= m["end"]:
                self.evt("attclient_find_information_found", connection=c, chrhandle=a.handle, uuid=a.uuid)
        self._done(c, 0xFFFF)

    def cmd_attclient_read_by_handle(self, m: codec.Message) -> None:
        c, h = m["connection"], m["chrhandle"]
        self.rsp("attclient_read_by_handle", connection=c, result=0)
        p = self.peripheral(c)
        a = p.attribute(h) if p else None
        if a is None:
            self._done(c, h, 0x0401)
            return
        if not a.readable:
            self._done(c, h, 0x0402)
            return
        if self.notify_before_read:
            self.evt("attclient_attribute_value", connection=c, atthandle=h, type=1, value=b"\xee\xee")
        self.evt("attclient_attribute_value", connection=c, atthandle=h, type=0, value=a.value[:22])

    def cmd_attclient_read_long(self, m: codec.Message) -> None:
        c, h = m["connection"], m["chrhandle"]
        self.rsp("attclient_read_long", connection=c, result=0)
        p = self.peripheral(c)
        a = p.attribute(h) if p else None
        if a is None:
            self._done(c, h, 0x0401)
            return
        for i, offset in enumerate(range(0, max(1, len(a.value)), 22)):
            self.evt("attclient_attribute_value", connection=c, atthandle=h, type=0 if i == 0 else 4,
                     value=a.value[offset : offset + 22])  # fmt: skip
        self._done(c, h)

    def cmd_attclient_read_by_type(self, m: codec.Message) -> None:
        c = m["connection"]
        self.rsp("attclient_read_by_type", connection=c, result=0)
        p = self.peripheral(c)
        assert p is not None
        for a in p.attributes:
            if a.uuid == m["uuid"] and a.readable:
                self.evt("attclient_attribute_value", connection=c, atthandle=a.handle, type=3, value=a.value[:22])
                self._done(c, a.handle)
                return
        self._done(c, 1, 0x040A)

    def _write(self, m: codec.Message, acknowledged: bool) -> None:
        c, h = m["connection"], m["atthandle"]
        name = "attclient_attribute_write" if acknowledged else "attclient_write_command"
        self.rsp(name, connection=c, result=0)
        p = self.peripheral(c)
        a = p.attribute(h) if p else None
        result = 0x0401 if a is None else (0 if a.writable else 0x0403)
        if a is not None and a.writable:
            a.value = m["data"]
        if acknowledged:
            self._done(c, h, result)
        if a is not None and a.writable and a.uuid == u16(CCCD) and m["data"] in (b"\x01\x00", b"\x02\x00"):
            value_handle = h - 2 if h == 11 else h - 1
            kind = 1 if m["data"] == b"\x01\x00" else 2
            for i in range(self.notify_on_subscribe):
                self.evt("attclient_attribute_value", connection=c, atthandle=value_handle, type=kind,
                         value=bytes([i]))  # fmt: skip

    def cmd_attclient_attribute_write(self, m: codec.Message) -> None:
        self._write(m, True)

    def cmd_attclient_write_command(self, m: codec.Message) -> None:
        self._write(m, False)

    def cmd_attclient_indicate_confirm(self, m: codec.Message) -> None:
        self.rsp("attclient_indicate_confirm", result=0)

    def cmd_attclient_prepare_write(self, m: codec.Message) -> None:
        c, h = m["connection"], m["atthandle"]
        self.rsp("attclient_prepare_write", connection=c, result=0)
        buf = self.prepared.setdefault(h, bytearray())
        assert m["offset"] == len(buf), "prepared writes must come in order"
        buf.extend(m["data"])
        self._done(c, h)

    def cmd_attclient_execute_write(self, m: codec.Message) -> None:
        c = m["connection"]
        self.rsp("attclient_execute_write", connection=c, result=0)
        p = self.peripheral(c)
        handle = 0
        for h, data in self.prepared.items():
            handle = h
            a = p.attribute(h) if p else None
            if m["commit"] and a is not None:
                a.value = bytes(data)
        self.prepared.clear()
        self._done(c, handle)


class FakeSerialPort:
    """Stands in for ``serial.Serial``: what the library writes goes to a FakeDongle."""

    registry: Dict[str, FakeDongle] = {}

    def __init__(self, port: Optional[str] = None, baudrate: int = 9600, timeout: Optional[float] = None,
                 write_timeout: Optional[float] = None, **kwargs: Any) -> None:  # fmt: skip
        if port not in self.registry:
            raise serial.SerialException(f"[Errno 2] could not open port {port}: No such file or directory")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.dongle = self.registry[port]
        self.dongle.port = self
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._dead = False
        self.is_open = True
        self.writes: List[bytes] = []

    def push(self, data: bytes) -> None:
        with self._cond:
            self._buffer.extend(data)
            self._cond.notify_all()

    def kill(self) -> None:
        """The device is unplugged: reads fail from now on."""
        with self._cond:
            self._dead = True
            self._cond.notify_all()

    @property
    def in_waiting(self) -> int:
        if self._dead:
            raise serial.SerialException("device reports readiness to read but returned no data")
        return len(self._buffer)

    def read(self, size: int = 1) -> bytes:
        end = time.monotonic() + (self.timeout or 0)
        with self._cond:
            while not self._buffer and not self._dead and self.is_open:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            if self._dead:
                raise serial.SerialException("device reports readiness to read but returned no data")
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data

    def write(self, data: bytes) -> int:
        if self._dead or not self.is_open:
            raise serial.SerialException("write failed: [Errno 5] Input/output error")
        self.writes.append(bytes(data))
        self.dongle.receive(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass  # writes are delivered at once

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._buffer.clear()

    def cancel_read(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.is_open = False
            self._cond.notify_all()


@dataclass
class FakePortInfo:
    """What pyserial's comports() lists."""

    device: str
    hwid: str = "USB VID:PID=2458:0001 SER=1 LOCATION=1-1:1.0"
    description: str = "Low Energy Dongle"
    vid: Optional[int] = 0x2458
    pid: Optional[int] = 0x0001
