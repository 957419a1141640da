"""Scan for BLE devices and list those whose name contains a filter.

PYGATT_SIMULATE=heart-rate python examples/scan.py            # every device
PYGATT_SIMULATE=heart-rate python examples/scan.py Pulse      # names containing "Pulse"
"""

import sys

import pygatt


def main(name_filter: str) -> int:
    adapter = pygatt.GATTToolBackend()
    try:
        devices = adapter.filtered_scan(name_filter, timeout=3) if name_filter else adapter.scan(timeout=3)
    finally:
        adapter.stop()
    for device in devices:
        print(f"{device['address']}  {device['name'] or '(unknown)'}")
    print(f"{len(devices)} device(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
