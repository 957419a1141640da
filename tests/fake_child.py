"""A mocked pexpect child: the simulated ``gatttool -I`` of :mod:`pygatt.testing`, run in this process.

It replaces the spawn function of :mod:`pygatt.backends.gatttool.process` in unit tests. There is one
simulated peripheral in the project, not two: every GATT answer here comes from
:class:`pygatt.testing.sim.gatttool.Simulator` and the :class:`pygatt.testing.world.World` it is given,
the program the simulator tests run through a real pty. This module only adapts it to the child interface
the library's reader uses (``read``/``sendline``/``kill``/``wait``/``close``/``pid``): the terminal's output
goes to a queue instead of fds 1 and 2, and the simulator's timers (connection attempts, slow answers) run
when the library reads, so no thread of its own is left behind.

The test knobs map onto the world (``known_address``, ``connect_result``, ``add_characteristic``,
``attributes``) or are thin hooks of the adapter (``answer=False`` holds the peripheral's answers to reads
and write requests; ``hidden_from_desc`` leaves attributes out of ``char-desc``; ``notify``, ``sync``,
``later``, ``error``, ``remote_disconnect`` and ``die`` print what gatttool prints). A test may replace a
``cmd_<command>`` method on one child to make that command misbehave; the class's ``cmd_*`` methods run
the command in the simulator.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Dict, List, Optional, Set, Union

from pygatt.backends.gatttool.process import PTY_COLUMNS
from pygatt.testing.sim.gatttool import GATT_COMMANDS, Simulator, notification_line
from pygatt.testing.sim.terminal import Terminal
from pygatt.testing.world import (
    PROPERTY_BITS,
    Attribute,
    Characteristic,
    Layout,
    Peripheral,
    Service,
    World,
    layout,
)

DEFAULT_ADDRESS = "C4:7C:8D:6A:3E:01"
#: Connection delay of a peripheral that never answers a connect ("silent").
NEVER_S = 3600.0
#: Commands whose ATT answers ``answer = False`` holds back (the fake's requests that time out).
HELD_COMMANDS = frozenset({"char-read-hnd", "char-read-uuid", "char-write-req"})
_EOF = object()


def default_world(address: str = DEFAULT_ADDRESS) -> World:
    """The unit tests' peripheral: a small heart-rate monitor.

    Handles (as the world lays them out): 0x0003 Device Name "Pulse HR"; 0x0006 Heart Rate Measurement
    (notify) with its CCCD at 0x0007; 0x0009 Body Sensor Location, which answers reads with "Attribute
    can't be read"; 0x000c Battery Level (read, write, notify, indicate) with its CCCD at 0x000d.

    Args:
        address: the peripheral's address.

    Returns:
        A world with this one peripheral.
    """
    battery = Characteristic(
        "2a19", ["read", "write-without-response", "write", "notify", "indicate"], value="5a", cccd=True
    )
    peripheral = Peripheral(
        address=address,
        name="Pulse HR",
        services=[
            Service("1800", [Characteristic("2a00", ["read"], value=b"Pulse HR".hex())]),
            Service(
                "180d",
                [
                    Characteristic("2a37", ["notify"], value="0048", cccd=True),
                    Characteristic("2a38", ["read"], value="01", read_error=0x02),
                ],
            ),
            Service("180f", [battery]),
        ],
    )
    return World(peripherals=[peripheral])


class QueueTerminal(Terminal):
    """The simulated gatttool's terminal, its output handed to a function instead of fds 1 and 2.

    The screen is the one the library gives gatttool: a dumb terminal, ``PTY_COLUMNS`` wide, with stderr
    on the same terminal.
    """

    def __init__(self, prompt: Callable[[], str], sink: Callable[[str], None]) -> None:
        super().__init__(prompt, term="dumb")
        self._sink = sink

    def columns(self) -> int:
        """The width of the pty the library opens for gatttool."""
        return PTY_COLUMNS

    def stderr_is_terminal(self) -> bool:
        """gatttool's stderr is the library's pty too."""
        return True

    def flush(self) -> None:
        """Hand what was written to the sink, in one piece."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._sink(text)

    def stderr(self, text: str) -> None:
        """stderr shares the pty: after what stdout has queued."""
        self.flush()
        self._sink(text)


