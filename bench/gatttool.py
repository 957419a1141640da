"""Benchmark steps for the GATTTool backend, each beside the transport's own limit.

The library drives the simulated gatttool (``python -m pygatt.testing.sim gatttool``)
through a real pty, as it drives the real one. The *limit* is the same simulator on
the same kind of pty (4096 columns, TERM=dumb) read by a bare ``os.read`` loop that
only counts what it waits for: no decoding, no parsing, no threads. Both are measured
in the same run and side by side: both sides connected at once, to two simulators of
the same world, and taking turns (50 reads or writes each, one discovery each, a tenth
of a flood each). So their ratio holds even on a noisy machine.

The *floor* (:class:`ThreadedTool`) is the bare loop split over the library's threads:
a reader thread that wakes the waiting caller, or hands each chunk to a consumer
thread, and parses nothing. It takes its turns with the other two, so the report
shows how much of the distance to the limit the design's threads alone cost on this
machine, and how much is the library's own work. Discovery has no floor: the bare
loop knows how many lines to wait for, which no client does, and a floor that did
not would be the library's protocol without its parsing.
"""

from __future__ import annotations

import fcntl
import gc
import os
import pty
import queue
import select
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
import timeit
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import pygatt
import pygatt.dispatch
from bench.common import HR_VALUE_HANDLE, collect_flood, flood_world, idle_cpu_percent, stream_of, world_file
from pygatt.backends.gatttool import commands
from pygatt.backends.gatttool.parser import Notification, NotificationRun
from pygatt.backends.gatttool.process import PTY_COLUMNS, PTY_ROWS, Child
from pygatt.backends.gatttool.session import GATTToolSession, Notifications
from pygatt.backends.gatttool.tools import ToolCommands
from pygatt.testing import Characteristic, Peripheral, Service, World, load_world

ADDRESS = "C4:7C:8D:6A:3E:01"
HR_CCCD = 0x0009
BATTERY_VALUE_HANDLE = 0x0010
WRITE_HANDLE = 0x000D  # heart-rate control point (2a39), written with response


#: The most one ``os.read`` of a pty returns (the terminal's input buffer holds 4 KiB).
PTY_READ = 4095
#: What a notification carries at the default ATT MTU of 23.
DEFAULT_PAYLOAD = 20


def sized_world(characteristics: int) -> World:
    """One peripheral with ``characteristics`` readable characteristics, at most 10 per service."""
    per_service = min(10, characteristics)
    services = [
        Service(
            f"{0xA000 + s:04x}",
            [Characteristic(f"{0xB000 + s * per_service + c:04x}", ["read"], value="01") for c in range(per_service)],
        )
        for s in range(characteristics // per_service)
    ]
    return World(peripherals=[Peripheral(address=ADDRESS, name="Big", services=services)])


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connected(world_path: str) -> Tuple[pygatt.GATTToolBackend, Any]:
    backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(world_path))
    backend.start(reset_on_start=False)
    return backend, backend.connect(ADDRESS, timeout=10)


# -- the transport's own limit: the simulator read by a bare loop ----------------------------


class RawTool:
    """The simulated gatttool on a pty opened here, read by plain ``os.read`` calls, connected."""

    def __init__(self, world_path: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLUMNS, 0, 0))
        argv = [*ToolCommands.simulated(world_path).gatttool, "-I"]
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, TERM="dumb"), start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.buffer = b""
        self.read_until(b"[LE]> ")
        self.send(f"connect {ADDRESS}")
        self.read_until(b"Connection successful")
        self.settle()

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def read_until(self, marker: bytes, count: int = 1) -> None:
        """Read until ``marker`` was seen ``count`` times; what follows the last one stays for the next call."""
        found = 0
        while True:
            position = 0
            while found < count:
                at = self.buffer.find(marker, position)
                if at < 0:
                    break
                found += 1
                position = at + len(marker)
            if found == count:
                self.buffer = self.buffer[position:]
                return
            # keep only what may still hold the start of a marker
            self.buffer = self.buffer[max(position, len(self.buffer) - len(marker) + 1) :] + os.read(self.fd, 65536)

    def settle(self, quiet: float = 0.05) -> int:
        """Read until nothing arrives for ``quiet`` seconds; return the bytes read."""
        total = len(self.buffer)
        self.buffer = b""
        while select.select([self.fd], [], [], quiet)[0]:
            total += len(os.read(self.fd, 65536))
        return total

    def close(self) -> None:
        self.process.kill()
        self.process.wait(5)
        os.close(self.fd)


