"""The library against BlueZ's REAL gatttool, every connected operation, no radio.

``pygatt.GATTToolBackend`` runs ``/usr/bin/gatttool -I`` on a pty exactly as in
production; only its L2CAP socket is redirected (LD_PRELOAD shim) to the ATT
peripheral of :mod:`pygatt.testing.att`, which serves the world built in
``tests/realtool_support.py``. So the bytes parsed here are what gatttool
really prints, and the ATT PDUs checked are what gatttool really sends.

Defects of the library that these runs exposed live in test_realtool_defects.py.
"""

from __future__ import annotations

import threading
import uuid

import pytest

import pygatt
from pygatt import exceptions
from pygatt.testing import Characteristic, NotifyStream, Peripheral, Service, World
from pygatt.testing.att import pdu
from pygatt.testing.world import layout
from tests.realtool_support import (
    ABSENT_ADDRESS,
    ADDRESS,
    CUSTOM_128,
    ERROR_CODES,
    INDICATE_VALUES,
    LONG_VALUE,
    NOTIFY_VALUES,
    RANDOM_ADDRESS,
    Collector,
    backend,  # noqa: F401 - fixtures
    backend_factory,  # noqa: F401
    error_uuid,
    lab_world,
    needs_real_gatttool,
    rig,  # noqa: F401
    rig_factory,  # noqa: F401
    shim_library,  # noqa: F401
    wait_until,
)

pytestmark = needs_real_gatttool

NAMED_ERRORS = {
    0x05: exceptions.InsufficientAuthenticationError,
    0x07: exceptions.InvalidValueLengthError,
    0x08: exceptions.InsufficientAuthorizationError,
    0x0C: exceptions.InsufficientEncryptionError,
    0x0D: exceptions.InvalidValueLengthError,
    0x0F: exceptions.InsufficientEncryptionError,
}


def full(short: str) -> uuid.UUID:
    return uuid.UUID(f"0000{short}-0000-1000-8000-00805f9b34fb")


@pytest.fixture
def device(backend, rig):
    return backend.connect(ADDRESS)


# -- connecting ---------------------------------------------------------------------------


def test_connect_and_disconnect_through_the_real_gatttool(backend, rig):
    device = backend.connect(ADDRESS)
    assert wait_until(lambda: rig.server.links(ADDRESS) == 1)
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")
    device.disconnect()
    assert wait_until(lambda: rig.server.links(ADDRESS) == 0)


def test_random_address_type_reaches_only_the_random_peripheral(backend, rig):
    device = backend.connect(RANDOM_ADDRESS, address_type=pygatt.BLEAddressType.random)
    assert device.char_read(full("2a19")) == bytearray(b"\x21")
    device.disconnect()
    with pytest.raises(exceptions.NotConnectedError, match="Connection refused"):
        backend.connect(RANDOM_ADDRESS, address_type=pygatt.BLEAddressType.public, timeout=3)


def test_connect_to_an_absent_device_fails_with_gatttools_reason(backend):
    with pytest.raises(exceptions.NotConnectedError, match=r"connect to .*Connection refused \(111\)"):
        backend.connect(ABSENT_ADDRESS, timeout=3)


# -- reads ----------------------------------------------------------------------------------


def test_read_by_handle_and_by_uuid(device, rig):
    assert device.char_read_handle(rig.handle("ff01")) == bytearray(b"\x00")
    assert device.char_read(full("2a00")) == bytearray(b"Lab")
    assert device.char_read(CUSTOM_128) == bytearray(bytes.fromhex("c0ffee"))
    assert pdu.READ_REQ in rig.opcodes() and pdu.READ_BY_TYPE_REQ in rig.opcodes()


def test_long_read_follows_with_read_blob(device, rig):
    assert device.char_read_long_handle(rig.handle("ff02")) == bytearray(LONG_VALUE)
    assert device.char_read_handle(rig.handle("ff02")) == bytearray(LONG_VALUE)  # gatttool reads blobs by itself
    assert rig.opcodes().count(pdu.READ_BLOB_REQ) >= 2 * 4  # 100 bytes = 22 + 4 blobs of 22/22/22/12, twice


