"""The ``pygatt`` command: scan, discover, read, write and subscribe from a shell.

Exit statuses a script can rely on::

    0    success
    1    a BLE error reported by the device or gatttool (e.g. read not permitted)
    2    bad usage (unknown command, bad address, UUID, handle or value)
    3    not connected: the connection failed or dropped
    4    timeout: the device did not answer in time
    5    the adapter or a BlueZ tool failed (no adapter, permissions, tool missing)
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Union

from pygatt import validate
from pygatt.backends import BLEAddressType, GATTToolBackend, ToolCommands
from pygatt.backends.gatttool.device import GATTToolBLEDevice
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout, ToolError

EXIT_OK, EXIT_BLE, EXIT_USAGE, EXIT_NOT_CONNECTED, EXIT_TIMEOUT, EXIT_TOOL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
COMMANDS = ("scan", "discover", "read", "write", "subscribe", "demo")
DEFAULT_WORLD = "heart-rate"
KNOWN_UUIDS = {
    0x1800: "Generic Access",
    0x180A: "Device Information",
    0x180D: "Heart Rate",
    0x180F: "Battery Service",
    0x2A00: "Device Name",
    0x2A01: "Appearance",
    0x2A19: "Battery Level",
    0x2A25: "Serial Number String",
    0x2A29: "Manufacturer Name String",
    0x2A37: "Heart Rate Measurement",
    0x2A38: "Body Sensor Location",
    0x2A39: "Heart Rate Control Point",
    0x2901: "User Description",
    0x2902: "Client Characteristic Configuration",
}


class UsageError(Exception):
    """A bad argument, found before anything is sent (exit status 2)."""


def uuid_name(value: uuid.UUID) -> str:
    """The assigned name of a Bluetooth base UUID, or ''."""
    if str(value).endswith("-0000-1000-8000-00805f9b34fb") and value.int >> 96 <= 0xFFFF:
        return KNOWN_UUIDS.get(value.int >> 96, "")
    return ""


def parse_target(text: str) -> Union[int, uuid.UUID]:
    """``0x002a`` or a decimal number is a handle; anything else must be a UUID."""
    try:
        if text.lower().startswith("0x"):
            return validate.handle(int(text, 16))
        if text.isdigit() and len(text) != 4:
            return validate.handle(int(text))
        return validate.characteristic_uuid(text)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{text!r} is neither a handle (0x002a) nor a UUID (2a19): {exc}") from None


def parse_hex(text: str) -> bytes:
    """``0100``, ``01:00`` or ``01 00`` as bytes."""
    compact = text.replace(":", "").replace(" ", "")
    try:
        return validate.value_bytes(bytes.fromhex(compact))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"value must be hex bytes like 0100: {exc}") from None


def printable(value: bytes) -> str:
    """The value as text when it is all printable ASCII, else ''."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return text if text and text.isprintable() else ""


