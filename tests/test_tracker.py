"""The command tracker alone: lists of parsed events in, finished commands out. No threads, no process."""

from __future__ import annotations

import uuid

from pygatt.backends.gatttool import commands
from pygatt.backends.gatttool import parser as p
from pygatt.backends.gatttool.tracker import ABANDONED_LIFETIME_S, ATT_TIMEOUT_LOSS, CommandTracker
from pygatt.exceptions import NotConnectedError

UP = p.Prompt("AA:BB:CC:DD:EE:FF", True)
DOWN = p.Prompt("AA:BB:CC:DD:EE:FF", False)


def connected_tracker() -> CommandTracker:
    tracker = CommandTracker()
    tracker.apply(UP)
    return tracker


def feed(tracker: CommandTracker, *events: p.Event) -> list:
    return [tracker.apply(event) for event in events]


def test_a_result_completes_the_oldest_command_of_its_family():
    tracker = connected_tracker()
    op = tracker.begin(commands.read_handle(0x2A), 0.0)
    feed(tracker, p.Other("char-read-hnd 0x002a"), UP)
    assert not op.done
    feed(tracker, p.ReadValue(b"\x01\x02"), UP)
    assert op.done and op.results == [p.ReadValue(b"\x01\x02")] and op.error is None
    assert not tracker.ops


def test_a_late_answer_to_an_abandoned_read_is_swallowed():
    tracker = connected_tracker()
    first = tracker.begin(commands.read_handle(1), 0.0)
    tracker.abandon(first, 5.0)
    second = tracker.begin(commands.read_handle(2), 5.0)
    feed(tracker, p.ReadValue(b"late"))
    assert first.done and not second.done  # the late answer went to the abandoned read
    feed(tracker, p.ReadValue(b"mine"))
    assert second.results == [p.ReadValue(b"mine")]


def test_abandoned_commands_expire():
    tracker = connected_tracker()
    first = tracker.begin(commands.read_handle(1), 0.0)
    tracker.abandon(first, 0.0)
    second = tracker.begin(commands.read_handle(2), ABANDONED_LIFETIME_S + 1)
    assert list(tracker.ops) == [second]
    feed(tracker, p.ReadValue(b"x"))
    assert second.done


def test_a_listing_asks_for_the_sync_marker_and_ends_at_its_answer():
    tracker = connected_tracker()
    op = tracker.begin(commands.CHARACTERISTICS, 0.0)
    assert not op.wants_marker
    line = p.CharacteristicFound(2, 0x02, 3, uuid.UUID(int=1))
    feed(tracker, p.Other("characteristics"), UP, line)
    assert op.wants_marker and not op.done
    op.marker_sent = True
    feed(tracker, line, UP)  # more lines of the same listing keep coming
    assert not op.done and len(op.results) == 2
    feed(tracker, p.Other("sec-level"), p.SecLevel("low"), UP)
    assert op.done and len(op.results) == 2


def test_a_listing_ends_at_the_echo_of_the_command_sent_as_its_end_marker():
    tracker = connected_tracker()
    first = tracker.begin(commands.CHARACTERISTICS, 0.0)
    line = p.CharacteristicFound(2, 0x02, 3, uuid.UUID(int=1))
    feed(tracker, p.Other("characteristics"), UP, line)
    assert first.wants_marker
    first.marker_sent = True
    second = tracker.begin(commands.CHAR_DESC, 0.0)
    feed(tracker, line, UP)  # the rest of the first listing, printed before gatttool read the next line
    assert not first.done and len(first.results) == 2
    feed(tracker, p.Other("char-desc"))  # the next command's echo: the first listing is complete
    assert first.done and len(first.results) == 2
    assert second.echo_seen and not second.done
    feed(tracker, UP, p.DescriptorFound(1, uuid.UUID(int=2)))
    assert second.results == [p.DescriptorFound(1, uuid.UUID(int=2))] and second.wants_marker


DECLARATION = commands.CHARACTERISTIC_DECLARATION


def descriptor_listing_then_characteristics(tracker: CommandTracker, *handles: int):
    """char-desc listing a declaration at each of ``handles`` (each followed by its value), ended by
    the echo of ``characteristics`` sent as its end marker; returns both operations."""
    desc = tracker.begin(commands.CHAR_DESC, 0.0)
    feed(tracker, p.Other("char-desc"), UP, p.DescriptorFound(1, uuid.UUID(int=0x2800)))
    assert desc.wants_marker
    desc.marker_sent = True
    chars = tracker.begin(commands.CHARACTERISTICS_AFTER_DESC, 0.0)
    for handle in handles:
        feed(tracker, p.DescriptorFound(handle, DECLARATION), p.DescriptorFound(handle + 1, uuid.UUID(int=handle)))
    feed(tracker, p.Other("characteristics"), UP)
    assert desc.done and len(desc.results) == 1 + 2 * len(handles)
    return desc, chars


