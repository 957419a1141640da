"""Benchmark pygatt's GATTTool, BGAPI and D-Bus backends against their simulators (real ptys, a real bus).

    python -m bench            # the full run (about a minute)
    python -m bench --quick    # smaller counts, for a smoke test
    python -m bench --plot docs/performance-throughput.png   # also plot throughput vs size

Prints one table. Times are wall-clock on this machine; the simulator runs on the
same cores, so compare ratios within one run rather than numbers across machines.
Nothing here is asserted: the unit tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pexpect  # noqa: E402

import pygatt  # noqa: E402
import pygatt.dispatch  # noqa: E402
from bench import bgapi, dbus  # noqa: E402
from pygatt.backends.gatttool.tools import ToolCommands  # noqa: E402
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World, load_world  # noqa: E402

ADDRESS = "C4:7C:8D:6A:3E:01"
HR_VALUE_HANDLE = 0x0008
BATTERY_VALUE_HANDLE = 0x0010


def world_file(world: World, directory: str, name: str) -> str:
    return str(world.write(Path(directory) / f"{name}.json"))


def flood_world(count: int, size: int) -> World:
    world = load_world("heart-rate")
    world.peripherals[0].services[1].characteristics[0].notify = NotifyStream(interval_s=0, count=count, size=size)
    return world


def big_world(characteristics: int) -> World:
    per_service = 10
    services = [
        Service(
            f"{0xA000 + s:04x}",
            [Characteristic(f"{0xB000 + s * per_service + c:04x}", ["read"], value="01") for c in range(per_service)],
        )
        for s in range(characteristics // per_service)
    ]
    return World(peripherals=[Peripheral(address=ADDRESS, name="Big", services=services)])


def connected(world_path: str) -> tuple[pygatt.GATTToolBackend, Any]:
    backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(world_path))
    backend.start(reset_on_start=False)
    return backend, backend.connect(ADDRESS, timeout=10)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def simulated_gatttool(path: str) -> Any:
    """The simulated gatttool on a raw pexpect pty, connected, with nothing of the library in between."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pygatt.testing.sim", "gatttool", "--world", path, "--", "-I"],
        env=dict(os.environ, TERM="dumb"),
        encoding="utf-8",
        timeout=30,
    )
    child.delaybeforesend = None  # as the library does
    child.expect_exact("[LE]> ")
    child.sendline(f"connect {ADDRESS}")
    child.expect_exact("Connection successful")
    child.expect_exact("[LE]> ")
    return child


# -- 1. notification throughput ---------------------------------------------------------


def throughput(directory: str, count: int, size: int) -> Dict[str, Any]:
    world = flood_world(count, size)
    stream = world.peripherals[0].services[1].characteristics[0].notify
    assert stream is not None
    backend, device = connected(world_file(world, directory, f"flood{size}"))
    try:
        device.discover_characteristics()
        got: List[bytes] = []
        done = threading.Event()

        def callback(handle: int, value: bytearray) -> None:
            got.append(bytes(value))
            if len(got) == count:
                done.set()

        cpu = time.process_time()
        started = time.perf_counter()
        device.subscribe_handle(HR_VALUE_HANDLE, callback)
        done.wait(120)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        expected = [stream.value(n) for n in range(count)]
        corrupted = sum(1 for a, b in zip(got, expected) if a != b)
        return {
            "size": size,
            "count": count,
            "received": len(got),
            "lost": count - len(got),
            "corrupted": corrupted,
            "seconds": elapsed,
            "per_second": len(got) / elapsed,
            "cpu_seconds": cpu,
        }
    finally:
        backend.stop()


def raw_simulator_rate(directory: str, count: int, size: int = 20) -> float:
    """Notifications per second the simulator itself prints, read raw with no parsing."""
    child = simulated_gatttool(world_file(flood_world(count, size), directory, f"raw{size}"))
    try:
        started = time.perf_counter()
        child.sendline("char-write-req 0x0009 0100")
        lines = 0
        while lines < count + 2:
            lines += child.read_nonblocking(65536, timeout=30).count("\n")
        return count / (time.perf_counter() - started)
    finally:
        child.close(force=True)


# -- 2. read round trip -------------------------------------------------------------------


