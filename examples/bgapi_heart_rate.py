"""Heart rate through a BLED112 USB dongle (the BGAPI backend), on Linux, macOS or Windows.

    python examples/bgapi_heart_rate.py "Pulse HR" 3               # a real dongle, found by USB id
    python examples/bgapi_heart_rate.py "Pulse HR" 3 /dev/ttyACM0  # or on a given port
    PYGATT_SIMULATE=heart-rate python examples/bgapi_heart_rate.py "Pulse HR" 3   # the simulated dongle

Scans for the first device with that name, prints its battery level, then the
given number of heart-rate values.
"""

import sys
import threading
from typing import Optional

import pygatt

BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
HEART_RATE = "00002a37-0000-1000-8000-00805f9b34fb"


def main(name: str, count: int, port: Optional[str] = None) -> int:
    adapter = pygatt.BGAPIBackend(serial_port=port)
    values = []
    done = threading.Event()

    def on_heart_rate(handle: int, value: bytearray) -> None:
        values.append(value[1])  # flags byte first, then the rate (8-bit format)
        print(f"heart rate: {value[1]} bpm", flush=True)
        if len(values) >= count:
            done.set()

    try:
        adapter.start()
        found = [d for d in adapter.scan(timeout=2) if d["name"] == name]
        if not found:
            print(f"No device named {name!r} found", file=sys.stderr)
            return 1
        device = adapter.connect(found[0]["address"])
        print(f"{name}: battery {device.char_read(BATTERY_LEVEL)[0]} %")
        device.subscribe(HEART_RATE, callback=on_heart_rate)
        if not done.wait(30):
            print(f"only {len(values)} of {count} values arrived", file=sys.stderr)
            return 1
        return 0
    finally:
        adapter.stop()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(main(arguments[0] if arguments else "Pulse HR", int(arguments[1]) if len(arguments) > 1 else 5,
                  arguments[2] if len(arguments) > 2 else None))  # fmt: skip
