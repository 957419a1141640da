"""What each ``pygatt`` command does, given a backend and the parsed arguments."""

from __future__ import annotations

import logging
import queue
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union, cast

from pygatt.backends import (
    BGAPIBackend,
    BLEAddressType,
    Characteristic,
    DBusBackend,
    DBusBLEDevice,
    GATTToolBackend,
)
from pygatt.cli.output import (
    Output,
    descriptor_label,
    interpretation,
    short_uuid,
    spaced_hex,
    table,
    uuid_name,
)
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout

if TYPE_CHECKING:
    import argparse

    from pygatt.cli.arguments import Target
    from pygatt.device import BLEDevice

log = logging.getLogger(__name__)

#: Seconds for scanning, connecting and each answer when --timeout is not given.
DEFAULT_TIMEOUT_S = 5.0
#: How often a waiting subscribe wakes up, so Ctrl-C is seen at once on every platform.
POLL_S = 0.25
_LINK_LOST = object()


@dataclass
class Context:
    """A running command: the parsed arguments, the backend and where results go."""

    args: argparse.Namespace
    backend: Union[GATTToolBackend, BGAPIBackend, DBusBackend]
    out: Output

    @property
    def timeout(self) -> float:
        """Seconds for scanning, connecting and each answer."""
        return float(self.args.timeout or DEFAULT_TIMEOUT_S)

    def connect(self, address: str) -> BLEDevice:
        """Connect to a device with the address type ``--random`` asks for.

        Args:
            address: the device address.

        Returns:
            The connected device.
        """
        kind = BLEAddressType.random if self.args.random else BLEAddressType.public
        return self.backend.connect(address, timeout=self.timeout, address_type=kind)


# -- scan ----------------------------------------------------------------------------


def scan(ctx: Context, timeout: float, tool: str = "hcitool") -> List[Dict[str, Any]]:
    """Scan and show the devices found.

    Args:
        ctx: the running command.
        timeout: seconds to scan.
        tool: ``hcitool`` or ``btmgmt`` (which also reports RSSI); the GATTTool
            backend only; the BGAPI and D-Bus backends scan their own way.

    Returns:
        The scan results, as the backend returned them.

    Raises:
        BLEError: the backend's error (the caller turns it into an exit status).
    """
    if isinstance(ctx.backend, (BGAPIBackend, DBusBackend)):
        devices = ctx.backend.scan(timeout=timeout)
    else:
        devices = ctx.backend.scan(timeout=timeout, tool=tool)
    rows = [[d["address"], d.get("name") or "(unknown)"] for d in devices]
    headers = ["address", "name"]
    if any(d.get("rssi") is not None for d in devices):
        headers.append("rssi")
        for row, device in zip(rows, devices):
            row.append("" if device.get("rssi") is None else f"{device['rssi']} dBm")
    lines = table(headers, rows) if devices else ["no devices found"]
    adapter = ctx.backend.port_name if isinstance(ctx.backend, BGAPIBackend) else ctx.args.hci
    ctx.out.result({"adapter": adapter, "devices": [_plain(d) for d in devices]}, lines)
    return devices


