"""Benchmark the D-Bus backend against the simulated BlueZ, over a real private dbus-daemon.

    python -m bench.dbus            # notifications/s, read round trip, idle CPU
    python -m bench.dbus --quick    # smaller counts

The simulated ``org.bluez`` runs in a process of its own (so it does not share
the GIL with the library), on a private ``dbus-daemon``; the library is a plain
``DBusBackend`` pointed at that bus. Every number therefore includes the bus
daemon's routing and the simulator's own cost: the simulated BlueZ is Python,
so the notification rate measured here is a floor for the library, not its
ceiling (``bench/dbus_libraries.py`` measures the client side alone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pygatt  # noqa: E402
from bench.common import idle_cpu_percent  # noqa: E402
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World  # noqa: E402
from pygatt.testing.dbus_bus import PrivateBus, find_daemon  # noqa: E402

ADDRESS = "C4:7C:8D:6A:3E:01"
STREAM_UUID = "a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b"
READ_UUID = "2a19"
START_TIMEOUT_S = 20.0
# Seconds between streamed values; 0 sends them as fast as the simulated BlueZ can. Under heavy load the
# simulated BlueZ (dbus-fast) has been seen to lose its bus connection (EAGAIN in its socket writer);
# the run then reports the values it did not send as lost instead of waiting forever.
STREAM_INTERVAL_S = float(os.environ.get("PYGATT_BENCH_DBUS_INTERVAL", "0"))


def bench_world(count: int, size: int = 20) -> World:
    """A peripheral that streams ``count`` numbered notifications of ``size`` bytes when subscribed."""
    stream = NotifyStream(trigger="subscribe", interval_s=STREAM_INTERVAL_S, count=count, size=size)
    return World(
        peripherals=[
            Peripheral(
                address=ADDRESS,
                name="bench",
                bonded=True,
                services=[
                    Service(
                        uuid="180f",
                        characteristics=[
                            Characteristic(uuid=READ_UUID, properties=["read"], value="5a"),
                            Characteristic(uuid=STREAM_UUID, properties=["notify"], value="00", notify=stream),
                        ],
                    )
                ],
            )
        ]
    )


@contextmanager
def simulated_bluez(directory: str, world: World) -> Iterator[str]:
    """A private bus and the simulated BlueZ in a child process; yields the bus address."""
    path = world.write(os.path.join(directory, "dbus-bench-world.json"))
    code = (
        "import sys; from pygatt.testing import load_world; "
        "from pygatt.testing.sim.bluez_dbus import run_until_stopped; "
        "sys.exit(run_until_stopped(load_world(sys.argv[1]), sys.argv[2], 'hci0'))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with PrivateBus() as bus:
        child = subprocess.Popen(
            [sys.executable, "-c", code, str(path), bus.address], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            if child.stdout is None or "simulated org.bluez" not in child.stdout.readline():
                raise RuntimeError("the simulated BlueZ did not start")
            yield bus.address
        finally:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


@contextmanager
def connected(address: str) -> Iterator[Tuple[pygatt.DBusBackend, Any]]:
    backend = pygatt.DBusBackend(bus_address=address)
    backend.start(timeout=START_TIMEOUT_S)
    try:
        yield backend, backend.connect(ADDRESS, timeout=START_TIMEOUT_S)
    finally:
        backend.stop()


def throughput(directory: str, count: int, size: int = 20) -> Dict[str, Any]:
    """Subscribe and receive ``count`` notifications; per second, lost, corrupted, library CPU."""
    received: List[int] = []
    done = threading.Event()
    corrupted = 0

    def on_value(handle: int, value: bytearray) -> None:
        nonlocal corrupted
        if len(value) != size:
            corrupted += 1
        received.append(int.from_bytes(value[:4], "big"))
        if len(received) >= count:
            done.set()

    with simulated_bluez(directory, bench_world(count, size)) as address, connected(address) as (_, device):
        device.get_handle(STREAM_UUID)
        cpu = time.process_time()
        started = time.perf_counter()
        device.subscribe(STREAM_UUID, callback=on_value)
        done.wait(max(30.0, count / 500))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    in_order = received == sorted(received) and len(set(received)) == len(received)
    return {
        "count": count,
        "per_second": len(received) / elapsed,
        "lost": count - len(received),
        "corrupted": corrupted + (0 if in_order else 1),
        "cpu_seconds": cpu,
    }


def read_latency(directory: str, reads: int) -> Dict[str, float]:
    """``char_read_handle`` round trips through the bus and the simulated BlueZ: median and p99 in ms."""
    with simulated_bluez(directory, bench_world(1)) as address, connected(address) as (_, device):
        handle = device.get_handle(READ_UUID)
        device.char_read_handle(handle)
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            device.char_read_handle(handle)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1]}


def idle_cpu(directory: str, seconds: float) -> float:
    """Percent of a core the library uses while connected and subscribed, with no traffic."""
    with simulated_bluez(directory, bench_world(1)) as address, connected(address) as (_, device):
        device.subscribe(STREAM_UUID, callback=lambda handle, value: None)
        time.sleep(0.5)  # the one notification of the stream has come and gone
        return idle_cpu_percent(seconds)


def rows(r: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """Report lines (measure, result, target) for ``python -m bench``."""
    t, rd = r["dbus_throughput"], r["dbus_read"]
    count = t["count"]
    return [
        ("D-Bus (simulated BlueZ in its own process on a private dbus-daemon)", "", ""),
        (f"notifications/s ({count:,} x 20 B)", f"{t['per_second']:,.0f}", ""),
        ("   lost / corrupted", f"{t['lost']} / {t['corrupted']}", "0 / 0"),
        ("   library CPU s per 100k notifications", f"{t['cpu_seconds'] * 100_000 / count:.2f}", ""),
        ("char_read median / p99 (ms)", f"{rd['median_ms']:.3f} / {rd['p99_ms']:.3f}", ""),
        ("idle CPU, connected (% of a core)", f"{r['dbus_idle_cpu_percent']:.2f}", "~0"),
    ]


def steps(quick: bool) -> List[Tuple[str, Callable[[str], Any]]]:
    """The D-Bus measurements as ``(result name, function of the work directory)``; none without dbus-daemon."""
    if find_daemon() is None:
        sys.stderr.write("bench: no dbus-daemon (apt-get install dbus-daemon): the D-Bus backend is not measured\n")
        return []
    count = 5_000 if quick else 50_000
    return [
        ("dbus_throughput", lambda d: throughput(d, count)),
        ("dbus_read", lambda d: read_latency(d, 200 if quick else 2000)),
        ("dbus_idle_cpu_percent", lambda d: idle_cpu(d, 2 if quick else 10)),
    ]


def main(argv: Optional[List[str]] = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        results = {name: step(directory) for name, step in steps(args.quick)}
    lines = rows(results)
    width = max(len(name) for name, _, _ in lines)
    for name, value, target in lines:
        sys.stdout.write(f"{name:<{width}}  {value:>22}  {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