def test_read_by_uuid_is_one_packet(device, rig):
    # Read By Type carries at most MTU - 4 bytes of one value; gatttool does not follow up
    assert device.char_read(full("ff02")) == bytearray(LONG_VALUE[:19])


# -- writes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 20, 512])
def test_write_with_response_at_1_20_and_512_bytes(device, rig, size):
    handle = rig.handle("ff01")
    value = bytes((i * 7 + size) & 0xFF for i in range(size))
    device.char_write_handle(handle, value, wait_for_response=True)
    assert device.char_read_long_handle(handle) == bytearray(value)
    if size > 20:  # longer than MTU - 3: prepared writes, then Execute Write
        assert pdu.PREPARE_WRITE_REQ in rig.opcodes() and pdu.EXECUTE_WRITE_REQ in rig.opcodes()
    else:
        assert pdu.WRITE_REQ in rig.opcodes()


def test_write_with_response_at_mtu_minus_3_after_exchange(device, rig):
    mtu = device.exchange_mtu(100)
    assert mtu == 100
    value = bytes(range(mtu - 3))
    device.char_write_handle(rig.handle("ff01"), value, wait_for_response=True)
    assert device.char_read_long_handle(rig.handle("ff01")) == bytearray(value)
    writes = [p for p in rig.server.received(ADDRESS) if p[0] == pdu.WRITE_REQ]
    assert len(writes[-1]) == 3 + mtu - 3  # one Write Request: opcode, handle, 97 bytes


