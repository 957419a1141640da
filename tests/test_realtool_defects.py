"""Library defects that the real gatttool shows (issue 11), one test each.

Each test states the behaviour the library must have. They run the real
gatttool through the L2CAP shim against the ATT peripheral (see
tests/realtool_support.py), except the argument checks at the end, which need
no tool at all. When one fails, its docstring says what was seen before the fix.
"""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
import uuid

import pytest

import pygatt
from pygatt import exceptions
from pygatt.testing import NotifyStream
from pygatt.testing.att import pdu
from tests.realtool_support import (
    ADDRESS,
    Collector,
    backend,  # noqa: F401 - fixtures
    backend_factory,  # noqa: F401
    error_uuid,
    gatttool_children,
    lab_world,
    rig,  # noqa: F401
    rig_factory,  # noqa: F401
    shim_library,  # noqa: F401
    uses_real_gatttool,
    wait_until,
)

WRITE_TIMEOUT_S = 5.0  # long enough for a write that works (milliseconds), short enough to fail fast


def full(short: str) -> uuid.UUID:
    return uuid.UUID(f"0000{short}-0000-1000-8000-00805f9b34fb")


def flood_world(count: int, size: int = 4, interval_s: float = 0.0, **settings: object):
    """The lab world whose ff06 sends ``count`` generated values as fast as they are read, once subscribed."""
    world = lab_world(**settings)
    for service in world.peripherals[0].services:
        for characteristic in service.characteristics:
            if characteristic.uuid == "ff06":
                characteristic.notify = NotifyStream(trigger="subscribe", interval_s=interval_s, count=count, size=size)
    return world


def new_threads(before):
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


# -- 1. write without response of 15 bytes or more ------------------------------------------------


@uses_real_gatttool
@pytest.mark.parametrize("size", [15, 20])
def test_write_without_response_of_a_full_packet_returns_at_once(backend, rig, size):
    """Before the fix: NotificationTimeout after the whole timeout, although the value was written.

    At 80 columns with TERM=dumb readline echoes a long line as ``\\r<`` + its
    tail, and the session waited for an echo of the whole command.
    """
    device = backend.connect(ADDRESS)
    handle = rig.handle("ff01")
    value = bytes(range(1, size + 1))
    device.char_write_handle(handle, value, wait_for_response=False, timeout=WRITE_TIMEOUT_S)
    assert device.char_read_handle(handle) == bytearray(value)
    sent = bytes([pdu.WRITE_CMD]) + handle.to_bytes(2, "little") + value
    assert sent in rig.server.received(ADDRESS)


@uses_real_gatttool
@pytest.mark.parametrize("size", [100, 244])
def test_write_without_response_after_exchange_mtu(backend, rig, size):
    """Before the fix: after exchange_mtu(247), a 100-byte (and an MTU - 3 = 244-byte) write
    without response raised NotificationTimeout for the same reason.
    """
    device = backend.connect(ADDRESS)
    assert device.exchange_mtu(247) == 247
    handle = rig.handle("ff01")
    value = bytes((i * 3) & 0xFF for i in range(size))
    device.char_write_handle(handle, value, wait_for_response=False, timeout=WRITE_TIMEOUT_S)
    assert device.char_read_long_handle(handle) == bytearray(value)


# -- 0x81: gatttool's words for it ---------------------------------------------------------------------


@uses_real_gatttool
def test_att_timeout_error_0x81_is_recognised(backend, rig):
    """Before the fix: GATTError with att_error None. BlueZ 5.66 prints 0x81 as
    ``A timeout occurred``; the parser only knew ``A timeout occured``.
    """
    device = backend.connect(ADDRESS)
    with pytest.raises(exceptions.GATTError) as caught:
        device.char_read_handle(rig.handle(error_uuid(0x81)))
    assert caught.value.att_error == 0x81
    assert caught.value.reason == "A timeout occurred"


# -- 2. auto-reconnect against a device that drops every link ------------------------------------------