class FakeSimulator(Simulator):
    """The simulator with the adapter's two hooks: held answers and attributes hidden from ``char-desc``."""

    def __init__(
        self, world: World, sink: Callable[[str], None], answering: Callable[[], bool], hidden: Set[int]
    ) -> None:
        super().__init__(world, world.adapter.name, None, "public")
        self.terminal = QueueTerminal(self.prompt_text, sink)
        self.answering = answering
        self.hidden = hidden
        self.command = ""

    def execute(self, line: str) -> None:
        """Run a command line, remembering its command for :meth:`answer`."""
        words = line.split()
        self.command = words[0].lower() if words else ""
        super().execute(line)

    def answer(self, action: Callable[[], None]) -> None:
        """Send the ATT answer later, unless the adapter holds answers to this command."""
        if self.command in HELD_COMMANDS and not self.answering():
            return  # the request goes out, its answer never comes
        super().answer(action)

    def finish_connect(self, peripheral: Optional[Peripheral], address_type: str) -> None:
        """Complete a connection attempt (whatever address type was asked for)."""
        # the unit tests connect with either address type: the mocked peripheral answers to both
        super().finish_connect(peripheral, peripheral.address_type if peripheral else address_type)

    def cmd_char_desc(self, args: List[str], name: str) -> None:
        """``char-desc``, leaving out the handles in ``hidden``."""
        table = self.table
        if table is None or not self.hidden:
            super().cmd_char_desc(args, name)
            return
        shown = {h: a for h, a in table.attributes.items() if h not in self.hidden}
        self.table = Layout(shown, table.services, table.characteristics)
        try:
            super().cmd_char_desc(args, name)
        finally:
            self.table = table


