"""The pure gatttool output parser, line by line against docs/gatttool-protocol.md."""

from __future__ import annotations

import uuid

import pytest

from pygatt.backends.gatttool import parser as p

RED, BLUE, RESET = "\x1b[0;91m", "\x1b[0;94m", "\x1b[0m"
U2A00 = uuid.UUID("00002a00-0000-1000-8000-00805f9b34fb")


@pytest.mark.parametrize(
    "line, event",
    [
        ("Notification handle = 0x000e value: 01 02 ff ", p.Notification(0x0E, b"\x01\x02\xff", False)),
        ("Indication   handle = 0x0010 value: 00 ", p.Notification(0x10, b"\x00", True)),
        ("Notification handle = 0x000e value: ", p.Notification(0x0E, b"", False)),
        ("Characteristic value/descriptor: 50 75 6c 73 65 ", p.ReadValue(b"Pulse")),
        ("Characteristic value/descriptor: ", p.ReadValue(b"")),
        ("handle: 0x0010 \t value: 5a ", p.UUIDValue(0x10, b"\x5a")),
        (
            "handle: 0x0002, char properties: 0x02, char value handle: 0x0003, uuid: "
            "00002a00-0000-1000-8000-00805f9b34fb",
            p.CharacteristicFound(2, 2, 3, U2A00),
        ),
        ("handle: 0x0003, uuid: 00002a00-0000-1000-8000-00805f9b34fb", p.DescriptorFound(3, U2A00)),
        (
            "attr handle: 0x0001, end grp handle: 0x0007 uuid: 00002a00-0000-1000-8000-00805f9b34fb",
            p.ServiceFound(1, 7, U2A00),
        ),
        ("Starting handle: 0x0010 Ending handle: 0x0020", p.ServiceFound(0x10, 0x20, None)),
        (
            "handle: 0x0004, start handle: 0x0010, end handle: 0x0015 uuid: 00002a00-0000-1000-8000-00805f9b34fb",
            p.IncludedFound(4, 0x10, 0x15, U2A00),
        ),
        ("No included services found for this range", p.NoIncluded()),
        ("Characteristic value was written successfully", p.WriteAccepted()),
        ("MTU was exchanged successfully: 100", p.MTUExchanged(100)),
        ("Attempting to connect to 11:22:33:44:55:66", p.ConnectAttempt("11:22:33:44:55:66")),
        ("Connection successful", p.Connected()),
        ("sec-level: HIGH", p.SecLevel("HIGH")),
        ("Usage: char-write-req <handle> <new value>", p.Usage("Usage: char-write-req <handle> <new value>")),
        ("Usage: mtu <value>", p.Usage("Usage: mtu <value>")),
        ("Allowed values: low | medium | high", p.Usage("Allowed values: low | medium | high")),
        (
            "(gatttool:1234): GLib-WARNING **: 12:34:56.789: Invalid file descriptor.",
            p.LinkLost("(gatttool:1234): GLib-WARNING **: 12:34:56.789: Invalid file descriptor."),
        ),
        ("GLib-WARNING **: Invalid file descriptor.", p.LinkLost("GLib-WARNING **: Invalid file descriptor.")),
        ("char-read-hnd 0x0003", p.Other("char-read-hnd 0x0003")),
        ("Notification handle = 0x000e value: zz ", p.Other("Notification handle = 0x000e value: zz ")),
    ],
)
def test_every_success_line_shape(line, event):
    assert p.parse_line(line) == event


