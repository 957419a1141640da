"""GATTToolBackend and GATTToolBLEDevice against the mocked pexpect child."""

from __future__ import annotations

import io
import threading
import time
import uuid
from unittest import mock

import pytest

import pygatt
from pygatt import exceptions
from pygatt.backends import BLEAddressType
from pygatt.testing.sim.gatttool import notification_line
from pygatt.util import uuid16_to_uuid
from tests.helpers import ADDRESS, run_at_once, wait_for

HR = uuid16_to_uuid(0x2A37)
BATTERY = uuid16_to_uuid(0x2A19)


def test_start_spawns_gatttool_interactive_on_the_hci_device(fake_spawn):
    backend = pygatt.GATTToolBackend(hci_device="hci1", cli_options=["--sec-level", "low"])
    backend.start(reset_on_start=False)
    try:
        assert fake_spawn.argv[0] == ["gatttool", "--sec-level", "low", "-i", "hci1", "-I"]
        assert fake_spawn.kwargs[0]["env"]["TERM"] == "dumb"
    finally:
        backend.stop()


def test_cli_options_as_one_string_are_split_like_upstream(fake_spawn):
    backend = pygatt.GATTToolBackend(cli_options="-t random --sec-level medium")
    backend.start(reset_on_start=False)
    try:
        assert fake_spawn.argv[0][1:5] == ["-t", "random", "--sec-level", "medium"]
    finally:
        backend.stop()


def test_start_twice_keeps_one_process(backend, fake_spawn):
    backend.start(reset_on_start=False)
    assert len(fake_spawn.children) == 1


def test_connect_returns_a_connected_device(backend, fake_spawn):
    device = backend.connect(ADDRESS)
    assert isinstance(device, pygatt.backends.GATTToolBLEDevice)
    assert device.connected and device.address == ADDRESS
    assert fake_spawn.child.sent[-1] == f"connect {ADDRESS} public"


def test_connect_random_address_type(backend, fake_spawn):
    backend.connect(ADDRESS, address_type=BLEAddressType.random)
    assert fake_spawn.child.sent[-1] == f"connect {ADDRESS} random"


def test_connect_failure_raises_not_connected_with_gatttools_words(backend):
    with pytest.raises(exceptions.NotConnectedError, match=r"Connection refused \(111\)"):
        backend.connect("11:22:33:44:55:66")


