"""A pure parser for the output of ``gatttool -I`` (BlueZ 5.66).

No I/O and no threads: :class:`OutputDecoder` is fed text as it arrives from the
terminal, in chunks of any size, and returns :data:`Event` tuples. Every line
shape gatttool prints is one entry of :data:`LINE_PATTERNS`; the entries are
compiled into a single alternation, so a line costs one regex match.

What the decoder takes care of (see docs/gatttool-protocol.md):

* ANSI colour codes, ``ESC[K``, bracketed-paste codes and readline's ``\\x01`` /
  ``\\x02`` markers are stripped before matching;
* the prompt ``[AA:BB:CC:DD:EE:FF][LE]> `` becomes a :class:`Prompt` event whose
  ``connected`` flag is the prompt's blue colour, wherever it appears in a line,
  and also when it ends the text received so far (no newline follows a prompt);
* asynchronous lines are framed as ``\\r`` + clear + text + ``\\r\\n`` + prompt, so a
  line is split on ``\\r`` as well and blank pieces are dropped;
* ``Error:`` and ``Command Failed:`` are recognised anywhere in a line.
"""

from __future__ import annotations

import functools
import re
import uuid
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union, cast

# -- events -----------------------------------------------------------------


class Prompt(NamedTuple):
    """A prompt was drawn. ``connected`` is True when the address is blue."""

    address: Optional[str]
    connected: bool


class Notification(NamedTuple):
    """A notification or (``indication=True``) an indication from the peer."""

    handle: int
    value: bytes
    indication: bool


class NotificationRun(NamedTuple):
    """Notifications (or indications) of one handle in a row, in order: a flood's lines.

    Means exactly what one :class:`Notification` per value would; it saves an event per line
    where gatttool prints many in a row.
    """

    handle: int
    values: List[bytes]
    indication: bool


class ReadValue(NamedTuple):
    """``char-read-hnd`` answered: ``Characteristic value/descriptor: ...``."""

    value: bytes


class UUIDValue(NamedTuple):
    """``char-read-uuid`` answered one match: ``handle: 0x.... \\t value: ...``."""

    handle: int
    value: bytes


class CharacteristicFound(NamedTuple):
    """One line of ``characteristics``."""

    handle: int
    properties: int
    value_handle: int
    uuid: uuid.UUID


class DescriptorFound(NamedTuple):
    """One line of ``char-desc``."""

    handle: int
    uuid: uuid.UUID


class ServiceFound(NamedTuple):
    """One line of ``primary`` (or of ``primary UUID``, where ``uuid`` is None)."""

    start: int
    end: int
    uuid: Optional[uuid.UUID]


class IncludedFound(NamedTuple):
    """One line of ``included``."""

    handle: int
    start: int
    end: int
    uuid: uuid.UUID


class NoIncluded(NamedTuple):
    """``included`` found nothing (a plain line, not an error)."""


class WriteAccepted(NamedTuple):
    """``char-write-req`` succeeded."""


class MTUExchanged(NamedTuple):
    """``mtu`` succeeded; ``mtu`` is the MTU now in use."""

    mtu: int


class ConnectAttempt(NamedTuple):
    """``connect`` started: ``Attempting to connect to ADDR``."""

    address: str


class Connected(NamedTuple):
    """``Connection successful``."""


class SecLevel(NamedTuple):
    """``sec-level`` without argument: the level in use."""

    level: str


class Usage(NamedTuple):
    """A plain-text complaint about arguments: ``Usage: ...`` or ``Allowed values: ...``."""

    text: str


class ErrorLine(NamedTuple):
    """A red ``Error:`` (``command_failed=False``) or ``Command Failed:`` line.

    ``operation`` names the command family the text belongs to (see
    :data:`ERROR_OPERATIONS`), or is None for texts any command can print.
    ``reason`` is the ATT error text at the end of the message, if any, and
    ``att_error`` its code.
    """

    message: str
    command_failed: bool
    operation: Optional[str]
    reason: Optional[str]
    att_error: Optional[int]


class LinkLost(NamedTuple):
    """GLib's ``Invalid file descriptor`` warning: the link to the peer is gone."""

    text: str


class Other(NamedTuple):
    """Anything else: the echo of a typed command, help text, garbage."""

    text: str


