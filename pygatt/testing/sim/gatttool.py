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
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

from pygatt.testing.world import Attribute, Layout, Peripheral, World, full_uuid, layout

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
        self.streams_sent: Dict[int, int] = {}

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
                self.after(0.001, self.remote_disconnect)  # after() skips it if the link changed meanwhile

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
        if self.adapter != self.world.adapter.name:
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
        self.streams_sent = {}
        self.terminal.later("Connection successful")
        if peripheral.disconnect_after_s:
            self.after(peripheral.disconnect_after_s, self.remote_disconnect)
        for attribute in self.table.attributes.values():
            stream = attribute.characteristic.notify if attribute.characteristic else None
            if stream is not None and stream.trigger == "connect":
                self.start_stream(attribute.handle, indication=False)

    def cmd_disconnect(self, args: List[str], name: str) -> None:
        self.drop_link()

    def drop_link(self) -> None:
        self.state = "disconnected"
        self.peripheral = None
        self.table = None
        self.link += 1

    def remote_disconnect(self) -> None:
        """The peer went away: GLib's warning on stderr, no prompt redraw (as the real gatttool)."""
        if self.state != "connected":
            return
        self.drop_link()
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        if os.isatty(2):
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
        self.mtu = min(requested, self.peripheral.mtu)
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

    def cmd_char_read_hnd(self, args: List[str], name: str) -> None:
        if not args:
            self.terminal.error("Missing argument: handle")
            return
        handle = parse_handle(args[0])
        if handle is None:
            self.terminal.error(f"Invalid handle: {args[0]}")
            return
        attribute = self.attribute(handle)

        def reply() -> None:
            failure = self.access_failure(attribute, writing=False)
            if failure:
                self.terminal.error(f"Characteristic value/descriptor read failed: {failure}", asynchronous=True)
            else:
                assert attribute is not None  # long values are read with Read Blob: all bytes on one line
                self.terminal.later(f"Characteristic value/descriptor: {hexbytes(bytes(attribute.value))}")

        self.answer(reply)

    @staticmethod
    def access_failure(attribute: Optional[Attribute], writing: bool) -> Optional[str]:
        """The ATT error text a read (or write) of ``attribute`` fails with, or None."""
        if attribute is None:
            return "Invalid handle"
        error = attribute.write_error if writing else attribute.read_error
        if error:
            return error
        if not (attribute.writable if writing else attribute.readable):
            return "Attribute can't be written" if writing else "Attribute can't be read"
        return None

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
        assert self.table is not None
        matches = [a for a in self.table.in_range(start, end) if a.uuid == wanted]

        def reply() -> None:
            if not matches:
                self.terminal.error(f"Read characteristics by UUID failed: {NOT_FOUND}", asynchronous=True)
                return
            failure = self.access_failure(matches[0], writing=False)
            if failure:
                self.terminal.error(f"Read characteristics by UUID failed: {failure}", asynchronous=True)
                return
            limit = self.mtu - 4 if len(matches) == 1 else self.mtu - 4 - 2 * len(matches)
            for attribute in matches:
                value = bytes(attribute.value)[: max(limit, 1)]
                self.terminal.later(f"handle: 0x{attribute.handle:04x} \t value: {hexbytes(value)}")

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
        attribute = self.attribute(handle)

        def reply() -> None:
            failure = self.access_failure(attribute, writing=True)
            if failure:
                self.terminal.error(f"Characteristic Write Request failed: {failure}", asynchronous=True)
                return
            assert attribute is not None  # longer than MTU-3: prepared writes, same success line
            self.store(attribute, value)
            self.terminal.later("Characteristic value was written successfully")

        self.answer(reply)

    def cmd_char_write_cmd(self, args: List[str], name: str) -> None:
        parsed = self.write_args(args, name)
        if parsed is None:
            return
        handle, value = parsed
        attribute = self.attribute(handle)
        if attribute is not None and self.access_failure(attribute, writing=True) is None:
            self.store(attribute, value[: self.mtu - 3])  # silently cut to one packet

    def store(self, attribute: Attribute, value: bytes) -> None:
        attribute.value = bytearray(value)
        if attribute.cccd_of is None:
            return
        flags = int.from_bytes(value[:2].ljust(2, b"\0"), "little")
        value_attribute = self.attribute(attribute.cccd_of)
        stream = value_attribute.characteristic.notify if value_attribute and value_attribute.characteristic else None
        if flags & 0x03 and stream is not None and stream.trigger == "subscribe":
            self.start_stream(attribute.cccd_of, indication=bool(flags & 0x02))

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
        attribute = self.attribute(value_handle)
        assert attribute is not None and attribute.characteristic is not None
        stream = attribute.characteristic.notify
        assert stream is not None
        link = self.link
        label = "Indication   handle" if indication else "Notification handle"

        def send() -> None:
            if self.link != link or self.state != "connected":
                return
            sent = self.streams_sent.get(value_handle, 0)
            batch = 1 if stream.interval_s > 0 else 256
            for _ in range(batch):
                if stream.count and sent >= stream.count:
                    break
                self.terminal.later(f"{label} = 0x{value_handle:04x} value: {hexbytes(stream.value(sent))}")
                sent += 1
                if self.count_notification():
                    self.streams_sent[value_handle] = sent
                    return
            self.streams_sent[value_handle] = sent
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