def test_connect_timeout_raises_not_connected_and_replaces_the_process(backend, fake_spawn):
    fake_spawn.child.connect_result = "silent"
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError, match="Timed out connecting"):
        backend.connect(ADDRESS, timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert not fake_spawn.children[0].alive
    assert backend.connect(ADDRESS).connected  # a fresh gatttool takes over
    assert len(fake_spawn.children) == 2


def test_connect_before_start_is_a_clear_error(fake_spawn):
    with pytest.raises(exceptions.BLEError, match="start"):
        pygatt.GATTToolBackend().connect(ADDRESS)


def test_char_read_by_uuid_returns_bytearray(device, fake_spawn):
    value = device.char_read("00002a19-0000-1000-8000-00805f9b34fb")
    assert value == bytearray([0x5A]) and isinstance(value, bytearray)
    assert fake_spawn.child.sent[-1] == "char-read-uuid 00002a19-0000-1000-8000-00805f9b34fb"


def test_char_read_by_uuid_takes_the_first_of_several_matches(device, fake_spawn):
    assert fake_spawn.child.add_characteristic(0x02, 0x2A19, b"\x11") == 0x000F  # gatttool prints both matches
    assert device.char_read(BATTERY) == bytearray([0x5A])
    assert device.char_read_handle(0x000F) == bytearray([0x11])  # the extra line was not taken as this answer


def test_further_uuid_matches_arriving_late_are_not_the_next_reads_answer(device, fake_spawn):
    child = fake_spawn.child
    original = child.sendline
    reads = []

    def sendline(line):
        if line.startswith("char-read-uuid"):
            reads.append(line)
            if len(reads) == 2:  # the first read's second match is still in flight: it precedes this echo
                child.later("handle: 0x0099 \t value: ee ")
        return original(line)

    child.sendline = sendline
    assert device.char_read(BATTERY) == bytearray([0x5A])
    assert device.char_read("2a00") == bytearray(b"Pulse HR")


def test_char_read_handle(device, fake_spawn):
    assert device.char_read_handle(0x0003) == bytearray(b"Pulse HR")
    assert fake_spawn.child.sent[-1] == "char-read-hnd 0x0003"


def test_read_not_permitted_is_a_typed_error_naming_handle_and_reason(device):
    with pytest.raises(exceptions.ReadNotPermittedError) as info:
        device.char_read_handle(0x0009)
    error = info.value
    assert isinstance(error, exceptions.BLEError)
    assert error.att_error == 0x02 and error.target == "0x0009" and error.operation == "char-read-hnd"
    assert "Attribute can't be read" in str(error)


def test_read_of_unknown_uuid_is_attribute_not_found(device):
    with pytest.raises(exceptions.AttributeNotFoundError, match="No attribute found"):
        device.char_read("0000ffff-0000-1000-8000-00805f9b34fb")


def test_read_timeout_raises_notification_timeout_with_output(device, fake_spawn):
    fake_spawn.child.answer = False
    started = time.monotonic()
    with pytest.raises(exceptions.NotificationTimeout) as info:
        device.char_read_handle(0x0003, timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert "char-read-hnd 0x0003" in str(info.value)
    assert "char-read-hnd 0x0003" in info.value.gatttool_output


def test_late_answer_to_a_timed_out_read_is_not_taken_for_the_next(device, fake_spawn):
    child = fake_spawn.child
    child.answer = False
    with pytest.raises(exceptions.NotificationTimeout):
        device.char_read_handle(0x0003, timeout=0.1)
    child.answer = True
    original = child.sendline

    def sendline(line):
        child.later("Characteristic value/descriptor: de ad ")  # the late answer to the abandoned read
        return original(line)

    child.sendline = sendline
    assert device.char_read_handle(0x000C) == bytearray([0x5A])


def test_write_with_response(device, fake_spawn):
    device.char_write_handle(0x000C, bytearray([0x01, 0x02]))
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000c 0102"
    assert fake_spawn.child.attributes[0x000C].value == b"\x01\x02"


def test_write_without_response_uses_write_cmd_and_waits_only_for_the_prompt(device, fake_spawn):
    device.char_write_handle(0x000C, b"\x07", wait_for_response=False)
    assert fake_spawn.child.sent[-1] == "char-write-cmd 0x000c 07"
    assert fake_spawn.child.attributes[0x000C].value == b"\x07"


def test_write_without_response_longer_than_mtu_is_refused_not_truncated(device, fake_spawn):
    with pytest.raises(ValueError, match="20"):
        device.char_write_handle(0x000C, bytes(21), wait_for_response=False)
    assert not any(s.startswith("char-write-cmd") for s in fake_spawn.child.sent)


def test_write_not_permitted(device):
    with pytest.raises(exceptions.WriteNotPermittedError, match="0x0005"):
        device.char_write_handle(0x0005, b"\x01")


def test_char_write_by_uuid_discovers_and_writes_value_handle(device, fake_spawn):
    device.char_write(str(BATTERY).upper(), b"\x42")
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000c 42"


def test_long_read_and_write_use_read_hnd_and_write_req(device, fake_spawn):
    payload = bytes(range(100))
    device.char_write_long_handle(0x000C, payload)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000c " + payload.hex()
    assert device.char_read_long_handle(0x000C) == bytearray(payload)
    assert device.char_read_long(BATTERY) == bytearray(payload)
    device.char_write_long(BATTERY, b"\x01" * 30)
    assert fake_spawn.child.attributes[0x000C].value == b"\x01" * 30


def test_discover_characteristics_fills_descriptors(device):
    characteristics = device.discover_characteristics()
    assert set(characteristics) == {uuid16_to_uuid(n) for n in (0x2A00, 0x2A37, 0x2A38, 0x2A19)}
    hr = characteristics[HR]
    assert isinstance(hr, pygatt.backends.Characteristic) and hr.handle == 0x0006
    assert hr.descriptors == {uuid16_to_uuid(0x2902): 0x0007}
    assert characteristics[uuid16_to_uuid(0x2A00)].descriptors == {}
    assert str(hr) == "<Characteristic uuid=00002a37-0000-1000-8000-00805f9b34fb handle=6>"


def test_discovery_takes_two_round_trips_and_no_sync_marker(device, fake_spawn):
    device.discover_characteristics()
    sent = fake_spawn.child.sent
    start = sent.index("char-desc")
    # characteristics ends char-desc with its echo, and ends itself with the last declaration char-desc listed
    assert sent[start:] == ["char-desc", "characteristics"]
    assert device.char_read_handle(0x000C) == bytearray(b"\x5a")  # the session is still in step


def test_a_characteristic_char_desc_did_not_declare_is_found_through_the_sync_marker(device, fake_spawn):
    fake_spawn.child.hidden_from_desc.add(0x0005)  # Heart Rate Measurement's declaration
    characteristics = device.discover_characteristics()
    assert set(characteristics) == {uuid16_to_uuid(n) for n in (0x2A00, 0x2A37, 0x2A38, 0x2A19)}
    assert characteristics[HR].handle == 0x0006
    assert fake_spawn.child.sent[-1] == "sec-level"


def test_discovery_of_nothing_lists_the_characteristics_alone(device, fake_spawn):
    def nothing(what):
        message = f"Discover {what} failed: No attribute found within the given range"
        return lambda args: fake_spawn.child.error(message, asynchronous=True)

    fake_spawn.child.cmd_char_desc = nothing("descriptors")
    fake_spawn.child.cmd_characteristics = nothing("all characteristics")
    assert device.discover_characteristics() == {}
    sent = fake_spawn.child.sent
    assert sent[sent.index("char-desc") :] == ["char-desc", "characteristics"]


def test_a_failed_char_desc_keeps_the_characteristics_and_falls_back_to_handle_plus_one(device, fake_spawn, caplog):
    fake_spawn.child.cmd_char_desc = lambda args: fake_spawn.child.error(
        "Discover descriptors failed: Request attribute has encountered an unlikely error", asynchronous=True
    )
    characteristics = device.discover_characteristics()
    assert characteristics[HR].handle == 0x0006 and characteristics[HR].descriptors == {}
    assert "Could not list descriptors" in caplog.text
    sent = fake_spawn.child.sent
    assert sent[sent.index("char-desc") :] == ["char-desc", "characteristics", "sec-level"]  # listed alone
    device.subscribe(HR)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x0007 0100"
    assert device.char_read_handle(0x000C) == bytearray(b"\x5a")  # the session is still in step


def test_a_char_desc_that_never_answers_times_the_discovery_out_and_leaves_the_session_in_step(device, fake_spawn):
    fake_spawn.child.cmd_char_desc = lambda args: None  # echoed, never answered
    started = time.monotonic()
    with pytest.raises(exceptions.NotificationTimeout, match="char-desc"):
        device.discover_characteristics(timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert "characteristics" not in fake_spawn.child.sent  # sent only after char-desc's first line
    assert device.char_read_handle(0x000C) == bytearray(b"\x5a")


def test_a_char_desc_failing_at_the_deadline_leaves_no_time_for_the_characteristics(device, fake_spawn):
    fake_spawn.child.cmd_char_desc = lambda args: fake_spawn.child.error(
        "Discover descriptors failed: Request attribute has encountered an unlikely error", asynchronous=True
    )
    with mock.patch("pygatt.backends.gatttool.link.time") as clock:  # the link's clock only, not the session's
        clock.monotonic.side_effect = [0.0, 5.0]  # the discovery starts; char-desc's error came at its deadline
        with pytest.raises(exceptions.NotificationTimeout, match="No time left within 5"):
            device.discover_characteristics(timeout=5)
    assert "characteristics" not in fake_spawn.child.sent


def test_a_link_lost_during_char_desc_fails_the_discovery(device, fake_spawn):
    fake_spawn.child.cmd_char_desc = lambda args: fake_spawn.child.remote_disconnect()
    with pytest.raises(exceptions.NotConnectedError):
        device.discover_characteristics()


def test_discovery_happens_once_and_get_handle_accepts_any_spelling(device, fake_spawn):
    assert device.get_handle("00002A37-0000-1000-8000-00805F9B34FB") == 0x0006
    assert device.get_handle(HR) == 0x0006
    assert device.get_handle("2a19") == 0x000C
    assert fake_spawn.child.sent.count("characteristics") == 1


def test_get_handle_of_duplicate_uuid_is_the_lowest_value_handle(device, fake_spawn):
    fake_spawn.child.add_characteristic(0x02, 0x2A19, b"\x01")
    assert device.get_handle(BATTERY) == 0x000C


def test_get_handle_unknown_uuid_raises_bleerror(device):
    with pytest.raises(exceptions.BLEError, match="No characteristic found"):
        device.get_handle("0000abcd-0000-1000-8000-00805f9b34fb")


def test_subscribe_writes_cccd_and_delivers_notifications_in_order(device, fake_spawn):
    received = []
    device.subscribe(HR, callback=lambda h, v: received.append((h, v)))
    assert fake_spawn.child.sent[-1] == "char-write-req 0x0007 0100"
    for n in range(50):
        fake_spawn.child.notify(0x0006, bytes([n, 0x48]))
    assert wait_for(lambda: len(received) == 50)
    assert [v[0] for _, v in received] == list(range(50))
    assert all(h == 0x0006 and isinstance(v, bytearray) for h, v in received)


def test_runs_of_notifications_in_one_chunk_reach_the_callbacks_in_order(device, fake_spawn):
    """One chunk of many notification lines decodes into runs of one handle (parser.NotificationRun):
    the backend hands runs and single lines on in the order gatttool printed them, indications
    as well as notifications, and drops the handles nobody subscribed to."""
    got = []
    device.subscribe(HR, callback=lambda h, v: got.append((h, bytes(v))))
    device.subscribe(BATTERY, callback=lambda h, v: got.append((h, bytes(v))), indication=True)
    plan = [(0x0006, 40, False), (0x000C, 1, True), (0x0006, 3, False), (0x0003, 20, False), (0x0006, 1, False)]
    plan += [(0x000C, 60, True), (0x0006, 300, False)]  # a run longer than the decoder's window
    lines, expected = [], []
    for handle, count, indication in plan:
        for _ in range(count):
            value = len(lines).to_bytes(2, "big")
            lines.append(notification_line(handle, value, indication))
            if handle != 0x0003:  # not subscribed: dropped
                expected.append((handle, value))
    child = fake_spawn.child
    with child._lock:  # one chunk, as a flood arrives
        for line in lines:
            child.terminal.later(line)
        child.terminal.flush()
    assert wait_for(lambda: len(got) >= len(expected))
    assert got == expected


def test_subscribe_indication_writes_0200_and_receives_indications(device, fake_spawn):
    received = []
    device.subscribe(BATTERY, callback=lambda h, v: received.append(v), indication=True)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000d 0200"
    fake_spawn.child.notify(0x000C, b"\x33", indication=True)
    assert wait_for(lambda: received == [bytearray(b"\x33")])


def test_subscribe_twice_writes_once_and_keeps_both_callbacks(device, fake_spawn):
    a, b = [], []
    device.subscribe(HR, callback=lambda h, v: a.append(v))
    device.subscribe(HR, callback=lambda h, v: b.append(v))
    assert fake_spawn.child.sent.count("char-write-req 0x0007 0100") == 1
    fake_spawn.child.notify(0x0006, b"\x01")
    assert wait_for(lambda: a == b == [bytearray(b"\x01")])


def test_cccd_falls_back_to_value_handle_plus_one_when_not_listed(device, fake_spawn):
    fake_spawn.child.hidden_from_desc.add(0x0007)  # char-desc no longer lists the CCCD
    device.subscribe(HR)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x0007 0100"
    assert device.discover_characteristics()[HR].descriptors == {}


def test_unsubscribe_writes_0000_and_forgets_callbacks(device, fake_spawn):
    received = []
    device.subscribe(HR, callback=lambda h, v: received.append(v))
    device.unsubscribe(HR)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x0007 0000"
    fake_spawn.child.notify(0x0006, b"\x01")
    device.char_read_handle(0x0003)  # let the reader pass the notification
    time.sleep(0.05)
    assert received == []


def test_subscribe_handle_and_unsubscribe_handle(device, fake_spawn):
    received = []
    device.subscribe_handle(0x000C, callback=lambda h, v: received.append(v))
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000d 0100"
    fake_spawn.child.notify(0x000C, b"\x10")
    assert wait_for(lambda: received == [bytearray(b"\x10")])
    device.unsubscribe_handle(0x000C)
    assert fake_spawn.child.sent[-1] == "char-write-req 0x000d 0000"


def test_a_raising_callback_is_logged_and_others_still_run(device, fake_spawn, caplog):
    received = []

    def bad(handle, value):
        raise RuntimeError("boom")

    device.subscribe(HR, callback=bad)
    device.subscribe(HR, callback=lambda h, v: received.append(v))
    fake_spawn.child.notify(0x0006, b"\x01")
    fake_spawn.child.notify(0x0006, b"\x02")
    assert wait_for(lambda: len(received) == 2)
    assert "boom" in caplog.text
    assert device.char_read_handle(0x0003) == bytearray(b"Pulse HR")  # the reader lives on


def test_callbacks_run_off_the_reader_thread_and_may_read(device, fake_spawn):
    results = []
    threads = []

    def callback(handle, value):
        threads.append(threading.current_thread().name)
        results.append(device.char_read_handle(0x000C))

    device.subscribe(HR, callback=callback)
    fake_spawn.child.notify(0x0006, b"\x01")
    assert wait_for(lambda: results == [bytearray([0x5A])])
    assert "reader" not in threads[0]


def test_resubscribe_all_rewrites_every_cccd(device, fake_spawn):
    device.subscribe(HR)
    device.subscribe(BATTERY, indication=True)
    fake_spawn.child.sent.clear()
    device.resubscribe_all()
    assert fake_spawn.child.sent == ["char-write-req 0x0007 0100", "char-write-req 0x000d 0200"]


def test_receive_notification_calls_every_callback_with_bytearray():
    device = pygatt.BLEDevice("C4:7C:8D:6A:3E:01")
    got = []
    device._callbacks[5] = (lambda h, v: got.append(("a", h, v)), lambda h, v: got.append(("b", h, v)))
    device.receive_notification(5, b"\x01\x02")
    assert got == [("a", 5, bytearray(b"\x01\x02")), ("b", 5, bytearray(b"\x01\x02"))]
    assert isinstance(got[0][2], bytearray)


def test_exchange_mtu_returns_int_and_raises_write_cmd_limit(device, fake_spawn):
    assert device.exchange_mtu(100) == 100
    assert fake_spawn.child.sent[-1] == "mtu 100"
    device.char_write_handle(0x000C, bytes(97), wait_for_response=False)
    assert fake_spawn.child.attributes[0x000C].value == bytes(97)


def test_bond_sends_sec_level_medium(device, fake_spawn):
    device.bond()
    assert fake_spawn.child.sent[-1] == "sec-level medium"


def test_disconnect_then_calls_raise_not_connected(device, fake_spawn):
    device.disconnect()
    assert fake_spawn.child.sent[-1] == "disconnect"
    assert not device.connected
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0003)
    with pytest.raises(exceptions.NotConnectedError):
        device.disconnect()


def test_disconnect_keeps_the_process_for_the_next_connect(backend, fake_spawn):
    backend.connect(ADDRESS).disconnect()
    again = backend.connect(ADDRESS)
    assert again.connected and len(fake_spawn.children) == 1


def test_remote_disconnect_fires_callbacks_once_and_fails_calls(device, fake_spawn):
    fired = []
    device.register_disconnect_callback(lambda d: fired.append(d))
    fake_spawn.child.remote_disconnect()
    fake_spawn.child.sync("\x1b[0;91mCommand Failed: \x1b[0mDisconnected")
    assert wait_for(lambda: fired == [device], timeout=3)
    time.sleep(0.05)
    assert fired == [device]
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0003)


def test_remove_disconnect_callback(device, fake_spawn):
    fired = []
    callback = fired.append
    device.register_disconnect_callback(callback)
    device.remove_disconnect_callback(callback)
    device.remove_disconnect_callback(callback)
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: not device.connected)
    time.sleep(0.05)
    assert fired == []