@uses_real_gatttool
def test_auto_reconnect_against_a_device_that_keeps_dropping(rig_factory, shim_library):
    """Before the fix: two reconnects could run at once for one device, and gatttool processes
    (11-58 in the issue, with their reader threads) were still alive after stop() returned.

    The peripheral streams from the moment a link is up and drops every link after
    3 notifications, while the user keeps reading (and ignores the errors).
    """
    world = flood_world(count=0, interval_s=0.02, disconnect_after_notifications=3)
    for service in world.peripherals[0].services:
        for characteristic in service.characteristics:
            if characteristic.notify is not None and characteristic.uuid == "ff06":
                characteristic.notify.trigger = "connect"  # every link streams at once, then drops
    flaky = rig_factory(world)
    before = set(threading.enumerate())
    backend = pygatt.GATTToolBackend(tools=flaky.tools)
    backend.start(reset_on_start=False)
    try:
        device = backend.connect(ADDRESS, auto_reconnect=True)
        deadline = time.monotonic() + 20
        while flaky.server.accepted < 40 and time.monotonic() < deadline:
            try:
                device.char_read_handle(flaky.handle("2a00"), timeout=1)
            except exceptions.BLEError:
                time.sleep(0.01)  # not connected right now: the reconnect is under way
        assert flaky.server.accepted >= 40, "the device was not reconnected repeatedly"
    finally:
        backend.stop()
    leaked_at_stop = gatttool_children()
    time.sleep(2.0)  # a reconnect still running after stop() would start gatttool now
    assert not leaked_at_stop, f"{len(leaked_at_stop)} gatttool processes alive when stop() returned"
    assert not gatttool_children(), f"gatttool processes started after stop(): {gatttool_children()}"
    assert flaky.server.peak_links(ADDRESS) == 1, "more than one link to one device at the same time"
    assert not new_threads(before), new_threads(before)
    assert flaky.server.links(ADDRESS) == 0


# -- 3. the callback queue: bounded, and nothing runs after stop() ----------------------------------------


@uses_real_gatttool
def test_no_callback_runs_after_stop_returns(rig_factory, shim_library):
    """Before the fix: with a flood and a 1 ms callback, thousands of callbacks ran after stop()
    returned, on a callback thread that lived on for minutes.
    """
    flood = rig_factory(flood_world(count=20_000))
    backend = pygatt.GATTToolBackend(tools=flood.tools)
    backend.start(reset_on_start=False)
    calls = []
    lock = threading.Lock()

    def slow(handle, value):
        time.sleep(0.001)
        with lock:
            calls.append(time.monotonic())

    try:
        device = backend.connect(ADDRESS)
        device.subscribe(full("ff06"), callback=slow)
        assert wait_until(lambda: len(calls) >= 200, timeout=20)
    finally:
        backend.stop()
    stopped_at = time.monotonic()
    time.sleep(1.0)  # give a leftover callback thread the chance to show itself
    with lock:
        late = [t for t in calls if t > stopped_at]
    assert not late, f"{len(late)} callbacks ran after stop() returned"
    library_threads = [t for t in threading.enumerate() if t.name.startswith("pygatt") and t.is_alive()]
    assert not [t for t in library_threads if not t.name.startswith("pygatt-att-")]  # the peripheral's are the rig's


