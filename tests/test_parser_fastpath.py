"""The notification fast path accepts exactly the value texts the full line pattern accepts."""

from __future__ import annotations

import re
from typing import List, Optional

from hypothesis import given
from hypothesis import strategies as st

from pygatt.backends.gatttool import parser as p

# The value part of the full notification pattern in parser.LINE_PATTERNS, with the line's optional \r.
VALUE_PATTERN = re.compile(r"((?:[0-9a-fA-F]{2} ?)*)\r?")

value_texts = st.text(alphabet="0123456789abcdefABCDEFxz \t\r\n", max_size=24)


def fed(decoder: p.OutputDecoder, text: str) -> List[p.Event]:
    """What ``decoder`` makes of ``text``, a notification run spelled out one event per value
    (``NotificationRun`` means exactly that), so it compares with a decoder without runs."""
    return p.one_per_value(decoder.feed(text))


@given(value_texts)
def test_notification_value_accepts_what_the_pattern_accepts(text: str) -> None:
    match = VALUE_PATTERN.fullmatch(text)
    expected = None if match is None else bytes.fromhex(match.group(1))
    assert p.notification_value(text) == expected


@given(st.binary(max_size=300))
def test_gatttool_framed_values_round_trip(value: bytes) -> None:
    text = "".join(f"{b:02x} " for b in value) + "\r"
    assert p.notification_value(text) == value


def test_a_flood_reports_its_prompt_once_and_every_value() -> None:
    prompt = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "
    lines = "".join(f"\r{' ' * 25}\rNotification handle = 0x0008 value: {n:02x} \r\n{prompt}" for n in range(5))
    decoder = p.OutputDecoder()
    events = fed(decoder, prompt + lines)
    assert events == [p.Prompt("C4:7C:8D:6A:3E:01", True)] + [
        p.Notification(0x0008, bytes([n]), False) for n in range(5)
    ]


def test_a_flood_decodes_into_one_run_across_windows_and_chunks() -> None:
    """The lines of a flood after the first of a chunk come out as one NotificationRun, across the
    decoder's windows (RUN_WINDOW characters each); another handle or kind starts another run."""
    prompt = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "

    def line(handle: int, n: int, label: str = "Notification handle") -> str:
        return f"\r{' ' * 25}\r{label} = 0x{handle:04x} value: {n % 256:02x} {n // 256:02x} \r\n{prompt}"

    flood = "".join(line(0x0008, n) for n in range(1000))
    assert len(flood) > 10 * p.RUN_WINDOW
    decoder = p.OutputDecoder()
    events = decoder.feed(prompt + flood)
    assert [type(e) for e in events] == [p.Prompt, p.Notification, p.NotificationRun]
    run = events[2]
    assert isinstance(run, p.NotificationRun) and (run.handle, run.indication) == (0x0008, False)
    assert run.values == [n.to_bytes(2, "little") for n in range(1, 1000)]
    more = "".join(line(0x0008, n) for n in range(3)) + "".join(line(0x000B, n) for n in range(3))
    more += "".join(line(0x000B, n, "Indication   handle") for n in range(3))
    events = decoder.feed(more)  # a chunk of its own; another handle, then indications, each start a run
    assert p.one_per_value(events) == [p.Notification(0x0008, n.to_bytes(2, "little"), False) for n in range(3)] + [
        p.Notification(0x000B, n.to_bytes(2, "little"), kind) for kind in (False, True) for n in range(3)
    ]
    runs = [(e.handle, e.indication, len(e.values)) for e in events if isinstance(e, p.NotificationRun)]
    assert runs == [(0x0008, False, 1), (0x000B, False, 2), (0x000B, True, 2)]


def test_a_changed_prompt_between_notifications_is_reported() -> None:
    blue = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "
    grey = "[C4:7C:8D:6A:3E:01][LE]> "
    text = (
        f"{blue}\r\x1b[KNotification handle = 0x0008 value: 01 \r\n"
        f"{grey}\r\x1b[KIndication   handle = 0x0008 value: 02 \r\n"
    )
    events = fed(p.OutputDecoder(), text)
    assert events == [
        p.Prompt("C4:7C:8D:6A:3E:01", True),
        p.Notification(0x0008, b"\x01", False),
        p.Prompt("C4:7C:8D:6A:3E:01", False),
        p.Notification(0x0008, b"\x02", True),
    ]


PROMPT_PIECES = [
    "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> ",
    "[C4:7C:8D:6A:3E:01][LE]> ",
    "[                 ][LE]> ",
    "[C4:7C:8D:6A:3E:01][BR]> ",
    "]> ",
    "[LE]> ",
    "\x1b[0;94m",
    "\r",
    " ",
    "x",
    "Characteristic value/descriptor: 01 ",
]