def test_explicit_disconnect_does_not_fire_disconnect_callbacks(device):
    fired = []
    device.register_disconnect_callback(fired.append)
    device.disconnect()
    time.sleep(0.05)
    assert fired == []


def test_gatttool_dying_mid_read_fails_fast_and_fires_callback_once(device, fake_spawn):
    fired = []
    device.register_disconnect_callback(fired.append)
    fake_spawn.child.answer = False
    threading.Timer(0.1, fake_spawn.child.die).start()
    started = time.monotonic()
    with pytest.raises(exceptions.NotConnectedError, match="exited"):
        device.char_read_handle(0x0003, timeout=10)
    assert time.monotonic() - started < 2
    assert wait_for(lambda: fired == [device])


def test_auto_reconnect_reconnects_and_resubscribes(backend, fake_spawn):
    device = backend.connect(ADDRESS, auto_reconnect=True)
    device.subscribe(HR)
    fake_spawn.child.sent.clear()
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: "char-write-req 0x0007 0100" in fake_spawn.child.sent, timeout=3)
    assert f"connect {ADDRESS} public" in fake_spawn.child.sent
    assert device.connected


def test_gatttools_own_att_timeout_counts_as_a_lost_link(backend, fake_spawn):
    """A read the caller gave up on ends, 30 s later in gatttool, with the "unlikely error": gatttool
    has shut its link down though its prompt still shows it up. The link counts as lost (callbacks,
    auto-reconnect) and that gatttool is ended rather than reused."""
    device = backend.connect(ADDRESS, auto_reconnect=True)
    old = fake_spawn.child
    fired = []
    device.register_disconnect_callback(fired.append)
    old.answer = False
    with pytest.raises(exceptions.NotificationTimeout):
        device.char_read_handle(0x0003, timeout=0.2)
    old.error("Characteristic value/descriptor read failed: Request attribute has encountered an unlikely error")
    assert wait_for(lambda: fired == [device], timeout=3)
    assert wait_for(lambda: not old.alive, timeout=3)
    assert wait_for(lambda: device.connected, timeout=5)
    assert fake_spawn.child is not old
    assert device.char_read_handle(0x0003) is not None