Event = Union[
    Prompt,
    Notification,
    NotificationRun,
    ReadValue,
    UUIDValue,
    CharacteristicFound,
    DescriptorFound,
    ServiceFound,
    IncludedFound,
    NoIncluded,
    WriteAccepted,
    MTUExchanged,
    ConnectAttempt,
    Connected,
    SecLevel,
    Usage,
    ErrorLine,
    LinkLost,
    Other,
]

# -- ATT errors and error classification --------------------------------------

# ATT error text -> its code (None: gatttool's words for every code it has no text for; which code
# the peer sent is unknown, so the exception says None rather than a made-up number)
ATT_ERRORS: Dict[str, Optional[int]] = {
    "Invalid handle": 0x01,
    "Attribute can't be read": 0x02,
    "Attribute can't be written": 0x03,
    "Attribute PDU was invalid": 0x04,
    "Attribute requires authentication before read/write": 0x05,
    "Server doesn't support the request received": 0x06,
    "Offset past the end of the attribute": 0x07,
    "Attribute requires authorization before read/write": 0x08,
    "Too many prepare writes have been queued": 0x09,
    "No attribute found within the given range": 0x0A,
    "Attribute can't be read/written using Read Blob Req": 0x0B,
    "Encryption Key Size is insufficient": 0x0C,
    "Attribute value length is invalid": 0x0D,
    "Request attribute has encountered an unlikely error": 0x0E,
    "Encryption required before read/write": 0x0F,
    "Attribute type is not a supported grouping attribute": 0x10,
    "Insufficient Resources to complete the request": 0x11,
    "Internal application error: I/O": 0x80,
    "A timeout occured": 0x81,
    "A timeout occurred": 0x81,  # BlueZ 5.66's spelling
    "The operation was aborted": 0x82,
    "Unexpected error code": None,
}

# Message prefix -> the command family that prints it. Texts any command can
# print (``Invalid handle: 0x..``, ``Protocol error``, ``Disconnected``) are absent.
ERROR_OPERATIONS: Tuple[Tuple[str, str], ...] = (
    ("Characteristic value/descriptor read failed", "char-read-hnd"),
    ("Read characteristics by UUID failed", "char-read-uuid"),
    ("Characteristic Write Request failed", "char-write-req"),
    ("Discover all characteristics failed", "characteristics"),
    ("Discover descriptors failed", "char-desc"),
    ("Discover all primary services failed", "primary"),
    ("No primary service found", "primary"),
    ("Discover primary services by UUID failed", "primary"),
    ("No service UUID found", "primary"),
    ("Find included services failed", "included"),
    ("Exchange MTU Request failed", "mtu"),
    ("Error exchanging MTU", "mtu"),
    ("Invalid value. Minimum MTU size is 23", "mtu"),
    ("MTU exchange can only occur once per connection.", "mtu"),
    ("Operation is only available for LE transport.", "mtu"),
    ("socket(", "connect"),
    ("l2cap_bind:", "connect"),
    ("connect to ", "connect"),
    ("connect error:", "connect"),
    ("Remote Bluetooth address required", "connect"),
    ("setsockopt(BT_SECURITY)", "connect"),
)


def classify_error(message: str, command_failed: bool) -> ErrorLine:
    """Build an :class:`ErrorLine` from the text after ``Error:`` / ``Command Failed:``."""
    operation = None
    for prefix, name in ERROR_OPERATIONS:
        if message.startswith(prefix):
            operation = name
            break
    reason = None
    code: Optional[int] = None
    for text, number in ATT_ERRORS.items():
        # the ATT text ends the message, alone or after "<what> failed: "
        if message == text or message.endswith(": " + text):
            reason, code = text, number
            break
    return ErrorLine(message, command_failed, operation, reason, code)


# -- the line table -------------------------------------------------------------

_H = r"0x([0-9a-fA-F]{1,4})"
_UUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_HEX = r"((?:[0-9a-fA-F]{2} ?)*)"


def _hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


@functools.lru_cache(maxsize=1024)
def _uuid(text: str) -> uuid.UUID:
    """``uuid.UUID(text)``, cached: a listing repeats a few UUIDs (declarations, CCCDs) in every discovery,
    and building one costs more than matching its line. UUIDs are immutable, so sharing them is safe."""
    return uuid.UUID(text)


Builder = Callable[[Sequence[str]], Event]