ERRORS = [
    # (text after "Error: ", family, ATT code)
    ("foo: command not found", None, None),
    ("Remote Bluetooth address required", "connect", None),
    ("socket(SEQPACKET, L2CAP): Address family not supported by protocol (97)", "connect", None),
    ("l2cap_bind: Cannot assign requested address (99)", "connect", None),
    ("setsockopt(BT_SECURITY): Operation not permitted (1)", "connect", None),
    ("connect to AA:BB:CC:DD:EE:FF: Connection refused (111)", "connect", None),
    ("connect to AA:BB:CC:DD:EE:FF: Connection timed out (110)", "connect", None),
    ("connect error: Connection refused (111)", "connect", None),
    ("Invalid UUID", None, None),
    ("Discover all primary services failed: Attribute PDU was invalid", "primary", 0x04),
    ("No primary service found", "primary", None),
    ("Discover primary services by UUID failed: A timeout occured", "primary", 0x81),
    ("No service UUID found", "primary", None),
    ("Invalid start handle: 2a19", None, None),
    ("Invalid end handle: zz", None, None),
    ("Find included services failed: The operation was aborted", "included", 0x82),
    ("Discover all characteristics failed: No attribute found within the given range", "characteristics", 0x0A),
    ("Discover descriptors failed: No attribute found within the given range", "char-desc", 0x0A),
    ("Missing argument: handle", None, None),
    ("Invalid handle: zz", None, None),
    ("Characteristic value/descriptor read failed: Attribute can't be read", "char-read-hnd", 0x02),
    ("Characteristic value/descriptor read failed: Invalid handle", "char-read-hnd", 0x01),
    ("Protocol error", None, None),
    ("Missing argument: UUID", None, None),
    ("Read characteristics by UUID failed: No attribute found within the given range", "char-read-uuid", 0x0A),
    ("A valid handle is required", None, None),
    ("Invalid value", None, None),
    ("Characteristic Write Request failed: Attribute can't be written", "char-write-req", 0x03),
    (
        "Characteristic Write Request failed: Attribute requires authentication before read/write",
        "char-write-req",
        0x05,
    ),
    ("Characteristic Write Request failed: Encryption required before read/write", "char-write-req", 0x0F),
    ("Invalid value. Minimum MTU size is 23", "mtu", None),
    ("Exchange MTU Request failed: Server doesn't support the request received", "mtu", 0x06),
    ("Error exchanging MTU", "mtu", None),
    (
        "Characteristic value/descriptor read failed: Request attribute has encountered an unlikely error",
        "char-read-hnd",
        0x0E,
    ),
]


@pytest.mark.parametrize("text, family, code", ERRORS)
def test_every_error_line_with_its_red_prefix(text, family, code):
    event = p.parse_line(p.ANSI_REGEX.sub("", f"{RED}Error: {RESET}{text}"))
    assert event == p.ErrorLine(text, False, family, event.reason, code)
    if code is not None:
        assert p.ATT_ERRORS[event.reason] == code


@pytest.mark.parametrize(
    "text, family",
    [
        ("Disconnected", None),
        ("Operation is only available for LE transport.", "mtu"),
        ("MTU exchange can only occur once per connection.", "mtu"),
    ],
)
def test_command_failed_lines(text, family):
    decoder = p.OutputDecoder()
    events = decoder.feed(f"{RED}Command Failed: {RESET}{text}\r\n")
    assert events == [p.ErrorLine(text, True, family, None, None)]


def test_every_att_error_string_has_its_code():
    codes = sorted({code for code in p.ATT_ERRORS.values() if code is not None})
    assert len(codes) == 20
    assert p.ATT_ERRORS["Unexpected error code"] is None  # gatttool's words for a code it has no text for
    assert p.ATT_ERRORS["A timeout occured"] == 0x81  # BlueZ's older spelling
    assert p.ATT_ERRORS["A timeout occurred"] == 0x81  # BlueZ 5.66's, seen on the real gatttool


def test_prompt_uncoloured_and_blue():
    decoder = p.OutputDecoder()
    assert decoder.feed("[                 ][LE]> ") == [p.Prompt(None, False)]
    assert decoder.feed("[11:22:33:44:55:66][LE]> ") == [p.Prompt("11:22:33:44:55:66", False)]
    assert decoder.feed(f"{BLUE}[11:22:33:44:55:66]{RESET}[LE]> ") == [p.Prompt("11:22:33:44:55:66", True)]
    assert decoder.feed("[11:22:33:44:55:66][BR]> ") == [p.Prompt("11:22:33:44:55:66", False)]