class Runner:
    """Runs one command against a backend and prints its result."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        tools = ToolCommands.simulated(args.simulate) if args.simulate else None
        self.backend = GATTToolBackend(hci_device=args.hci, gatttool_logfile=args.log_file, tools=tools)

    def emit(self, data: Any, text: str) -> None:
        self.out.write((json.dumps(data) if self.args.json else text) + "\n")
        self.out.flush()

    def start(self) -> None:
        self.backend.start(reset_on_start=not (self.args.no_reset or self.args.simulate))

    def connect(self, address: str) -> GATTToolBLEDevice:
        address_type = BLEAddressType.random if self.args.random else BLEAddressType.public
        return self.backend.connect(address, timeout=self.args.timeout, address_type=address_type)

    # -- commands ---------------------------------------------------------------------
    def scan(self) -> int:
        devices = self.backend.scan(timeout=self.args.timeout, tool=self.args.tool)
        if self.args.json:
            self.emit(devices, "")
            return EXIT_OK
        for device in devices:
            rssi = "" if device.get("rssi") is None else f"  {device['rssi']:>4} dBm"
            self.out.write(f"{device['address']}  {device['name'] or '(unknown)'}{rssi}\n")
        self.out.write(f"{len(devices)} device(s) found\n")
        return EXIT_OK

    def discover(self, device: Optional[GATTToolBLEDevice] = None) -> int:
        device = device or self.connect(self.args.address)
        characteristics = sorted(device.discover_characteristics().values(), key=lambda c: c.handle)
        rows: List[Dict[str, Any]] = [
            {
                "uuid": str(c.uuid),
                "name": uuid_name(c.uuid),
                "handle": c.handle,
                "descriptors": {str(u): h for u, h in sorted(c.descriptors.items(), key=lambda item: item[1])},
            }
            for c in characteristics
        ]
        if self.args.json:
            self.emit({"address": device.address, "characteristics": rows}, "")
            return EXIT_OK
        self.out.write(f"{'handle':<8}{'uuid':<38}name\n")
        for row in rows:
            self.out.write(f"0x{row['handle']:04x}  {row['uuid']:<38}{row['name']}\n")
            for descriptor, handle in row["descriptors"].items():
                name = uuid_name(uuid.UUID(descriptor))
                self.out.write(f"  0x{handle:04x}  {descriptor:<36}  {name}\n")
        self.out.write(f"{len(rows)} characteristic(s)\n")
        return EXIT_OK

    def read(self, device: Optional[GATTToolBLEDevice] = None, target: Any = None) -> int:
        target = parse_target(self.args.target) if target is None else target
        device = device or self.connect(self.args.address)
        if isinstance(target, int):
            value, handle = device.char_read_handle(target, timeout=self.args.timeout), target
        else:
            value, handle = device.char_read(target, timeout=self.args.timeout), None
        text = printable(bytes(value)) if len(value) > 1 else ""
        if len(value) == 1:
            text = str(value[0])
        self.emit(
            {"address": device.address, "target": str(target), "handle": handle, "value": value.hex()},
            f"{value.hex(' ')}" + (f"  ({text})" if text else ""),
        )
        return EXIT_OK

    def write(self) -> int:
        target = parse_target(self.args.target)
        value = parse_hex(self.args.value)
        device = self.connect(self.args.address)
        respond = not self.args.no_response
        if isinstance(target, int):
            device.char_write_handle(target, value, wait_for_response=respond, timeout=self.args.timeout)
        else:
            device.char_write(target, value, wait_for_response=respond)
        self.emit({"address": device.address, "target": str(target), "written": value.hex()}, "written")
        return EXIT_OK

    def subscribe(self, device: Optional[GATTToolBLEDevice] = None, target: Any = None, count: Any = None) -> int:
        target = parse_target(self.args.target) if target is None else target
        count = self.args.count if count is None else count
        device = device or self.connect(self.args.address)
        values: queue.Queue[tuple] = queue.Queue()

        def callback(handle: int, value: bytearray) -> None:
            values.put((handle, bytes(value)))

        if isinstance(target, int):
            device.subscribe_handle(target, callback, indication=self.args.indicate)
        else:
            device.subscribe(target, callback, indication=self.args.indicate)
        limit = self.args.wait
        deadline = None if limit is None else time.monotonic() + limit
        received = 0
        while count is None or received < count:
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                handle, value = values.get(timeout=remaining if remaining is None else max(remaining, 0))
            except queue.Empty:
                raise NotificationTimeout(f"{received} of {count} notifications within {limit} s") from None
            received += 1
            self.emit(
                {"handle": handle, "value": value.hex(), "time": round(time.time(), 3)},
                f"0x{handle:04x}  {value.hex(' ')}",
            )
        return EXIT_OK

    def demo(self) -> int:
        """Scan, connect to the first named device, discover, read, and take a few notifications."""
        self.out.write("$ pygatt scan\n")
        devices = self.backend.scan(timeout=1)
        for found in devices:
            self.out.write(f"{found['address']}  {found['name'] or '(unknown)'}\n")
        named = [d for d in devices if d["name"]]
        if not named:
            raise BLEError("no named device found to show")
        address = named[0]["address"]
        device = self.connect(address)
        self.out.write(f"\n$ pygatt discover {address}\n")
        self.discover(device)
        for short in ("2a00", "2a19"):
            self.out.write(f"\n$ pygatt read {address} {short}\n")
            self.read(device, validate.characteristic_uuid(short))
        self.out.write(f"\n$ pygatt subscribe {address} 2a37 --count 3\n")
        self.args.indicate = False
        self.args.wait = self.args.wait or 10.0
        return self.subscribe(device, validate.characteristic_uuid("2a37"), 3)


def add_common_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The options every command takes; ``suppress`` keeps a subcommand from resetting them."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--hci", default=default("hci0"), help="the adapter (default hci0)")
    parser.add_argument("--random", action="store_true", default=default(False), help="random address type")
    parser.add_argument("--timeout", type=float, default=default(5.0), help="seconds for connecting, scans, answers")
    parser.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    parser.add_argument(
        "--simulate",
        metavar="WORLD",
        default=default(None),
        help=f"use the simulated peripheral: a world JSON file (bare --simulate: {DEFAULT_WORLD})",
    )
    parser.add_argument("--no-reset", action="store_true", default=default(False), help="do not reset the adapter")
    parser.add_argument("--log-file", default=default(None), help="write gatttool's raw input and output here")
    parser.add_argument("-v", "--verbose", action="count", default=default(0), help="log more (-vv: debug)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: common options before or after the command."""
    parser = argparse.ArgumentParser(
        prog="pygatt",
        description="Talk to Bluetooth LE devices through BlueZ's gatttool.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(parser)
    suppress = argparse.ArgumentParser(add_help=False)
    add_common_options(suppress, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    scan = sub.add_parser("scan", parents=[suppress], help="list advertising devices")
    scan.add_argument("--tool", choices=("hcitool", "btmgmt"), default="hcitool", help="btmgmt also reports RSSI")
    discover = sub.add_parser("discover", parents=[suppress], help="list a device's characteristics")
    discover.add_argument("address")
    read = sub.add_parser("read", parents=[suppress], help="read a characteristic")
    read.add_argument("address")
    read.add_argument("target", metavar="UUID|HANDLE")
    write = sub.add_parser("write", parents=[suppress], help="write a characteristic")
    write.add_argument("address")
    write.add_argument("target", metavar="UUID|HANDLE")
    write.add_argument("value", metavar="HEX")
    write.add_argument("--no-response", action="store_true", help="write without response")
    subscribe = sub.add_parser("subscribe", parents=[suppress], help="print notifications")
    subscribe.add_argument("address")
    subscribe.add_argument("target", metavar="UUID|HANDLE")
    subscribe.add_argument("--indicate", action="store_true", help="use indications")
    subscribe.add_argument("--count", type=int, help="stop after N values")
    subscribe.add_argument("--wait", type=float, help="give up after this many seconds (exit 4)")
    demo = sub.add_parser("demo", parents=[suppress], help="scan, discover, read and subscribe in one go")
    demo.set_defaults(wait=None)
    return parser


def _expand_bare_simulate(argv: Sequence[str]) -> List[str]:
    """``--simulate`` with no file (followed by a command or an option) means the shipped world."""
    out = list(argv)
    for i, arg in enumerate(out):
        following = out[i + 1] if i + 1 < len(out) else None
        if arg == "--simulate" and (following is None or following in COMMANDS or following.startswith("-")):
            out[i] = f"--simulate={DEFAULT_WORLD}"
    return out


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> int:
    """Run the command line; returns the exit status."""
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(_expand_bare_simulate(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    level = logging.ERROR if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        for name in ("address",):
            if hasattr(args, name):
                setattr(args, name, validate.address(getattr(args, name)))
        if hasattr(args, "target"):
            parse_target(args.target)
        if hasattr(args, "value"):
            parse_hex(args.value)
        runner = Runner(args, out)
    except (UsageError, ValueError, TypeError) as exc:
        return _fail(EXIT_USAGE, exc)
    handlers: Dict[str, Callable[[], int]] = {
        "scan": runner.scan,
        "discover": runner.discover,
        "read": runner.read,
        "write": runner.write,
        "subscribe": runner.subscribe,
        "demo": runner.demo,
    }
    try:
        if args.command != "scan":
            runner.start()
        return handlers[args.command]()
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except (UsageError, ValueError, TypeError) as exc:
        return _fail(EXIT_USAGE, exc)
    except NotConnectedError as exc:
        return _fail(EXIT_NOT_CONNECTED, exc)
    except NotificationTimeout as exc:
        return _fail(EXIT_TIMEOUT, exc)
    except ToolError as exc:
        return _fail(EXIT_TOOL, exc)
    except BLEError as exc:
        return _fail(EXIT_TOOL if "not started" in str(exc) or "Could not start" in str(exc) else EXIT_BLE, exc)
    finally:
        runner.backend.stop()


def _fail(status: int, error: Union[str, BaseException]) -> int:
    sys.stderr.write(f"pygatt: error: {error}\n")
    return status
