# The usage examples of pygatt's API description, unchanged: calls on the adapter, no device given.
import pygatt

adapter = pygatt.GATTToolBackend()

try:
    adapter.start()
    device = adapter.connect('C4:7C:8D:6A:3E:01')
    value = adapter.char_read('00002a19-0000-1000-8000-00805f9b34fb', timeout=2)
    print("battery:", value[0])
    characteristics = adapter.discover_characteristics()
    print("characteristics:", len(characteristics))
    for uuid, characteristic in characteristics.items():
        if str(uuid) == '00002a19-0000-1000-8000-00805f9b34fb':
            handle = characteristic.handle + 1
    adapter.char_write_handle(handle, bytearray([0x01, 0x00]), timeout=5)
    print("written:", device.char_read_handle(handle).hex())
    print("handle read:", adapter.char_read_handle(0x0003).decode())
finally:
    adapter.stop()