def test_disconnect_during_an_auto_reconnect_stays_disconnected(backend, fake_spawn):
    device = backend.connect(ADDRESS, auto_reconnect=True)
    fake_spawn.child.peripheral.connect_delay_s = 0.5  # the reconnect's connect takes a while
    fake_spawn.child.sent.clear()
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: f"connect {ADDRESS} public" in fake_spawn.child.sent, timeout=3)
    device.disconnect()  # while the reconnect is still connecting: ends it
    assert wait_for(lambda: "disconnect" in fake_spawn.child.sent, timeout=3)  # the late link is closed again
    time.sleep(0.2)
    assert not device.connected
    with pytest.raises(exceptions.NotConnectedError):
        device.char_read_handle(0x0003)


def test_a_failed_resubscribe_is_tried_again_by_the_next_reconnect(backend, fake_spawn):
    """A reconnect whose CCCD write fails does not count as done: its link is closed again and the
    next attempt reconnects and resubscribes (before, the link stayed up with notifications off)."""
    device = backend.connect(ADDRESS, auto_reconnect=True)
    device.subscribe(HR)
    child = fake_spawn.child
    refusals = {"left": 1}

    def refuse_once(args):
        if refusals["left"]:
            refusals["left"] -= 1
            child.terminal.prompt()
            child.error("Characteristic Write Request failed: Attribute requires authorization before read/write")
            return
        child._simulate("char-write-req", args)

    child.cmd_char_write_req = refuse_once
    child.sent.clear()
    child.remote_disconnect()
    assert wait_for(lambda: child.sent.count("char-write-req 0x0007 0100") == 2, timeout=5)
    assert device.connected
    device.char_read_handle(0x0003)  # sent after that write has its answer (one command at a time)
    assert child.attributes[0x0007].value == b"\x01\x00"
    assert child.sent.count(f"connect {ADDRESS} public") == 2


