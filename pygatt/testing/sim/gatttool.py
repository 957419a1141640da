"""A simulated ``gatttool -I``: the interactive commands of BlueZ 5.66 against a world.

One thread, one loop, like gatttool's GLib main loop: it waits on stdin and on
timers (connection attempts, slow answers, notification streams, scheduled
disconnects), and every answer is printed the way BlueZ 5.66's gatttool
prints it: prompt, colours, success and error lines, notifications.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import selectors
import shlex
import signal
import struct
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from pygatt.testing.att import pdu
from pygatt.testing.att.responder import LinkResponder, Outcome
from pygatt.testing.world import (
    ATT_ERROR_TEXTS,
    Attribute,
    Layout,
    Peripheral,
    World,
    att_error_code,
    full_uuid,
    layout,
)

from .terminal import BLUE, RESET, Terminal

UNLIKELY = "Request attribute has encountered an unlikely error"
NOT_FOUND = "No attribute found within the given range"
NO_ADAPTER = "socket(SEQPACKET, L2CAP): Address family not supported by protocol (97)"
GATT_COMMANDS = frozenset(
    {"primary", "included", "characteristics", "char-desc", "char-read-hnd", "char-read-uuid",
     "char-write-req", "char-write-cmd", "mtu"}
)  # fmt: skip
HELP = [
    ("help", "", "Show this help"),
    ("exit", "", "Exit interactive mode"),
    ("quit", "", "Exit interactive mode"),
    ("connect", "[address [address type]]", "Connect to a remote device"),
    ("disconnect", "", "Disconnect from a remote device"),
    ("primary", "[UUID]", "Primary Service Discovery"),
    ("included", "[start hnd [end hnd]]", "Find Included Services"),
    ("characteristics", "[start hnd [end hnd [UUID]]]", "Characteristics Discovery"),
    ("char-desc", "[start hnd] [end hnd]", "Characteristics Descriptor Discovery"),
    ("char-read-hnd", "<handle>", "Characteristics Value/Descriptor Read by handle"),
    ("char-read-uuid", "<UUID> [start hnd] [end hnd]", "Characteristics Value/Descriptor Read by UUID"),
    ("char-write-req", "<handle> <new value>", "Characteristic Value Write (Write Request)"),
    ("char-write-cmd", "<handle> <new value>", "Characteristic Value Write (No response)"),
    ("sec-level", "[low | medium | high]", "Set security level. Default: low"),
    ("mtu", "<value>", "Exchange MTU for GATT/ATT"),
]


def hexbytes(value: bytes) -> str:
    """Format bytes as gatttool prints them.

    Args:
        value: the bytes.

    Returns:
        ``%02x `` for each byte, so with a trailing space.
    """
    return "".join(f"{b:02x} " for b in value)


def notification_line(handle: int, value: bytes, indication: bool) -> str:
    """The line gatttool prints for a notification or an indication.

    Args:
        handle: the characteristic's value handle.
        value: the value received.
        indication: an indication rather than a notification.

    Returns:
        The line, without its end.
    """
    label = "Indication   handle" if indication else "Notification handle"
    return f"{label} = 0x{handle:04x} value: {hexbytes(value)}"


def parse_handle(text: str) -> Optional[int]:
    """Read a handle argument as gatttool does.

    Args:
        text: the handle in base 16, ``0x`` optional.

    Returns:
        The handle, or None when the text does not parse entirely.
    """
    try:
        return int(text, 16)
    except ValueError:
        return None


def parse_value(text: str) -> bytes:
    """Read a hex value argument as gatttool does.

    Args:
        text: the hex digits.

    Returns:
        The bytes, two characters at a time: an odd last nibble is dropped, a
        pair that is not hex becomes 0.
    """
    out = bytearray()
    for i in range(0, len(text) - 1, 2):
        try:
            out.append(int(text[i : i + 2], 16))
        except ValueError:
            out.append(0)
    return bytes(out)


class Simulator:
    """The state of one simulated gatttool process.

    Args:
        world: the world it sees.
        adapter: the adapter it was started on (``-i``).
        address: the peer given with ``-b``, if any; shown in the prompt.
        address_type: the address type given with ``-t``.
    """

    def __init__(self, world: World, adapter: str, address: Optional[str], address_type: str) -> None:
        self.world = world
        self.adapter = adapter
        self.address = address  # shown in the prompt, even after a failed connect
        self.default_type = address_type
        self.state = "disconnected"  # or "connecting", "connected"
        self.peripheral: Optional[Peripheral] = None
        self.table: Optional[Layout] = None
        self.mtu = 23
        self.mtu_exchanged = False
        self.sec_level = "low"
        self.ops = 0
        self.notified = 0  # notification lines printed on this link
        self.link = 0  # incremented per connection; timers of an older link do nothing
        self.terminal = Terminal(self.prompt_text)
        self.timers: List[Tuple[float, int, int, Callable[[], None]]] = []
        self.counter = itertools.count()
        self.running = True
        self.streams: Dict[int, Tuple[int, bool]] = {}  # value handle -> (stream token, indications?)
        self.responder: Optional[LinkResponder] = None  # the peripheral's ATT server on this link

    # -- prompt and timers -----------------------------------------------------------
    def prompt_text(self) -> str:
        """Return the prompt: the peer's address, in blue while connected."""
        shown = f"[{(self.address or ''):>17}]"
        if self.state == "connected":
            shown = f"{BLUE}{shown}{RESET}"
        return shown + "[LE]> "

    def after(self, delay: float, action: Callable[[], None], any_link: bool = False) -> None:
        """Schedule an action on the loop.

        Args:
            delay: seconds from now.
            action: what to run.
            any_link: run it even if the link changed meanwhile (by default an
                action for an older connection is dropped).
        """
        link = -1 if any_link else self.link
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.counter), link, action))

    def run_due_timers(self) -> Optional[float]:
        """Run the timers that are due.

        Returns:
            Seconds until the next timer, or None when there is none.
        """
        while self.timers:
            when, _, link, action = self.timers[0]
            now = time.monotonic()
            if when > now:
                return when - now
            heapq.heappop(self.timers)
            if link in (-1, self.link):
                action()
        return None

    # -- commands ------------------------------------------------------------------------
    def execute(self, line: str) -> None:
        """Run one typed command line, answering as gatttool does.

        Args:
            line: the line, without its end.
        """
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if not words:
            return
        command, args = words[0].lower(), words[1:]
        handler = getattr(self, "cmd_" + command.replace("-", "_"), None)
        if handler is None:
            self.terminal.error(f"{words[0]}: command not found")
            return
        if command in GATT_COMMANDS and self.state != "connected":
            self.terminal.failed("Disconnected")
            return
        if command in GATT_COMMANDS:
            self.ops += 1
        handler(args, words[0])
        if command in GATT_COMMANDS and self.peripheral and self.peripheral.disconnect_after_ops:
            if self.ops >= self.peripheral.disconnect_after_ops:
                # just after the answer, which answer() scheduled response_delay_s from a moment before
                # now (after() skips it if the link changed meanwhile)
                self.after(self.peripheral.response_delay_s + 0.001, self.remote_disconnect)

    def answer(self, action: Callable[[], None]) -> None:
        """Send an ATT answer on a later turn of the loop (after the command's prompt).

        Args:
            action: prints the answer; it runs after the peripheral's response delay.
        """
        self.after(self.peripheral.response_delay_s if self.peripheral else 0.0, action)

    def cmd_help(self, args: List[str], name: str) -> None:
        for command, params, description in HELP:
            self.terminal.sync(f"{command:<15} {params:<30} {description}")

    def cmd_exit(self, args: List[str], name: str) -> None:
        self.running = False

    cmd_quit = cmd_exit

    def cmd_connect(self, args: List[str], name: str) -> None:
        if self.state != "disconnected":
            return  # gatttool ignores connect while connecting or connected
        if args:
            self.address = args[0].upper()
            address_type = args[1] if len(args) > 1 else "public"
        elif self.address:
            address_type = self.default_type
        else:
            self.terminal.error("Remote Bluetooth address required")
            return
        self.terminal.sync(f"Attempting to connect to {self.address}")
        if not self.world.adapter.present:
            self.terminal.error(NO_ADAPTER)
            return
        if not self.world.adapter.answers_to(self.adapter):
            self.terminal.error("l2cap_bind: Cannot assign requested address (99)")
            return
        self.state = "connecting"
        peripheral = self.world.find(self.address)
        address_type = "random" if address_type == "random" else "public"
        delay = peripheral.connect_delay_s if peripheral else 0.05
        self.link += 1
        self.after(delay, lambda: self.finish_connect(peripheral, address_type))

    def finish_connect(self, peripheral: Optional[Peripheral], address_type: str) -> None:
        reachable = peripheral is not None and peripheral.connectable and peripheral.address_type == address_type
        if peripheral is not None and peripheral.connect_error:
            self.state = "disconnected"
            self.terminal.error(peripheral.connect_error.replace("%s", self.address or ""), asynchronous=True)
            return
        if not reachable:
            self.state = "disconnected"
            self.terminal.error(f"connect to {self.address}: Connection refused (111)", asynchronous=True)
            return
        assert peripheral is not None
        self.state = "connected"
        self.peripheral = peripheral
        self.table = layout(peripheral)
        self.mtu, self.mtu_exchanged, self.ops, self.notified = 23, False, 0, 0
        self.streams = {}
        self.responder = LinkResponder(self.table, peripheral.mtu)
        self.terminal.later("Connection successful")
        if peripheral.disconnect_after_s:
            self.after(peripheral.disconnect_after_s, self.remote_disconnect)
        for attribute in self.table.attributes.values():
            stream = attribute.characteristic.notify if attribute.characteristic else None
            if stream is not None and stream.trigger == "connect":
                self.start_stream(attribute.handle, indication=False)

    def cmd_disconnect(self, args: List[str], name: str) -> None:
        was_connected = self.state == "connected"
        self.drop_link()
        if was_connected:
            # gatttool closes the socket under a watch that is still there: GLib warns (seen on the real one)
            self.glib_warning()

    def drop_link(self) -> None:
        self.state = "disconnected"
        self.peripheral = None
        self.table = None
        self.responder = None
        self.streams = {}
        self.link += 1

    def remote_disconnect(self) -> None:
        """The peer went away: GLib's warning on stderr, no prompt redraw (as the real gatttool)."""
        if self.state != "connected":
            return
        self.drop_link()
        self.glib_warning()

    def glib_warning(self) -> None:
        """GLib's "Invalid file descriptor." on stderr (coloured when stderr is a terminal)."""
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        if self.terminal.stderr_is_terminal():
            warning = f"\r\n(gatttool:{os.getpid()}): GLib-\x1b[1;33mWARNING\x1b[0m **: \x1b[34m{stamp}\x1b[0m: "
        else:
            warning = f"(gatttool:{os.getpid()}): GLib-WARNING **: {stamp}: "
        self.terminal.stderr(warning + "Invalid file descriptor.\r\n")

    def cmd_sec_level(self, args: List[str], name: str) -> None:
        if not args:
            self.terminal.sync(f"sec-level: {self.sec_level}")
            return
        if args[0].lower() not in ("low", "medium", "high"):
            self.terminal.sync("Allowed values: low | medium | high")
            return
        self.sec_level = args[0]
        if self.state == "connected" and self.peripheral and self.peripheral.sec_level_error:
            self.terminal.error(self.peripheral.sec_level_error)

    def cmd_mtu(self, args: List[str], name: str) -> None:
        if not args:
            self.terminal.sync("Usage: mtu <value>")
            return
        if self.mtu_exchanged:
            self.terminal.failed("MTU exchange can only occur once per connection.")
            return
        self.mtu_exchanged = True  # stored before it is checked (the MTU trap)
        try:
            requested = int(args[0], 0)
        except ValueError:
            requested = 0
        if requested < 23:
            self.terminal.error("Invalid value. Minimum MTU size is 23")
            return
        assert self.peripheral is not None
        response, _ = self.att(struct.pack("<BH", pdu.EXCHANGE_MTU_REQ, requested))
        assert response is not None and response.opcode == pdu.EXCHANGE_MTU_RSP
        self.mtu = min(requested, int(response.fields["mtu"]))  # type: ignore[call-overload]
        self.answer(lambda: self.terminal.later(f"MTU was exchanged successfully: {self.mtu}"))

    # -- discovery --------------------------------------------------------------------
    def range_args(self, args: List[str]) -> Optional[Tuple[int, int]]:
        """``[start [end]]`` handles, 0x0001..0xffff by default; prints gatttool's error."""
        start, end = 0x0001, 0xFFFF
        if args:
            parsed = parse_handle(args[0])
            if parsed is None:
                self.terminal.error(f"Invalid start handle: {args[0]}")
                return None
            start = parsed
        if len(args) > 1:
            parsed = parse_handle(args[1])
            if parsed is None:
                self.terminal.error(f"Invalid end handle: {args[1]}")
                return None
            end = parsed
        return start, end

    def cmd_primary(self, args: List[str], name: str) -> None:
        assert self.table is not None
        table = self.table
        if args:
            try:
                wanted = full_uuid(args[0])
            except ValueError:
                self.terminal.error("Invalid UUID")
                return
            ranges = [(s, e) for s, e, u in table.services if u == wanted]

            def by_uuid() -> None:
                if not ranges:
                    self.terminal.error("No service UUID found", asynchronous=True)
                for start, end in ranges:
                    self.terminal.later(f"Starting handle: 0x{start:04x} Ending handle: 0x{end:04x}")

            self.answer(by_uuid)
            return

        def everything() -> None:
            if not table.services:
                self.terminal.error("No primary service found", asynchronous=True)
            for start, end, uuid in table.services:
                self.terminal.later(f"attr handle: 0x{start:04x}, end grp handle: 0x{end:04x} uuid: {uuid}")

        self.answer(everything)

    def cmd_included(self, args: List[str], name: str) -> None:
        if self.range_args(args) is None:
            return
        self.answer(lambda: self.terminal.later("No included services found for this range"))

    def cmd_characteristics(self, args: List[str], name: str) -> None:
        bounds = self.range_args(args)
        if bounds is None:
            return
        wanted = None
        if len(args) > 2:
            try:
                wanted = full_uuid(args[2])
            except ValueError:
                self.terminal.error("Invalid UUID")
                return
        assert self.table is not None
        found = [c for c in self.table.characteristics if bounds[0] <= c[0] <= bounds[1] and wanted in (None, c[3])]

        def listing() -> None:
            if not found:
                self.terminal.error(f"Discover all characteristics failed: {NOT_FOUND}", asynchronous=True)
            for declaration, properties, value_handle, uuid in found:
                self.terminal.later(
                    f"handle: 0x{declaration:04x}, char properties: 0x{properties:02x}, "
                    f"char value handle: 0x{value_handle:04x}, uuid: {uuid}"
                )

        self.answer(listing)

    def cmd_char_desc(self, args: List[str], name: str) -> None:
        bounds = self.range_args(args)
        if bounds is None:
            return
        assert self.table is not None
        found = list(self.table.in_range(*bounds))

        def listing() -> None:
            if not found:
                self.terminal.error(f"Discover descriptors failed: {NOT_FOUND}", asynchronous=True)
            for attribute in found:
                self.terminal.later(f"handle: 0x{attribute.handle:04x}, uuid: {attribute.uuid}")

        self.answer(listing)

    # -- reads and writes --------------------------------------------------------------
    def attribute(self, handle: int) -> Optional[Attribute]:
        return self.table.attributes.get(handle) if self.table else None

    def att(self, request: bytes) -> Tuple[Optional[pdu.Response], Outcome]:
        """Send one ATT request to the peripheral (the same server logic the real gatttool meets)."""
        assert self.responder is not None
        outcome = self.responder.handle(request)
        self.apply(outcome)
        return (pdu.decode_response(outcome.response) if outcome.response else None), outcome

    def error_text(self, response: pdu.Response, writing: bool) -> str:
        """gatttool's words for an Error Response (a world's own error text is kept)."""
        code = int(response.fields["code"])  # type: ignore[call-overload]
        attribute = self.attribute(int(response.fields["handle"]))  # type: ignore[call-overload]
        configured = (attribute.write_error if writing else attribute.read_error) if attribute else None
        if configured and att_error_code(configured) == code:
            return configured
        return ATT_ERROR_TEXTS.get(code, "Unexpected error code")

    def cmd_char_read_hnd(self, args: List[str], name: str) -> None:
        if not args:
            self.terminal.error("Missing argument: handle")
            return
        handle = parse_handle(args[0])
        if handle is None:
            self.terminal.error(f"Invalid handle: {args[0]}")
            return

        def reply() -> None:
            response, _ = self.att(struct.pack("<BH", pdu.READ_REQ, handle))
            assert response is not None
            if response.opcode == pdu.ERROR_RSP:
                failure = self.error_text(response, writing=False)
                self.terminal.error(f"Characteristic value/descriptor read failed: {failure}", asynchronous=True)
                return
            value = response.params
            part = value
            while len(part) == self.mtu - 1:  # a full packet: gatttool follows with Read Blob
                blob, _ = self.att(struct.pack("<BHH", pdu.READ_BLOB_REQ, handle, len(value)))
                if blob is None or blob.opcode != pdu.READ_BLOB_RSP:
                    break  # a Read Blob error is swallowed: what was read so far is the value
                part = blob.params
                value += part
            self.terminal.later(f"Characteristic value/descriptor: {hexbytes(value)}")

        self.answer(reply)

    def cmd_char_read_uuid(self, args: List[str], name: str) -> None:
        if not args:
            self.terminal.error("Missing argument: UUID")
            return
        try:
            wanted = full_uuid(args[0])
        except ValueError:
            self.terminal.error("Invalid UUID")
            return
        start, end = 0x0001, 0xFFFF
        if len(args) > 1:
            if parse_handle(args[1]) is None:
                self.terminal.error(f"Invalid start handle: {args[0]}")  # gatttool prints the wrong argument
                return
            start = parse_handle(args[1]) or start
        if len(args) > 2:
            if parse_handle(args[2]) is None:
                self.terminal.error(f"Invalid end handle: {args[1]}")
                return
            end = parse_handle(args[2]) or end

        def reply() -> None:
            # one Read By Type request: every entry of its response is printed, nothing more is asked for
            request = struct.pack("<BHH", pdu.READ_BY_TYPE_REQ, start, end) + pdu.uuid_to_att(wanted)
            response, _ = self.att(request)
            assert response is not None
            if response.opcode == pdu.ERROR_RSP:
                failure = self.error_text(response, writing=False)
                self.terminal.error(f"Read characteristics by UUID failed: {failure}", asynchronous=True)
                return
            for handle, value in response.fields["entries"]:  # type: ignore[attr-defined]
                self.terminal.later(f"handle: 0x{handle:04x} \t value: {hexbytes(value)}")

        self.answer(reply)

    def write_args(self, args: List[str], name: str) -> Optional[Tuple[int, bytes]]:
        if len(args) < 2:
            self.terminal.sync(f"Usage: {name} <handle> <new value>")
            return None
        handle = parse_handle(args[0])
        if not handle:
            self.terminal.error("A valid handle is required")
            return None
        if len(args[1]) < 2:
            self.terminal.error("Invalid value")
            return None
        return handle, parse_value(args[1])

    def cmd_char_write_req(self, args: List[str], name: str) -> None:
        parsed = self.write_args(args, name)
        if parsed is None:
            return
        handle, value = parsed

        def reply() -> None:
            response = self.write_request(handle, value)
            if response is not None and response.opcode == pdu.ERROR_RSP:
                failure = self.error_text(response, writing=True)
                self.terminal.error(f"Characteristic Write Request failed: {failure}", asynchronous=True)
                return
            self.terminal.later("Characteristic value was written successfully")

        self.answer(reply)

    def write_request(self, handle: int, value: bytes) -> Optional[pdu.Response]:
        """gatttool's write: one Write Request up to MTU - 3 bytes, else prepared writes
        in chunks of MTU - 5 and an Execute Write. Returns the last response.
        """
        if len(value) <= self.mtu - 3:
            return self.att(struct.pack("<BH", pdu.WRITE_REQ, handle) + value)[0]
        chunk = self.mtu - 5
        for offset in range(0, len(value), chunk):
            part = value[offset : offset + chunk]
            response, _ = self.att(struct.pack("<BHH", pdu.PREPARE_WRITE_REQ, handle, offset) + part)
            if response is None or response.opcode == pdu.ERROR_RSP:
                self.att(bytes([pdu.EXECUTE_WRITE_REQ, 0x00]))  # cancel what was queued
                return response
        return self.att(bytes([pdu.EXECUTE_WRITE_REQ, 0x01]))[0]

    def cmd_char_write_cmd(self, args: List[str], name: str) -> None:
        parsed = self.write_args(args, name)
        if parsed is None:
            return
        handle, value = parsed
        self.att(struct.pack("<BH", pdu.WRITE_CMD, handle) + value[: self.mtu - 3])  # silently cut to one packet

    def apply(self, outcome: Outcome) -> None:
        """Start or stop the notification streams whose CCCD was written."""
        for value_handle, flags in outcome.subscriptions:
            value_attribute = self.attribute(value_handle)
            stream = (
                value_attribute.characteristic.notify if value_attribute and value_attribute.characteristic else None
            )
            if stream is None or stream.trigger != "subscribe":
                continue
            if not flags & 0x03:
                self.streams.pop(value_handle, None)
            elif self.streams.get(value_handle, (None, None))[1] != (not flags & 0x01):
                self.start_stream(value_handle, indication=not flags & 0x01)  # both bits: notifications

    # -- notification streams -------------------------------------------------------------
    def count_notification(self) -> bool:
        """Count one notification line; True when the peripheral now drops the link."""
        self.notified += 1
        limit = self.peripheral.disconnect_after_notifications if self.peripheral else None
        if limit and self.notified >= limit:
            self.remote_disconnect()
            return True
        return False

    def start_stream(self, value_handle: int, indication: bool) -> None:
        """Start (or restart, from its first value) the stream of ``value_handle``."""
        attribute = self.attribute(value_handle)
        assert attribute is not None and attribute.characteristic is not None
        stream = attribute.characteristic.notify
        assert stream is not None
        token = next(self.counter)
        self.streams[value_handle] = (token, indication)
        sent = 0

        def send() -> None:
            nonlocal sent
            if self.streams.get(value_handle, (None, None))[0] != token or self.state != "connected":
                return  # unsubscribed, resubscribed or disconnected meanwhile
            batch = 1 if stream.interval_s > 0 else 256
            for _ in range(batch):
                if stream.count and sent >= stream.count:
                    break
                value = stream.value(sent)[: self.mtu - 3]  # a notification carries at most MTU - 3 bytes
                self.terminal.later(notification_line(value_handle, value, indication))
                sent += 1
                if self.count_notification():
                    return
            if not stream.count or sent < stream.count:
                self.after(stream.interval_s, send)

        self.after(stream.interval_s, send)