def characteristic(handle: int) -> p.CharacteristicFound:
    return p.CharacteristicFound(handle, 0x02, handle + 1, uuid.UUID(int=handle))


def test_characteristics_after_char_desc_ends_at_the_last_declaration_char_desc_listed():
    tracker = connected_tracker()
    _desc, chars = descriptor_listing_then_characteristics(tracker, 2, 5, 9)
    assert chars.expected == {2, 5, 9}
    feed(tracker, characteristic(2), UP, characteristic(5), UP)
    assert not chars.done and chars.wants_marker
    feed(tracker, characteristic(9))
    assert chars.done and [c.handle for c in chars.results] == [2, 5, 9] and not chars.marker_sent
    assert not tracker.ops


def test_a_characteristic_char_desc_did_not_list_falls_back_to_the_sync_marker():
    tracker = connected_tracker()
    _desc, chars = descriptor_listing_then_characteristics(tracker, 2, 9)
    feed(tracker, characteristic(2), UP, characteristic(5), UP, characteristic(9), UP)
    assert chars.expected is None and not chars.done and chars.wants_marker  # 5 was not foreseen
    chars.marker_sent = True
    feed(tracker, p.Other("sec-level"), p.SecLevel("low"), UP)
    assert chars.done and [c.handle for c in chars.results] == [2, 5, 9]


def test_a_sync_marker_answered_after_the_listing_completed_is_nobody_s():
    tracker = connected_tracker()
    _desc, chars = descriptor_listing_then_characteristics(tracker, 2, 5)
    feed(tracker, characteristic(2), UP)
    chars.marker_sent = True  # the first chunk had one line: the session sent the marker
    feed(tracker, characteristic(5), UP)
    assert chars.done
    read = tracker.begin(commands.read_handle(3), 0.0)
    feed(tracker, p.Other("sec-level"), p.SecLevel("low"), UP)  # the marker's late answer
    assert not read.done and not read.echo_seen
    feed(tracker, p.Other("char-read-hnd 0x0003"), UP, p.ReadValue(b"\x07"))
    assert read.done and read.results == [p.ReadValue(b"\x07")]


def test_no_declaration_listed_leaves_the_end_to_the_sync_marker():
    tracker = connected_tracker()
    _desc, chars = descriptor_listing_then_characteristics(tracker)
    assert chars.expected is None
    feed(tracker, characteristic(2), UP)
    assert chars.wants_marker and not chars.done


def test_plain_characteristics_foresees_nothing_even_after_char_desc():
    tracker = connected_tracker()
    desc = tracker.begin(commands.CHAR_DESC, 0.0)
    feed(tracker, p.Other("char-desc"), UP, p.DescriptorFound(2, DECLARATION))
    desc.marker_sent = True
    chars = tracker.begin(commands.CHARACTERISTICS, 0.0)
    feed(tracker, p.Other("characteristics"), UP, characteristic(2))
    assert desc.done and chars.expected is None and not chars.done


def test_an_echo_ends_only_listings_that_sent_their_marker():
    tracker = connected_tracker()
    first = tracker.begin(commands.CHARACTERISTICS, 0.0)
    feed(tracker, p.Other("characteristics"), UP, p.CharacteristicFound(2, 0x02, 3, uuid.UUID(int=1)))
    second = tracker.begin(commands.read_handle(3), 0.0)  # no marker was sent for the listing
    feed(tracker, p.Other("char-read-hnd 0x0003"))
    assert second.echo_seen and not first.done


def test_an_empty_listing_is_an_answer_not_an_error():
    tracker = connected_tracker()
    op = tracker.begin(commands.CHAR_DESC, 0.0)
    feed(tracker, p.classify_error("Discover descriptors failed: No attribute found within the given range", False))
    assert op.done and op.results == [] and op.error_line is None


def test_a_command_without_output_ends_at_the_prompt_after_its_echo():
    tracker = connected_tracker()
    op = tracker.begin(commands.write(5, b"\x01", False), 0.0)
    feed(tracker, UP)  # a redraw before the echo does not count
    assert not op.done
    feed(tracker, p.Other("char-write-cmd 0x0005 01"), UP)
    assert op.done


def test_readline_scrolled_echo_counts_as_the_echo():
    tracker = connected_tracker()
    command = commands.write(5, bytes(range(40)), False)
    op = tracker.begin(command, 0.0)
    feed(tracker, p.Other("<" + command.line[-78:]), UP)  # what readline prints past the width
    assert op.done