# name, pattern (matched against the whole stripped line), builder from the groups.
LINE_PATTERNS: Tuple[Tuple[str, str, Builder], ...] = (
    (
        "notification",
        r"Notification handle = " + _H + r" value: ?" + _HEX,
        lambda g: Notification(int(g[0], 16), _hexbytes(g[1]), False),
    ),
    (
        "indication",
        r"Indication   handle = " + _H + r" value: ?" + _HEX,
        lambda g: Notification(int(g[0], 16), _hexbytes(g[1]), True),
    ),
    ("read_value", r"Characteristic value/descriptor: ?" + _HEX, lambda g: ReadValue(_hexbytes(g[0]))),
    ("uuid_value", r"handle: " + _H + r" \t value: ?" + _HEX, lambda g: UUIDValue(int(g[0], 16), _hexbytes(g[1]))),
    (
        "characteristic",
        r"handle: " + _H + r", char properties: 0x([0-9a-fA-F]{1,2}), char value handle: " + _H + r", uuid: " + _UUID,
        lambda g: CharacteristicFound(int(g[0], 16), int(g[1], 16), int(g[2], 16), _uuid(g[3])),
    ),
    (
        "included",
        r"handle: " + _H + r", start handle: " + _H + r", end handle: " + _H + r" uuid: " + _UUID,
        lambda g: IncludedFound(int(g[0], 16), int(g[1], 16), int(g[2], 16), _uuid(g[3])),
    ),
    ("descriptor", r"handle: " + _H + r", uuid: " + _UUID, lambda g: DescriptorFound(int(g[0], 16), _uuid(g[1]))),
    (
        "primary",
        r"attr handle: " + _H + r", end grp handle: " + _H + r" uuid: " + _UUID,
        lambda g: ServiceFound(int(g[0], 16), int(g[1], 16), _uuid(g[2])),
    ),
    (
        "primary_range",
        r"Starting handle: " + _H + r" Ending handle: " + _H,
        lambda g: ServiceFound(int(g[0], 16), int(g[1], 16), None),
    ),
    ("no_included", r"No included services found for this range", lambda g: NoIncluded()),
    ("write_ok", r"Characteristic value was written successfully", lambda g: WriteAccepted()),
    ("mtu", r"MTU was exchanged successfully: ([0-9]+)", lambda g: MTUExchanged(int(g[0]))),
    ("connecting", r"Attempting to connect to (\S+)", lambda g: ConnectAttempt(g[0])),
    ("connected", r"Connection successful", lambda g: Connected()),
    ("sec_level", r"sec-level: (\S+)", lambda g: SecLevel(g[0])),
    ("usage", r"((?:Usage|Allowed values): .*)", lambda g: Usage(g[0])),
    ("error", r".*?Error: (.*)", lambda g: classify_error(g[0], False)),
    ("command_failed", r".*?Command Failed: (.*)", lambda g: classify_error(g[0], True)),
    ("link_lost", r"(.*GLib.*Invalid file descriptor.*)", lambda g: LinkLost(g[0])),
)


def _compile_table() -> Tuple[re.Pattern[str], Dict[str, Tuple[int, int, Builder]]]:
    parts = []
    slots: Dict[str, Tuple[int, int, Builder]] = {}
    group = 1
    for name, pattern, builder in LINE_PATTERNS:
        inner = re.compile(pattern).groups
        parts.append(f"(?P<{name}>{pattern})")
        slots[name] = (group + 1, group + 1 + inner, builder)
        group += 1 + inner
    return re.compile("|".join(parts)), slots


LINE_REGEX, _SLOTS = _compile_table()

PROMPT_REGEX = re.compile(r"(?P<blue>\x1b\[0;94m)?\[(?P<address>[0-9A-Fa-f:]{17}| {17})\](?:\x1b\[0m)?\[(?:LE|BR)\]> ")
#: More than the longest prompt PROMPT_REGEX matches (36 characters with its colours).
PROMPT_WINDOW = 64
ANSI_REGEX = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x01\x02]")
# The hot path: the head of a notification line as gatttool frames it, with the
# prompt redrawn before it (the previous line's redraw) and the line clear, up to
# ``value:``. The hex after it goes to ``bytes.fromhex`` (see ``OutputDecoder._line``):
# a regex walking every hex pair cost as much as the rest of the line's handling.
NOTIFICATION_HEAD = re.compile(
    r"(?P<prompt>(?P<blue>\x1b\[0;94m)?\[(?P<address>[0-9A-Fa-f:]{17}| {17})\](?:\x1b\[0m)?\[(?:LE|BR)\]> )?"
    r"(?:\r(?: *|\x1b\[K)\r?)?(?P<kind>Notification|Indication  ) handle = 0x(?P<handle>[0-9a-fA-F]{1,4}) "
    r"value: ?"
)