def run(world: World, argv: List[str]) -> int:
    """Run the simulated gatttool: ``[-i hciX] [-b MAC] [-t type] [-I] ...``.

    Args:
        world: the simulated world.
        argv: gatttool's arguments; only interactive mode (``-I``) is simulated.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="gatttool", add_help=False)
    parser.add_argument("-i", "--adapter", default="hci0")
    parser.add_argument("-b", "--device")
    parser.add_argument("-t", "--addr-type", default="public")
    parser.add_argument("-m", "--mtu")
    parser.add_argument("-p", "--psm")
    parser.add_argument("-l", "--sec-level")
    parser.add_argument("-I", "--interactive", action="store_true")
    options, _ = parser.parse_known_args(argv)
    if not options.interactive:
        sys.stderr.write("Usage:\n  gatttool [OPTION...]\n\n(simulated: only -I is supported)\n")
        return 1
    simulator = Simulator(world, options.adapter, options.device and options.device.upper(), options.addr_type)
    terminal = simulator.terminal
    terminal.raw()
    signal.signal(signal.SIGINT, lambda *_: terminal.interrupt())
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    try:
        terminal.prompt()
        terminal.flush()
        while simulator.running:
            timeout = simulator.run_due_timers()
            terminal.flush()
            if not simulator.running:
                break
            if selector.select(timeout):
                data = os.read(0, 4096)
                lines = terminal.feed(data.decode("utf-8", "replace")) if data else []
                for line in lines:
                    simulator.execute(line)
                    if not simulator.running:
                        break
                    terminal.prompt()
                if not data or terminal.eof:
                    terminal.write("\r\n")  # EOF prints a single newline and exits, as gatttool does
                    break
            terminal.flush()
    except OSError:
        return 0  # the terminal went away
    finally:
        terminal.flush()
        terminal.restore()
    return 0
