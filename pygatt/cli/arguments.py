"""The command line grammar of ``pygatt``: the parser and the argument types.

Every argument that ends up in a command sent to gatttool (address, handle or
UUID, value, adapter, timeout) is checked here, while parsing, so a bad one is
a usage error (exit status 2) before any program runs.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import uuid
from typing import Any, List, NoReturn, Optional, Sequence, Union

from pygatt import __version__, validate
from pygatt.cli.status import EPILOG

DEFAULT_WORLD = "heart-rate"
#: Where a command's parser counts the -v given after the command name (parse() adds them to ``verbose``).
VERBOSE_AFTER_COMMAND = "verbose_after_command"
COMMANDS = ("scan", "discover", "read", "write", "subscribe", "demo")
BACKENDS = ("gatttool", "bgapi", "dbus")

Target = Union[int, uuid.UUID]

ADDRESS_HELP = "the device address, AA:BB:CC:DD:EE:FF"
TARGET_HELP = "a handle (0x002a, or decimal 42) or a UUID (2a19, or 128-bit)"

_HEX_SEPARATORS = re.compile(r"[\s:]")
_DECIMAL = re.compile(r"[0-9]+")


class UsageError(Exception):
    """The command line is wrong; the message says how (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`UsageError` instead of exiting.

    So ``main()`` decides the exit status and prints the one error line itself.
    """

    def error(self, message: str) -> NoReturn:
        """Report a usage error (argparse calls this).

        Args:
            message: what is wrong.

        Raises:
            UsageError: always, with a pointer to ``--help``.
        """
        raise UsageError(f"{message} (see '{self.prog} --help')")


def address(text: str) -> str:
    """Parse a device address.

    Args:
        text: ``AA:BB:CC:DD:EE:FF``, any case.

    Returns:
        The address in upper case.

    Raises:
        argparse.ArgumentTypeError: not an address.
    """
    try:
        return validate.address(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def target(text: str) -> Target:
    """Parse what to read, write or subscribe to: a handle or a UUID.

    An all-digit word such as ``2902`` is a decimal handle; a UUID whose
    16-bit form is all digits is written in full
    (``00002902-0000-1000-8000-00805f9b34fb``).

    Args:
        text: a handle (``0x002a`` or a decimal number) or a UUID (``2a19`` or 128-bit).

    Returns:
        The handle as an int, or the UUID.

    Raises:
        argparse.ArgumentTypeError: neither, or a handle outside 1 to 65535.
    """
    try:
        if text[:2].lower() == "0x":
            return validate.handle(int(text[2:], 16))
        if _DECIMAL.fullmatch(text):
            return validate.handle(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a handle: {exc}") from None
    try:
        return validate.characteristic_uuid(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a handle (0x002a, 42) nor a UUID (2a19, 0000xxxx-0000-1000-8000-00805f9b34fb)"
        ) from None


def hex_value(text: str) -> bytes:
    """Parse a value to write.

    Args:
        text: the bytes in hex: ``0100``, ``01:00`` or ``"01 00"``, with an optional ``0x``.

    Returns:
        The bytes (1 to 512).

    Raises:
        argparse.ArgumentTypeError: not hex, empty or too long.
    """
    compact = _HEX_SEPARATORS.sub("", text)
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    try:
        return validate.value_bytes(bytes.fromhex(compact))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a value in hex bytes like 0100 or 01:00: {exc}") from None


def seconds(text: str) -> float:
    """Parse a duration.

    Args:
        text: a positive, finite number of seconds.

    Returns:
        The seconds.

    Raises:
        argparse.ArgumentTypeError: not a number, not positive, not finite, or over
            :data:`~pygatt.validate.MAX_TIMEOUT_S`.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    if value > validate.MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than {validate.MAX_TIMEOUT_S:.0f} s")
    return value


def count(text: str) -> int:
    """Parse a count.

    Args:
        text: a positive whole number.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    if not _DECIMAL.fullmatch(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


def adapter(text: str) -> str:
    """Parse an adapter name.

    Args:
        text: a name like ``hci0``.

    Returns:
        The name.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    try:
        return validate.hci_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def serial_port(text: str) -> str:
    """A serial port name or pyserial URL (no control characters)."""
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(f"not a serial port name: {text!r}")
    return text


def log_file(text: str) -> str:
    """Check a file that gatttool's log is to be appended to (created if missing).

    Args:
        text: the path.

    Returns:
        The path.

    Raises:
        argparse.ArgumentTypeError: the file cannot be opened for appending.
    """
    try:
        with open(text, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write to {text!r}: {exc.strerror}") from None
    return text


def _add_common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Add the options every command takes, before or after the command name.

    Args:
        parser: the main parser or a command's.
        suppress: leave the defaults out, so an option given before the command
            is not overwritten by the command parser's default.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("common options (before or after the command)")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default("gatttool"),
        help="gatttool (BlueZ, default), bgapi (a BLED112 USB dongle) or dbus (BlueZ over D-Bus, no gatttool)",
    )
    group.add_argument("--hci", metavar="hciN", type=adapter, default=default("hci0"), help="adapter (default hci0)")
    group.add_argument(
        "--port",
        metavar="PORT",
        type=serial_port,
        default=default(None),
        help="bgapi: the dongle's serial port (/dev/ttyACM0, COM3, socket://host:port); default: found by USB id",
    )
    group.add_argument("--random", action="store_true", default=default(False), help="the device uses a random address")
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        default=default(None),
        help="scan time; limit for connecting and each answer (default 5); subscribe: overall limit (default none)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="JSON output (JSON lines for subscribe)"
    )
    group.add_argument(
        "--simulate",
        metavar="[FILE]",
        default=default(None),
        help=f"use the simulated peripheral: a world JSON file, or bare --simulate for '{DEFAULT_WORLD}'",
    )
    group.add_argument(
        "--no-reset",
        action="store_true",
        default=default(False),
        help="do not reset the adapter (hciconfig) or the dongle (bgapi) first",
    )
    group.add_argument(
        "--log-file",
        metavar="FILE",
        type=log_file,
        default=default(None),
        help="append gatttool's raw input and output to FILE",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        # The command's parser counts into a namespace of its own, which argparse then copies over
        # the main one: its count is kept apart and added in parse(), so no -v is lost.
        dest=VERBOSE_AFTER_COMMAND if suppress else "verbose",
        default=default(0),
        help="log INFO (-vv: DEBUG); default WARNING",
    )