class FakeGatttool:
    """The mocked child: the simulated gatttool over :func:`default_world`.

    Args:
        address: the address of the peripheral the world holds.
    """

    def __init__(self, address: str = DEFAULT_ADDRESS) -> None:
        self.world = default_world(address)
        self.peripheral = self.world.peripherals[0]
        self.sent: List[str] = []
        self.pid = 4242
        self.exitstatus: Optional[int] = None
        self.signalstatus: Optional[int] = None
        self.logfile = None
        self.alive = True
        self.answer = True  # False: the answers to reads and write requests never come (for timeouts)
        self.read_sizes: Set[int] = set()
        self.hidden_from_desc: Set[int] = set()
        self._connect_result = "ok"
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.RLock()
        self.simulator = FakeSimulator(self.world, self._out, lambda: self.answer, self.hidden_from_desc)
        self.terminal = self.simulator.terminal
        with self._lock:
            self.terminal.prompt()
            self.terminal.flush()

    # -- knobs on the world ----------------------------------------------------------------
    @property
    def known_address(self) -> str:
        """The address the peripheral answers at (other addresses are refused)."""
        return self.peripheral.address

    @known_address.setter
    def known_address(self, address: str) -> None:
        self.peripheral.address = address

    @property
    def connect_result(self) -> str:
        """``"ok"``, ``"refused"`` (the peripheral is not connectable) or ``"silent"`` (no answer)."""
        return self._connect_result

    @connect_result.setter
    def connect_result(self, result: str) -> None:
        if result not in ("ok", "refused", "silent"):
            raise ValueError(f"connect_result: {result!r}")
        self._connect_result = result
        self.peripheral.connectable = result != "refused"
        self.peripheral.connect_delay_s = NEVER_S if result == "silent" else Peripheral.connect_delay_s

    @property
    def connected(self) -> bool:
        """Whether the simulated gatttool is connected; setting False drops the link without a word."""
        return self.simulator.state == "connected"

    @connected.setter
    def connected(self, value: bool) -> None:
        if value:
            raise ValueError("connect through cmd_connect")
        with self._lock:
            self.simulator.drop_link()

    @property
    def mtu(self) -> int:
        """The ATT MTU of the link."""
        return self.simulator.mtu

    @property
    def attributes(self) -> Dict[int, Attribute]:
        """The peripheral's attributes by handle: the live table while connected."""
        table = self.simulator.table
        return (table or layout(self.peripheral)).attributes

    def add_characteristic(
        self, properties: int, uuid: Union[int, str], value: bytes, cccd: bool = False, readable: bool = True
    ) -> int:
        """Add a characteristic at the end of the peripheral's last service.

        Args:
            properties: the property bits (``0x02`` read, ``0x10`` notify, ...).
            uuid: a 16-bit assigned number or a UUID string.
            value: its value.
            cccd: give it a CCCD (when it can notify or indicate).
            readable: False answers reads with "Attribute can't be read".

        Returns:
            Its value handle.
        """
        names = [name for name, bit in PROPERTY_BITS.items() if properties & bit]
        text = f"{uuid:04x}" if isinstance(uuid, int) else uuid
        characteristic = Characteristic(
            text, names, value=value.hex(), cccd=cccd, read_error=None if readable else 0x02
        )
        with self._lock:
            self.peripheral.services[-1].characteristics.append(characteristic)
            fresh = layout(self.peripheral)
            old = self.simulator.table
            if old is not None and self.simulator.responder is not None:
                # the link sees the new characteristic; what was written to the others is kept
                for handle, attribute in old.attributes.items():
                    fresh.attributes[handle].value = attribute.value
                self.simulator.table = fresh
                self.simulator.responder.table = fresh
            return int(fresh.characteristics[-1][2])

    # -- what gatttool prints ------------------------------------------------------------------
    def prompt(self) -> str:
        """Return gatttool's prompt as it is now."""
        return self.simulator.prompt_text()

    def _out(self, text: str) -> None:
        """Hand raw text to the library's reader."""
        self._queue.put(text)

    def sync(self, line: str) -> None:
        """A line printed while a command runs, then the prompt."""
        with self._lock:
            self.terminal.sync(line)
            self.terminal.prompt()
            self.terminal.flush()

    def later(self, line: str) -> None:
        """An asynchronous line: clear, text, newline, redrawn prompt."""
        with self._lock:
            self.terminal.later(line)
            self.terminal.flush()

    def error(self, message: str, asynchronous: bool = True) -> None:
        """gatttool's red ``Error:`` line, asynchronous or (then with a prompt) synchronous."""
        with self._lock:
            self.terminal.error(message, asynchronous=asynchronous)
            if not asynchronous:
                self.terminal.prompt()
            self.terminal.flush()

    def notify(self, handle: int, value: bytes, indication: bool = False) -> None:
        """The peripheral sends a notification (or an indication)."""
        with self._lock:
            self.terminal.later(notification_line(handle, value, indication))
            self.terminal.flush()

    def remote_disconnect(self) -> None:
        """The peripheral drops the link (GLib's warning, as the real gatttool prints it)."""
        with self._lock:
            self.simulator.remote_disconnect()
            self.terminal.flush()

    def die(self) -> None:
        """gatttool exits: the reader gets EOF."""
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            self.exitstatus = 0
            self.simulator.running = False
        self._queue.put(_EOF)

    # -- the child interface of pygatt.backends.gatttool.process.Child ------------
    def read(self, size: int) -> str:
        """The next output, or '' once gatttool exited; the simulator's due timers run first."""
        self.read_sizes.add(size)
        while True:
            with self._lock:
                delay = self.simulator.run_due_timers() if self.alive else None
                self.terminal.flush()
            try:
                item = self._queue.get(timeout=0.5 if delay is None else min(delay, 0.5))
            except queue.Empty:
                continue
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
        """Type a line: gatttool echoes it and runs it."""
        if not self.alive:
            raise OSError(5, "Input/output error")
        with self._lock:
            self.sent.append(line)
            for typed in self.terminal.feed(line + "\n"):
                self.terminal.flush()
                self._dispatch(typed)
            self.terminal.flush()
        return len(line) + 1

    # -- commands ----------------------------------------------------------------------
    def _dispatch(self, line: str) -> None:
        """Run a typed line: a test's stand-in ``cmd_*`` for its command if set, else the simulator."""
        words = line.split()
        if not words:
            self.terminal.prompt()
            return
        command = words[0].lower()
        handler = getattr(self, "cmd_" + command.replace("-", "_"), None)
        if handler is None:
            self._simulate(words[0], words[1:])
            return
        if command in GATT_COMMANDS and not self.connected:
            self.terminal.failed("Disconnected")
            self.terminal.prompt()
            return
        handler(words[1:])

    def _simulate(self, command: str, args: List[str]) -> None:
        """Run one command in the simulator and draw the next prompt, as its loop does."""
        with self._lock:
            self.simulator.execute(" ".join([command, *args]))
            if self.simulator.running:
                self.terminal.prompt()
                self.terminal.flush()
            else:
                self.terminal.flush()
                self.die()

    def cmd_exit(self, args: List[str]) -> None:
        self._simulate("exit", args)

    def cmd_connect(self, args: List[str]) -> None:
        self._simulate("connect", args)

    def cmd_disconnect(self, args: List[str]) -> None:
        self._simulate("disconnect", args)

    def cmd_sec_level(self, args: List[str]) -> None:
        self._simulate("sec-level", args)

    def cmd_mtu(self, args: List[str]) -> None:
        self._simulate("mtu", args)

    def cmd_characteristics(self, args: List[str]) -> None:
        self._simulate("characteristics", args)

    def cmd_char_desc(self, args: List[str]) -> None:
        self._simulate("char-desc", args)

    def cmd_char_read_hnd(self, args: List[str]) -> None:
        self._simulate("char-read-hnd", args)

    def cmd_char_read_uuid(self, args: List[str]) -> None:
        self._simulate("char-read-uuid", args)

    def cmd_char_write_req(self, args: List[str]) -> None:
        self._simulate("char-write-req", args)

    def cmd_char_write_cmd(self, args: List[str]) -> None:
        self._simulate("char-write-cmd", args)
