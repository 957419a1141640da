"""A mocked pexpect child that answers like ``gatttool -I`` (BlueZ 5.66, TERM=dumb).

It replaces the spawn function of :mod:`pygatt.backends.gatttool.process` in
unit tests: the library's reader thread calls ``read`` and gets the text queued here; ``sendline`` echoes the
command and queues gatttool's answer, formatted as in shared/gatttool-output.md.
It only proves what it assumes: the simulator tests check the same paths
through a real pty.
"""

from __future__ import annotations

import queue
import threading
from typing import Dict, List, Optional

RED = "\x1b[0;91m"
BLUE = "\x1b[0;94m"
RESET = "\x1b[0m"
BASE = "0000{:04x}-0000-1000-8000-00805f9b34fb"
_EOF = object()


def uuid16(number: int) -> str:
    return BASE.format(number)


def hexline(value: bytes) -> str:
    return "".join(f"{b:02x} " for b in value)


class FakeAttribute:
    def __init__(self, handle: int, uuid: str, value: bytes = b"", readable: bool = True, writable: bool = True):
        self.handle = handle
        self.uuid = uuid
        self.value = value
        self.readable = readable
        self.writable = writable


class FakeGatttool:
    """The mocked child. ``db`` is a small heart-rate-like server by default."""

    def __init__(self, address: str = "C4:7C:8D:6A:3E:01") -> None:
        self.known_address = address
        self.address: Optional[str] = None
        self.connected = False
        self.sent: List[str] = []
        self.pid = 4242
        self.exitstatus: Optional[int] = None
        self.signalstatus: Optional[int] = None
        self.logfile = None
        self.alive = True
        self.connect_result = "ok"  # "ok", "refused", "silent"
        self.answer = True  # False: swallow GATT requests (for timeouts)
        self.mtu = 23
        self.sec_level = "low"
        self.read_sizes: set = set()
        self.extra_uuid_matches = 0
        self.hidden_from_desc: set = set()
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        # handle -> attribute; characteristics as (decl handle, props, value handle, uuid)
        self.attributes: Dict[int, FakeAttribute] = {}
        self.characteristics: List[tuple] = []
        self._build_default_db()
        self._out(self.prompt())

    # -- database -------------------------------------------------------------
    def _build_default_db(self) -> None:
        self.add_service(0x0001, 0x1800)
        self.add_characteristic(0x0002, 0x02, 0x2A00, b"Pulse HR")
        self.add_service(0x0004, 0x180D)
        self.add_characteristic(0x0005, 0x10, 0x2A37, b"\x00\x48", cccd=True)
        self.add_characteristic(0x0008, 0x02, 0x2A38, b"\x01", readable=False)
        self.add_service(0x000A, 0x180F)
        self.add_characteristic(0x000B, 0x12, 0x2A19, b"\x5a", cccd=True)

    def add_service(self, handle: int, uuid: int) -> None:
        self.attributes[handle] = FakeAttribute(handle, uuid16(0x2800), uuid.to_bytes(2, "little"), writable=False)

    def add_characteristic(
        self, decl: int, props: int, uuid: int, value: bytes, cccd: bool = False, readable: bool = True
    ) -> None:
        self.attributes[decl] = FakeAttribute(decl, uuid16(0x2803), b"", writable=False)
        self.attributes[decl + 1] = FakeAttribute(decl + 1, uuid16(uuid), value, readable=readable)
        self.characteristics.append((decl, props, decl + 1, uuid16(uuid)))
        if cccd:
            self.attributes[decl + 2] = FakeAttribute(decl + 2, uuid16(0x2902), b"\x00\x00")

    # -- terminal output ----------------------------------------------------------
    def prompt(self) -> str:
        shown = f"[{(self.address or ''):>17}]"
        if self.connected:
            shown = f"{BLUE}{shown}{RESET}"
        return shown + "[LE]> "

    def _out(self, text: str) -> None:
        self._queue.put(text)

    def sync(self, line: str) -> None:
        self._out(line + "\r\n" + self.prompt())

    def later(self, line: str) -> None:
        """An asynchronous line: clear, text, newline, redrawn prompt."""
        self._out("\r" + " " * 40 + "\r" + line + "\r\n" + self.prompt())

    def error(self, message: str, asynchronous: bool = True) -> None:
        (self.later if asynchronous else self.sync)(f"{RED}Error: {RESET}{message}")

    def notify(self, handle: int, value: bytes, indication: bool = False) -> None:
        label = "Indication   handle" if indication else "Notification handle"
        self.later(f"{label} = 0x{handle:04x} value: {hexline(value)}")

    def remote_disconnect(self) -> None:
        self.connected = False
        self._out("\r\n(gatttool:4242): GLib-WARNING **: 12:00:00.000: Invalid file descriptor.\r\n")

    def die(self) -> None:
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            self.exitstatus = 0
        self._queue.put(_EOF)

    # -- the child interface of pygatt.backends.gatttool.process.Child ------------
    def read(self, size: int) -> str:
        self.read_sizes.add(size)
        item = self._queue.get()
        if item is _EOF:
            self._queue.put(_EOF)
            return ""
        return str(item)

    def isalive(self) -> bool:
        return self.alive

    def kill(self) -> None:
        self.signalstatus = 9
        self.die()

    def wait(self, timeout: float) -> bool:
        return not self.alive

    def close(self) -> None:
        self.die()

    def sendline(self, line: str) -> int:
        if not self.alive:
            raise OSError(5, "Input/output error")
        self.sent.append(line)
        self._out(line + "\r\n")
        self._answer(line)
        return len(line) + 1

    # -- commands --------------------------------------------------------------
    def _answer(self, line: str) -> None:
        words = line.split()
        if not words:
            self._out(self.prompt())
            return
        command, args = words[0], words[1:]
        handler = getattr(self, "cmd_" + command.replace("-", "_"), None)
        if handler is None:
            self.error(f"{command}: command not found", asynchronous=False)
            return
        gatt = command not in ("connect", "disconnect", "exit", "quit", "sec-level", "help")
        if gatt and not self.connected:
            self.sync(f"{RED}Command Failed: {RESET}Disconnected")
            return
        handler(args)

    def cmd_exit(self, args: List[str]) -> None:
        self.die()

    def cmd_connect(self, args: List[str]) -> None:
        self.address = args[0]
        self.sync(f"Attempting to connect to {args[0]}")
        if self.connect_result == "silent":
            return
        if self.connect_result == "ok" and args[0] == self.known_address:
            self.connected = True
            self.later("Connection successful")
        else:
            self.error(f"connect to {args[0]}: Connection refused (111)")

    def cmd_disconnect(self, args: List[str]) -> None:
        self.connected = False
        self._out(self.prompt())

    def cmd_sec_level(self, args: List[str]) -> None:
        if not args:  # a query: answered synchronously, before the next prompt
            self.sync(f"sec-level: {self.sec_level}")
            return
        self.sec_level = args[0]
        self._out(self.prompt())

    def cmd_mtu(self, args: List[str]) -> None:
        self._out(self.prompt())
        self.mtu = min(int(args[0], 0), 247)
        self.later(f"MTU was exchanged successfully: {self.mtu}")

    def cmd_characteristics(self, args: List[str]) -> None:
        self._out(self.prompt())
        for decl, props, value_handle, uuid in self.characteristics:
            self.later(
                f"handle: 0x{decl:04x}, char properties: 0x{props:02x}, char value handle: 0x{value_handle:04x}, "
                f"uuid: {uuid}"
            )

    def cmd_char_desc(self, args: List[str]) -> None:
        self._out(self.prompt())
        for handle in sorted(set(self.attributes) - self.hidden_from_desc):
            self.later(f"handle: 0x{handle:04x}, uuid: {self.attributes[handle].uuid}")

    def cmd_char_read_hnd(self, args: List[str]) -> None:
        self._out(self.prompt())
        if not self.answer:
            return
        attribute = self.attributes.get(int(args[0], 16))
        if attribute is None:
            self.error("Characteristic value/descriptor read failed: Invalid handle")
        elif not attribute.readable:
            self.error("Characteristic value/descriptor read failed: Attribute can't be read")
        else:
            self.later(f"Characteristic value/descriptor: {hexline(attribute.value)}")

    def cmd_char_read_uuid(self, args: List[str]) -> None:
        self._out(self.prompt())
        if not self.answer:
            return
        matches = [a for a in self.attributes.values() if a.uuid == args[0]]
        if not matches:
            self.error("Read characteristics by UUID failed: No attribute found within the given range")
            return
        for attribute in matches[: 1 + self.extra_uuid_matches]:
            self.later(f"handle: 0x{attribute.handle:04x} \t value: {hexline(attribute.value)}")

    def _write(self, args: List[str], request: bool) -> None:
        attribute = self.attributes.get(int(args[0], 16))
        self._out(self.prompt())
        if not request:
            if attribute is not None and attribute.writable:
                attribute.value = bytes.fromhex(args[1])[: self.mtu - 3]
            return
        if not self.answer:
            return
        if attribute is None:
            self.error("Characteristic Write Request failed: Invalid handle")
        elif not attribute.writable:
            self.error("Characteristic Write Request failed: Attribute can't be written")
        else:
            attribute.value = bytes.fromhex(args[1])
            self.later("Characteristic value was written successfully")

    def cmd_char_write_req(self, args: List[str]) -> None:
        self._write(args, True)

    def cmd_char_write_cmd(self, args: List[str]) -> None:
        self._write(args, False)