def raw_read(tool: RawTool) -> None:
    """One ``char-read-hnd`` by the bare loop: written, then read up to its answer's line."""
    tool.send(f"char-read-hnd 0x{BATTERY_VALUE_HANDLE:04x}")
    tool.read_until(b"descriptor: 5a \r\n")
    tool.read_until(b"]> ")  # the trailing prompt (not in the timed part: see read_latencies)


def raw_write(tool: RawTool, n: int) -> None:
    """One ``char-write-req`` by the bare loop: written, then read up to its answer and the prompt after it."""
    tool.send(f"char-write-req 0x{WRITE_HANDLE:04x} {n & 0xFF:02x}")
    tool.read_until(b"successfully\r\n")
    tool.read_until(b"]> ")


def listing_lines(tool: RawTool) -> List[int]:
    """How many lines ``characteristics`` and ``char-desc`` print (counted once, by waiting for silence)."""
    counts = []
    for command in ("characteristics", "char-desc"):
        tool.send(command)
        tool.settle(0.3)
        counts.append(recorded_output(tool, command, quiet=0.3).count("uuid: "))
        tool.buffer = b""
    return counts


def raw_discovery(tool: RawTool, counts: List[int]) -> float:
    """The simulator's own time for ``characteristics`` then ``char-desc``: from sending to the last line."""
    started = time.perf_counter()
    for command, lines in zip(("characteristics", "char-desc"), counts):
        tool.send(command)
        tool.read_until(b"uuid: ", lines)
        tool.read_until(b"\r\n")  # the end of the last line
    elapsed = time.perf_counter() - started
    tool.read_until(b"]> ")  # the prompt after the last line (not timed); no pause, as on the library's side
    return elapsed


# -- the design's floor: the bare loop on the library's threads ---------------------------


class ThreadedTool(RawTool):
    """The bare loop split over the threads the design gives the library, and nothing more.

    One reader thread owns the pty, as in ``GatttoolProcess``: it counts a marker in what it
    reads (the bare loop's whole "parsing") and either wakes the caller waiting for it, as the
    session wakes a caller, or hands each chunk to a consumer thread, as the library hands a
    chunk of notifications to its callback thread. No decoding, no command bookkeeping, no
    validation: what this reaches is the floor under any implementation of that design in
    Python, and its distance from the bare loop is what the threads alone cost on this machine.
    """

    def __init__(self, world_path: str) -> None:
        super().__init__(world_path)  # connected by the bare loop, before the reader exists
        self._marker = b"\0"
        self._tail = b""
        self._seen = 0  # markers counted so far (only the reader writes it)
        self._target: Optional[int] = None  # wake the caller once ``_seen`` reaches it
        self._wake = threading.Lock()
        self._wake.acquire()
        self._chunks: queue.SimpleQueue[Optional[int]] = queue.SimpleQueue()
        self._consumed = 0
        self._consumer_target = 0
        self._flood_done = threading.Event()
        self._last_output = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, name="floor-reader", daemon=True)
        self._consumer = threading.Thread(target=self._consume, name="floor-consumer", daemon=True)
        self._reader.start()
        self._consumer.start()

    def _read_loop(self) -> None:
        fd = self.fd
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                self._chunks.put(None)
                return
            self._last_output = time.monotonic()
            marker = self._marker
            text = self._tail + data
            found = text.count(marker)
            self._tail = text[-(len(marker) - 1) :] if len(marker) > 1 else b""
            if found:
                self._seen += found
                if self._consumer_target:  # a flood: one hand-off per chunk, as the library's notifications
                    self._chunks.put(found)
                target = self._target
                if target is not None and self._seen >= target:
                    self._target = None
                    self._wake.release()

    def _consume(self) -> None:
        while True:
            found = self._chunks.get()
            if found is None:
                return
            self._consumed += found
            if self._consumed >= self._consumer_target > 0:
                self._consumer_target = 0
                self._flood_done.set()

    def round_trip(self, line: str, marker: bytes) -> None:
        """Send ``line`` and wait, as the library's caller waits, until the reader saw ``marker``."""
        self._marker = marker
        self._target = self._seen + 1
        self.send(line)
        if not self._wake.acquire(timeout=10):
            raise TimeoutError(f"no {marker!r} after {line!r}")

    def flood(self, line: str, count: int, marker: bytes = b"Notification handle") -> None:
        """Send ``line`` and wait until the consumer thread was handed ``count`` markers.

        Only during a flood does the reader hand chunks over: the library wakes its callback
        thread for notifications, never for a command's answer.
        """
        self._marker = marker
        self._consumed = 0
        self._consumer_target = count
        self._flood_done.clear()
        self.send(line)
        if not self._flood_done.wait(60):
            raise TimeoutError(f"the consumer got {self._consumed} of {count} after {line!r}")

    def settle(self, quiet: float = 0.05) -> int:
        """Wait until the reader has seen nothing for ``quiet`` seconds (it reads everything itself)."""
        if not hasattr(self, "_reader"):  # still connecting, before the reader exists
            return super().settle(quiet)
        while time.monotonic() - self._last_output < quiet:
            time.sleep(quiet / 5)
        return 0

    def close(self) -> None:
        self.process.kill()
        self.process.wait(5)
        self._reader.join(5)  # the pty's other side is gone: its read ends
        self._consumer.join(5)
        os.close(self.fd)


