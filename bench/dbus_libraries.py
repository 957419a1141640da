"""Which D-Bus client library should the D-Bus backend use? jeepney or dbus-fast, measured.

Run ``python -m bench.dbus_libraries`` (needs ``dbus-daemon``, ``jeepney`` and ``dbus-fast``).

It starts a private ``dbus-daemon`` and, in a child process, a tiny service that
stands for bluetoothd: on ``Burst(u count)`` it sends ``count`` characteristic
``PropertiesChanged{Value}`` signals as fast as the socket takes them (they are
serialised before the clock starts, so the service is not what is measured), and
``ReadValue(a{sv}) -> ay`` answers at once. Each client library then runs the way
the backend would use it from synchronous code:

* jeepney, as pygatt's ``BusConnection`` uses it, and through ``jeepney.io.threading``:
  a blocking connection and ONE reader thread of our own that parses
  every message and hands each notification to a queue (as the backend hands it
  to its callback dispatcher); a read is a send plus a wait on a future.
* dbus-fast: an asyncio loop in a thread; a notification is handled by a
  message handler on that loop and put on a queue; a read is
  ``run_coroutine_threadsafe(bus.call(...)).result()``.

Printed: notifications/s received (best of the runs) and the median read round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

SERVICE = "org.example.BluezBench"
CHAR_PATH = "/org/bluez/hci0/dev_C4_7C_8D_6A_3E_01/service000a/char000b"
CHAR_IFACE = "org.bluez.GattCharacteristic1"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
BENCH_IFACE = "org.example.Bench1"
VALUE = bytes(range(20))


def start_bus(directory: str) -> Tuple[str, int]:
    """Start a private dbus-daemon; returns (address, pid)."""
    config = os.path.join(directory, "bus.conf")
    with open(config, "w") as handle:
        handle.write(
            "<busconfig><type>session</type>"
            f"<listen>unix:path={directory}/bus.sock</listen><auth>EXTERNAL</auth>"
            '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
            '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>'
        )
    out = subprocess.run(
        ["dbus-daemon", f"--config-file={config}", "--print-address=1", "--print-pid=1", "--fork"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


# -- the service (child process, jeepney blocking; the same for both clients) -----------------------


def serve(address: str) -> None:
    """Answer Burst and ReadValue until the bus goes away."""
    from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    connection = open_dbus_connection(bus=address)
    connection.send_and_get_reply(message_bus.RequestName(SERVICE))
    emitter = DBusAddress(CHAR_PATH, interface=PROPS_IFACE)
    serials = itertools.count(1_000_000)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        try:
            message = connection.receive()
        except (ConnectionResetError, OSError):
            return
        if message.header.message_type is not MessageType.method_call:
            continue
        member = message.header.fields.get(HeaderFields.member)
        if member == "Burst":
            count = message.body[0]
            signal = new_signal(emitter, "PropertiesChanged", "sa{sv}as", (CHAR_IFACE, {"Value": ("ay", VALUE)}, []))
            blob = b"".join(signal.serialise(next(serials)) for _ in range(count))
            connection.send(new_method_return(message, "u", (count,)))
            connection.sock.sendall(blob)
        elif member == "ReadValue":
            connection.send(new_method_return(message, "ay", (VALUE,)))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (member or "",)))


# -- jeepney client -----------------------------------------------------------------------------------


class JeepneyClient:
    """A blocking jeepney connection with one reader thread, as the backend uses it."""

    def __init__(self, address: str) -> None:
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call
        from jeepney.bus_messages import MatchRule, message_bus
        from jeepney.io.threading import DBusConnection, ReceiveStopped, open_dbus_connection

        self._types = (MessageType, HeaderFields, ReceiveStopped)
        self._new_method_call = new_method_call
        self._service = DBusAddress("/bench", bus_name=SERVICE, interface=BENCH_IFACE)
        self._char = DBusAddress(CHAR_PATH, bus_name=SERVICE, interface=CHAR_IFACE)
        self.connection: DBusConnection = open_dbus_connection(bus=address)
        self.notifications: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._pending: Dict[int, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._serials = itertools.count(1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        rule = MatchRule(type="signal", interface=PROPS_IFACE, member="PropertiesChanged", path_namespace="/org/bluez")
        self.call(message_bus.AddMatch(rule))

    def _read(self) -> None:
        message_type, fields, stopped = self._types
        try:
            while True:
                message = self.connection.receive()
                kind = message.header.message_type
                if kind is message_type.signal:
                    changed = message.body[1]
                    if "Value" in changed:
                        self.notifications.put(changed["Value"][1])
                elif kind in (message_type.method_return, message_type.error):
                    with self._lock:
                        future = self._pending.pop(message.header.fields[fields.reply_serial], None)
                    if future is not None:
                        future.set_result(message)
        except (stopped, OSError):
            return

    def call(self, message: Any) -> Any:
        serial = next(self._serials)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._pending[serial] = future
        self.connection.send(message, serial=serial)
        return future.result(10).body

    def burst(self, count: int) -> None:
        self.call(self._new_method_call(self._service, "Burst", "u", (count,)))

    def read(self) -> bytes:
        return bytes(self.call(self._new_method_call(self._char, "ReadValue", "a{sv}", ({},)))[0])

    def close(self) -> None:
        self.connection.close()
        self._reader.join(2)


class PygattBusClient:
    """pygatt's own transport (jeepney's parser, one reader thread reading 64 KiB at a time)."""

    def __init__(self, address: str) -> None:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from pygatt.backends.dbus.bus import BusConnection, Signal

        self.notifications: queue.SimpleQueue[bytes] = queue.SimpleQueue()

        def on_signal(signal: Signal) -> None:
            if signal.member != "PropertiesChanged":
                return
            changed = signal.body[1]
            if "Value" in changed:
                self.notifications.put(changed["Value"][1])

        self.bus = BusConnection(address, on_signal)
        self.bus.open(5)
        self.bus.add_match(
            f"type='signal',interface='{PROPS_IFACE}',member='PropertiesChanged',path_namespace='/org/bluez'", 5
        )

    def burst(self, count: int) -> None:
        self.bus.call(SERVICE, "/bench", BENCH_IFACE, "Burst", "u", (count,), timeout=10)

    def read(self) -> bytes:
        return bytes(self.bus.call(SERVICE, CHAR_PATH, CHAR_IFACE, "ReadValue", "a{sv}", ({},), timeout=10)[0])

    def close(self) -> None:
        self.bus.close()


# -- dbus-fast client ---------------------------------------------------------------------------------


class DbusFastClient:
    """A dbus-fast MessageBus on an asyncio loop in a thread, driven from synchronous code."""

    def __init__(self, address: str) -> None:
        from dbus_fast import Message, MessageType
        from dbus_fast.aio import MessageBus

        self._message_cls = Message
        self.notifications: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        signal_type = MessageType.SIGNAL

        def on_message(message: Any) -> None:
            if message.message_type is signal_type and message.member == "PropertiesChanged":
                changed = message.body[1]
                if "Value" in changed:
                    self.notifications.put(changed["Value"].value)

        async def connect() -> Any:
            bus = await MessageBus(bus_address=address).connect()
            bus.add_message_handler(on_message)
            rule = f"type='signal',interface='{PROPS_IFACE}',member='PropertiesChanged',path_namespace='/org/bluez'"
            await bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=[rule],
                )
            )
            return bus

        self.bus = self._run(connect())

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def _call(self, path: str, interface: str, member: str, signature: str, body: List[Any]) -> Any:
        message = self._message_cls(
            destination=SERVICE, path=path, interface=interface, member=member, signature=signature, body=body
        )
        return self._run(self.bus.call(message)).body

    def burst(self, count: int) -> None:
        self._call("/bench", BENCH_IFACE, "Burst", "u", [count])

    def read(self) -> bytes:
        return bytes(self._call(CHAR_PATH, CHAR_IFACE, "ReadValue", "a{sv}", [{}])[0])

    def close(self) -> None:
        self.bus.disconnect()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2)


# -- measurements -------------------------------------------------------------------------------------


def notifications_per_second(client: Any, count: int) -> float:
    """Ask for ``count`` notifications; time from the request to the last one taken off the queue."""
    started = time.perf_counter()
    client.burst(count)
    for _ in range(count):
        value = client.notifications.get(timeout=30)
        if value != VALUE:
            raise AssertionError(f"unexpected notification value {value!r}")
    return count / (time.perf_counter() - started)


def read_round_trip_us(client: Any, count: int) -> float:
    """Median microseconds of ``count`` ReadValue calls."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        if client.read() != VALUE:
            raise AssertionError("unexpected read value")
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def measure(make: Callable[[str], Any], address: str, notifications: int, reads: int, runs: int) -> Dict[str, float]:
    client = make(address)
    try:
        client.read()  # warm up
        rates = [notifications_per_second(client, notifications) for _ in range(runs)]
        return {
            "notifications_per_s": round(max(rates)),
            "read_round_trip_us": round(read_round_trip_us(client, reads), 1),
        }
    finally:
        client.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--notifications", type=int, default=20000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    with tempfile.TemporaryDirectory(prefix="pygatt-bench-bus-") as directory:
        address, bus_pid = start_bus(directory)
        service = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", address], stdout=subprocess.PIPE, text=True
        )
        try:
            if service.stdout is None or service.stdout.readline().strip() != "ready":
                raise RuntimeError("the bench service did not start")
            results = {
                "jeepney (pygatt BusConnection)": measure(
                    PygattBusClient, address, args.notifications, args.reads, args.runs
                ),
                "jeepney (io.threading)": measure(JeepneyClient, address, args.notifications, args.reads, args.runs),
                "dbus-fast": measure(DbusFastClient, address, args.notifications, args.reads, args.runs),
            }
        finally:
            service.terminate()
            service.wait(5)
            os.kill(bus_pid, 15)
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        for name, numbers in results.items():
            sys.stdout.write(
                f"{name:31s} {numbers['notifications_per_s']:>8,.0f} notifications/s   "
                f"read round trip {numbers['read_round_trip_us']:>7.1f} us\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