#: The start of an asynchronous line up to its text: the prompt redrawn before it (the previous
#: line's redraw), then gatttool's line clear (``\r``, spaces, ``\r``). Nothing else.
LINE_HEAD = re.compile(
    r"(?P<prompt>(?P<blue>\x1b\[0;94m)?\[(?P<address>[0-9A-Fa-f:]{17}| {17})\](?:\x1b\[0m)?\[(?:LE|BR)\]> )?[\r ]*"
)


def notification_value(text: str) -> Optional[bytes]:
    """The bytes of a notification's hex text (``"01 02 ff "``, an optional ``\\r`` at the end), or None.

    Accepts exactly what ``(?:[0-9a-fA-F]{2} ?)*\\r?`` matches, without a regex walking every pair:
    ``bytes.fromhex`` also skips other whitespace and repeated spaces, which the checks rule out.
    """
    try:
        value = bytes.fromhex(text)
    except ValueError:
        return None
    size = len(value)
    length = len(text)
    # gatttool's own framing, "%02x " per byte: a space after every pair, perhaps a final \r.
    if (length == 3 * size or (length == 3 * size + 1 and text[-1] == "\r")) and text[2::3] == " " * size:
        return value
    if text.endswith("\r"):
        text = text[:-1]
    if len(text) - text.count(" ") != 2 * size or text.startswith(" ") or "  " in text:
        return None
    return value


# A listing's lines, matched on their own (see parse_line): the same patterns as in LINE_PATTERNS.
_CHARACTERISTIC_LINE = re.compile(
    r"handle: " + _H + r", char properties: 0x([0-9a-fA-F]{1,2}), char value handle: " + _H + r", uuid: " + _UUID
)
_DESCRIPTOR_LINE = re.compile(r"handle: " + _H + r", uuid: " + _UUID)


#: How ``char-read-hnd`` answers, before the value's hex (the table's ``read_value`` pattern).
READ_ANSWER = "Characteristic value/descriptor:"


def parse_line(text: str) -> Event:
    """Parse one line of gatttool output with the prompt and colours removed.

    Never raises: a line that looks like a known shape but carries garbage (for
    example bad hex) becomes :class:`Other`.
    """
    if text.startswith(READ_ANSWER):
        # The answer to every read: its hex goes to the check ``notification_value`` makes, which accepts
        # what the table's pattern accepts, plus a final "\r" the pattern does not (left to the table).
        rest = text[len(READ_ANSWER) :]
        rest = rest[1:] if rest[:1] == " " else rest
        value = notification_value(rest) if rest[-1:] != "\r" else None
        if value is not None:
            return ReadValue(value)
    event = listing_line(text)
    return parse_table_line(text) if event is None else event


def listing_line(text: str) -> Optional[Event]:
    """A line of ``characteristics`` or ``char-desc``, matched directly, or None: not one.

    A listing prints hundreds of these, so they skip the table. No pattern before theirs in
    :data:`LINE_PATTERNS` can match such a text, so what this returns is what the table gives.
    """
    if not text.startswith("handle: 0x"):
        return None
    if ", char properties: " in text:
        match = _CHARACTERISTIC_LINE.fullmatch(text)
        if match is not None:
            return CharacteristicFound(int(match[1], 16), int(match[2], 16), int(match[3], 16), _uuid(match[4]))
        return None
    match = _DESCRIPTOR_LINE.fullmatch(text)
    return None if match is None else DescriptorFound(int(match[1], 16), _uuid(match[2]))


def parse_table_line(text: str) -> Event:
    """``parse_line`` through the table of every pattern (``LINE_REGEX``), with no shortcut."""
    match = LINE_REGEX.fullmatch(text)
    if match is None:
        return Other(text)
    name = match.lastgroup
    assert name is not None
    first, last, builder = _SLOTS[name]
    try:
        # every group of the alternative that matched took part, so none is None
        return builder(cast("Sequence[str]", match.groups()[first - 1 : last - 1]))
    except ValueError:
        return Other(text)