def read_latency(directory: str, reads: int) -> Dict[str, float]:
    path = world_file(load_world("heart-rate"), directory, "reads")
    backend, device = connected(path)
    try:
        for _ in range(50):
            device.char_read_handle(BATTERY_VALUE_HANDLE)
        samples = []
        for _ in range(reads):
            started = time.perf_counter()
            device.char_read_handle(BATTERY_VALUE_HANDLE)
            samples.append(time.perf_counter() - started)
    finally:
        backend.stop()
    baseline = raw_read_latency(path, reads)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000,
        "simulator_median_ms": statistics.median(baseline) * 1000,
        "overhead_median_ms": (statistics.median(samples) - statistics.median(baseline)) * 1000,
    }


def raw_read_latency(path: str, reads: int) -> List[float]:
    """The simulator's own reply time: bytes written to and read from the pty directly."""
    child = simulated_gatttool(path)
    try:
        time.sleep(0.1)
        fd = child.child_fd
        while select.select([fd], [], [], 0)[0]:
            os.read(fd, 65536)
        samples = []
        for n in range(reads + 50):
            started = time.perf_counter()
            os.write(fd, b"char-read-hnd 0x0010\n")
            seen = b""
            while b"descriptor: 5a \r\n" not in seen:
                seen += os.read(fd, 65536)
            if n >= 50:
                samples.append(time.perf_counter() - started)
            time.sleep(0.0002)  # let the trailing prompt arrive
            while select.select([fd], [], [], 0)[0]:
                os.read(fd, 65536)
        return samples
    finally:
        child.close(force=True)


def library_alone_rate(count: int, size: int = 20) -> float:
    """Notifications per second the library handles with the simulator out of the way:
    pre-rendered gatttool output fed to a real session (reader, parser, routing,
    dispatcher, callback) as fast as it can take it.
    """
    from pygatt.backends.gatttool.session import GATTToolSession

    prompt = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "
    value = " ".join(f"{b & 0xFF:02x}" for b in range(size)) + " "
    line = "\r" + " " * 45 + f"\rNotification handle = 0x0008 value: {value}\r\n" + prompt
    text = prompt + line * count
    chunks = [text[i : i + 65536] for i in range(0, len(text), 65536)]

    class Replay:
        pid = 0
        delaybeforesend = 0.05

        def __init__(self) -> None:
            self.chunks = iter(chunks)

        def read_nonblocking(self, size: int, timeout: Any = None) -> str:
            for chunk in self.chunks:
                return chunk
            raise pexpect.EOF("replay finished")

        def sendline(self, line: str) -> None:
            pass

        def kill(self, sig: int) -> None:
            pass

        def close(self, force: bool = True) -> None:
            pass

    device = pygatt.BLEDevice(ADDRESS)
    received = []
    done = threading.Event()

    def callback(handle: int, data: bytearray) -> None:
        received.append(data)
        if len(received) == count:
            done.set()

    device._callbacks[0x0008] = [callback]
    dispatcher = pygatt.dispatch.CallbackDispatcher()
    dispatcher.start()
    session = GATTToolSession(
        ["replay"], lambda h, v, i: dispatcher.submit(device.receive_notification, h, v), lambda why: None
    )
    original = pexpect.spawn
    pexpect.spawn = lambda *a, **k: Replay()  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        session.start(5)
        done.wait(60)
        elapsed = time.perf_counter() - started
    finally:
        pexpect.spawn = original  # type: ignore[assignment]
        session.close()
        dispatcher.stop()
    return len(received) / elapsed


# -- 3. connect + discover, 3b. writes without response -----------------------------------


def connect_discover(directory: str, runs: int) -> Dict[str, float]:
    path = world_file(big_world(60), directory, "big60")
    connects, discovers = [], []
    backend = pygatt.GATTToolBackend(tools=ToolCommands.simulated(path))
    backend.start(reset_on_start=False)
    try:
        for _ in range(runs):
            started = time.perf_counter()
            device = backend.connect(ADDRESS, timeout=10)
            connects.append(time.perf_counter() - started)
            started = time.perf_counter()
            found = device.discover_characteristics(timeout=10)
            discovers.append(time.perf_counter() - started)
            assert len(found) == 60, len(found)
            device.disconnect()
    finally:
        backend.stop()
    return {"connect_ms": statistics.median(connects) * 1000, "discover_ms": statistics.median(discovers) * 1000}