@given(st.lists(st.sampled_from(PROMPT_PIECES), max_size=12))
def test_prompts_are_found_as_a_left_to_right_finditer_would(pieces: List[str]) -> None:
    """The decoder tries the prompt pattern only before each "]> "; it must find what finditer finds."""
    line = "".join(pieces)
    expected = [
        p.Prompt(match.group("address").strip() or None, match.group("blue") is not None)
        for match in p.PROMPT_REGEX.finditer(line)
    ]
    found = [e for e in fed(p.OutputDecoder(), line + "\n") if type(e) is p.Prompt]
    assert found == expected


class ColdDecoder(p.OutputDecoder):
    """A decoder that remembers no text: every notification start and every prompt is parsed and compared,
    and every other line takes the general path (prompts searched, text split at each ``\\r``)."""

    def _notification_head(self, text: str) -> Optional[p._Head]:
        self._heads.clear()
        return super()._notification_head(text)

    def _async_line(self, line: str, events: List[p.Event]) -> bool:
        return False

    def _repeated_lines(self, text: str, position: int, events: List[p.Event]) -> int:
        return position

    def feed(self, data: str) -> List[p.Event]:
        self._prompts.clear()  # no prompt known as text, no echo remembered
        self._parsed.clear()
        self._lines.clear()
        self._prompt_events.clear()
        return super().feed(data)

    def _line(self, line: str, events: List[p.Event]) -> None:
        self._last_prompt_text = None
        self._lines.clear()  # no line remembered, even within one chunk
        super()._line(line, events)

    def _parse(self, text: str) -> p.Event:
        self._parsed.clear()  # every text parsed, even one seen earlier in the same chunk
        return super()._parse(text)

    def _prompt(self, address: str, connected: bool, events: List[p.Event]) -> None:
        self._prompt_events.clear()  # a new Prompt for every prompt
        super()._prompt(address, connected, events)


PROMPTS = ["", "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> ", "[C4:7C:8D:6A:3E:01][LE]> ", "[                 ][LE]> "]
CLEARS = ["", "\r" + " " * 25 + "\r", "\r\x1b[K", "\r", " \r", "x\r", "\x1b[0;94m\r"]
HEADS = [
    "Notification handle = 0x0008 value:",
    "Notification handle = 0x000e value:",
    "Indication   handle = 0x0008 value:",
    "Notification handle = 0xZZ value:",
    "Characteristic value/descriptor:",
    "handle: 0x0002, char properties: 0x12, char value handle: 0x0003, uuid: 00002a37-0000-1000-8000-00805f9b34fb",
    "handle: 0x0004, uuid: 00002902-0000-1000-8000-00805f9b34fb",
    "char-desc",
    "Characteristic value was written successfully",
    "Error: Characteristic value/descriptor read failed: Attribute can't be read",
    "[C4:7C:8D:6A:3E:01][LE]> ",
    "",
]
VALUES = [" 01 ", " ff 00 ", "", " 0a", "  01 ", " 01  02 ", "\r ", "\x1b[0m", "]> "]
ENDS = ["\r\n", "\n", "", "\r"]
lines = st.tuples(*(st.sampled_from(choices) for choices in (PROMPTS, CLEARS, HEADS, VALUES, ENDS))).map("".join)


@given(st.lists(st.lists(lines, max_size=6), max_size=8))
def test_remembered_text_decodes_as_parsing_every_line_does(chunks: List[List[str]]) -> None:
    """Line starts are parsed once, redrawn prompts compared as text: the events are the same."""
    warm, cold = p.OutputDecoder(), ColdDecoder()
    for chunk in chunks:
        text = "".join(chunk)
        assert fed(warm, text) == fed(cold, text)


def test_the_remembered_line_starts_are_bounded() -> None:
    decoder = p.OutputDecoder()
    events = fed(decoder, "".join(f"Notification handle = 0x{h:04x} value: {h & 0xFF:02x} \r\n" for h in range(500)))
    assert [(e.handle, e.value) for e in events] == [(h, bytes([h & 0xFF])) for h in range(500)]
    assert len(decoder._heads) <= p.HEAD_CACHE_SIZE
    assert fed(decoder, "Notification handle = 0xZZ value: 01 \r\n") == [
        p.Other("Notification handle = 0xZZ value: 01")
    ]