def test_reconnect_before_the_loss_is_handled_ends_the_old_process(backend, fake_spawn, device):
    """``reconnect()`` called while the lost link's clean-up still waits behind a busy callback: the old
    gatttool is ended, not left running past ``stop()``; the late clean-up leaves the new link alone."""
    old = fake_spawn.child
    busy, release = threading.Event(), threading.Event()

    def slow_callback(handle, value):
        busy.set()
        release.wait(5)

    device.subscribe_handle(0x000C, slow_callback)
    old.notify(0x000C, b"\x01")
    assert busy.wait(5)  # the callback thread is held, so the loss below waits in its queue
    link = backend._links[device]
    old.remote_disconnect()
    assert wait_for(lambda: not link.connected, timeout=3)
    backend.reconnect(device, timeout=5)
    assert not old.alive
    release.set()
    assert wait_for(lambda: backend._dispatcher.pending() == 0, timeout=3)
    assert device.connected and device.char_read_handle(0x0003) is not None
    backend.stop()
    assert [child for child in fake_spawn.children if child.alive] == []


def test_two_reconnects_at_once_open_one_link_and_leave_no_process(backend, fake_spawn, device):
    """The reconnector's reconnect and the caller's may meet: they take turns, the second finds the
    device connected, and no gatttool process is orphaned (each one ends with stop())."""
    fake_spawn.child.peripheral.connect_delay_s = 0.3  # a connect that takes a while, so the two overlap
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: not device.connected, timeout=3)
    errors = run_at_once(lambda: backend.reconnect(device, timeout=5), threads=2)
    assert errors == [] and device.connected
    connected = [child for child in fake_spawn.children if child.alive and child.connected]
    assert len(connected) == 1
    backend.stop()
    assert [child for child in fake_spawn.children if child.alive] == []