@uses_real_gatttool
def test_callback_backlog_is_bounded_and_never_dropped_silently(rig_factory, shim_library, caplog):
    """Before the fix: the queue between the reader and the callback thread had no bound
    (200,000 notifications with a slow callback grew RSS by 49 MB).

    While the only callback is blocked, the peripheral sends 60,000 4-byte
    notifications as fast as gatttool reads them. Queued all, they would hold well
    over 6 MB of Python objects; a bounded queue holds far less (the policy may be
    backpressure, or drops that are counted and logged: never a silent loss).
    """
    total = 60_000
    flood = rig_factory(flood_world(count=total))
    backend = pygatt.GATTToolBackend(tools=flood.tools)
    backend.start(reset_on_start=False)
    release = threading.Event()
    got = Collector()

    def blocked(handle, value):
        release.wait(60)
        got(handle, value)

    caplog.set_level(logging.WARNING)
    tracemalloc.start()
    try:
        device = backend.connect(ADDRESS)
        baseline = tracemalloc.get_traced_memory()[0]
        device.subscribe(full("ff06"), callback=blocked)
        # until the peripheral has sent everything, or stopped being read (backpressure) for a second
        last, steady_since = -1, time.monotonic()
        while time.monotonic() - steady_since < 1.0 and flood.server.notifications_sent(ADDRESS) < total:
            sent = flood.server.notifications_sent(ADDRESS)
            if sent != last:
                last, steady_since = sent, time.monotonic()
            time.sleep(0.05)
        time.sleep(0.5)  # let the reader catch up with what gatttool printed
        held = tracemalloc.get_traced_memory()[0] - baseline
        release.set()
        sent = flood.server.notifications_sent(ADDRESS)
        wait_until(lambda: got.count() >= sent, timeout=30)
    finally:
        release.set()
        tracemalloc.stop()
        backend.stop()
    assert held < 3_000_000, f"{held / 1e6:.1f} MB held by queued notifications while the callback was blocked"
    dropped_logged = any("drop" in r.getMessage().lower() for r in caplog.records if r.levelno >= logging.WARNING)
    assert got.count() == sent or dropped_logged, f"{sent - got.count()} notifications lost without a warning"


# -- 4. stop() then start() with a backlog ------------------------------------------------------------------


@uses_real_gatttool
def test_stop_then_start_keeps_one_callback_at_a_time(rig_factory, shim_library):
    """Before the fix: after stop() with a backlog and start(), two callback threads drained
    one queue: callbacks ran concurrently thousands of times.
    """
    flood = rig_factory(flood_world(count=5_000))
    backend = pygatt.GATTToolBackend(tools=flood.tools)
    running = 0
    overlaps = 0
    lock = threading.Lock()
    sequences = []

    def slow(handle, value):
        nonlocal running, overlaps
        with lock:
            running += 1
            overlaps += running > 1
        time.sleep(0.0005)
        with lock:
            running -= 1
            sequences.append(int.from_bytes(bytes(value[:4]), "big"))

    try:
        backend.start(reset_on_start=False)
        device = backend.connect(ADDRESS)
        device.subscribe(full("ff06"), callback=slow)
        assert wait_until(lambda: len(sequences) >= 100, timeout=20)
        backend.stop()  # with a backlog
        first_link = flood.server.notifications_sent(ADDRESS)
        backend.start(reset_on_start=False)
        device = backend.connect(ADDRESS)
        device.subscribe(full("ff06"), callback=slow)
        assert wait_until(lambda: flood.server.notifications_sent(ADDRESS) >= first_link + 5_000, timeout=30)
        assert wait_until(lambda: sequences[-1:] == [4_999], timeout=30)
    finally:
        backend.stop()
    assert overlaps == 0, f"callbacks ran concurrently {overlaps} times"
    second_link = sequences[sequences.index(0, 1) :] if 0 in sequences[1:] else []
    assert second_link == sorted(second_link), "callbacks of the second link ran out of order"


# -- 5. arguments that must be refused with a clear error ---------------------------------------------------


@uses_real_gatttool
@pytest.mark.parametrize("timeout", [float("inf"), 1e308])
def test_huge_timeouts_are_a_value_error(backend, rig, timeout):
    """Before the fix: OverflowError from deep inside the session (a lock's timeout)."""
    device = backend.connect(ADDRESS)
    with pytest.raises(ValueError, match="timeout"):
        device.char_read_handle(rig.handle("2a00"), timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        device.char_write_handle(rig.handle("ff01"), b"\x01", timeout=timeout)
    assert device.char_read_handle(rig.handle("2a00")) == bytearray(b"Lab")


def test_gatttool_logfile_that_is_a_directory_is_refused_at_construction(tmp_path):
    """Before the fix: accepted, then a raw IsADirectoryError from start()."""
    with pytest.raises(ValueError, match="gatttool_logfile"):
        pygatt.GATTToolBackend(gatttool_logfile=tmp_path)