#: Distinct notification line starts remembered (a flood has one per handle and prompt colour).
HEAD_CACHE_SIZE = 64
#: How much text one run of lines with the same start splits at once (see ``OutputDecoder._repeated_lines``):
#: the reader hands over up to 64 KiB in a flood (see ``process``); the bound keeps a run that ends
#: early from costing the whole rest of a large chunk.
RUN_WINDOW = 8192
#: A notification line's start, parsed: handle, indication, prompt text (or None), address, blue.
_Head = Tuple[int, bool, Optional[str], str, bool]
#: An asynchronous line's start, parsed: prompt text (or None), address, blue.
_LineHead = Tuple[Optional[str], str, bool]

#: Lines after which gatttool's prompt redraw carries no news (see ``OutputDecoder``). A discovery
#: prints ~190 of them, each followed by a redraw: not reporting those redraws halves its events.
QUIET_EVENTS = frozenset(
    {Notification, NotificationRun, CharacteristicFound, DescriptorFound, ServiceFound, IncludedFound}
)


Key = TypeVar("Key")
Cached = TypeVar("Cached")
#: Decodes the rest of a line whose start repeats the last line's, or None when it is not such a line.
LineRest = Callable[[str], Optional[Event]]


def one_per_value(events: Sequence[Event]) -> List[Event]:
    """``events`` with each :class:`NotificationRun` spelled out as one :class:`Notification` per value.

    Args:
        events: what :meth:`OutputDecoder.feed` returned.

    Returns:
        The same events, one per line gatttool printed.
    """
    spelled: List[Event] = []
    for event in events:
        if type(event) is NotificationRun:
            spelled.extend(Notification(event.handle, value, event.indication) for value in event.values)
        else:
            spelled.append(event)
    return spelled


def _remember(cache: Dict[Key, Cached], key: Key, value: Cached) -> Cached:
    """Keep ``value`` under ``key``, forgetting everything once :data:`HEAD_CACHE_SIZE` are kept."""
    if len(cache) >= HEAD_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _plain(text: str) -> bool:
    """No prompt end, colour or readline marker in ``text``: its meaning does not depend on them."""
    return "]> " not in text and "\x1b" not in text and "\x01" not in text and "\x02" not in text


def _notification_rest(handle: int, indication: bool) -> LineRest:
    """The rest of a notification line of ``handle`` after ``value: ``: its value, checked."""

    def rest(text: str) -> Optional[Event]:
        value = notification_value(text)
        return None if value is None else Notification(handle, value, indication)

    return rest