def test_async_line_framing_xterm_and_dumb():
    prompt = f"{BLUE}[11:22:33:44:55:66]{RESET}[LE]> "
    xterm = f"\r\x1b[KNotification handle = 0x000e value: 01 \r\n{prompt}"
    dumb = "\r" + " " * 30 + f"\rNotification handle = 0x000e value: 01 \r\n{prompt}"
    for stream in (xterm, dumb):
        assert p.OutputDecoder().feed(stream) == [
            p.Notification(0x0E, b"\x01", False),
            p.Prompt("11:22:33:44:55:66", True),
        ]


def test_result_after_an_earlier_prompt_and_the_echo():
    stream = (
        "char-read-hnd 0x0003\r\n[11:22:33:44:55:66][LE]> "
        "\r\x1b[KCharacteristic value/descriptor: 41 \r\n[11:22:33:44:55:66][LE]> "
    )
    events = p.OutputDecoder().feed(stream)
    assert events == [
        p.Other("char-read-hnd 0x0003"),
        p.Prompt("11:22:33:44:55:66", False),
        p.ReadValue(b"A"),
        p.Prompt("11:22:33:44:55:66", False),
    ]


def test_bracketed_paste_codes_are_stripped():
    stream = (
        "\x1b[?2004h[                 ][LE]> help\r\n\x1b[?2004l\rconnect      [address [address type]]   Connect\r\n"
    )
    events = p.OutputDecoder().feed(stream)
    assert events[0] == p.Prompt(None, False)
    assert all(type(e) is not p.ErrorLine for e in events)


def test_partial_input_redraw_after_prompt():
    stream = "\r\x1b[KNotification handle = 0x000e value: 01 \r\n[11:22:33:44:55:66][LE]> char-re"
    decoder = p.OutputDecoder()
    assert decoder.feed(stream) == [p.Notification(0x0E, b"\x01", False)]
    assert decoder.feed("ad-hnd 1\r\n") == [p.Prompt("11:22:33:44:55:66", False), p.Other("char-read-hnd 1")]


def test_lines_split_across_chunks_at_every_position():
    stream = (
        f"\r\x1b[K{RED}Error: {RESET}Characteristic value/descriptor read failed: Attribute can't be read\r\n"
        f"{BLUE}[11:22:33:44:55:66]{RESET}[LE]> "
    )
    whole = p.OutputDecoder().feed(stream)
    for cut in range(1, len(stream)):
        decoder = p.OutputDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == whole, cut


def test_glib_warning_with_colours_on_a_tty():
    line = (
        "\r\n(gatttool:77): GLib-\x1b[1;33mWARNING\x1b[0m **: \x1b[34m12:00:00.000\x1b[0m: Invalid file descriptor.\r\n"
    )
    events = p.OutputDecoder().feed(line)
    assert [type(e) for e in events] == [p.LinkLost]


def test_readline_markers_are_stripped():
    assert p.OutputDecoder().feed("\x01\x1b[0;91m\x02Error: \x01\x1b[0m\x02Invalid value\r\n") == [
        p.ErrorLine("Invalid value", False, None, None, None)
    ]


def test_unfinished_line_is_bounded_by_the_search_window():
    decoder = p.OutputDecoder(max_pending=100)
    events = decoder.feed("x" * 150)
    assert events == [p.Other("x" * 150)]
    assert decoder.feed("\r\n") == []


@pytest.mark.parametrize(
    "line, parsed",
    [
        ("AA:BB:CC:DD:EE:FF (unknown)", ("AA:BB:CC:DD:EE:FF", None)),
        ("aa:bb:cc:dd:ee:ff Pulse HR", ("AA:BB:CC:DD:EE:FF", "Pulse HR")),
        ("AA:BB:CC:DD:EE:FF ", ("AA:BB:CC:DD:EE:FF", None)),
        ("LE Scan ...", None),
        ("Set scan parameters failed: Input/output error", None),
    ],
)
def test_lescan_lines(line, parsed):
    assert p.parse_lescan_line(line) == parsed
