"""Where the GATTTool backend's distance from the floor lies: the library with one part taken out.

    python -m bench.gaps               # writes and 20 B floods, 8 rounds each (a few minutes)
    python -m bench.gaps --quick       # a smoke run
    python -m bench.gaps --json FILE   # keep every round

Experiments, not features. Each *variant* is a backend connected to its own simulator,
with one part of the library replaced in place (private attributes: this is a
measurement harness, and the library has no reason to offer these switches), and it
takes its turns with the library as shipped, the floor and the limit of
:mod:`bench.gatttool` -- a block each, in an order rotated every round, so that
someone else's load hits all sides alike. Each figure is a per-round ratio to the
limit; the report gives the median and the range, and how often a variant beat the
library in the same round.

A variant that runs faster than the library shows what the part it removes costs in
place (on a woken thread of this shared machine, not in a hot loop); one that does not
shows that part is not where the time goes. Nothing here is asserted by the tests
beyond each variant working (see tests/test_bench_gaps.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import HR_VALUE_HANDLE, collect_flood, flood_world, this_machine, world_file  # noqa: E402
from bench.gatttool import HR_CCCD, WRITE_HANDLE, RawTool, ThreadedTool, connected, raw_write  # noqa: E402
from pygatt.backends.gatttool import commands  # noqa: E402
from pygatt.backends.gatttool.parser import Event, Notification, NotificationRun  # noqa: E402
from pygatt.backends.gatttool.session import GATTToolSession, Notifications  # noqa: E402
from pygatt.testing import load_world  # noqa: E402

#: One side of an experiment: a block of work, and what to do untimed after it.
Side = Tuple[Callable[[], None], Callable[[], None]]
NOTIFICATION_MARK = "Notification handle"


def session_of(backend: Any, device: Any) -> GATTToolSession:
    """The session behind a connected device (private: a measurement harness)."""
    return backend._link(device).session  # type: ignore[no-any-return]


def in_turns(sides: Dict[str, Side], rounds: int, blocks: int, limit: str = "limit") -> Dict[str, List[float]]:
    """Per-round ratio of each side to ``limit`` (its time over theirs), the sides taking turns a block at a time.

    The first round warms up and is not counted. Every round starts the turns one side later.
    """
    names = list(sides)
    ratios: Dict[str, List[float]] = {name: [] for name in names}
    for number in range(rounds + 1):
        order = names[number % len(names) :] + names[: number % len(names)]
        seconds = dict.fromkeys(names, 0.0)
        for _ in range(blocks):
            for name in order:
                take, after = sides[name]
                started = time.perf_counter()
                take()
                seconds[name] += time.perf_counter() - started
                after()
        if number:
            for name in names:
                ratios[name].append(seconds[limit] / seconds[name])
    return ratios


class Started:
    """What one experiment starts -- the limit's bare loop, the floor, and backends -- all closed when it ends.

    Used as a context manager: on the way out (or when starting the floor fails) every backend is
    stopped and both simulators read by the bench are closed, the last started first.

    Args:
        path: the world file every side's simulator runs.
        discover: have each backend discover its characteristics once connected (a flood subscribes).
    """

    def __init__(self, path: str, discover: bool = False) -> None:
        self._path = path
        self._discover = discover
        self._started: List[Any] = []

    def __enter__(self) -> Started:
        try:
            self.tool = RawTool(self._path)
            self._started.append(self.tool)
            self.floor = ThreadedTool(self._path)
            self._started.append(self.floor)
        except BaseException:
            self.__exit__()
            raise
        return self

    def backend(self) -> Tuple[Any, Any]:
        """A new backend connected to its own simulator, and its device."""
        backend, device = connected(self._path)
        self._started.append(backend)
        if self._discover:
            device.discover_characteristics()
        return backend, device

    def __exit__(self, *exc: object) -> None:
        for thing in reversed(self._started):
            if hasattr(thing, "stop"):
                thing.stop()  # a backend
            else:
                thing.close()  # RawTool, ThreadedTool
        self._started.clear()


# -- writes --------------------------------------------------------------------------------


def memoized_feed(session: GATTToolSession) -> None:
    """Decode each distinct chunk once; replay its events after that (decoding made nearly free).

    Only sound for output that repeats exactly in the same decoder state, as the answers to
    one kind of command do; the experiment writes 256 values in turn, so it holds ~512 chunks.
    """
    decoder = session._decoder
    decode = decoder.feed
    seen: Dict[str, List[Event]] = {}

    def feed(data: str) -> List[Event]:
        events = seen.get(data)
        if events is None:
            events = seen[data] = decode(data)
        return list(events)

    decoder.feed = feed  # type: ignore[method-assign]


def raw_sendline(session: GATTToolSession) -> None:
    """Send with one ``os.write`` on the pty instead of pexpect's ``send`` (and the child's write lock)."""
    process = session._process
    assert process is not None
    child: Any = process._child
    master = child._master

    def sendline(line: str) -> None:
        os.write(master, (line + "\n").encode())

    child.sendline = sendline


def write_gaps(path: str, rounds: int, writes: int = 50, blocks: int = 20) -> Dict[str, List[float]]:
    """Acknowledged writes: the library, variants of it, the floor and the limit, per-round ratios.

    Args:
        path: the world file (the heart-rate world: ``WRITE_HANDLE`` is written with response).
        rounds: counted rounds.
        writes: writes per block.
        blocks: blocks per side per round.
    """
    with Started(path) as started:
        tool, floor, backend = started.tool, started.floor, started.backend
        _, library = backend()
        unpexpected_backend, unpexpected = backend()
        raw_sendline(session_of(unpexpected_backend, unpexpected))
        alone = session_of(*backend())
        free = session_of(*backend())
        memoized_feed(free)

        def by_device(device: Any) -> Callable[[int], None]:
            return lambda n: device.char_write_handle(WRITE_HANDLE, bytes([n & 0xFF]), wait_for_response=True)

        def by_session(session: GATTToolSession) -> Callable[[int], None]:
            return lambda n: session.run(commands.write(WRITE_HANDLE, bytes([n & 0xFF]), True), 30)

        writers: Dict[str, Callable[[int], None]] = {
            "library": by_device(library),
            "library, os.write instead of pexpect's send": by_device(unpexpected),
            "session alone (no API, backend or link layers)": by_session(alone),
            "session alone, each distinct chunk decoded once": by_session(free),
            "floor": lambda n: floor.round_trip(
                f"char-write-req 0x{WRITE_HANDLE:04x} {n & 0xFF:02x}", b"successfully\r\n"
            ),
            "limit": lambda n: raw_write(tool, n),
        }
        counter = {"n": 0}

        def block_of(write: Callable[[int], None]) -> Side:
            def take() -> None:
                start = counter["n"]
                for n in range(start, start + writes):
                    write(n)

            def after() -> None:
                counter["n"] = (counter["n"] + writes) % 256  # the next block writes the next values

            return take, after

        for write in writers.values():  # every value once on every side: each memo and cache filled alike
            for n in range(256):
                write(n)
        return in_turns({name: block_of(write) for name, write in writers.items()}, rounds, blocks)


# -- floods ----------------------------------------------------------------------------------


def single_reads(session: GATTToolSession) -> None:
    """Hand on each ``os.read`` as it comes, without taking what else the pty holds (no gathering)."""
    process = session._process
    assert process is not None
    child: Any = process._child
    master, decoder = child._master, child._decoder

    def read(size: int) -> str:
        while True:
            try:
                data = os.read(master, size)
            except OSError:
                data = b""
            if not data:
                return str(decoder.decode(b"", final=True))
            text = str(decoder.decode(data))
            if text:
                return text

    child.read = read


class CountedLines:
    """While on, a flood's notification lines are counted, not decoded: each becomes one stand-in event.

    A chunk carrying a command's answer still goes through the real decoder for its other events.
    """

    def __init__(self, session: GATTToolSession, size: int) -> None:
        self.on = False
        self._tail = ""
        decoder = session._decoder
        self._decoder = decoder
        self._decode = decoder.feed
        self._stand_in = Notification(HR_VALUE_HANDLE, bytes(size), False)
        decoder.feed = self.feed  # type: ignore[method-assign]

    def feed(self, data: str) -> List[Event]:
        if not self.on:
            return self._decode(data)
        text = self._tail + data
        self._tail = text[-(len(NOTIFICATION_MARK) - 1) :]
        events: List[Event] = []
        if "successfully" in data:  # the subscription's answer: the tracker needs it
            events = [event for event in self._decode(data) if type(event) not in (Notification, NotificationRun)]
        return events + [self._stand_in] * text.count(NOTIFICATION_MARK)

    def off(self) -> None:
        """Back to decoding, with nothing half-read left from the counted lines."""
        self.on = False
        self._tail = ""
        self._decoder._pending = ""
        self._decoder._repeat = None


def flood_gaps(
    directory: str, rounds: int, block: int = 10_000, size: int = 20, blocks: int = 6
) -> Dict[str, List[float]]:
    """Floods of ``size``-byte notifications: the library, variants of it, the floor and the limit.

    Every library side gets ``block`` notifications per block (the simulator sends exactly that many
    per subscription); the library as shipped and the variants that still decode deliver them to a
    callback that keeps every value, as the main bench does.
    """
    path = world_file(flood_world(block, size), directory, f"gaps{size}")
    subscribe = f"char-write-req 0x{HR_CCCD:04x} 0100"
    unsubscribe = f"char-write-req 0x{HR_CCCD:04x} 0000"
    with Started(path, discover=True) as started:
        tool, floor, backend = started.tool, started.floor, started.backend

        def collected(device: Any) -> Side:
            def take() -> None:
                got = collect_flood(device, block)["got"]
                if len(got) != block:
                    raise RuntimeError(f"{len(got)} of {block} notifications arrived")

            return take, lambda: device.unsubscribe_handle(HR_VALUE_HANDLE)

        _, library = backend()
        ungathered_backend, ungathered = backend()
        single_reads(session_of(ungathered_backend, ungathered))

        counted_backend, counted_device = backend()
        counted = CountedLines(session_of(counted_backend, counted_device), size)

        def counted_take() -> None:
            counted.on = True
            try:
                got = collect_flood(counted_device, block)["got"]
            finally:
                counted.off()
            if len(got) != block:
                raise RuntimeError(f"{len(got)} of {block} lines counted")

        reader_backend, reader_device = backend()
        on_reader = {"count": 0}
        arrived = threading.Event()

        def count_on_reader(session: GATTToolSession, batch: Notifications) -> None:
            on_reader["count"] += sum(len(e.values) if type(e) is NotificationRun else 1 for e in batch)
            if on_reader["count"] >= block:
                arrived.set()

        reader_backend._route_notifications = count_on_reader
        reader_session = session_of(reader_backend, reader_device)

        def reader_take() -> None:
            on_reader["count"] = 0
            arrived.clear()
            reader_session.run(commands.write(HR_CCCD, b"\x01\x00", True), 30)
            if not arrived.wait(120):
                raise RuntimeError(f"{on_reader['count']} of {block} notifications arrived")

        def reader_after() -> None:
            reader_session.run(commands.write(HR_CCCD, b"\x00\x00", True), 30)

        _, yielding = backend()
        deliver = yielding.receive_notifications

        def deliver_then_yield(notifications: Sequence[Tuple[int, bytes]]) -> None:
            deliver(notifications)
            time.sleep(0)  # let the reader have the GIL between two calls of at most 32 values

        yielding.receive_notifications = deliver_then_yield
        deliver_run = yielding.receive_run

        def deliver_run_then_yield(handle: int, values: Sequence[bytes]) -> None:
            deliver_run(handle, values)
            time.sleep(0)  # the same for a run's calls

        yielding.receive_run = deliver_run_then_yield

        def limit_take() -> None:
            tool.send(subscribe)
            tool.read_until(NOTIFICATION_MARK.encode(), block)

        def settled(side: Any) -> Callable[[], None]:
            def after() -> None:
                side.send(unsubscribe)
                side.settle()

            return after

        sides: Dict[str, Side] = {
            "library": collected(library),
            "library, no gathering (each os.read handed on)": collected(ungathered),
            "library, lines counted instead of decoded": (
                counted_take,
                lambda: counted_device.unsubscribe_handle(HR_VALUE_HANDLE),
            ),
            "library, counted on the reader (no callback thread)": (reader_take, reader_after),
            "library, callback thread yields the GIL after each call": collected(yielding),
            "floor": (lambda: floor.flood(subscribe, block), settled(floor)),
            "limit": (limit_take, settled(tool)),
        }
        return in_turns(sides, rounds, blocks)


# -- the report --------------------------------------------------------------------------------


def summary(ratios: Dict[str, List[float]], baseline: str = "library") -> List[str]:
    """One line per side: median [range] of its per-round ratios, and rounds it beat ``baseline`` in."""
    lines = []
    for name, values in ratios.items():
        line = f"  {name:58s} {statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"
        if name not in (baseline, "limit"):
            wins = sum(value > base for value, base in zip(values, ratios[baseline]))
            line += f"  above the {baseline} in {wins} of {len(values)} rounds"
        lines.append(line)
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of small blocks (a smoke run)")
    parser.add_argument("--rounds", type=int, default=8, help="counted rounds per experiment (default 8)")
    parser.add_argument("--json", metavar="FILE", help="write every round's ratios as JSON")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    results: Dict[str, Any] = {**this_machine(), "rounds": rounds}
    with tempfile.TemporaryDirectory() as directory:
        heart = world_file(load_world("heart-rate"), directory, "heart")
        print("... writes", file=sys.stderr, flush=True)
        writes = write_gaps(heart, rounds, blocks=2 if args.quick else 20)
        print("... 20 B floods", file=sys.stderr, flush=True)
        floods = flood_gaps(directory, rounds, block=1_000 if args.quick else 10_000, blocks=2 if args.quick else 6)
    results.update(writes=writes, notify20=floods, load_average_after=os.getloadavg())
    print(f"machine: {results['machine']}, Python {results['python']}")
    print("load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}".format(*results["load_average"]))
    print("load average (1/5/15 min) after:  {:.2f} {:.2f} {:.2f}".format(*results["load_average_after"]))
    print(f"per-round ratio to the limit, median [range] of {rounds} round(s); higher is faster")
    print("writes with response:")
    print("\n".join(summary(writes)))
    print("notifications, 20 B:")
    print("\n".join(summary(floods)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