class OutputDecoder:
    """Turn chunks of raw terminal output into events. Keeps only the unfinished line."""

    def __init__(self, max_pending: int = 1 << 20) -> None:
        self._pending = ""
        self._max_pending = max_pending
        # A prompt redrawn after nothing but notifications or listing lines (gatttool redraws it after
        # every asynchronous line), and equal to the last one reported, says nothing new: it is not
        # reported again. Anything else in between (an echo, an answer, an error) has it reported.
        self._last_prompt: Optional[Prompt] = None
        self._last_prompt_text: Optional[str] = None  # its raw text (a redraw is compared as text)
        self._only_notifications = False  # only quiet lines (notifications, listing lines) since the last prompt
        self._after_prompt = False  # nothing at all since the last prompt
        self._heads: Dict[str, Optional[_Head]] = {}  # notification line starts already parsed
        self._line_heads: Dict[str, Optional[_LineHead]] = {}  # other line starts (prompt + clear) already parsed
        self._prompts: Dict[str, Tuple[str, bool]] = {}  # texts found to be exactly one prompt: (address, blue)
        self._prompt_events: Dict[Tuple[str, bool], Prompt] = {}  # the Prompt of an address and colour
        self._parsed: Dict[str, Event] = {}  # texts parsed before (echoes, acknowledgements, repeated answers)
        self._lines: Dict[str, Event] = {}  # whole lines that were one such text and no prompt (echoes)
        # The last line was a notification or a listing line: its start, and how to decode the rest of a
        # line that starts the same (see _repeated_lines).
        # (A notification line also keeps its handle and kind, for the run's fast path.)
        self._repeat: Optional[Tuple[str, LineRest, Optional[Tuple[int, bool]]]] = None

    def feed(self, data: str) -> List[Event]:
        """Consume ``data`` and return the events of every complete piece in it."""
        events: List[Event] = []
        text = self._pending + data
        position = 0
        while True:
            # one window of a run after another, until a line breaks the run (or the text ends)
            while self._repeat is not None and text.startswith(self._repeat[0], position):
                moved = self._repeated_lines(text, position, events)
                if moved == position:
                    break
                position = moved
            end = text.find("\n", position)
            if end < 0:
                break
            self._line(text[position:end], events)
            position = end + 1
        tail = text[position:]
        if tail:
            self._repeat = None
            prompt = self._prompts.get(tail)
            if prompt is not None:
                # A prompt alone, seen before (after every command and answer): no regex needed.
                self._redrawn(tail, prompt[0], prompt[1], events)
                tail = ""
            elif (tail.endswith("]> ") or ANSI_REGEX.sub("", tail).endswith("]> ")) and PROMPT_REGEX.search(tail):
                # A prompt ends the output so far: nothing follows it until input.
                self._line(tail, events)
                tail = ""
            elif len(tail) > self._max_pending:
                events.append(Other(tail))
                tail = ""
        self._pending = tail
        return events

    def _repeated_lines(self, text: str, position: int, events: List[Event]) -> int:
        """Decode the lines from ``position`` on that repeat the last line's start (``_repeat``).

        In a flood every line is the same start (prompt redrawn, line clear, handle, ``value:``)
        and a value; in a listing, the same prompt redraw and line clear and a listing line. So
        the next :data:`RUN_WINDOW` characters are split into lines at once, and each line that
        starts the same has its rest decoded on its own. A line that is anything else ends the
        run (so does the last line of the window, which may be cut; ``feed`` starts the next
        window there), and ``_line`` takes it from there. After the line that set ``_repeat``,
        an identical start reports no prompt, so the run gives the events ``_line`` would.

        A notification's value in gatttool's own framing (``"%02x "`` per byte, then ``\\r``) is
        taken here at once; any other rest goes to the run's decoder. Once a line of one value size
        was taken, a line of the same length is checked without working out its framing again: its
        spaces, its final ``\\r`` and its start, then ``bytes.fromhex``, which must give that size
        (so every other place holds a hex digit: ``bytes.fromhex`` would skip a space there). Lines
        of another size take the general check, so values of mixed sizes stay in the run. The
        values of a notification run come out as one :class:`NotificationRun`, not an event each.

        Returns:
            Where the first line not decoded here starts.
        """
        assert self._repeat is not None
        start, decode, notifying = self._repeat
        skip = len(start)
        lines = text[position : position + RUN_WINDOW].split("\n")
        lines.pop()  # the last piece may be cut
        if notifying is None:
            before = len(events)
            append = events.append
            for line in lines:
                if not line.startswith(start):
                    break
                event = decode(line[skip:])
                if event is None:
                    break
                append(event)
            taken = len(events) - before  # one event per line taken
        else:
            taken = self._notification_lines(lines, start, decode, notifying, events)
        return position + sum(map(len, lines[:taken])) + taken  # and a \n after each

    @staticmethod
    def _notification_lines(
        lines: List[str], start: str, decode: LineRest, notifying: Tuple[int, bool], events: List[Event]
    ) -> int:
        """Take the leading ``lines`` that are notifications of the run (``_repeated_lines``).

        Their values go into one :class:`NotificationRun`, or onto the one that ends ``events``
        when it is of the same handle and kind (the window before this one).

        Returns:
            How many lines were taken.
        """
        handle, indication = notifying
        skip = len(start)
        fromhex = bytes.fromhex
        values: List[bytes] = []
        keep = values.append
        width = -1  # the length of a framed line of the last value size taken (none yet)
        size = -1  # that value size
        spaces = ""  # that size's spaces, one after each pair
        spaced = skip + 2  # where a line's first space after a pair is
        for line in lines:
            if len(line) == width and line[spaced::3] == spaces and line[-1] == "\r" and line.startswith(start):
                try:
                    value = fromhex(line[skip:])
                except ValueError:
                    break  # not a value: _line sorts the line out
                if len(value) != size:
                    break  # a space where a digit goes: not gatttool's framing
                keep(value)
                continue
            if not line.startswith(start):
                break
            rest = line[skip:]
            try:
                value = fromhex(rest)
            except ValueError:
                break
            length = len(value)
            if len(rest) == 3 * length + 1 and rest[-1] == "\r" and rest[2::3] == " " * length:
                keep(value)
                width, size, spaces = len(line), length, " " * length
            else:
                event = decode(rest)  # other spacing, or no final \r: a Notification of this handle, or None
                if event is None:
                    break
                keep(cast("Notification", event).value)
        if values:
            last = events[-1] if events else None
            if type(last) is NotificationRun and last.handle == handle and last.indication == indication:
                last.values.extend(values)
            else:
                events.append(NotificationRun(handle, values, indication))
        return len(values)

    def _line(self, line: str, events: List[Event]) -> None:
        self._repeat = None
        known = self._lines.get(line)
        if known is not None:  # a line seen before that was one text and no prompt (a command's echo)
            self._report(known, events)
            return
        # "ication " is in both "Notification handle" and "Indication   handle": a substring test is
        # cheaper than a failing search on every other line (listings, answers, echoes).
        at = line.find(" value:") if "ication " in line else -1
        if at >= 0:
            head = self._notification_head(line[:at])
            if head is not None:
                text = line[at + 7 :]
                value = notification_value(text[1:] if text[:1] == " " else text)
                if value is not None:
                    handle, indication, prompt, address, blue = head
                    # The redraw between two notifications repeats the same prompt: compare its text
                    # instead of building a Prompt for it (the common case of a flood).
                    if prompt is not None and not (self._only_notifications and prompt == self._last_prompt_text):
                        self._prompt(address, blue, events)
                        self._last_prompt_text = prompt
                    events.append(Notification(handle, value, indication))
                    self._only_notifications = True
                    self._after_prompt = False
                    if line[at + 7 : at + 8] == " ":  # gatttool's framing: lines starting the same may be split off
                        self._repeat = (line[: at + 8], _notification_rest(handle, indication), (handle, indication))
                    return
        if self._async_line(line, events):
            return
        # Prompts, left to right: the regex is tried only just before each "]> " (a prompt's end, which
        # never occurs inside one), not at every position of the line as finditer would.
        position = 0
        end = line.find("]> ")
        while end >= 0:
            match = PROMPT_REGEX.search(line, max(position, end - PROMPT_WINDOW), end + 3)
            if match is not None:
                if match.start() > position:
                    self._text(line[position : match.start()], events)
                prompt = match.group()
                address, blue = match.group("address"), match.group("blue") is not None
                if prompt == line:
                    _remember(self._prompts, prompt, (address, blue))
                self._redrawn(prompt, address, blue, events)
                position = match.end()
            end = line.find("]> ", end + 3)
        if position == 0:
            before = len(events)
            self._text(line, events)
            if len(events) == before + 1 and type(events[-1]) not in QUIET_EVENTS:
                _remember(self._lines, line, events[-1])  # state-free: no notification, prompt or line start
        elif position < len(line):
            self._text(line[position:], events)

    def _async_line(self, line: str, events: List[Event]) -> bool:
        """The common shape of a line gatttool prints asynchronously (a listing's line, an answer):
        ``[prompt]\\r<spaces>\\r<text>\\r``, its start parsed once. False: not that shape (``_line`` goes on).

        Gives the events the general path below gives: the prompt as that path reports it, then the text.
        """
        cut = line.rfind("\r", 0, len(line) - 1)
        if cut < 0:
            return False
        text = line[cut + 1 :]
        if not _plain(text):
            return False  # a prompt or colours in the text: the general path sorts it out
        head_text = line[: cut + 1]
        head = self._line_head(head_text)
        if head is None:
            return False
        prompt, address, blue = head
        if prompt is not None:
            self._redrawn(prompt, address, blue, events)
        text = text.strip()
        if text and self._piece(text, events):
            self._repeat = (head_text, self._listing_rest, None)  # lines starting the same may be split off
        return True

    def _listing_rest(self, text: str) -> Optional[Event]:
        """The rest of a line after a listing line's start: a listing line again, as ``_async_line``
        would take it (one ``\\r`` at its end, no prompt, colours or notification in it), or None."""
        if text[-1:] == "\r":
            # The common case, matched at once: a listing line has no \r, prompt, colour or space at its
            # ends, and is never remembered by _parse, so the checks below would all pass.
            event = listing_line(text[:-1])
            if event is not None:
                return event
        if text.find("\r", 0, len(text) - 1) >= 0 or not _plain(text) or "ication " in text:
            return None
        content = text.strip()
        if not content:
            return None
        event = self._parse(content)
        return event if type(event) in QUIET_EVENTS else None

    def _line_head(self, text: str) -> Optional[_LineHead]:
        """An asynchronous line's start (see ``_async_line``), parsed once and remembered; None: not one."""
        try:
            return self._line_heads[text]
        except KeyError:
            pass
        match = LINE_HEAD.fullmatch(text)
        head: Optional[_LineHead] = None
        if match is not None:
            head = (match.group("prompt"), match.group("address"), match.group("blue") is not None)
        return _remember(self._line_heads, text, head)

    def _notification_head(self, text: str) -> Optional[_Head]:
        """What a notification line says before `` value:`` (``text``), or None if it is not one.

        In a flood every line starts the same (the same prompt redraw, line clear and handle), so
        the regex runs once per distinct start, not once per line.
        """
        try:
            return self._heads[text]
        except KeyError:
            pass
        match = NOTIFICATION_HEAD.fullmatch(text + " value:")
        head: Optional[_Head] = None
        if match is not None:
            head = (
                int(match.group("handle"), 16),
                match.group("kind") != "Notification",
                match.group("prompt"),
                match.group("address"),
                match.group("blue") is not None,
            )
        return _remember(self._heads, text, head)

    def _redrawn(self, prompt: str, address: str, blue: bool, events: List[Event]) -> None:
        """A prompt (its text, parsed): reported unless it is the same prompt redrawn after a quiet line."""
        if self._only_notifications and prompt == self._last_prompt_text:
            # the same prompt redrawn after a quiet line (a listing's): nothing new to report
            self._only_notifications = False
            self._after_prompt = True
        else:
            self._prompt(address, blue, events)
            self._last_prompt_text = prompt

    def _parse(self, text: str) -> Event:
        """``parse_line(text)``, remembered: an echo, an acknowledgement or a repeated answer is parsed once.

        Events are immutable, so a remembered one is handed out again. Listing lines and notifications
        (:data:`QUIET_EVENTS`: a discovery prints each line once) are not kept.
        """
        known = self._parsed.get(text)
        if known is not None:
            return known
        event = parse_line(text)
        if type(event) not in QUIET_EVENTS:
            _remember(self._parsed, text, event)
        return event

    def _prompt(self, address: str, connected: bool, events: List[Event]) -> None:
        prompt = self._prompt_events.get((address, connected))
        if prompt is None:  # events are immutable: one Prompt per address and colour is handed out again
            prompt = _remember(self._prompt_events, (address, connected), Prompt(address.strip() or None, connected))
        if not (self._only_notifications and prompt == self._last_prompt):
            events.append(prompt)
        self._last_prompt = prompt
        self._last_prompt_text = None
        self._only_notifications = False
        self._after_prompt = True

    def _text(self, text: str, events: List[Event]) -> None:
        if "\x1b" in text or "\x01" in text or "\x02" in text:
            text = ANSI_REGEX.sub("", text)
        for piece in text.split("\r"):
            piece = piece.strip()
            if piece:
                self._piece(piece, events)

    def _piece(self, text: str, events: List[Event]) -> bool:
        """One piece of text (stripped, not empty) parsed and reported; True when it is a quiet line."""
        return self._report(self._parse(text), events)

    def _report(self, event: Event, events: List[Event]) -> bool:
        """Report the event of one piece of text; True when it is a quiet line."""
        events.append(event)
        quiet = type(event) in QUIET_EVENTS
        self._only_notifications = quiet and (self._only_notifications or self._after_prompt)
        self._after_prompt = False
        return quiet


# -- hcitool lescan -------------------------------------------------------------

LESCAN_LINE = re.compile(r"([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}) (.*)")


def parse_lescan_line(line: str) -> Optional[Tuple[str, Optional[str]]]:
    """Parse one ``hcitool lescan`` line into (address, name or None)."""
    line = ANSI_REGEX.sub("", line).strip("\r\n")
    match = LESCAN_LINE.fullmatch(line)
    if match is None:
        return None
    name = match.group(2).strip()
    return match.group(1).upper(), (None if name in ("", "(unknown)") else name)