def test_an_error_line_is_kept_for_the_session_to_raise():
    tracker = connected_tracker()
    op = tracker.begin(commands.read_handle(9), 0.0)
    error = p.classify_error("Characteristic value/descriptor read failed: Attribute can't be read", False)
    feed(tracker, error)
    assert op.done and op.error_line == error and op.error_line.att_error == 0x02


def test_a_lost_link_fails_the_commands_and_is_reported_once():
    tracker = connected_tracker()
    op = tracker.begin(commands.read_handle(9), 0.0)
    reasons = feed(tracker, DOWN, DOWN)
    assert reasons == ["the prompt shows the link is down", None]
    assert op.done and isinstance(op.error, NotConnectedError)


def test_an_asked_disconnect_is_not_reported():
    tracker = connected_tracker()
    tracker.closing_link()
    assert feed(tracker, DOWN) == [None]


def test_command_failed_disconnected_after_the_drop_is_not_taken_by_sec_level():
    """A read sent as the link dropped is answered 'Disconnected' after the drop was
    seen; the next command (a reconnect's sec-level) must not take that answer."""
    tracker = connected_tracker()
    read = tracker.begin(commands.read_handle(3), 0.0)
    feed(tracker, DOWN)
    assert read.done
    tracker.start_link()
    sec = tracker.begin(commands.sec_level("low"), 1.0)
    feed(tracker, p.classify_error("Disconnected", True))
    assert not sec.done and sec.error_line is None
    feed(tracker, p.Other("sec-level low"), DOWN)
    assert sec.done and sec.error is None


def test_further_uuid_matches_are_dropped_until_the_next_echo():
    tracker = connected_tracker()
    first = tracker.begin(commands.read_uuid(uuid.UUID(int=5)), 0.0)
    feed(tracker, p.UUIDValue(3, b"a"))
    assert first.results == [p.UUIDValue(3, b"a")]
    second = tracker.begin(commands.read_uuid(uuid.UUID(int=5)), 0.0)
    feed(tracker, p.UUIDValue(7, b"b"))  # the first read's second match
    assert not second.done
    feed(tracker, p.Other(second.command.line), p.UUIDValue(3, b"c"))
    assert second.results == [p.UUIDValue(3, b"c")]


UNLIKELY_READ_ERROR = (
    "Error: Characteristic value/descriptor read failed: Request attribute has encountered an unlikely error"
)


def test_a_late_error_naming_a_command_that_already_ended_is_nobodys():
    """A read ended by the lost link, then its own error line after the reconnect's first command:
    the line names the read, so it does not fail the ``sec-level`` that happens to be waiting."""
    tracker = connected_tracker()
    read = tracker.begin(commands.read_handle(3), 0.0)
    feed(tracker, p.Other("char-read-hnd 0x0003"), p.LinkLost("GLib-WARNING **: Invalid file descriptor."))
    assert read.done and isinstance(read.error, NotConnectedError)
    tracker.start_link()
    sec = tracker.begin(commands.sec_level("low"), 1.0)
    feed(tracker, p.parse_line(UNLIKELY_READ_ERROR))
    assert not sec.done and sec.error_line is None
    feed(tracker, p.Other("sec-level low"), DOWN)
    assert sec.done and sec.error_line is None


def test_a_btio_error_with_no_connect_waiting_goes_to_the_live_command():
    """``setsockopt(BT_SECURITY)`` texts are connect's, but ``sec-level`` prints them too."""
    tracker = connected_tracker()
    sec = tracker.begin(commands.sec_level("medium"), 0.0)
    feed(
        tracker,
        p.Other("sec-level medium"),
        p.parse_line("Error: setsockopt(BT_SECURITY): Operation not permitted (1)"),
    )
    assert sec.done and sec.error_line is not None


def test_the_late_unlikely_error_of_an_abandoned_request_is_gatttools_att_timeout():
    """gatttool gives up on a request after 30 s with the "unlikely error" and leaves its link dead
    (the prompt stays up, later commands get no answer): arriving for a request the caller already
    gave up on, it reports the link lost. The same error answering a live request does not."""
    tracker = connected_tracker()
    live = tracker.begin(commands.read_handle(3), 0.0)
    assert feed(tracker, p.Other("char-read-hnd 0x0003"), p.parse_line(UNLIKELY_READ_ERROR)) == [None, None]
    assert live.done and live.error_line is not None and tracker.connected

    read = tracker.begin(commands.read_handle(3), 1.0)
    feed(tracker, p.Other("char-read-hnd 0x0003"), UP)
    tracker.abandon(read, 5.0)
    assert feed(tracker, p.parse_line(UNLIKELY_READ_ERROR)) == [ATT_TIMEOUT_LOSS]
    assert not tracker.connected and not tracker.ops
