"""Benchmark steps for the BGAPI backend: the simulated BLED112 in a process of its
own, on a real pty, driven by ``BGAPIBackend`` (or, for the baselines, by raw
bytes through pyserial with nothing of the backend in between).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import serial

from bench.common import HR_VALUE_HANDLE, collect_flood, flood_world, idle_cpu_percent, stream_of, world_file
from pygatt import BGAPIBackend
from pygatt.backends.bgapi import codec
from pygatt.testing import load_world

ADDRESS = "C4:7C:8D:6A:3E:01"
BATTERY_VALUE_HANDLE = 0x0010
REPO = Path(__file__).resolve().parent.parent


class DongleProcess:
    """``python -m pygatt.testing.sim bgapi --world PATH`` on a pty; ``port`` is the pty's path."""

    def __init__(self, world_path: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("PYGATT_SIMULATE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pygatt.testing.sim", "bgapi", "--world", world_path],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.port = self.process.stdout.readline().strip()
        if not self.port:
            self.close()
            raise RuntimeError("the simulated BLED112 did not start")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _connected(world_path: str) -> Tuple[DongleProcess, BGAPIBackend, Any]:
    dongle = DongleProcess(world_path)
    backend = BGAPIBackend(dongle.port)
    backend.start(reset=False)
    return dongle, backend, backend.connect(ADDRESS, timeout=10)


def throughput(directory: str, count: int, size: int = 20) -> Dict[str, Any]:
    """Notifications per second end to end, and how many were lost or corrupted."""
    world = flood_world(count, size)
    dongle, backend, device = _connected(world_file(world, directory, f"bgapi-flood{size}"))
    try:
        device.discover_characteristics()
        flood = collect_flood(device, count)
    finally:
        backend.stop()
        dongle.close()
    got, elapsed = flood["got"], flood["seconds"]
    stream = stream_of(world)
    return {
        "count": count,
        "received": len(got),
        "lost": count - len(got),
        "corrupted": sum(1 for n, value in enumerate(got) if value != stream.value(n)),
        "seconds": elapsed,
        "per_second": len(got) / elapsed,
        "cpu_seconds": flood["cpu"],
    }


def simulator_rate(directory: str, count: int, size: int = 20) -> float:
    """Notifications per second the simulated dongle sends, read raw (frames only counted)."""
    dongle = DongleProcess(world_file(flood_world(count, size), directory, f"bgapi-raw{size}"))
    port = serial.Serial(dongle.port, timeout=0.5)
    try:
        messages = _raw_connect(port)
        decoder = codec.FrameDecoder()
        cccd = HR_VALUE_HANDLE + 1
        port.write(codec.encode_command("attclient_write_command", connection=0, atthandle=cccd, data=b"\x01\x00"))
        started = time.perf_counter()
        seen = sum(1 for p in messages if p.msg_class == 4 and p.msg_id == 5 and p.is_event)
        while seen < count:
            data = port.read(max(1, port.in_waiting))
            if not data:
                break
            seen += sum(1 for p in decoder.feed(data) if p.is_event and p.msg_class == 4 and p.msg_id == 5)
        return seen / (time.perf_counter() - started)
    finally:
        port.close()
        dongle.close()


def _raw_connect(port: Any) -> List[codec.Packet]:
    """Connect to ADDRESS with raw commands; returns packets read after the connection_status."""
    decoder = codec.FrameDecoder()
    port.write(
        codec.encode_command(
            "gap_connect_direct",
            address=ADDRESS,
            addr_type=0,
            conn_interval_min=60,
            conn_interval_max=76,
            timeout=100,
            latency=0,
        )  # fmt: skip
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        packets = decoder.feed(port.read(max(1, port.in_waiting)))
        for index, packet in enumerate(packets):
            if packet.is_event and (packet.msg_class, packet.msg_id) == (3, 0):
                return packets[index + 1 :]
    raise RuntimeError("the simulated BLED112 did not connect")


def read_latency(directory: str, reads: int) -> Dict[str, float]:
    """char_read_handle round trips, and the simulator's own reply time for the same read."""
    path = world_file(load_world("heart-rate"), directory, "bgapi-reads")
    dongle, backend, device = _connected(path)
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
        dongle.close()
    baseline = raw_read_latency(path, reads)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000,
        "simulator_median_ms": statistics.median(baseline) * 1000,
        "overhead_median_ms": (statistics.median(samples) - statistics.median(baseline)) * 1000,
    }


def raw_read_latency(path: str, reads: int) -> List[float]:
    """The simulator's own reply time: a read command written to the pty, the value frame read back."""
    dongle = DongleProcess(path)
    port = serial.Serial(dongle.port, timeout=1)
    try:
        _raw_connect(port)
        decoder = codec.FrameDecoder()
        command = codec.encode_command("attclient_read_by_handle", connection=0, chrhandle=BATTERY_VALUE_HANDLE)
        samples = []
        for n in range(reads + 50):
            started = time.perf_counter()
            port.write(command)
            answered = False
            while not answered:
                data = port.read(max(1, port.in_waiting))
                if not data:
                    raise RuntimeError("the simulated BLED112 stopped answering")
                answered = any(p.is_event and (p.msg_class, p.msg_id) == (4, 5) for p in decoder.feed(data))
            if n >= 50:
                samples.append(time.perf_counter() - started)
        return samples
    finally:
        port.close()
        dongle.close()


def idle_cpu(directory: str, seconds: float) -> float:
    """The library's CPU use (% of a core) while connected and idle."""
    dongle, backend, _ = _connected(world_file(load_world("heart-rate"), directory, "bgapi-idle"))
    try:
        return idle_cpu_percent(seconds)
    finally:
        backend.stop()
        dongle.close()
