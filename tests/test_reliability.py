"""Faults, concurrency and hostile output, against the mocked gatttool child."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pygatt
from pygatt import exceptions
from pygatt.backends.gatttool import parser as p
from pygatt.backends.gatttool.tools import ToolCommands
from tests.helpers import ADDRESS, wait_for
from tests.test_backend_mocked import HR

# -- process death at every stage ---------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.char_read_handle(0x0003, timeout=10),
        lambda d: d.char_read("2a19", timeout=10),
        lambda d: d.char_write_handle(0x000C, b"\x01", timeout=10),
        lambda d: d.discover_characteristics(timeout=10),
        lambda d: d.exchange_mtu(100, timeout=10),
    ],
    ids=["read-handle", "read-uuid", "write", "discovery", "mtu"],
)
def test_gatttool_death_mid_operation_fails_fast_once(device, fake_spawn, call):
    fired = []
    device.register_disconnect_callback(fired.append)
    child = fake_spawn.child
    child.answer = False
    child.cmd_characteristics = lambda args: child._out(child.prompt())  # discovery never answers
    child.cmd_mtu = lambda args: child._out(child.prompt())
    threading.Timer(0.1, child.die).start()
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError):
        call(device)
    assert time.monotonic() - started < 2
    assert wait_for(lambda: len(fired) == 1)
    time.sleep(0.05)
    assert fired == [device] and not device.connected


def test_gatttool_death_mid_connect(backend, fake_spawn):
    child = fake_spawn.child
    child.connect_result = "silent"
    threading.Timer(0.1, child.die).start()
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError):
        backend.connect(ADDRESS, timeout=10)
    assert time.monotonic() - started < 2
    assert backend.connect(ADDRESS).connected  # a new process replaces the dead one


def test_remote_disconnect_fails_a_pending_read_at_once(device, fake_spawn):
    child = fake_spawn.child
    child.answer = False
    threading.Timer(0.1, child.remote_disconnect).start()
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError, match="remote device disconnected"):
        device.char_read_handle(0x0003, timeout=10)
    assert time.monotonic() - started < 2


def test_prompt_losing_its_colour_is_a_disconnect(device, fake_spawn):
    fired = []
    device.register_disconnect_callback(fired.append)
    child = fake_spawn.child
    child.connected = False
    child._out(child.prompt())
    assert wait_for(lambda: fired == [device])


@pytest.mark.parametrize("state", ["never-started", "started", "connected", "dead", "twice"])
def test_stop_returns_quickly_in_every_state(fake_spawn, state):
    backend = pygatt.GATTToolBackend()
    threads = set(threading.enumerate())
    if state != "never-started":
        backend.start(reset_on_start=False)
    if state in ("connected", "dead", "twice"):
        backend.connect(ADDRESS)
    if state == "dead":
        fake_spawn.child.die()
    started = time.monotonic()
    backend.stop()
    if state == "twice":
        backend.stop()
    assert time.monotonic() - started < 2
    assert all(not c.alive for c in fake_spawn.children)
    assert wait_for(lambda: set(threading.enumerate()) <= threads)


def test_stop_with_a_child_that_ignores_exit_kills_it(fake_spawn):
    backend = pygatt.GATTToolBackend()
    backend.start(reset_on_start=False)
    child = fake_spawn.child
    child.cmd_exit = lambda args: None  # a wedged gatttool
    started = time.monotonic()
    backend.stop()
    assert time.monotonic() - started < 2
    assert not child.alive and child.signalstatus == 9


# -- concurrency ----------------------------------------------------------------------


def test_threads_reading_one_device_get_their_own_answers(device, fake_spawn):
    child = fake_spawn.child
    for n in range(8):
        assert child.add_characteristic(0x0A, 0xFF00 + n, bytes([n]) * 3) == 0x000F + 2 * n  # read, write
    errors, results = [], {}

    def reader(n):
        try:
            for _ in range(25):
                value = device.char_read_handle(0x000F + 2 * n)
                results.setdefault(n, []).append(bytes(value))
                device.char_write_handle(0x000F + 2 * n, bytes([n]) * 3)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for n in range(200):
        child.notify(0x0006, bytes([n % 256]))
    for t in threads:
        t.join(10)
    assert errors == []
    assert all(results[n] == [bytes([n]) * 3] * 25 for n in range(8))


def test_notifications_keep_flowing_during_reads_and_are_not_read_values(device, fake_spawn):
    child = fake_spawn.child
    got = []
    device.subscribe(HR, callback=lambda h, v: got.append(bytes(v)))
    original = child.cmd_char_read_hnd

    def read_with_notification_in_between(args):
        child.notify(0x0006, b"\xee\xee")  # arrives between the request and its answer
        original(args)

    child.cmd_char_read_hnd = read_with_notification_in_between
    for _ in range(20):
        assert device.char_read_handle(0x000C) == bytearray([0x5A])
    assert wait_for(lambda: len(got) == 20)
    assert set(got) == {b"\xee\xee"}


def test_callback_may_write_back_into_the_device_without_deadlock(device, fake_spawn):
    child = fake_spawn.child
    done = threading.Event()

    def callback(handle, value):
        device.char_write_handle(0x000C, bytes(value))
        device.subscribe(HR)  # already subscribed: no write
        done.set()

    device.subscribe(HR, callback=callback)
    child.notify(0x0006, b"\x77")
    assert done.wait(3)
    assert child.attributes[0x000C].value == b"\x77"


def test_a_slow_callback_does_not_stall_reads(device, fake_spawn):
    release = threading.Event()
    device.subscribe(HR, callback=lambda h, v: release.wait(5))
    for _ in range(5):
        fake_spawn.child.notify(0x0006, b"\x01")
    started = time.monotonic()
    assert device.char_read_handle(0x000C) == bytearray([0x5A])
    assert time.monotonic() - started < 1
    release.set()


# -- memory -----------------------------------------------------------------------------


def test_notification_flood_without_callback_keeps_memory_flat(device, fake_spawn):
    child = fake_spawn.child
    line = "\r" + " " * 40 + "\rNotification handle = 0x0006 value: " + "ab " * 20 + "\r\n" + child.prompt()
    tracemalloc.start()
    try:
        child._out(line * 2000)
        device.char_read_handle(0x000C)
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(10):
            child._out(line * 2000)
        device.char_read_handle(0x000C)
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 512 * 1024, (first, second)  # 20,000 more notifications kept nothing


# -- hostile output ---------------------------------------------------------------------

LINES = st.sampled_from(
    [
        "Notification handle = 0x0006 value: 01 02 \r\n",
        "Indication   handle = 0x000c value: ff \r\n",
        "\x1b[0;91mError: \x1b[0mfoo: command not found\r\n",
        "[11:22:33:44:55:66][LE]> ",
        "\x1b[0;94m[11:22:33:44:55:66]\x1b[0m[LE]> ",
        "Characteristic value/descriptor: 0",
        "handle: 0x",
        "\r\x1b[K",
        "\x00\xff\x1b[",
        "GLib-WARNING",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=40)), max_size=30), st.data())
def test_decoder_never_raises_on_garbage_split_anywhere(pieces, data):
    stream = "".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = p.OutputDecoder(max_pending=4096)
    position = 0
    for cut in cuts + [len(stream)]:
        for event in decoder.feed(stream[position:cut]):
            assert isinstance(event, tuple)
        position = cut


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=20), max_size=12),
    st.binary(min_size=0, max_size=40),
    st.integers(0, 12),
    st.data(),
)
def test_read_value_is_never_mixed_with_notifications(notes, value, position, data):
    """Notifications interleaved with a read answer, cut into arbitrary chunks."""
    prompt = "\x1b[0;94m[11:22:33:44:55:66]\x1b[0m[LE]> "
    frame = "\r" + " " * 20 + "\r{}\r\n" + prompt
    lines = [frame.format("Notification handle = 0x0006 value: " + "".join(f"{b:02x} " for b in n)) for n in notes]
    lines.insert(min(position, len(lines)), frame.format("Characteristic value/descriptor: " + value.hex(" ") + " "))
    stream = "char-read-hnd 0x000c\r\n" + prompt + "".join(lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = p.OutputDecoder()
    events, position = [], 0
    for cut in cuts + [len(stream)]:
        events += p.one_per_value(decoder.feed(stream[position:cut]))  # a run as one event per value
        position = cut
    assert [e.value for e in events if type(e) is p.ReadValue] == [value]
    assert [e.value for e in events if type(e) is p.Notification] == notes


def test_garbage_from_gatttool_does_not_kill_the_reader(device, fake_spawn):
    child = fake_spawn.child
    child._out("\x00\x01\x02 garbage \x1b[99Z\r\nhandle: 0xzzzz \t value: qq \r\nNotification handle = 0x value: \r\n")
    child._out("\udcff surrogate and \u00e9\r\n" + child.prompt())
    assert device.char_read_handle(0x000C) == bytearray([0x5A])


# -- privileges -------------------------------------------------------------------------


def test_sudo_password_prompt_is_a_clear_permission_error(tmp_path):
    fake_sudo = tmp_path / "hcitool"
    fake_sudo.write_text("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n")
    fake_sudo.chmod(0o755)
    backend = pygatt.GATTToolBackend(tools=ToolCommands(hcitool=[str(fake_sudo)]))
    started = time.monotonic()
    with pytest.raises(exceptions.PermissionDeniedError, match="sudo|setcap"):
        backend.scan(timeout=5)
    assert time.monotonic() - started < 3


def test_run_as_root_uses_sudo_non_interactive(monkeypatch):
    from pygatt.backends.gatttool import external

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert external.with_privileges(["hcitool", "lescan"], True) == ["sudo", "-n", "hcitool", "lescan"]
    assert external.with_privileges(["hcitool", "lescan"], False) == ["hcitool", "lescan"]
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert external.with_privileges(["hcitool", "lescan"], True) == ["hcitool", "lescan"]


def test_stop_during_a_connect_ends_it_and_leaves_no_process(fake_spawn):
    backend = pygatt.GATTToolBackend()
    backend.start(reset_on_start=False)
    fake_spawn.child.connect_result = "silent"  # the connect hangs
    errors = []
    thread = threading.Thread(
        target=lambda: errors.append(pytest.raises(exceptions.NotConnectedError, backend.connect, ADDRESS, timeout=30))
    )
    thread.start()
    assert wait_for(lambda: bool(backend._pool._connecting))
    started = time.monotonic()
    backend.stop()
    thread.join(3)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert all(not c.alive for c in fake_spawn.children)


def test_stop_during_a_read_wakes_the_caller_at_once(fake_spawn):
    backend = pygatt.GATTToolBackend()
    backend.start(reset_on_start=False)
    device = backend.connect(ADDRESS)
    fake_spawn.child.answer = False  # the peripheral never answers the read
    errors = []
    thread = threading.Thread(
        target=lambda: errors.append(
            pytest.raises(exceptions.NotConnectedError, device.char_read_handle, 0x000C, timeout=30)
        )
    )
    thread.start()
    assert wait_for(lambda: "char-read-hnd 0x000c" in fake_spawn.child.sent)
    started = time.monotonic()
    backend.stop()
    thread.join(3)
    assert not thread.is_alive() and time.monotonic() - started < 2 and len(errors) == 1


def test_failed_start_leaves_no_thread(tmp_path):
    threads = set(threading.enumerate())
    backend = pygatt.GATTToolBackend(tools=ToolCommands(gatttool=[str(tmp_path / "no-such-gatttool")]))
    with pytest.raises(exceptions.BLEError, match="Could not start"):
        backend.start(reset_on_start=False)
    assert wait_for(lambda: set(threading.enumerate()) <= threads)


def test_stop_during_a_start_waiting_for_the_prompt_returns_and_leaves_no_process(tmp_path):
    # start() held the backend's lock while it waited for gatttool's first prompt, so stop() waited
    # as long as initialization_timeout; and the start could then still leave the backend running
    pid_file = tmp_path / "gatttool.pid"
    gatttool = tmp_path / "gatttool"
    gatttool.write_text(f'#!/bin/sh\necho $$ > "{pid_file}.tmp"; mv "{pid_file}.tmp" "{pid_file}"\nexec sleep 30\n')
    gatttool.chmod(0o755)
    threads = set(threading.enumerate())
    backend = pygatt.GATTToolBackend(tools=ToolCommands(gatttool=[str(gatttool)]))
    errors = []

    def start():
        try:
            backend.start(reset_on_start=False, initialization_timeout=6)
        except exceptions.BLEError as exc:
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    assert wait_for(pid_file.exists, timeout=5)
    stopper = threading.Thread(target=backend.stop)
    stopper.start()
    stopper.join(4)
    stopped_in_time = not stopper.is_alive()
    starter.join(10)
    stopper.join(10)
    backend.stop()
    assert stopped_in_time, "stop() waited for start()"
    assert len(errors) == 1, "a start() that stop() interrupted must fail"
    assert wait_for(lambda: set(threading.enumerate()) <= threads, timeout=3)