def test_remembered_prompts_and_echoes_are_bounded_and_still_parsed() -> None:
    decoder = p.OutputDecoder()
    for n in range(300):
        address = f"C4:7C:8D:6A:{n >> 8:02X}:{n & 0xFF:02X}"
        events = fed(decoder, f"char-read-hnd 0x{n:04x}\r\n[{address}][LE]> ")
        assert events == [p.Other(f"char-read-hnd 0x{n:04x}"), p.Prompt(address, False)]
    caches = (decoder._parsed, decoder._lines, decoder._prompts, decoder._prompt_events)
    assert all(len(cache) <= p.HEAD_CACHE_SIZE for cache in caches)
    # a remembered echo and prompt give the same events again
    assert fed(decoder, "char-read-hnd 0x0001\r\n[C4:7C:8D:6A:00:01][LE]> ") == [
        p.Other("char-read-hnd 0x0001"),
        p.Prompt("C4:7C:8D:6A:00:01", False),
    ]


FLOOD_PROMPT = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "
FLOOD_LINES = [
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01 02 \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: ff \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01  02 \r\n",  # not gatttool's framing
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 0g \r\n",  # not hex
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01\t02 \r\n",  # hex, not gatttool's spacing
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01 02\n",  # no final \r
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value:01 \r\n",
    # as long as a framed 2-byte line, but not framed: a space, a tab or a digit where the \r or a space goes
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01 02  \n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01 02 \t\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 01 0203\r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value: 0A 0b \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x0008 value:    02 \r\n",  # spaces for a pair's digits
    f"{FLOOD_PROMPT}\r{' ' * 36}\rNotification handle = 0x000e value: 03 \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rIndication   handle = 0x0008 value: 04 \r\n",
    f"[C4:7C:8D:6A:3E:01][LE]> \r{' ' * 36}\rNotification handle = 0x0008 value: 05 \r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rCharacteristic value/descriptor: 06 \r\n",
    "char-read-hnd 0x0010\r\n",
    FLOOD_PROMPT,
    f"{FLOOD_PROMPT}\r{' ' * 36}\rhandle: 0x0004, uuid: 00002902-0000-1000-8000-00805f9b34fb\r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rhandle: 0x0002, char properties: 0x12, char value handle: 0x0003, "
    "uuid: 00002a37-0000-1000-8000-00805f9b34fb\r\n",
    f"{FLOOD_PROMPT}\r{' ' * 36}\rhandle: 0x0004, uuid: 00002902-0000-1000-8000-00805f9b34f\r\n",  # short UUID
    f"{FLOOD_PROMPT}\r{' ' * 36}\rhandle: 0x0005, uuid: x\rhandle: 0x0006\r\n",
    f"\r{' ' * 36}\rhandle: 0x0007, uuid: 00002901-0000-1000-8000-00805f9b34fb\r\n",
]


# Lines, each repeated 1-4 times in a row: runs of the same start are common.
repeated_lines = st.lists(st.tuples(st.sampled_from(FLOOD_LINES), st.integers(1, 4)), max_size=15).map(
    lambda items: [line for line, times in items for _ in range(times)]
)


@given(
    repeated_lines.flatmap(
        lambda lines: st.tuples(
            st.just("".join(lines)), st.lists(st.integers(0, max(0, len("".join(lines)))), max_size=6)
        )
    )
)
def test_runs_of_notification_lines_decode_as_line_by_line(case: tuple) -> None:
    """Runs of notification or listing lines with the same start (split off in one go) give the events
    of parsing line by line, however the output is cut into chunks."""
    text, cuts = case
    bounds = [0, *sorted(cuts), len(text)]
    warm, cold = p.OutputDecoder(), ColdDecoder()
    warm_events, cold_events = [], []
    for start, end in zip(bounds, bounds[1:]):
        warm_events += fed(warm, text[start:end])
        cold_events += fed(cold, text[start:end])
    assert warm_events == cold_events


def test_a_run_meeting_a_line_that_is_no_gatttool_value_decodes_as_line_by_line() -> None:
    """In a run of notification lines, a value that is not hex, one spaced by a tab (hex to
    ``bytes.fromhex``, but no value to the line pattern) and one with no final \\r leave the fast
    path; the events are still those of parsing line by line."""
    framed, not_hex, tab, unterminated = FLOOD_LINES[0], FLOOD_LINES[4], FLOOD_LINES[5], FLOOD_LINES[6]
    text = framed * 3 + not_hex + framed * 2 + tab + framed + unterminated + framed + FLOOD_PROMPT
    expected = fed(ColdDecoder(), text)
    assert sum(type(e) is p.Notification for e in expected) == 8  # 0g and the tab: Other
    assert fed(p.OutputDecoder(), text) == expected


