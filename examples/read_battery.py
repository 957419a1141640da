"""Read the battery level (0x2A19) of the first device whose name matches.

    PYGATT_SIMULATE=heart-rate python examples/read_battery.py "Pulse HR"

Without PYGATT_SIMULATE it uses the real adapter (hci0) and BlueZ's tools.
"""

import sys

import pygatt

BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"


def main(name: str) -> int:
    adapter = pygatt.GATTToolBackend()
    try:
        adapter.start(reset_on_start=False)
        found = adapter.filtered_scan(name, timeout=3)
        if not found:
            print(f"No device named {name!r} found", file=sys.stderr)
            return 1
        device = adapter.connect(found[0]["address"])
        level = device.char_read(BATTERY_LEVEL)[0]
        print(f"{found[0]['name']} ({found[0]['address']}): battery {level} %")
        return 0
    finally:
        adapter.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Pulse HR"))