def writes_without_response(directory: str, writes: int) -> float:
    backend, device = connected(world_file(load_world("heart-rate"), directory, "writes"))
    try:
        started = time.perf_counter()
        for n in range(writes):
            device.char_write_handle(0x000D, bytes([n & 0xFF]), wait_for_response=False)
        return writes / (time.perf_counter() - started)
    finally:
        backend.stop()


# -- 4. idle CPU, 5. memory during a flood with no callback ----------------------------


def idle_cpu(directory: str, seconds: float) -> float:
    backend, device = connected(world_file(load_world("heart-rate"), directory, "idle"))
    try:
        cpu = time.process_time()
        time.sleep(seconds)
        return (time.process_time() - cpu) / seconds * 100
    finally:
        backend.stop()


def flood_memory(directory: str, count: int) -> Dict[str, float]:
    backend, device = connected(world_file(flood_world(count, 20), directory, "memory"))
    try:
        device.discover_characteristics()
        session = device._session
        baseline = rss_kib()
        peak = baseline
        device.subscribe_handle(HR_VALUE_HANDLE)  # CCCD written, no callback
        deadline = time.monotonic() + 120
        while session.notifications_seen < count and time.monotonic() < deadline:
            peak = max(peak, rss_kib())
            time.sleep(0.005)
        peak = max(peak, rss_kib())
        return {
            "baseline_mib": baseline / 1024,
            "growth_mib": (peak - baseline) / 1024,
            "seen": session.notifications_seen,
        }
    finally:
        backend.stop()


# -- the run ---------------------------------------------------------------------------


def plot(points: List[Dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    sizes = [p["size"] for p in points]
    axis.plot(sizes, [p["library_alone"] for p in points], marker="s", label="library alone (replayed output)")
    axis.plot(sizes, [p["simulator_alone"] for p in points], marker="^", label="simulator alone (raw pty)")
    axis.plot(sizes, [p["per_second"] for p in points], marker="o", label="end to end, delivered to the callback")
    axis.axhline(50_000, color="grey", linestyle="--", label="target 50,000/s")
    axis.set_xlabel("notification value size (bytes)")
    axis.set_ylabel("notifications / s delivered")
    axis.set_title("pygatt GATTTool backend, simulated peripheral")
    axis.set_ylim(bottom=0)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test, about 15 s)")
    parser.add_argument("--plot", metavar="PNG", help="also measure several sizes and plot throughput vs size")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--backend",
        choices=("all", "gatttool", "bgapi", "dbus"),
        default="all",
        help="which backend to measure (default all)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    flood = 10_000 if quick else 100_000
    results: Dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    gatttool_steps: List[tuple] = [
        ("throughput", lambda d: throughput(d, flood, 20)),
        ("simulator_raw_per_second", lambda d: raw_simulator_rate(d, flood)),
        ("library_alone_per_second", lambda d: library_alone_rate(flood)),
        ("read", lambda d: read_latency(d, 200 if quick else 2000)),
        ("connect_discover", lambda d: connect_discover(d, 3 if quick else 10)),
        ("writes_per_second", lambda d: writes_without_response(d, 200 if quick else 2000)),
        ("idle_cpu_percent", lambda d: idle_cpu(d, 2 if quick else 10)),
        ("flood_memory", lambda d: flood_memory(d, flood)),
    ]
    bgapi_steps: List[tuple] = [
        ("bgapi_throughput", lambda d: bgapi.throughput(d, flood)),
        ("bgapi_simulator_per_second", lambda d: bgapi.simulator_rate(d, flood)),
        ("bgapi_read", lambda d: bgapi.read_latency(d, 200 if quick else 2000)),
        ("bgapi_idle_cpu_percent", lambda d: bgapi.idle_cpu(d, 2 if quick else 10)),
    ]
    chosen = {"gatttool": gatttool_steps, "bgapi": bgapi_steps, "dbus": dbus.steps(quick)}
    steps = [step for name, group in chosen.items() if args.backend in ("all", name) for step in group]
    with tempfile.TemporaryDirectory() as directory:
        for name, step in steps:
            print(f"... {name}", file=sys.stderr, flush=True)
            results[name] = step(directory)
        if args.plot and args.backend in ("all", "gatttool"):
            sizes = [1, 20, 60, 120, 244]
            n = 5_000 if quick else 30_000
            results["sizes"] = [
                dict(
                    throughput(directory, n, size),
                    simulator_alone=raw_simulator_rate(directory, n, size),
                    library_alone=library_alone_rate(n, size),
                )
                for size in sizes
            ]
            plot(results["sizes"], args.plot)
    report(results, flood)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def report(r: Dict[str, Any], flood: int) -> None:
    rows = [("machine", r["machine"], ""), ("python", r["python"], "")]
    if "throughput" in r:
        rows += gatttool_rows(r, flood)
    if "bgapi_throughput" in r:
        rows += bgapi_rows(r, flood)
    if "dbus_throughput" in r:
        rows += dbus.rows(r)
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'result':>22}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>22}  {target}")


