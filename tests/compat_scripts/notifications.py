# An unchanged pygatt 5.0.0 user script (the README's notification example),
# except that the endless sleep loop is bounded so the test ends.
import time
from binascii import hexlify

import pygatt

adapter = pygatt.GATTToolBackend()


def handle_data(handle, value):
    """
    handle -- integer, characteristic read handle the data was received on
    value -- bytearray, the data returned in the notification
    """
    print("Received data: %s" % hexlify(value))


try:
    adapter.start()
    device = adapter.connect('01:23:45:67:89:ab', address_type=pygatt.BLEAddressType.random)

    device.subscribe("a1e8f5b1-696b-4e4c-87c6-69dfe0b0093b",
                     callback=handle_data)

    for _ in range(100):
        time.sleep(0.02)
finally:
    adapter.stop()