def test_a_failed_connect_is_not_remembered_for_reconnect(backend, fake_spawn):
    """Only devices that connected are reconnect()'s to choose from: failed attempts leave nothing behind."""
    for _ in range(2):
        with pytest.raises(exceptions.NotConnectedError):
            backend.connect("11:22:33:44:55:66", timeout=0.5)  # nothing answers at that address
    device = backend.connect(ADDRESS)
    fake_spawn.child.remote_disconnect()
    assert wait_for(lambda: not device.connected, timeout=3)
    backend.reconnect(timeout=3)  # the device may be left out: it is the only one this backend knows
    assert device.connected


def test_calls_on_a_disconnected_device_raise_not_connected(backend):
    device = pygatt.backends.GATTToolBLEDevice(ADDRESS, backend)
    for call in (lambda: device.char_read("2a19"), lambda: device.char_write_handle(1, b"\x00"), device.bond):
        with pytest.raises(exceptions.NotConnectedError):
            call()


def test_sendline_goes_to_the_connected_session(device, fake_spawn):
    device._backend.sendline("sec-level")
    assert fake_spawn.child.sent[-1] == "sec-level"
    with pytest.raises(ValueError):
        device._backend.sendline("sec-level\nchar-write-req 0x0001 00")


def test_gatttool_logfile_path_gets_the_session(fake_spawn, tmp_path):
    path = tmp_path / "gatttool.log"
    backend = pygatt.GATTToolBackend(gatttool_logfile=str(path))
    backend.start(reset_on_start=False)
    logfile = fake_spawn.kwargs[0]["logfile"]
    backend.stop()
    assert logfile.name == str(path) and logfile.closed


def test_gatttool_logfile_object_is_passed_and_left_open(fake_spawn):
    stream = io.StringIO()
    backend = pygatt.GATTToolBackend(gatttool_logfile=stream)
    backend.start(reset_on_start=False)
    backend.stop()
    assert fake_spawn.kwargs[0]["logfile"] is stream and not stream.closed


def test_stop_is_bounded_and_idempotent_in_every_state(fake_spawn):
    never_started = pygatt.GATTToolBackend()
    never_started.stop()
    backend = pygatt.GATTToolBackend()
    backend.start(reset_on_start=False)
    backend.connect(ADDRESS)
    fake_spawn.child.die()  # gatttool already dead
    started = time.monotonic()
    backend.stop()
    backend.stop()
    assert time.monotonic() - started < 2