def gatttool_rows(r: Dict[str, Any], flood: int) -> List[tuple]:
    t, rd, cd, mem = r["throughput"], r["read"], r["connect_discover"], r["flood_memory"]
    rows = [
        (f"1. notifications/s ({flood:,} x 20 B)", f"{t['per_second']:,.0f}", ">= 50,000"),
        ("   lost / corrupted", f"{t['lost']} / {t['corrupted']}", "0 / 0"),
        ("   library CPU s per 100k notifications", f"{t['cpu_seconds'] * 100_000 / flood:.2f}", ""),
        ("   simulator alone, raw pty (notif/s)", f"{r['simulator_raw_per_second']:,.0f}", ""),
        ("   library alone, replayed output (notif/s)", f"{r['library_alone_per_second']:,.0f}", ""),
        ("2. char_read median / p99 (ms)", f"{rd['median_ms']:.3f} / {rd['p99_ms']:.3f}", ""),
        ("   simulator's own reply, median (ms)", f"{rd['simulator_median_ms']:.3f}", ""),
        ("   library overhead, median (ms)", f"{rd['overhead_median_ms']:.3f}", "<= 1"),
        ("3. connect, 60-characteristic device (ms)", f"{cd['connect_ms']:.1f}", ""),
        ("   discover 60 characteristics (ms)", f"{cd['discover_ms']:.1f}", "upstream >= 1500"),
        ("3b. writes without response/s", f"{r['writes_per_second']:,.0f}", ""),
        ("4. idle CPU, connected (% of a core)", f"{r['idle_cpu_percent']:.2f}", "<= 1"),
        ("5. RSS growth in the flood, no callback (MiB)", f"{mem['growth_mib']:.1f}", "<= 10"),
    ]
    for size in r.get("sizes", []):
        rows.append(
            (
                f"   at {size['size']} B: end to end / simulator / library",
                f"{size['per_second']:,.0f} / {size['simulator_alone']:,.0f} / {size['library_alone']:,.0f}",
                "",
            )
        )
    return rows


def bgapi_rows(r: Dict[str, Any], flood: int) -> List[tuple]:
    bt, brd = r["bgapi_throughput"], r["bgapi_read"]
    return [
        ("BGAPI (simulated BLED112 on a pty)", "", ""),
        (f"6. notifications/s ({flood:,} x 20 B)", f"{bt['per_second']:,.0f}", ">= 30,000"),
        ("   lost / corrupted", f"{bt['lost']} / {bt['corrupted']}", "0 / 0"),
        ("   library CPU s per 100k notifications", f"{bt['cpu_seconds'] * 100_000 / flood:.2f}", ""),
        ("   simulated dongle alone, raw pty (notif/s)", f"{r['bgapi_simulator_per_second']:,.0f}", ""),
        ("7. char_read median / p99 (ms)", f"{brd['median_ms']:.3f} / {brd['p99_ms']:.3f}", ""),
        ("   simulated dongle's own reply, median (ms)", f"{brd['simulator_median_ms']:.3f}", ""),
        ("   library overhead, median (ms)", f"{brd['overhead_median_ms']:.3f}", "<= 1"),
        ("8. idle CPU, connected (% of a core)", f"{r['bgapi_idle_cpu_percent']:.2f}", "~0"),
    ]


if __name__ == "__main__":
    sys.exit(main())