def _plain(device: Dict[str, Any]) -> Dict[str, Any]:
    """A scan result as JSON can hold it (BGAPI's packet_data has bytearrays: shown as hex).

    A device that advertised no name is ``null``: the BGAPI backend says ``""`` there, as 5.0.0 did.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).hex()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    document = {key: plain(value) for key, value in device.items()}
    if "name" in document and not document["name"]:
        document["name"] = None
    return document


# -- discover ------------------------------------------------------------------------


def discover(ctx: Context, device: BLEDevice) -> List[Characteristic]:
    """Show the device's characteristics and their descriptors, by handle.

    Args:
        ctx: the running command.
        device: the connected device.

    Returns:
        The characteristics, in handle order.

    Raises:
        BLEError: the backend's error (the caller turns it into an exit status).
    """
    found = sorted(device.discover_characteristics(timeout=ctx.timeout).values(), key=lambda c: c.handle)
    documents = []
    rows = []
    for characteristic in found:
        descriptors = sorted(characteristic.descriptors.items(), key=lambda item: item[1])
        # the declaration is the attribute just before the value (Core spec Vol 3 Part G 3.3)
        declaration = characteristic.handle - 1
        documents.append(
            {
                "handle": declaration,
                "value_handle": characteristic.handle,
                "uuid": str(characteristic.uuid),
                "name": uuid_name(characteristic.uuid) or None,
                "descriptors": [
                    {"handle": handle, "uuid": str(kind), "name": uuid_name(kind) or None}
                    for kind, handle in descriptors
                ],
            }
        )
        rows.append(
            [
                f"0x{declaration:04x}",
                f"0x{characteristic.handle:04x}",
                short_uuid(characteristic.uuid),
                uuid_name(characteristic.uuid),
                ", ".join(f"0x{handle:04x} {descriptor_label(kind)}" for kind, handle in descriptors),
            ]
        )
    lines = table(["handle", "value", "uuid", "name", "descriptors"], rows)
    ctx.out.result({"address": device.address, "characteristics": documents}, lines)
    return found


# -- read and write ------------------------------------------------------------------


def resolve(
    ctx: Context,
    device: BLEDevice,
    target: Target,
    characteristics: Optional[Dict[uuid.UUID, Characteristic]] = None,
) -> Tuple[int, Optional[uuid.UUID]]:
    """Find the handle to use for a target, and its UUID when known.

    A UUID is looked up by discovering the device (unless ``characteristics``
    were discovered already), so a long value is then read in full by handle,
    which ``char-read-uuid`` would cut at one packet.

    Args:
        ctx: the running command.
        device: the connected device.
        target: a handle or a UUID.
        characteristics: the device's characteristics, if discovered already.

    Returns:
        The handle, and the UUID (None for a handle no known characteristic has).

    Raises:
        BLEError: the device has no characteristic with that UUID.
    """
    if isinstance(target, int):
        known = (c.uuid for c in (characteristics or {}).values() if c.handle == target)
        return target, next(known, None)
    if characteristics is None:
        characteristics = device.discover_characteristics(timeout=ctx.timeout)
    found = characteristics.get(target)
    if found is None:
        raise BLEError(f"{device.address} has no characteristic {short_uuid(target)}")
    return found.handle, target


def read(ctx: Context, device: BLEDevice, target: Target) -> bytes:
    """Read a value and show it.

    Args:
        ctx: the running command.
        device: the connected device.
        target: a handle or a UUID.

    Returns:
        The value.

    Raises:
        BLEError: the backend's error (the caller turns it into an exit status).
    """
    handle, key = resolve(ctx, device, target)
    # a long read: the whole value on every backend (BGAPI's plain read stops at one packet)
    value = bytes(device.char_read_long_handle(handle, timeout=ctx.timeout))
    document = {"address": device.address, "handle": handle, "uuid": _text(key), "value": value.hex()}
    ctx.out.result(document, [f"{spaced_hex(value)}  {interpretation(value)}".rstrip()])
    return value


def write(ctx: Context, device: BLEDevice, target: Target, value: bytes, response: bool) -> None:
    """Write a value, with or without response, and say so.

    Args:
        ctx: the running command.
        device: the connected device.
        target: a handle or a UUID.
        value: the bytes to write.
        response: use a Write Request (True) or a Write Command (False).

    Raises:
        BLEError: the backend's error (the caller turns it into an exit status).
    """
    handle, key = resolve(ctx, device, target)
    if response and len(value) > device.mtu - 3:  # more than one packet: prepared writes on every backend
        device.char_write_long_handle(handle, value, wait_for_response=True, timeout=ctx.timeout)
    else:
        device.char_write_handle(handle, value, wait_for_response=response, timeout=ctx.timeout)
    document = {
        "address": device.address,
        "handle": handle,
        "uuid": _text(key),
        "value": value.hex(),
        "response": response,
    }
    how = "with response" if response else "without response"
    ctx.out.result(document, [f"wrote {_count(len(value), 'byte')} to 0x{handle:04x} ({how})"])


def _count(number: int, noun: str) -> str:
    """Count a noun: ``1 byte``, ``3 bytes``.

    Args:
        number: how many.
        noun: the singular.

    Returns:
        The number and the noun.
    """
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _text(value: Optional[uuid.UUID]) -> Optional[str]:
    """Return a UUID as JSON text (None stays None).

    Args:
        value: the UUID, if any.
    """
    return None if value is None else str(value)


# -- subscribe -----------------------------------------------------------------------


def subscribe(
    ctx: Context,
    device: BLEDevice,
    target: Target,
    indicate: bool = False,
    count: Optional[int] = None,
    limit: Optional[float] = None,
) -> int:
    """Subscribe and show each value as it arrives.

    Ends after ``count`` values, or when ``limit`` seconds have passed since
    subscribing: without ``count`` that is the normal end, with ``count`` it is
    a :class:`NotificationTimeout`.

    Args:
        ctx: the running command.
        device: the connected device.
        target: a handle or a UUID.
        indicate: ask for indications instead of notifications.
        count: stop after this many values (None: no limit).
        limit: stop after this many seconds (None: no limit).

    Returns:
        How many values were shown.

    Raises:
        NotConnectedError: the link was lost.
        NotificationTimeout: fewer than ``count`` values arrived within ``limit``.
    """
    characteristics = device.discover_characteristics(timeout=ctx.timeout)  # so the CCCD handle is known
    handle, key = resolve(ctx, device, target, characteristics)
    arrivals: queue.Queue[Union[object, Tuple[float, int, bytes]]] = queue.Queue()

    def on_value(value_handle: int, value: bytearray) -> None:
        arrivals.put((time.time(), value_handle, bytes(value)))

    def on_link_lost(_device: BLEDevice) -> None:
        arrivals.put(_LINK_LOST)

    device.register_disconnect_callback(on_link_lost)
    device.subscribe_handle(handle, on_value, indication=indicate)
    kind = _delivered_kind(device, handle, indicate)
    log.info("Subscribed to 0x%04x for %ss", handle, kind)
    deadline = None if limit is None else time.monotonic() + limit
    shown = 0
    try:
        while count is None or shown < count:
            remaining = POLL_S if deadline is None else deadline - time.monotonic()
            try:
                item = arrivals.get(timeout=min(POLL_S, max(remaining, 0.0)))
            except queue.Empty:
                if remaining > 0:
                    continue
                if count is None:
                    break  # listened for the time asked
                raise NotificationTimeout(f"{shown} of {count} {kind}s arrived within {limit:g} s") from None
            if item is _LINK_LOST:
                raise NotConnectedError(f"lost the connection to {device.address} after {_count(shown, kind)}")
            stamp, value_handle, value = cast("Tuple[float, int, bytes]", item)
            shown += 1
            _show_value(ctx, device, kind, key, stamp, value_handle, value)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say how far we got
        exc.args = (f"{_count(shown, kind)} received",)
        raise
    _unsubscribe_quietly(device, handle)
    return shown


def _delivered_kind(device: BLEDevice, handle: int, indicate: bool) -> str:
    """What the values of a new subscription are, as the output names them.

    The GATTTool and BGAPI backends write what was asked to the CCCD. Through D-Bus,
    BlueZ chooses (notifications whenever the characteristic offers them) and the
    device says what it enabled; if it cannot tell (the link dropped meanwhile),
    the output claims neither.

    Args:
        device: the device just subscribed to.
        handle: the value handle subscribed to.
        indicate: whether indications were asked for.

    Returns:
        ``notification``, ``indication``, or ``value`` when it is not known.
    """
    if isinstance(device, DBusBLEDevice):
        return device.subscription_kind(handle) or "value"
    return "indication" if indicate else "notification"


def _show_value(
    ctx: Context,
    device: BLEDevice,
    kind: str,
    key: Optional[uuid.UUID],
    stamp: float,
    handle: int,
    value: bytes,
) -> None:
    """Show one notification or indication.

    Args:
        ctx: the running command.
        device: the device it came from.
        kind: ``notification`` or ``indication`` (``value`` when unknown).
        key: the characteristic's UUID, if known.
        stamp: when it arrived (seconds since the epoch).
        handle: the value handle.
        value: the value.
    """
    document = {
        "time": round(stamp, 6),
        "address": device.address,
        "handle": handle,
        "uuid": _text(key),
        "kind": kind,
        "value": value.hex(),
    }
    clock = time.strftime("%H:%M:%S", time.localtime(stamp)) + f".{int(stamp % 1 * 1000):03d}"
    ctx.out.result(document, [f"{clock}  0x{handle:04x}  {spaced_hex(value)}"])


def _unsubscribe_quietly(device: BLEDevice, handle: int) -> None:
    """Turn the values off again; the link is closed next, so a failure only gets logged.

    Args:
        device: the connected device.
        handle: the value handle subscribed to.
    """
    try:
        device.unsubscribe_handle(handle, wait_for_response=False)
    except BLEError as exc:
        log.info("Could not unsubscribe from 0x%04x: %s", handle, exc)


# -- demo ----------------------------------------------------------------------------

DEMO_READS = (uuid.UUID("00002a00-0000-1000-8000-00805f9b34fb"), uuid.UUID("00002a19-0000-1000-8000-00805f9b34fb"))


def demo(ctx: Context) -> None:
    """Scan, then discover, read and subscribe on the first device with a name.

    Args:
        ctx: the running command.

    Raises:
        BLEError: no device with a name was found, or the backend's error.
    """
    ctx.out.text("$ pygatt scan")
    devices = scan(ctx, timeout=float(ctx.args.timeout or 2.0))
    named = [d for d in devices if d.get("name")]
    if not named:
        raise BLEError("the demo needs a device that advertises a name; none was found")
    address = named[0]["address"]
    device = ctx.connect(address)
    ctx.out.text(f"\n$ pygatt discover {address}")
    found = discover(ctx, device)
    for key in DEMO_READS:
        if any(c.uuid == key for c in found):
            ctx.out.text(f"\n$ pygatt read {address} {short_uuid(key)}")
            read(ctx, device, key)
    following = [c for c in found if any(short_uuid(d) == "2902" for d in c.descriptors)]
    if following:
        ctx.out.text(f"\n$ pygatt subscribe {address} {short_uuid(following[0].uuid)} --count 3")
        subscribe(ctx, device, following[0].uuid, count=3, limit=float(ctx.args.timeout or 10.0))


# -- dispatch ------------------------------------------------------------------------


def run(ctx: Context) -> None:
    """Run the command named in ``ctx.args``.

    Args:
        ctx: the running command.

    Raises:
        BLEError: the backend's error (the caller turns it into an exit status).
    """
    args = ctx.args
    if args.command == "scan":
        scan(ctx, ctx.timeout, args.tool)
        return
    if args.command == "demo":
        demo(ctx)
        return
    device = ctx.connect(args.address)
    if args.command == "discover":
        discover(ctx, device)
    elif args.command == "read":
        read(ctx, device, args.target)
    elif args.command == "write":
        write(ctx, device, args.target, args.value, response=not args.no_response)
    elif args.command == "subscribe":
        subscribe(ctx, device, args.target, indicate=args.indicate, count=args.count, limit=args.timeout)
    else:  # the parser knows no other command
        raise AssertionError(f"unknown command {args.command!r}")