def test_stop_does_not_wait_for_a_subscribe_gatttool_never_answers(backend, fake_spawn, device):
    """A subscribe holds the device's subscription lock across its CCCD write; ``stop()`` marks the
    device down without that lock, so it returns at once instead of after the write's 30 s."""
    fake_spawn.child.answer = False  # the write request is never acknowledged
    errors = []

    def subscribe():
        try:
            device.subscribe_handle(0x000C, lambda handle, value: None)
        except BaseException as exc:  # checked below
            errors.append(exc)

    subscriber = threading.Thread(target=subscribe)
    subscriber.start()
    assert wait_for(lambda: "char-write-req 0x000d 0100" in fake_spawn.child.sent, timeout=3)
    started = time.monotonic()
    backend.stop()
    subscriber.join(10)
    assert time.monotonic() - started < 3
    assert not subscriber.is_alive() and isinstance(errors[0], exceptions.NotConnectedError)


def test_two_devices_get_two_sessions_and_their_own_notifications(backend, fake_spawn):
    first = backend.connect(ADDRESS)
    fake_spawn.configure = lambda child: setattr(child, "known_address", "C4:7C:8D:6A:3E:02")
    second = backend.connect("C4:7C:8D:6A:3E:02")
    assert len(fake_spawn.children) == 2
    got = {1: [], 2: []}
    first.subscribe(HR, callback=lambda h, v: got[1].append(v))
    second.subscribe(HR, callback=lambda h, v: got[2].append(v))
    fake_spawn.children[0].notify(0x0006, b"\x01")
    fake_spawn.children[1].notify(0x0006, b"\x02")
    assert wait_for(lambda: got == {1: [bytearray(b"\x01")], 2: [bytearray(b"\x02")]})
    with pytest.raises(exceptions.BLEError, match="Several devices"):
        backend.sendline("sec-level")
    first.disconnect()
    assert second.char_read_handle(0x000C) == bytearray([0x5A])


def test_connect_same_address_twice_returns_the_same_device(backend):
    assert backend.connect(ADDRESS) is backend.connect(ADDRESS)


def test_backend_methods_take_the_device_first_like_upstream(device):
    backend = device._backend
    assert backend.char_read(device, "2a19") == bytearray([0x5A])
    assert backend.char_read_handle(device, 0x000C, timeout=2) == bytearray([0x5A])
    backend.char_write_handle(device, 0x000C, b"\x01", wait_for_response=True, timeout=2)
    assert set(backend.discover_characteristics(device)) >= {HR, BATTERY}
    assert backend.exchange_mtu(device, 50) == 50
    other = pygatt.backends.GATTToolBLEDevice("11:22:33:44:55:66", backend)
    with pytest.raises(exceptions.NotConnectedError):
        backend.char_read_handle(other, 1)


def test_uuid_objects_are_accepted_everywhere(device):
    assert device.char_read(uuid.UUID("00002a19-0000-1000-8000-00805f9b34fb")) == bytearray([0x5A])


def test_failed_subscribe_leaves_no_callback_behind(device, fake_spawn):
    child = fake_spawn.child
    child.attributes[0x0007].writable = False
    with pytest.raises(exceptions.WriteNotPermittedError):
        device.subscribe(HR, callback=lambda h, v: None)
    assert 0x0006 not in device._callbacks
    child.attributes[0x0007].writable = True
    got = []
    device.subscribe(HR, callback=lambda h, v: got.append(v))
    child.notify(0x0006, b"\x05")
    assert wait_for(lambda: got == [bytearray(b"\x05")])


def test_every_connect_starts_at_sec_level_low(backend, fake_spawn):
    device = backend.connect(ADDRESS)
    device.bond()
    device.disconnect()
    backend.connect(ADDRESS)  # the same gatttool process, reused
    sent = fake_spawn.child.sent
    assert sent.count("sec-level low") == 2
    assert sent[-2:] == ["sec-level low", f"connect {ADDRESS} public"]


def test_device_mtu_follows_the_exchange(device):
    assert device.mtu == 23
    assert device.exchange_mtu(100) == 100
    assert device.mtu == 100


def test_receive_notifications_delivers_a_chunk_in_order_and_stops_at_an_unsubscribe():
    device = pygatt.BLEDevice("C4:7C:8D:6A:3E:01")
    got = []

    def first(handle, value):
        got.append(("first", handle, bytes(value)))
        if value == b"\x02":
            device._callbacks.pop(5)  # what unsubscribe_handle does first, from inside a callback

    def broken(handle, value):
        raise RuntimeError("a callback's bug")

    device._callbacks[5] = (first, broken)
    device._callbacks[6] = (lambda h, v: got.append(("six", h, bytes(v))),)
    device.receive_notifications([(5, b"\x01"), (6, b"\x0a"), (5, b"\x02"), (5, b"\x03"), (6, b"\x0b"), (7, b"\x00")])
    assert got == [("first", 5, b"\x01"), ("six", 6, b"\x0a"), ("first", 5, b"\x02"), ("six", 6, b"\x0b")]