def test_lines_as_long_as_the_last_framed_value_are_still_checked_whole() -> None:
    """After a framed value, a line of the same length is taken on a shorter check (its spaces, its \\r,
    its start, then ``bytes.fromhex`` and the value's size): one that fails any of them is decoded as
    line by line."""
    one, not_hex = FLOOD_LINES[1], FLOOD_LINES[4]  # "ff " and "0g ": the same length
    two = FLOOD_LINES[0]
    same_length_two = [line for line in FLOOD_LINES if line.startswith(FLOOD_PROMPT) and len(line) == len(two)]
    assert len(same_length_two) >= 6  # framed, a tab, a final space, a digit or spaces out of place, upper case
    other_handle = next(line for line in FLOOD_LINES if "0x000e" in line)  # "03 ": as long as "ff "
    assert len(other_handle) == len(one)
    text = one * 2 + not_hex + one + other_handle + one + "".join(two + line for line in same_length_two) + two
    expected = fed(ColdDecoder(), text + FLOOD_PROMPT)
    assert fed(p.OutputDecoder(), text + FLOOD_PROMPT) == expected
    values = [e.value for e in expected if type(e) is p.Notification]
    assert values[:3] == [b"\xff", b"\xff", b"\xff"]  # 0g is no value


LISTING_PIECES = [
    "handle: ",
    "0x",
    "0002",
    "1",
    "fffff",
    "zz",
    ", ",
    "char properties: ",
    "0x12",
    "char value handle: ",
    ", uuid: ",
    "uuid: ",
    " uuid: ",
    "start handle: ",
    "end handle: ",
    " \t value: ",
    "01 02 ",
    "00002902-0000-1000-8000-00805f9b34fb",
    "0000B000-0000-1000-8000-00805F9B34FB",
    "00002902-0000-1000-8000-00805f9b34f",
    "Error: ",
    "x",
]


@given(st.lists(st.sampled_from(LISTING_PIECES), max_size=12).map(lambda pieces: "handle: 0x" + "".join(pieces)))
def test_listing_lines_parse_as_the_table_parses_them(text: str) -> None:
    """Listing lines are matched directly; every text gets what the whole table gives it."""
    assert p.parse_line(text) == p.parse_table_line(text)


READ_PIECES = ["", " ", "  ", "5a", "5A", "0", "01 ", "ff", "zz", "\r", "\t", "Error: x", ":"]


@given(st.lists(st.sampled_from(READ_PIECES), max_size=8).map(lambda pieces: p.READ_ANSWER + "".join(pieces)))
def test_read_answers_parse_as_the_table_parses_them(text: str) -> None:
    """The answer to a read is matched directly; every text gets what the whole table gives it."""
    assert p.parse_line(text) == p.parse_table_line(text)


def test_listing_line_shortcut_gives_the_tables_events() -> None:
    for text in (
        "handle: 0x0002, char properties: 0x12, char value handle: 0x0003, uuid: 00002a37-0000-1000-8000-00805f9b34fb",
        "handle: 0x0004, uuid: 00002902-0000-1000-8000-00805f9b34fb",
        "handle: 0x0004, uuid: 00002902-0000-1000-8000-00805f9b34fbx",
    ):
        assert p.parse_line(text) == p.parse_table_line(text)
    assert type(p.parse_line(LISTING_PIECES[0] + "0x0004, uuid: " + LISTING_PIECES[17])) is p.DescriptorFound


def test_runs_longer_than_one_window_decode_as_line_by_line() -> None:
    """A flood and a listing much longer than RUN_WINDOW, in one chunk and in odd-sized chunks."""
    clear = "\r" + " " * 36 + "\r"
    flood = "".join(
        f"{FLOOD_PROMPT}{clear}Notification handle = 0x0008 value: "
        + "".join(f"{(n + i) & 0xFF:02x} " for i in range(n % 250))
        + "\r\n"
        for n in range(600)
    )
    listing = "".join(
        f"{FLOOD_PROMPT}{clear}handle: 0x{n:04x}, uuid: 0000{n:04x}-0000-1000-8000-00805f9b34fb\r\n"
        for n in range(1, 600)
    )
    text = flood + "char-desc\r\n" + listing + FLOOD_PROMPT
    assert len(flood) > 10 * p.RUN_WINDOW and len(listing) > 5 * p.RUN_WINDOW
    expected = fed(ColdDecoder(), text)
    assert sum(type(e) is p.Notification for e in expected) == 600
    assert sum(type(e) is p.DescriptorFound for e in expected) == 599
    assert fed(p.OutputDecoder(), text) == expected
    warm: List[p.Event] = []
    decoder = p.OutputDecoder()
    for start in range(0, len(text), 4093):
        warm += fed(decoder, text[start : start + 4093])
    assert warm == expected