def build_parser() -> Parser:
    """Build the ``pygatt`` argument parser.

    Returns:
        The parser, with a sub-parser per command.
    """
    parser = Parser(
        prog="pygatt",
        description="Talk to Bluetooth LE devices through BlueZ's gatttool or a BLED112 USB dongle (BGAPI).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"pygatt {__version__}")
    _add_common_options(parser, suppress=False)
    common = Parser(add_help=False, allow_abbrev=False)
    _add_common_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )

    scan = command("scan", "list advertising devices")
    scan.add_argument(
        "--tool", choices=("hcitool", "btmgmt"), default="hcitool", help="scanner (btmgmt also reports RSSI)"
    )
    discover = command("discover", "list a device's characteristics and their descriptors")
    discover.add_argument("address", metavar="ADDRESS", type=address, help=ADDRESS_HELP)
    read = command("read", "read a characteristic value")
    read.add_argument("address", metavar="ADDRESS", type=address, help=ADDRESS_HELP)
    read.add_argument("target", metavar="UUID|HANDLE", type=target, help=TARGET_HELP)
    write = command("write", "write a characteristic value")
    write.add_argument("address", metavar="ADDRESS", type=address, help=ADDRESS_HELP)
    write.add_argument("target", metavar="UUID|HANDLE", type=target, help=TARGET_HELP)
    write.add_argument("value", metavar="HEX", type=hex_value, help="bytes in hex: 0100, 01:00 or '01 00'")
    write.add_argument("--no-response", action="store_true", help="write without response (a GATT command)")
    subscribe = command("subscribe", "print notifications (or indications) as they arrive")
    subscribe.add_argument("address", metavar="ADDRESS", type=address, help=ADDRESS_HELP)
    subscribe.add_argument("target", metavar="UUID|HANDLE", type=target, help=TARGET_HELP)
    subscribe.add_argument("--indicate", action="store_true", help="ask for indications instead of notifications")
    subscribe.add_argument("--count", metavar="N", type=count, help="exit after N values (default: until Ctrl-C)")
    command("demo", "scan, discover, read and subscribe in one go (try it with --simulate)")
    return parser


def expand_bare_simulate(argv: Sequence[str]) -> List[str]:
    """Give a bare ``--simulate`` its default world.

    ``--simulate`` takes an optional FILE. The word after it is taken as FILE
    when it names a shipped example world, ends in ``.json`` or is an existing
    file; otherwise (a command, an option, nothing) the option is bare.
    ``--simulate=FILE`` is always a FILE.

    Args:
        argv: the command line.

    Returns:
        The command line with ``--simulate=heart-rate`` for a bare ``--simulate``.
    """
    from pygatt.testing import EXAMPLES  # the shipped world names

    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--":
            break
        following: Optional[str] = out[i + 1] if i + 1 < len(out) else None
        if arg != "--simulate":
            continue
        if following is None or not (following in EXAMPLES or following.endswith(".json") or os.path.isfile(following)):
            out[i] = f"--simulate={DEFAULT_WORLD}"
    return out


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line.

    Args:
        argv: the arguments after the program name.

    Returns:
        The parsed arguments.

    Raises:
        UsageError: the command line is wrong.
        SystemExit: with status 0, after ``--help`` or ``--version`` printed.
    """
    args = build_parser().parse_args(expand_bare_simulate(argv))
    args.verbose += vars(args).pop(VERBOSE_AFTER_COMMAND, 0)  # -v before and after the command add up
    if args.port is not None and args.backend != "bgapi":
        raise UsageError("--port is for --backend bgapi")
    if args.port is not None and args.simulate is not None:
        raise UsageError("--port and --simulate exclude each other")
    if args.command is None:
        raise UsageError("a command is needed: " + ", ".join(COMMANDS) + " (see 'pygatt --help')")
    return args