# -- the library -------------------------------------------------------------------------


class ReplayChild(Child):
    """A child that plays back pre-rendered gatttool output as fast as it is read."""

    pid = 0

    def __init__(self, chunks: Sequence[str]) -> None:
        self._chunks = iter(chunks)

    def read(self, size: int) -> str:
        return next(self._chunks, "")

    def sendline(self, line: str) -> None:
        pass

    def kill(self) -> None:
        pass

    def wait(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        pass


def library_alone(count: int, size: int) -> float:
    """Notifications per second a real session + dispatcher + device callback takes, the simulator out of
    the way: pre-rendered gatttool output fed to the reader as fast as it can take it."""
    prompt = f"\x1b[0;94m[{ADDRESS}]\x1b[0m[LE]> "
    value = "".join(f"{b & 0xFF:02x} " for b in range(size))
    line = "\r" + " " * 45 + f"\rNotification handle = 0x{HR_VALUE_HANDLE:04x} value: {value}\r\n" + prompt
    text = prompt + line * count
    chunks = [text[i : i + 65536] for i in range(0, len(text), 65536)]
    received: List[bytearray] = []
    done = threading.Event()

    def deliver(batch: Sequence[Tuple[int, bytes]]) -> None:  # as BLEDevice.receive_notifications
        for _handle, data in batch:
            received.append(bytearray(data))
        if len(received) >= count:
            done.set()

    def deliver_run(values: Sequence[bytes]) -> None:  # as BLEDevice.receive_run
        for data in values:
            received.append(bytearray(data))
        if len(received) >= count:
            done.set()

    dispatcher = pygatt.dispatch.CallbackDispatcher()
    dispatcher.start()

    def spawn(argv: Sequence[str], env: Dict[str, str], logfile: Optional[IO[str]]) -> Child:
        return ReplayChild(chunks)

    def route(batch: Notifications) -> None:  # as GATTToolBackend does with a chunk's notifications
        singles: List[Tuple[int, bytes]] = []
        for event in batch:
            if type(event) is NotificationRun:
                if singles:
                    dispatcher.submit_batch(deliver, singles)
                    singles = []
                dispatcher.submit_batch(deliver_run, event.values)
            else:
                singles.append((event.handle, cast("Notification", event).value))
        if singles:
            dispatcher.submit_batch(deliver, singles)

    session = GATTToolSession(
        ["replay"],
        route,
        lambda why: None,
        spawn=spawn,
    )
    try:
        started = time.perf_counter()
        session.start(5)
        done.wait(60)
        elapsed = time.perf_counter() - started
    finally:
        session.close()
        dispatcher.stop()
    return len(received) / elapsed


def recorded_output(tool: RawTool, line: str, quiet: float = 0.2) -> str:
    """What the simulator prints for ``line``, verbatim: everything until it is quiet for ``quiet`` seconds."""
    tool.send(line)
    found = b""
    while select.select([tool.fd], [], [], quiet)[0]:
        found += os.read(tool.fd, 65536)
    return found.decode()


def replayed_calls(
    path: str, lines: Sequence[str], calls: Callable[[Any], Dict[str, Callable[[], Any]]], count: int
) -> Dict[str, float]:
    """The library's own work per call, hot: µs per call, best of 15 loops of ``count``.

    The round-trip counterpart of :func:`library_alone`. What the simulator prints for each of
    ``lines`` is recorded once, verbatim; then a backend connected through the simulator has its
    gatttool's input replaced by a stand-in that hands that output (in pty-sized chunks) straight to
    the session's output handler, on the caller's thread. So a call is everything the library does
    for it -- the public API's checks, the commands, the tracker, the decoder, the result -- with no
    pty, no simulator and no thread hand-off. (The bench reaches into the session for this; the
    library has no reason to offer it.)

    Args:
        path: the world file.
        lines: every command line the calls send.
        calls: given the connected device, the calls to time, by name.
        count: calls per loop.
    """
    backend, device = connected(path)
    tool = RawTool(path)
    try:
        answers = {line: recorded_output(tool, line) for line in lines}
        session = backend._link(device).session  # private: this is a measurement harness
        process, output = session._process, session._on_output
        assert process is not None

        def answer(line: str) -> None:
            text = answers[line]
            for start in range(0, len(text), PTY_READ):
                output(text[start : start + PTY_READ])

        process.send = answer  # type: ignore[method-assign]
        result = {}
        try:
            for name, call in calls(device).items():
                for _ in range(max(1, count // 10)):
                    call()
                # many short loops: the best of them is the one no burst of outside load fell into
                result[name] = min(timeit.repeat(call, number=count, repeat=15)) / count * 1e6
        finally:
            del process.send  # gatttool's own input again, for the disconnect and exit
        return result
    finally:
        tool.close()
        backend.stop()


def commands_alone(path: str, count: int) -> Dict[str, float]:
    """µs per ``char_read_handle`` and per ``char_write_handle(..., wait_for_response=True)``, hot."""
    read_line = f"char-read-hnd 0x{BATTERY_VALUE_HANDLE:04x}"
    write_line = f"char-write-req 0x{WRITE_HANDLE:04x} 01"
    return replayed_calls(
        path,
        [read_line, write_line],
        lambda device: {
            "read_us": lambda: device.char_read_handle(BATTERY_VALUE_HANDLE),
            "write_us": lambda: device.char_write_handle(WRITE_HANDLE, b"\x01", wait_for_response=True),
        },
        count,
    )


def discovery_alone(path: str, count: int) -> float:
    """µs per ``discover_characteristics``, hot: its three commands' output replayed (see replayed_calls)."""
    result = replayed_calls(
        path,
        ["char-desc", "characteristics", "sec-level"],  # sec-level: in case a listing comes in pieces
        lambda device: {"discover_us": device.discover_characteristics},
        count,
    )
    return result["discover_us"]


def floods(
    directory: str, count: int, size: int, blocks: int = 10
) -> Tuple[Dict[str, Any], Dict[str, float], Dict[str, float]]:
    """Notifications delivered to a callback, read by the bare loop, and handed over by the floor, in turns.

    As for reads: the library, the bare loop and the floor are connected to three simulators
    of the same world at once, and each takes ``count / blocks`` notifications in turn
    (subscribe, take the stream, unsubscribe untimed), so a burst of someone else's load hits
    all sides alike instead of whichever flood ran during it. Every value the library
    delivers is checked against the stream; each rate is the total count over the total time.
    """
    block = max(1, count // blocks)
    world = flood_world(block, size)
    path = world_file(world, directory, f"floods{size}")
    stream = stream_of(world)
    backend, device = connected(path)
    tool = RawTool(path)
    floor_tool = ThreadedTool(path)
    library = {"seconds": 0.0, "cpu": 0.0, "received": 0, "wrong": 0}
    limit = {"seconds": 0.0, "cpu": 0.0}
    floor = {"seconds": 0.0, "cpu": 0.0}
    try:
        device.discover_characteristics()
        if size > DEFAULT_PAYLOAD:  # a notification carries MTU - 3 bytes
            device.exchange_mtu(247)
            tool.send("mtu 247")
            tool.read_until(b"MTU was exchanged")
            tool.settle()
            floor_tool.round_trip("mtu 247", b"MTU was exchanged")
            floor_tool.settle()
        subscribe = f"char-write-req 0x{HR_CCCD:04x} 0100"

        def limit_flood() -> None:
            tool.send(subscribe)
            tool.read_until(b"Notification handle", block)

        def floor_flood() -> None:
            floor_tool.flood(subscribe, block)

        sides = ((limit, tool, limit_flood), (floor, floor_tool, floor_flood))
        for number in range(blocks + 1):  # the first block of each side warms up, untimed
            flood = collect_flood(device, block)
            device.unsubscribe_handle(HR_VALUE_HANDLE)
            for totals, side, take in sides:
                cpu = time.process_time()
                started = time.perf_counter()
                take()
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
                side.send(f"char-write-req 0x{HR_CCCD:04x} 0000")
                side.settle()
                if number:
                    totals["seconds"] += elapsed
                    totals["cpu"] += cpu
            if number == 0:
                continue
            got = flood["got"]
            library["seconds"] += flood["seconds"]
            library["cpu"] += flood["cpu"]
            library["received"] += len(got)
            library["wrong"] += sum(1 for n, value in enumerate(got) if value != stream.value(n))
        dropped = backend.notifications_dropped
    finally:
        floor_tool.close()
        tool.close()
        backend.stop()
    total = block * blocks
    return (
        {
            "size": size,
            "count": total,
            "received": library["received"],
            "lost": total - library["received"],
            "dropped": dropped,
            "wrong": library["wrong"],
            "seconds": library["seconds"],
            "per_second": library["received"] / library["seconds"],
            "cpu_per_10k": library["cpu"] * 10_000 / total,
        },
        {"per_second": total / limit["seconds"], "cpu_per_10k": limit["cpu"] * 10_000 / total},
        {"per_second": total / floor["seconds"], "cpu_per_10k": floor["cpu"] * 10_000 / total},
    )


def read_latencies(path: str, reads: int, block: int = 50) -> Tuple[Dict[str, float], ...]:
    """``char_read_handle`` round trips of the library, the bare loop and the floor, in alternating blocks.

    All three are connected to simulators of the same world at once; each side reads ``block``
    times back to back (as a polling loop would), then the next side does, so a burst of someone
    else's load hits all alike. Every read is timed from sending to its answer; the bare loop
    leaves each trailing prompt for its next read to skip, as the library's reader handles it
    while the caller goes on.

    Returns:
        The library's, the bare loop's and the floor's median and p99.
    """
    backend, device = connected(path)
    tool = RawTool(path)
    floor_tool = ThreadedTool(path)
    command = f"char-read-hnd 0x{BATTERY_VALUE_HANDLE:04x}"
    answer = b"descriptor: 5a \r\n"
    try:
        for _ in range(50):
            device.char_read_handle(BATTERY_VALUE_HANDLE)
            raw_read(tool)
            floor_tool.round_trip(command, answer)
        library: List[float] = []
        limit: List[float] = []
        floor: List[float] = []
        for _ in range(0, reads, block):
            for _ in range(block):
                started = time.perf_counter()
                device.char_read_handle(BATTERY_VALUE_HANDLE)
                library.append(time.perf_counter() - started)
            for _ in range(block):
                started = time.perf_counter()
                tool.send(command)
                tool.read_until(answer)
                limit.append(time.perf_counter() - started)
            tool.read_until(b"]> ")  # the last prompt, before the next side's turn (not timed)
            for _ in range(block):
                started = time.perf_counter()
                floor_tool.round_trip(command, answer)
                floor.append(time.perf_counter() - started)
    finally:
        floor_tool.close()
        tool.close()
        backend.stop()
    return summarize(library), summarize(limit), summarize(floor)


def summarize(samples: List[float]) -> Dict[str, float]:
    samples = sorted(samples)
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)] * 1000,
    }


def writes_per_second(path: str, writes: int, block: int = 50) -> Tuple[float, float, float, float]:
    """Acknowledged writes per second of the library, the bare loop, the floor and the session alone, in turns.

    Each side writes ``block`` values in turn (``char_write_handle(..., wait_for_response=True)``
    against ``char-write-req`` read up to its answer and prompt, and up to its answer on the floor's
    reader thread); each rate is its total count over its total time, so all sides share the
    machine's good and bad moments.

    The fourth side is a diagnostic: a second connected backend whose session is handed the same
    command (``commands.write``) directly, as its link does -- the library without the public API,
    backend and link layers above the session (reached privately: this is a measurement harness).
    Its distance from the floor is what the session, its tracker and its decoder cost in place.
    """
    backend, device = connected(path)
    session_backend, session_device = connected(path)
    session = session_backend._link(session_device).session  # private: this is a measurement harness
    tool = RawTool(path)
    floor_tool = ThreadedTool(path)

    def floor_write(n: int) -> None:
        floor_tool.round_trip(f"char-write-req 0x{WRITE_HANDLE:04x} {n & 0xFF:02x}", b"successfully\r\n")

    def session_write(n: int) -> None:
        session.run(commands.write(WRITE_HANDLE, bytes([n & 0xFF]), True), 30)

    def library_write(n: int) -> None:
        device.char_write_handle(WRITE_HANDLE, bytes([n & 0xFF]), wait_for_response=True)

    sides: List[Callable[[int], None]] = [library_write, lambda n: raw_write(tool, n), floor_write, session_write]
    try:
        for n in range(50):
            for write in sides:
                write(n)
        seconds = [0.0] * len(sides)
        for start in range(0, writes, block):
            for index, write in enumerate(sides):
                started = time.perf_counter()
                for n in range(start, start + block):
                    write(n)
                seconds[index] += time.perf_counter() - started
        count = -(-writes // block) * block
        library, limit, floor, alone = (count / s for s in seconds)
        return library, limit, floor, alone
    finally:
        floor_tool.close()
        tool.close()
        session_backend.stop()
        backend.stop()


def discoveries(path: str, runs: int, expected: int) -> Tuple[float, float]:
    """Median ``discover_characteristics`` time (``char-desc`` + ``characteristics``) and the bare loop's.

    Library and bare loop take turns, one discovery each, on two simulators of the same world.
    """
    backend, device = connected(path)
    tool = RawTool(path)
    try:
        counts = listing_lines(tool)
        library: List[float] = []
        limit: List[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            found = device.discover_characteristics(timeout=10)
            library.append(time.perf_counter() - started)
            assert len(found) == expected, (len(found), expected)
            limit.append(raw_discovery(tool, counts))
        assert tool.settle(0.05) == 0, "the bare loop left output unread: its line counts are off"
        return statistics.median(library), statistics.median(limit)
    finally:
        tool.close()
        backend.stop()


def idle_cpu(directory: str, seconds: float) -> float:
    """Percent of a core the process uses while connected and idle."""
    backend, device = connected(world_file(load_world("heart-rate"), directory, "idle"))
    try:
        return idle_cpu_percent(seconds)
    finally:
        backend.stop()


def flood_memory(directory: str, count: int) -> Dict[str, float]:
    """RSS before, at the peak of, and after a flood delivered to a callback that keeps nothing."""
    backend, device = connected(world_file(flood_world(count, 20), directory, "memory"))
    try:
        device.discover_characteristics()
        gc.collect()
        before = rss_kib()
        peak = before
        got = [0]

        def callback(handle: int, value: bytearray) -> None:
            got[0] += 1

        device.subscribe_handle(HR_VALUE_HANDLE, callback)
        deadline = time.monotonic() + 120
        while got[0] + backend.notifications_dropped < count and time.monotonic() < deadline:
            peak = max(peak, rss_kib())
            time.sleep(0.005)
        gc.collect()
        after = rss_kib()
        return {
            "before_mib": before / 1024,
            "peak_mib": max(peak, after) / 1024,
            "after_mib": after / 1024,
            "delivered": got[0],
            "dropped": backend.notifications_dropped,
        }
    finally:
        backend.stop()


# -- the section ---------------------------------------------------------------------------


#: (measure, step returning (library, limit), (library, limit, floor) or, for writes, (library, limit, floor,
#: session alone)); each is measured ``rounds`` times.
Pair = Tuple[str, Callable[[], Tuple[Any, ...]]]


def run(directory: str, quick: bool, rounds: int = 5, alone: bool = True, log: Any = sys.stderr) -> Dict[str, Any]:
    """Every gatttool measure beside its limit (and its floor), each ``rounds`` times (the report takes the best).

    On a shared machine one measure can land in a burst of someone else's load; alternating the
    library, the limit and the floor keeps all sides exposed to the same conditions.
    """
    flood = 10_000 if quick else 100_000
    reads = 200 if quick else 2000
    runs = 5 if quick else 20
    heart = world_file(load_world("heart-rate"), directory, "heart")
    small = world_file(sized_world(4), directory, "chars4")
    big = world_file(sized_world(60), directory, "chars60")
    pairs: List[Pair] = [
        ("notify20", lambda: floods(directory, flood, 20)),
        ("notify244", lambda: floods(directory, flood // 4, 244)),
        ("read", lambda: read_latencies(heart, reads)),
        ("writes", lambda: writes_per_second(heart, reads)),
        ("discover4", lambda: discoveries(small, runs, 4)),
        ("discover60", lambda: discoveries(big, runs, 60)),
    ]
    results: Dict[str, Any] = {"flood": flood, "rounds": rounds}
    for number in range(rounds):
        for name, step in pairs:
            print(f"... gatttool {name}, round {number + 1} of {rounds}", file=log, flush=True)
            measured = step()
            results.setdefault(name, []).append(measured[0])
            results.setdefault(name + "_limit", []).append(measured[1])
            if len(measured) > 2:
                results.setdefault(name + "_floor", []).append(measured[2])
            if len(measured) > 3:  # the writes' diagnostic side (see writes_per_second)
                results.setdefault(name + "_session", []).append(measured[3])
    print("... gatttool library alone, idle CPU, memory", file=log, flush=True)
    if alone:  # needs this version's session interface (not for measuring an older pygatt)
        results["library_alone20"] = library_alone(flood, 20)
        results["commands_alone"] = commands_alone(heart, 500 if quick else 3000)
        results["discovery_alone"] = {
            "chars4_us": discovery_alone(small, 20 if quick else 200),
            "chars60_us": discovery_alone(big, 5 if quick else 20),
        }
    results["idle_cpu_percent"] = idle_cpu(directory, 2 if quick else 10)
    results["flood_memory"] = flood_memory(directory, flood)
    return results


def sizes(directory: str, quick: bool) -> List[Dict[str, Any]]:
    """Throughput against value size: end to end, the limit, the library alone."""
    n = 5_000 if quick else 30_000
    points = []
    for size in (1, 20, 60, 120, 244):
        print(f"... gatttool size {size}", file=sys.stderr, flush=True)
        point, limit, floor = floods(directory, n, size, blocks=5)
        point["limit"] = limit["per_second"]
        point["floor"] = floor["per_second"]
        point["library_alone"] = library_alone(n, size)
        points.append(point)
    return points


def best_of(values: List[Any], key: Optional[str], higher: bool) -> float:
    numbers = [v[key] if key else v for v in values]
    return float(max(numbers) if higher else min(numbers))


def compare(
    r: Dict[str, Any], name: str, key: Optional[str] = None, higher: bool = False
) -> Tuple[float, float, float]:
    """(library, limit, library/limit) of one pair, each the best of its rounds.

    The machine is shared: a round that lands in someone else's burst is slower on either side, so
    the best round of each (as ``timeit`` advises) is the closest to what the code itself costs.
    """
    library = best_of(r[name], key, higher)
    limit = best_of(r[name + "_limit"], key, higher)
    return library, limit, library / limit


def floor_columns(r: Dict[str, Any], name: str, key: Optional[str], higher: bool, form: str) -> Tuple[str, str]:
    """The floor's best round and floor/limit, formatted; blanks where the floor was not measured."""
    if name + "_floor" not in r:
        return "", ""
    floor = best_of(r[name + "_floor"], key, higher)
    limit = best_of(r[name + "_limit"], key, higher)
    ratio = f"{floor / limit:.2f}" + ("" if higher else "x")
    return form.format(floor), ratio


Row = Tuple[str, str, str, str, str, str, str]
#: The report's columns: the floor is the bare loop on the library's threads (``ThreadedTool``).
HEADER: Row = ("GATTTool backend", "library", "limit", "ratio", "floor", "floor ratio", "target")


def rows(r: Dict[str, Any]) -> List[Row]:
    """(measure, library, limit, ratio, floor, floor ratio, target) for the report: the best round of each."""
    out: List[Row] = []
    for name, size, target in (("notify20", 20, ">= 0.90"), ("notify244", 244, ">= 0.95")):
        library, limit, ratio = compare(r, name, "per_second", higher=True)
        count = r[name][0]["count"]
        lost = sum(x["lost"] for x in r[name])
        wrong = sum(x["wrong"] for x in r[name])
        floor, floor_ratio = floor_columns(r, name, "per_second", True, "{:,.0f}")
        out.append(
            (
                f"notifications/s, {size} B ({count:,})",
                f"{library:,.0f}",
                f"{limit:,.0f}",
                f"{ratio:.2f}",
                floor,
                floor_ratio,
                target,
            )
        )
        out.append((f"   lost / wrong (all {len(r[name])} rounds)", f"{lost} / {wrong}", "", "", "", "", "0 / 0"))
    if "library_alone20" in r:
        out.append(("library alone, replayed 20 B (notif/s)", f"{r['library_alone20']:,.0f}", "", "", "", "", ""))
    if "commands_alone" in r:
        alone = r["commands_alone"]
        out.append(
            (
                "library alone, per read / write (µs, hot)",
                f"{alone['read_us']:.1f} / {alone['write_us']:.1f}",
                "",
                "",
                "",
                "",
                "reported",
            )
        )
    if "discovery_alone" in r:
        alone = r["discovery_alone"]
        out.append(
            (
                "library alone, per discovery of 4 / 60 (µs, hot)",
                f"{alone['chars4_us']:.0f} / {alone['chars60_us']:.0f}",
                "",
                "",
                "",
                "",
                "reported",
            )
        )
    for key, label, target in (("median_ms", "median", "<= 1.5x"), ("p99_ms", "p99", "")):
        library, limit, ratio = compare(r, "read", key)
        floor, floor_ratio = floor_columns(r, "read", key, False, "{:.3f}")
        out.append(
            (
                f"char_read_handle {label} (ms)",
                f"{library:.3f}",
                f"{limit:.3f}",
                f"{ratio:.2f}x",
                floor,
                floor_ratio,
                target,
            )
        )
    library, limit, ratio = compare(r, "writes", higher=True)
    floor, floor_ratio = floor_columns(r, "writes", None, True, "{:,.0f}")
    out.append(
        ("writes/s with response", f"{library:,.0f}", f"{limit:,.0f}", f"{ratio:.2f}", floor, floor_ratio, ">= 0.80")
    )
    if "writes_session" in r:
        alone = best_of(r["writes_session"], None, True)
        out.append(
            (
                "   the same, session alone (diagnostic)",
                f"{alone:,.0f}",
                f"{limit:,.0f}",
                f"{alone / limit:.2f}",
                "",
                "",
                "reported",
            )
        )
    for name, count in (("discover4", 4), ("discover60", 60)):
        library, limit, ratio = compare(r, name)
        out.append(
            (
                f"discover, {count} characteristics (ms)",
                f"{library * 1000:.2f}",
                f"{limit * 1000:.2f}",
                f"{ratio:.2f}x",
                "",
                "",
                "<= 2x",
            )
        )
    for name, size in (("notify20", 20), ("notify244", 244)):
        library, limit, ratio = compare(r, name, "cpu_per_10k")
        floor, floor_ratio = floor_columns(r, name, "cpu_per_10k", False, "{:.3f}")
        out.append(
            (
                f"CPU s per 10k notifications, {size} B",
                f"{library:.3f}",
                f"{limit:.3f}",
                f"{ratio:.1f}x",
                floor,
                floor_ratio,
                "reported",
            )
        )
    out.append(("idle CPU, connected (% of a core)", f"{r['idle_cpu_percent']:.3f}", "", "", "", "", "reported"))
    mem = r["flood_memory"]
    out.append(
        (
            f"RSS before / peak / after a {r['flood']:,} flood (MiB)",
            f"{mem['before_mib']:.1f} / {mem['peak_mib']:.1f} / {mem['after_mib']:.1f}",
            "",
            "",
            "",
            "",
            "flat",
        )
    )
    return out
