"""Subscribe to Heart Rate Measurement (0x2A37) notifications and print a few.

PYGATT_SIMULATE=heart-rate python examples/heart_rate.py "Pulse HR" 5
"""

import queue
import sys

import pygatt

HEART_RATE_MEASUREMENT = "00002a37-0000-1000-8000-00805f9b34fb"


def beats_per_minute(value: bytearray) -> int:
    """The heart rate in a Heart Rate Measurement: 16 bits if flag bit 0 is set, else 8."""
    if value[0] & 0x01:
        return int.from_bytes(value[1:3], "little")
    return value[1]


def main(name: str, count: int) -> int:
    adapter = pygatt.GATTToolBackend()
    readings: queue.Queue[int] = queue.Queue()
    try:
        adapter.start(reset_on_start=False)
        found = adapter.filtered_scan(name, timeout=3)
        if not found:
            print(f"No device named {name!r} found", file=sys.stderr)
            return 1
        device = adapter.connect(found[0]["address"])
        device.subscribe(HEART_RATE_MEASUREMENT, callback=lambda handle, value: readings.put(beats_per_minute(value)))
        for _ in range(count):
            print(f"heart rate: {readings.get(timeout=10)} bpm")
        return 0
    except queue.Empty:
        print("No notification within 10 s", file=sys.stderr)
        return 1
    finally:
        adapter.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Pulse HR", int(sys.argv[2]) if len(sys.argv) > 2 else 5))
