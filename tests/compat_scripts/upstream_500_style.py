# A script written for pygatt 5.0.0: device-first calls on the backend, reconnect, BLEAddressType
# by value, a device built directly over a mock backend. The application already runs threads.
import threading
from unittest.mock import MagicMock

import pygatt
from pygatt.backends import BLEAddressType
from pygatt.backends.gatttool.device import GATTToolBLEDevice
from pygatt.backends.gatttool.gatttool import DEFAULT_RECONNECT_DELAY
from pygatt.exceptions import NotConnectedError

BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"

stop = threading.Event()
worker = threading.Thread(target=stop.wait, daemon=True)
worker.start()

print("address types:", BLEAddressType(1).name, BLEAddressType(2).name, BLEAddressType.public.value)
print("reconnect delay:", DEFAULT_RECONNECT_DELAY)

adapter = pygatt.GATTToolBackend()
adapter.start()
try:
    device = adapter.connect("C4:7C:8D:6A:3E:01", timeout=5.0, address_type=BLEAddressType(1))
    other = adapter.connect("5D:2B:9F:11:04:7E", address_type=BLEAddressType(2))
    print("batteries:", adapter.char_read(device, BATTERY)[0], adapter.char_read(other, BATTERY, 2)[0])
    print("name:", adapter.char_read_handle(device, 0x0003, timeout=4).decode())
    print("keyword:", adapter.char_read_handle(connected_device=other, handle=0x0003)[0])
    adapter.char_write_handle(device, 0x0011, bytearray([0x01, 0x00]), True, 5)
    print("cccd:", device.char_read_handle(0x0011).hex())
    print("discovered:", len(adapter.discover_characteristics(device)), len(adapter.discover_characteristics(other)))
    print("mtu:", adapter.exchange_mtu(device, 64))
    adapter.bond(device)
    adapter.disconnect(other)
    adapter.reconnect(device, timeout=5.0)
    print("after reconnect:", device.char_read(BATTERY)[0])
    device.disconnect()
    try:
        device.char_read(BATTERY)
    except NotConnectedError:
        print("not connected after disconnect")
finally:
    adapter.stop()
    stop.set()

backend = MagicMock()
mocked = GATTToolBLEDevice("11:22:33:44:55:66", backend)
mocked.char_write_handle(0x000E, bytearray([0x01, 0x00]))
print("mock got the device first:", backend.char_write_handle.call_args[0][0] is mocked)
mocked.disconnect()
try:
    mocked.char_read(BATTERY)
except NotConnectedError:
    print("mock device disconnected")
