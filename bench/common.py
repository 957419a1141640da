"""What the benchmarks of every backend share: the flood world and the flood collector."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

from pygatt.testing import NotifyStream, World, load_world

#: The shipped heart-rate world's notifying characteristic (2a37): its value handle.
HR_VALUE_HANDLE = 0x0008


def this_machine() -> Dict[str, Any]:
    """What a run's figures depend on: the machine, Python, and the load average as the run starts."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def world_file(world: World, directory: str, name: str) -> str:
    """Write ``world`` as ``directory/name.json``; return the path."""
    return str(world.write(Path(directory) / f"{name}.json"))


def flood_world(count: int, size: int) -> World:
    """The heart-rate world whose 2a37 sends ``count`` generated values as fast as they are taken."""
    world = load_world("heart-rate")
    world.peripherals[0].services[1].characteristics[0].notify = NotifyStream(interval_s=0, count=count, size=size)
    return world


def stream_of(world: World) -> NotifyStream:
    """The flood's stream, to check every delivered value against."""
    stream = world.peripherals[0].services[1].characteristics[0].notify
    assert stream is not None
    return stream


def collect_flood(device: Any, count: int, timeout: float = 120) -> Dict[str, Any]:
    """Subscribe to 2a37 with a callback that keeps every value; wait for ``count`` of them.

    Returns:
        ``got`` (the values, in order), ``seconds`` from subscribing to the last one, and
        ``cpu`` (this process's CPU seconds meanwhile).
    """
    got: List[bytes] = []
    done = threading.Event()

    def callback(handle: int, value: bytearray) -> None:
        got.append(bytes(value))
        if len(got) == count:
            done.set()

    cpu = time.process_time()
    started = time.perf_counter()
    device.subscribe_handle(HR_VALUE_HANDLE, callback)
    done.wait(timeout)
    return {"got": got, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def idle_cpu_percent(seconds: float) -> float:
    """This process's CPU use over ``seconds`` of sleep, in percent of a core (its threads' idle cost)."""
    cpu = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu) / seconds * 100
