# pygatt 5.0.0 idioms: handles, writes, exceptions by their upstream import paths.
import pygatt
from pygatt.backends import BLEAddressType, Characteristic
from pygatt.backends.backend import DEFAULT_CONNECT_TIMEOUT_S
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout
from pygatt.util import uuid16_to_uuid

adapter = pygatt.GATTToolBackend(hci_device="hci0")
adapter.start(reset_on_start=False)
try:
    try:
        adapter.connect("11:22:33:44:55:66", timeout=DEFAULT_CONNECT_TIMEOUT_S)
    except NotConnectedError as e:
        print("connect failed:", type(e).__name__)
    device = adapter.connect("01:23:45:67:89:AB", address_type=BLEAddressType.public)
    handle = device.get_handle(uuid16_to_uuid(0x2A19))
    print("battery handle:", hex(handle))
    print("battery:", device.char_read_handle(handle)[0])
    device.char_write("a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b", bytearray([0x00, 0xFF]))
    device.char_write_handle(handle + 1, bytearray([0x01, 0x00]), wait_for_response=False)
    print("mtu:", device.exchange_mtu(64))
    chars = device.discover_characteristics()
    print("characteristics:", len(chars), all(isinstance(c, Characteristic) for c in chars.values()))
    try:
        device.char_read_handle(0x0009)
    except BLEError as e:
        print("read failed:", "Attribute can't be read" in str(e))
    try:
        device.char_read("0000fff0-0000-1000-8000-00805f9b34fb", timeout=0.5)
    except NotificationTimeout:
        print("timeout")
    except BLEError as e:
        print("missing uuid:", type(e).__name__)
    device.disconnect()
    try:
        device.char_read_handle(handle)
    except NotConnectedError:
        print("not connected after disconnect")
finally:
    adapter.stop()