def test_receive_run_delivers_in_order_and_stops_at_an_unsubscribe():
    """receive_run(handle, values) is receive_notifications of those values with that handle: each
    callback gets its own bytearray, one that raises does not stop the others, and a callback that
    unsubscribes gets none of the rest of the run."""
    device = pygatt.BLEDevice("C4:7C:8D:6A:3E:01")
    got = []

    def first(handle, value):
        got.append(("first", handle, bytes(value)))
        value[0] = 0xFF  # its own copy: the next callback sees the value as sent
        if len(got) == 3:
            device._callbacks[5] = (second,)  # what unsubscribing `first` does, from inside a callback

    def broken(handle, value):
        raise RuntimeError("a callback's bug")

    def second(handle, value):
        got.append(("second", handle, bytes(value)))

    device._callbacks[5] = (first, broken, second)
    device.receive_run(5, [b"\x01", b"\x02", b"\x03", b"\x04"])
    assert got == [
        ("first", 5, b"\x01"),
        ("second", 5, b"\x01"),
        ("first", 5, b"\x02"),
        ("second", 5, b"\x02"),
        ("second", 5, b"\x03"),
        ("second", 5, b"\x04"),
    ]
    device.receive_run(6, [b"\x05"])  # nobody listens: nothing happens
    assert len(got) == 6


@pytest.mark.parametrize(
    "deliver, expected",
    [
        (lambda device: device.receive_notifications([(5, b"\x01"), (6, b"\x02")]), [(5, b"\x01"), (6, b"\x02")]),
        (lambda device: device.receive_run(5, [b"\x01", b"\x02"]), [(5, b"\x01"), (5, b"\x02")]),
    ],
    ids=["receive_notifications", "receive_run"],
)
def test_chunk_delivery_goes_through_an_overridden_or_patched_receive_notification(deliver, expected):
    """pygatt 5.0.0's backends called receive_notification per value; code that overrides it still sees each."""

    class Logging(pygatt.BLEDevice):
        def __init__(self, address):
            super().__init__(address)
            self.seen = []

        def receive_notification(self, handle, value):
            self.seen.append((handle, bytes(value)))

    device = Logging("C4:7C:8D:6A:3E:01")
    deliver(device)
    assert device.seen == expected

    plain = pygatt.BLEDevice("C4:7C:8D:6A:3E:01")
    with mock.patch.object(plain, "receive_notification") as patched:
        deliver(plain)
    assert patched.call_args_list == [mock.call(*pair) for pair in expected]


@pytest.mark.parametrize(
    "line",
    [
        "char-write-req 0x0001 01\x03",  # Ctrl-C: SIGINT on the pty, readline clears the line, nothing runs
        "\x04",  # Ctrl-D on an empty line: EOF, gatttool exits
        "sec-level\x15char-write-req 0x0001 00",  # Ctrl-U: readline drops the start of the line
        "char-write-req 0x0001 0\x7f1",  # DEL: readline erases a character
        "char\tread",  # TAB: readline completes
        "sec-level\x1b#",  # ESC: readline key bindings (ESC # comments the line out)
    ],
)
def test_sendline_refuses_terminal_control_characters(device, fake_spawn, line):
    # gatttool reads its input through readline on a pty: these characters edit, discard or end the
    # line instead of reaching gatttool as text, so the command would be half-sent or lost
    before = list(fake_spawn.child.sent)
    with pytest.raises(ValueError, match="control character"):
        device._backend.sendline(line)
    assert fake_spawn.child.sent == before


@pytest.mark.parametrize("escape", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_a_callback_raising_a_base_exception_is_logged_and_delivery_goes_on(device, fake_spawn, caplog, escape):
    # a callback calling sys.exit() (or raising another BaseException that is not an Exception) ended the
    # callback thread silently: no notification and no lost link was ever delivered again
    received = []
    fired = []

    def bad(handle, value):
        if value == b"\x01":
            raise escape("from a callback")

    device.subscribe(HR, callback=bad)
    device.subscribe(HR, callback=lambda h, v: received.append(bytes(v)))
    device.register_disconnect_callback(fired.append)
    fake_spawn.child.notify(0x0006, b"\x01")
    fake_spawn.child.notify(0x0006, b"\x02")
    assert wait_for(lambda: received == [b"\x01", b"\x02"], timeout=3)
    assert "from a callback" in caplog.text
    fake_spawn.child.remote_disconnect()
    fake_spawn.child.sync("\x1b[0;91mCommand Failed: \x1b[0mDisconnected")
    assert wait_for(lambda: fired == [device], timeout=3)