def test_write_long_handle_uses_prepared_writes(device, rig):
    value = bytes(range(256)) * 2
    device.char_write_long_handle(rig.handle("ff01"), value)
    assert device.char_read_long_handle(rig.handle("ff01")) == bytearray(value)
    prepares = [p for p in rig.server.received(ADDRESS) if p[0] == pdu.PREPARE_WRITE_REQ]
    assert len(prepares) == -(-512 // 18)  # chunks of MTU - 5


def test_write_without_response_of_one_byte(device, rig):
    handle = rig.handle("ff01")
    device.char_write_handle(handle, b"\x5a", wait_for_response=False)
    assert device.char_read_handle(handle) == bytearray(b"\x5a")
    assert rig.server.received(ADDRESS)[-2] == bytes([pdu.WRITE_CMD]) + handle.to_bytes(2, "little") + b"\x5a"


def test_write_without_response_longer_than_a_packet_is_refused_before_gatttool(device, rig):
    before = len(rig.server.received(ADDRESS))
    with pytest.raises(ValueError, match="more than the 20"):
        device.char_write_handle(rig.handle("ff01"), bytes(512), wait_for_response=False)
    assert len(rig.server.received(ADDRESS)) == before


def test_write_by_uuid(device, rig):
    device.char_write(CUSTOM_128, b"\x01\x02")
    assert device.char_read(CUSTOM_128) == bytearray(b"\x01\x02")


# -- MTU ----------------------------------------------------------------------------------------------


def test_exchange_mtu_takes_the_smaller_of_both(device):
    assert device.exchange_mtu(300) == 247  # the peripheral offers 247
    with pytest.raises(exceptions.BLEError, match="once per connection"):
        device.exchange_mtu(100)
    assert device.char_read_handle(device.get_handle(full("2a00"))) == bytearray(b"Lab")  # the link stays up


def test_exchange_mtu_sends_the_requested_mtu(device, rig):
    assert device.exchange_mtu(64) == 64
    requests = [p for p in rig.server.received(ADDRESS) if p[0] == pdu.EXCHANGE_MTU_REQ]
    assert requests == [bytes([pdu.EXCHANGE_MTU_REQ]) + (64).to_bytes(2, "little")]
    # a larger MTU lets Read By Type carry more of the long value
    assert device.char_read(full("ff02")) == bytearray(LONG_VALUE[:60])


# -- discovery ------------------------------------------------------------------------------------------


def test_discovery_finds_every_characteristic_with_its_value_handle_and_cccd(device, rig):
    found = device.discover_characteristics()
    peripheral = rig.world.find(ADDRESS)
    assert peripheral is not None
    expected = {uuid.UUID(u): h for _d, _p, h, u in layout(peripheral).characteristics}
    assert {u: c.handle for u, c in found.items()} == expected
    cccd = full("2902")
    assert found[full("ff03")].descriptors[cccd] == rig.handle("ff03") + 1
    assert found[uuid.UUID(CUSTOM_128)].descriptors[full("2901")] == rig.handle(CUSTOM_128) + 1
    assert device.get_handle(full("ff02")) == rig.handle("ff02")


def test_discovery_of_a_large_device_pages_both_listings(rig_factory, shim_library):
    """60 characteristics (128-bit and 16-bit UUIDs, CCCDs, user descriptions): both listings take
    many ATT requests, and ``char-desc``, sent once the first characteristic line arrived, ends
    ``characteristics`` with its echo; the real gatttool prints each listing whole before it."""
    services = []
    for s in range(6):
        characteristics = []
        for c in range(10):
            n = s * 10 + c
            short = f"{0xB000 + n:04x}"
            name = short if n % 3 else f"{0xC0DE0000 + n:08x}-1234-5678-9abc-def012345678"
            characteristics.append(
                Characteristic(name, ["read", "notify"] if n % 2 else ["read"], value="01", cccd=bool(n % 2))
            )
        services.append(Service(f"{0xA000 + s:04x}", characteristics))
    world = World(peripherals=[Peripheral(address=ADDRESS, name="Big", services=services)])
    big = rig_factory(world)
    lib = pygatt.GATTToolBackend(tools=big.tools)
    lib.start(reset_on_start=False)
    try:
        device = lib.connect(ADDRESS)
        for _ in range(3):
            found = device.discover_characteristics()
            expected = {uuid.UUID(u): h for _d, _p, h, u in layout(world.peripherals[0]).characteristics}
            assert {u: c.handle for u, c in found.items()} == expected and len(expected) == 60
            with_cccd = [c for c in found.values() if full("2902") in c.descriptors]
            assert len(with_cccd) == 30 and all(c.descriptors[full("2902")] == c.handle + 1 for c in with_cccd)
        opcodes = big.opcodes()
        assert opcodes.count(pdu.READ_BY_TYPE_REQ) > 3 * 20 and opcodes.count(pdu.FIND_INFO_REQ) > 3 * 20
    finally:
        lib.stop()


# -- notifications and indications ---------------------------------------------------------------------


def test_notifications_arrive_in_order(device, rig):
    got = Collector()
    device.subscribe(full("ff03"), callback=got)
    assert wait_until(lambda: got.count() == len(NOTIFY_VALUES))
    assert got.values == [bytes.fromhex(v) for v in NOTIFY_VALUES]
    assert set(got.handles) == {rig.handle("ff03")}


def test_indications_arrive_and_gatttool_confirms_each(device, rig):
    got = Collector()
    device.subscribe(full("ff04"), callback=got, indication=True)
    assert wait_until(lambda: got.count() == len(INDICATE_VALUES))
    assert got.values == [bytes.fromhex(v) for v in INDICATE_VALUES]
    assert wait_until(lambda: rig.opcodes().count(pdu.HANDLE_VALUE_CFM) == len(INDICATE_VALUES))


def test_subscribe_with_indication_on_a_notify_and_indicate_characteristic(device, rig):
    got = Collector()
    device.subscribe(full("ff03"), callback=got, indication=True)
    assert wait_until(lambda: got.count() == len(NOTIFY_VALUES))
    cccd_write = bytes([pdu.WRITE_REQ]) + (rig.handle("ff03") + 1).to_bytes(2, "little") + b"\x02\x00"
    assert cccd_write in rig.server.received(ADDRESS)
    assert rig.opcodes().count(pdu.HANDLE_VALUE_CFM) == len(NOTIFY_VALUES)


def test_unsolicited_notification_goes_only_to_subscribers(device, rig):
    got = Collector()
    handle = rig.handle("ff06")
    device.subscribe(full("ff06"), callback=got)
    rig.server.notify(ADDRESS, rig.handle("ff01"), b"\x99")  # nobody subscribed: dropped
    rig.server.notify(ADDRESS, handle, b"\x01\x02\x03")
    rig.server.notify(ADDRESS, handle, b"\x04", indication=True)
    assert wait_until(lambda: got.count() == 2)
    assert got.values == [b"\x01\x02\x03", b"\x04"]
    device.unsubscribe(full("ff06"))
    rig.server.notify(ADDRESS, handle, b"\x05")
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")  # after the notification, in order
    assert got.values == [b"\x01\x02\x03", b"\x04"]


# -- ATT errors --------------------------------------------------------------------------------------------


def test_read_of_a_missing_handle_is_invalid_handle(device):
    with pytest.raises(exceptions.InvalidHandleError) as caught:
        device.char_read_handle(0x0FFF)
    assert caught.value.att_error == 0x01


def test_read_of_a_write_only_characteristic_is_read_not_permitted(device, rig):
    with pytest.raises(exceptions.ReadNotPermittedError) as caught:
        device.char_read_handle(rig.handle("ff05"))
    assert caught.value.att_error == 0x02


def test_write_to_a_read_only_characteristic_is_write_not_permitted(device, rig):
    with pytest.raises(exceptions.WriteNotPermittedError) as caught:
        device.char_write_handle(rig.handle("ff02"), b"\x01")
    assert caught.value.att_error == 0x03


def test_read_by_an_absent_uuid_is_attribute_not_found(device):
    with pytest.raises(exceptions.AttributeNotFoundError) as caught:
        device.char_read(full("dead"))
    assert caught.value.att_error == 0x0A


# 0x81 is in test_realtool_defects.py: the library does not recognise gatttool's words for it
MAPPED_CODES = [c for c in ERROR_CODES if c != 0x81]


@pytest.mark.parametrize("code", MAPPED_CODES, ids=[f"0x{c:02x}" for c in MAPPED_CODES])
def test_every_att_error_becomes_a_typed_exception(device, rig, code):
    handle = rig.handle(error_uuid(code))
    expected = NAMED_ERRORS.get(code, exceptions.GATTError)
    with pytest.raises(expected) as read_error:
        device.char_read_handle(handle)
    with pytest.raises(expected) as write_error:
        device.char_write_handle(handle, b"\x01")
    for caught in (read_error.value, write_error.value):
        # gatttool prints "Unexpected error code" for a code it has no words for: which one is unknown
        assert caught.att_error == (code if code < 0x83 else None)
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")  # the link survives every error


def test_authentication_error_is_retried_at_a_higher_security_level_first(device, rig):
    handle = rig.handle(error_uuid(0x05))
    with pytest.raises(exceptions.InsufficientAuthenticationError):
        device.char_read_handle(handle)
    reads = [p for p in rig.server.received(ADDRESS) if p == bytes([pdu.READ_REQ]) + handle.to_bytes(2, "little")]
    # low, then medium, high and FIPS: BlueZ raises the link's security by itself and resends the request
    assert len(reads) == 4


def test_bond_raises_the_security_level(device, rig):
    device.bond()
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")


# -- slow peripherals and timeouts -------------------------------------------------------------------------


def test_a_slow_answer_is_waited_for_and_a_late_one_is_not_taken_for_the_next(rig_factory, backend_factory):
    slow = rig_factory(lab_world(response_delay_s=0.8))
    backend = backend_factory(tools=slow.tools)
    device = backend.connect(ADDRESS)
    assert device.char_read_handle(slow.handle("2a00")) == bytearray(b"Lab")
    with pytest.raises(exceptions.NotificationTimeout):
        device.char_read_handle(slow.handle("ff01"), timeout=0.1)
    # the late answer to ff01 (0x00) arrives meanwhile; this read must get its own answer
    assert device.char_read_handle(slow.handle("2a00"), timeout=3) == bytearray(b"Lab")


# -- links that go away ------------------------------------------------------------------------------------


def test_remote_drop_fires_the_disconnect_callback_and_ends_operations(device, rig):
    dropped = threading.Event()
    device.register_disconnect_callback(lambda d: dropped.set())
    rig.server.drop_links(ADDRESS)
    assert dropped.wait(10)
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(rig.handle("2a00"))


def test_peripheral_that_drops_after_some_operations(rig_factory, backend_factory):
    flaky = rig_factory(lab_world(disconnect_after_ops=3))
    backend = backend_factory(tools=flaky.tools)
    device = backend.connect(ADDRESS)
    dropped = threading.Event()
    device.register_disconnect_callback(lambda d: dropped.set())
    assert device.char_read_handle(flaky.handle("2a00")) == bytearray(b"Lab")
    assert device.char_read_handle(flaky.handle("ff01")) == bytearray(b"\x00")
    # The peripheral answers the third read and closes at once: gatttool may see the close
    # before the answer and then reports the read as failed. Either way the link ends.
    try:
        assert device.char_read_handle(flaky.handle("2a00")) == bytearray(b"Lab")
    except exceptions.BLEError as exc:
        assert "read" in str(exc) or isinstance(exc, exceptions.NotConnectedError)
    assert dropped.wait(10)
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(flaky.handle("2a00"))


def test_auto_reconnect_resubscribes_after_a_remote_drop(backend, rig):
    device = backend.connect(ADDRESS, auto_reconnect=True)
    got = Collector()
    device.subscribe(full("ff03"), callback=got)
    assert wait_until(lambda: got.count() == len(NOTIFY_VALUES))
    rig.server.drop_links(ADDRESS)
    # the new link gets a new CCCD write, so the stream starts again from its first value
    assert wait_until(lambda: got.count() == 2 * len(NOTIFY_VALUES), timeout=15)
    assert got.values[len(NOTIFY_VALUES) :] == [bytes.fromhex(v) for v in NOTIFY_VALUES]
    assert rig.server.accepted == 2
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")


def test_stop_ends_every_gatttool_and_thread(rig, shim_library):
    from tests.realtool_support import gatttool_children

    before = set(threading.enumerate())
    backend = pygatt.GATTToolBackend(tools=rig.tools)
    backend.start(reset_on_start=False)
    device = backend.connect(ADDRESS)
    device.char_read_handle(rig.handle("2a00"))
    backend.stop()
    assert wait_until(lambda: not gatttool_children(), timeout=5), gatttool_children()
    assert wait_until(lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()], 5)
    assert wait_until(lambda: rig.server.links() == 0)


def test_reads_interleaved_with_a_notification_flood(rig_factory, backend_factory):
    """gatttool prints notifications between a command's echo, its prompt and its answer;
    every read must still get its own value and every notification arrive once, in order.
    """
    world = lab_world()
    for service in world.peripherals[0].services:
        for characteristic in service.characteristics:
            if characteristic.uuid == "ff06":
                characteristic.notify = NotifyStream(trigger="subscribe", interval_s=0.0, count=3000, size=8)
    flood = rig_factory(world)
    device = backend_factory(tools=flood.tools).connect(ADDRESS)
    got = Collector()
    device.subscribe(full("ff06"), callback=got)
    # generous deadlines: gatttool prints up to 3000 lines around these answers on a shared machine
    names = [device.char_read_handle(flood.handle("2a00"), timeout=30) for _ in range(40)]
    longs = [device.char_read_long_handle(flood.handle("ff02"), timeout=30) for _ in range(10)]
    assert names == [bytearray(b"Lab")] * 40
    assert longs == [bytearray(LONG_VALUE)] * 10
    assert wait_until(lambda: got.count() == 3000, timeout=60), got.count()
    assert [int.from_bytes(v[:4], "big") for v in got.values] == list(range(3000))
