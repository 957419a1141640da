"""The ``pygatt`` command line: in-process through ``main()``, as a real
``python -m pygatt`` subprocess against the simulator, and against the real
BlueZ programs on a machine without an adapter.

Expected values come from the shipped example world, not from the CLI.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import pygatt
import pygatt.cli.app
import pygatt.cli.arguments
from pygatt.backends import GATTToolBackend
from pygatt.cli import ExitStatus, main
from pygatt.cli.status import status_of
from pygatt.exceptions import (
    BLEError,
    GATTError,
    NotConnectedError,
    NotificationTimeout,
    PermissionDeniedError,
    ReadNotPermittedError,
    ToolError,
)
from pygatt.testing import example_world_path
from tests.cli_helpers import run
from tests.helpers import wait_for

# without --simulate the command runs the real BlueZ programs
pytestmark = pytest.mark.usefixtures("no_simulation_from_the_environment")

REPO = Path(__file__).resolve().parents[1]
WORLD: Dict[str, Any] = json.loads(example_world_path("heart-rate").read_text())
HR_DEVICE = next(p for p in WORLD["peripherals"] if p["name"] == "Pulse HR")
HR = HR_DEVICE["address"]
NAMELESS = next(p for p in WORLD["peripherals"] if p["name"] is None)


def characteristic(short: str) -> Dict[str, Any]:
    """The example world's description of a characteristic of the Pulse HR."""
    return next(c for s in HR_DEVICE["services"] for c in s["characteristics"] if c["uuid"] == short)


def full_uuid(short: str) -> str:
    return f"0000{short}-0000-1000-8000-00805f9b34fb"


BATTERY = characteristic("2a19")["value"]
NAME = bytes.fromhex(characteristic("2a00")["value"])
HEART_RATES: List[str] = characteristic("2a37")["notify"]["values"]
NOTIFY_COUNT: int = characteristic("2a37")["notify"]["count"]
CHARACTERISTIC_COUNT = sum(len(s["characteristics"]) for s in HR_DEVICE["services"])


def run_process(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m pygatt ARGV`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "pygatt", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=_child_env(),
    )


def _child_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYGATT_SIMULATE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def layout() -> Dict[str, Dict[str, Any]]:
    """The Pulse HR's characteristics as ``discover --json`` reports them, by 16-bit UUID."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--simulate", "--json", "discover", HR]) == 0
    return {c["uuid"][4:8]: c for c in json.loads(out.getvalue())["characteristics"]}


def processes_mentioning(text: str) -> List[str]:
    """Command lines of running processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(w.decode("utf-8", "replace") for w in words)
        if text in line:
            found.append(line)
    return found


# -- scan ------------------------------------------------------------------------------


def test_scan_lists_named_and_nameless_devices(capsys):
    status, out, err = run(capsys, "--simulate", "scan", "--timeout", "0.5")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["address", "name"]
    assert [line.split(None, 1) for line in lines[1:]] == [[HR, "Pulse HR"], [NAMELESS["address"], "(unknown)"]]


def test_scan_json_is_one_document(capsys):
    status, out, _ = run(capsys, "--simulate", "--json", "scan", "--timeout", "0.5")
    document = json.loads(out)
    names = {d["address"]: d["name"] for d in document["devices"]}
    assert status == 0 and document["adapter"] == "hci0"
    assert names == {HR: "Pulse HR", NAMELESS["address"]: None}


def test_scan_with_btmgmt_shows_rssi(capsys):
    status, out, _ = run(capsys, "scan", "--tool", "btmgmt", "--simulate", "--timeout", "0.5")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert status == 0 and out.splitlines()[0].split() == ["address", "name", "rssi"]
    assert rows[HR].endswith(f"{HR_DEVICE['rssi']} dBm") and rows[NAMELESS["address"]].endswith(
        f"{NAMELESS['rssi']} dBm"
    )


# -- discover --------------------------------------------------------------------------


def test_discover_table_names_handles_and_descriptors(capsys, layout):
    status, out, _ = run(capsys, "--simulate", "discover", HR)
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["handle", "value", "uuid", "name", "descriptors"]
    assert len(lines) == 1 + CHARACTERISTIC_COUNT
    rows = {line.split()[2]: line for line in lines[1:]}
    heart, battery = layout["2a37"], layout["2a19"]
    assert re.fullmatch(
        rf"0x{heart['handle']:04x}  0x{heart['value_handle']:04x}  2a37  Heart Rate Measurement +"
        rf"0x{heart['value_handle'] + 1:04x} 2902 CCCD",
        rows["2a37"],
    )
    assert rows["2a19"].split("  ")[:3] == [f"0x{battery['handle']:04x}", f"0x{battery['value_handle']:04x}", "2a19"]
    assert "Battery Level" in rows["2a19"] and "2902 CCCD" in rows["2a19"] and "2901 User Description" in rows["2a19"]
    # the columns line up: every row's uuid starts where the header's does
    start = lines[0].index("uuid")
    assert all(line[start : start + 4] in rows for line in lines[1:])


def test_discover_json(layout):
    assert set(layout) == {c["uuid"] for s in HR_DEVICE["services"] for c in s["characteristics"]}
    battery = layout["2a19"]
    assert battery["name"] == "Battery Level" and battery["handle"] == battery["value_handle"] - 1
    assert [d["uuid"] for d in battery["descriptors"]] == [full_uuid("2902"), full_uuid("2901")]
    assert layout["2a38"]["descriptors"] == [] and layout["2a37"]["name"] == "Heart Rate Measurement"


# -- read ------------------------------------------------------------------------------


def test_read_battery_level_by_uuid(capsys):
    status, out, err = run(capsys, "--simulate", "read", HR, "2a19")
    assert (status, err) == (0, "")
    assert out == f"{BATTERY}  ({int(BATTERY, 16)})\n"


def test_read_by_handle_hex_and_decimal(capsys, layout):
    handle = layout["2a00"]["value_handle"]
    expected = f"{NAME.hex(' ')}  {json.dumps(NAME.decode())}\n"
    assert run(capsys, "--simulate", "read", HR, f"0x{handle:04x}")[:2] == (0, expected)
    assert run(capsys, "--simulate", "read", HR, str(handle))[:2] == (0, expected)


def test_read_json_and_128_bit_uuid(capsys, layout):
    status, out, _ = run(capsys, "--simulate", "--json", "read", HR, full_uuid("2a19").upper())
    assert status == 0
    assert json.loads(out) == {
        "address": HR,
        "handle": layout["2a19"]["value_handle"],
        "uuid": full_uuid("2a19"),
        "value": BATTERY,
    }


def test_options_may_follow_the_command(capsys):
    status, out, _ = run(capsys, "read", HR, "2a19", "--json", "--simulate")
    assert status == 0 and json.loads(out)["value"] == BATTERY


def test_read_not_permitted_is_a_ble_error(capsys, layout):
    status, out, err = run(capsys, "--simulate", "read", HR, "2a25")
    assert (status, out) == (1, "")
    assert err == (
        f"pygatt: error: char-read-hnd 0x{layout['2a25']['value_handle']:04x} failed: "
        "Characteristic value/descriptor read failed: Attribute can't be read\n"
    )


def test_read_unknown_characteristic_is_a_ble_error(capsys):
    status, _, err = run(capsys, "--simulate", "read", HR, "2a6e")
    assert status == 1 and err == f"pygatt: error: {HR} has no characteristic 2a6e\n"


def test_connection_refused_exits_3(capsys):
    # the nameless device has a random address; asked for as public it refuses
    status, _, err = run(capsys, "--simulate", "read", NAMELESS["address"], "2a19")
    assert status == 3 and "Connection refused (111)" in err and err.startswith("pygatt: error: connect ")
    status, out, _ = run(capsys, "--simulate", "--random", "read", NAMELESS["address"], "2a19")
    value = NAMELESS["services"][0]["characteristics"][0]["value"]
    assert status == 0 and out.split()[0] == value


# -- write -----------------------------------------------------------------------------


def test_write_with_and_without_response(capsys, tmp_path, layout):
    log = tmp_path / "gatttool.log"
    control = layout["2a39"]["value_handle"]
    cccd = layout["2a19"]["value_handle"] + 1
    status, out, _ = run(capsys, "--simulate", "--log-file", str(log), "write", HR, "2a39", "01")
    assert (status, out) == (0, f"wrote 1 byte to 0x{control:04x} (with response)\n")
    status, out, _ = run(
        capsys, "--simulate", "--log-file", str(log), "write", HR, f"0x{cccd:04x}", "01:00", "--no-response"
    )
    assert (status, out) == (0, f"wrote 2 bytes to 0x{cccd:04x} (without response)\n")
    sent = log.read_text()
    assert f"char-write-req 0x{control:04x} 01\n" in sent.replace("\r", "")
    assert f"char-write-cmd 0x{cccd:04x} 0100\n" in sent.replace("\r", "")


def test_write_value_forms_and_json(capsys, layout):
    status, out, _ = run(capsys, "--simulate", "--json", "write", HR, "2a39", "0x01 ")
    assert status == 0 and json.loads(out) == {
        "address": HR,
        "handle": layout["2a39"]["value_handle"],
        "uuid": full_uuid("2a39"),
        "value": "01",
        "response": True,
    }
    status, out, _ = run(capsys, "--simulate", "--json", "write", HR, "2a39", "01 00", "--no-response")
    assert status == 0 and json.loads(out)["value"] == "0100" and json.loads(out)["response"] is False


def test_write_refused_by_the_device_exits_1(capsys):
    status, _, err = run(capsys, "--simulate", "write", HR, "2a19", "01")
    assert status == 1 and err.endswith("Attribute can't be written\n")


def test_write_without_response_longer_than_a_packet_is_refused_before_sending(capsys):
    status, _, err = run(capsys, "--simulate", "write", HR, "2a39", "00" * 21, "--no-response")
    assert status == 2 and "more than the 20" in err


# -- subscribe -------------------------------------------------------------------------


def test_subscribe_count_prints_each_notification(capsys, layout):
    status, out, err = run(capsys, "--simulate", "subscribe", HR, "2a37", "--count", "3")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 3
    for line, expected in zip(lines, HEART_RATES):
        clock, handle, value = line.split("  ")
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock)
        assert (handle, value) == (f"0x{layout['2a37']['value_handle']:04x}", bytes.fromhex(expected).hex(" "))


def test_subscribe_json_lines_with_indications(capsys, layout):
    before = time.time()
    status, out, _ = run(capsys, "--simulate", "--json", "subscribe", HR, "2a37", "--count", "2", "--indicate")
    values = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [v["value"] for v in values] == HEART_RATES[:2]
    assert all(v["kind"] == "indication" and v["uuid"] == full_uuid("2a37") for v in values)
    assert all(v["handle"] == layout["2a37"]["value_handle"] for v in values)
    assert before <= values[0]["time"] <= values[1]["time"] <= time.time()


def test_subscribe_by_handle(capsys, layout):
    handle = layout["2a37"]["value_handle"]
    status, out, _ = run(capsys, "--simulate", "--json", "subscribe", HR, hex(handle), "--count", "1")
    assert status == 0 and json.loads(out)["uuid"] == full_uuid("2a37")


def test_subscribe_timeout_before_count_exits_4(capsys):
    started = time.monotonic()
    status, out, err = run(capsys, "--simulate", "subscribe", HR, "2a37", "--count", "50", "--timeout", "2")
    assert status == 4 and len(out.splitlines()) == NOTIFY_COUNT
    assert err == f"pygatt: error: {NOTIFY_COUNT} of 50 notifications arrived within 2 s\n"
    assert time.monotonic() - started < 10


def test_subscribe_timeout_without_count_is_the_listening_time(capsys):
    started = time.monotonic()
    status, out, _ = run(capsys, "--simulate", "subscribe", HR, "2a37", "--timeout", "0.7")
    assert status == 0 and 1 <= len(out.splitlines()) < NOTIFY_COUNT
    assert 0.7 <= time.monotonic() - started < 8


def world_file(tmp_path: Path, change: Callable[[Dict[str, Any]], None]) -> str:
    """A copy of the example world, changed by ``change``; returns its path."""
    world = json.loads(json.dumps(WORLD))
    change(world)
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    return str(path)


def test_subscribe_link_lost_exits_3(capsys, tmp_path):
    def drop_after_a_second(world: Dict[str, Any]) -> None:
        world["peripherals"][0]["disconnect_after_s"] = 1.0
        characteristic_2a37 = world["peripherals"][0]["services"][1]["characteristics"][0]
        characteristic_2a37["notify"]["count"] = 0  # until disconnected

    world = world_file(tmp_path, drop_after_a_second)
    status, out, err = run(capsys, f"--simulate={world}", "subscribe", HR, "2a37", "--count", "1000")
    shown = len(out.splitlines())
    assert status == 3 and 1 <= shown < 1000
    # the library's warning gives the reason, the error line the outcome
    assert err.splitlines() == [
        f"pygatt: warning: Lost the connection to {HR}: remote device disconnected",
        f"pygatt: error: lost the connection to {HR} after {shown} notifications",
    ]


def test_scan_permission_problem_exits_5(capsys, tmp_path):
    world = world_file(tmp_path, lambda w: w["adapter"].update(scan_error="permission"))
    status, out, err = run(capsys, f"--simulate={world}", "scan", "--timeout", "5")
    assert (status, out) == (5, "") and "lacks permissions" in err and err.count("\n") == 1


# -- usage errors and exit statuses ----------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "a command is needed"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["read", "11:22:33:44:55", "2a19"], "must look like 'AA:BB:CC:DD:EE:FF'"),
        (["read", HR + "\nexit", "2a19"], "must look like"),
        (["read", HR, "zz"], "is neither a handle"),
        (["read", HR, "0x0000"], "is not a handle"),
        (["read", HR, "70000"], "is not a handle"),
        (["read", HR], "the following arguments are required: UUID|HANDLE"),
        (["write", HR, "2a39", "0g"], "is not a value in hex"),
        (["write", HR, "2a39", "012"], "is not a value in hex"),
        (["write", HR, "2a39", ""], "must not be empty"),
        (["write", HR, "2a39", "00" * 513], "more than the 512 allowed"),
        (["--hci", "usb0", "scan"], "must look like 'hci0'"),
        (["--timeout", "0", "scan"], "greater than 0"),
        (["--timeout", "nan", "scan"], "greater than 0"),
        (["subscribe", HR, "2a37", "--count", "0"], "at least 1"),
        (["--simulate=no-such-world.json", "scan"], "no world file 'no-such-world.json'"),
        (["--sim", "scan"], "unrecognized arguments: --sim"),
        (["--log-file", "/nonexistent/dir/gatttool.log", "scan"], "cannot write to '/nonexistent/dir/gatttool.log'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, words):
    simulate = [] if any(arg.startswith("--simulate") for arg in argv) else ["--simulate"]
    status, out, err = run(capsys, *simulate, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("pygatt: error: ") and err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("given_by", ["--simulate", "PYGATT_SIMULATE"])
@pytest.mark.parametrize("backend", ["gatttool", "bgapi", pytest.param("dbus", marks=pytest.mark.dbus)])
def test_a_bad_world_is_a_usage_error_on_every_backend(capsys, monkeypatch, tmp_path, backend, given_by):
    """A world that is missing or is not a world is exit status 2 (as docs/cli.md says) with every
    backend, given by ``--simulate`` or by ``PYGATT_SIMULATE``, for a command that needs no
    connection as for one that does; the error line names where the world came from."""
    not_a_world = tmp_path / "not-a-world.json"
    not_a_world.write_text("this is not JSON")
    for world in ("no-such-world.json", str(not_a_world)):
        for command in (["scan", "--timeout", "0.5"], ["read", HR, "2a19"]):
            if given_by == "--simulate":
                argv = ["--backend", backend, f"--simulate={world}", *command]
            else:
                monkeypatch.setenv("PYGATT_SIMULATE", world)
                argv = ["--backend", backend, *command]
            status, out, err = run(capsys, *argv)
            assert (status, out) == (2, ""), (argv, err)
            assert err.startswith(f"pygatt: error: {given_by}: cannot use world {world!r}: "), (argv, err)
            assert err.count("\n") == 1, (argv, err)


@pytest.mark.parametrize("world", ["list.json", "directory.json"])
def test_a_world_file_of_the_wrong_shape_is_a_usage_error(capsys, tmp_path, world: str) -> None:
    """Exit status 2 for a bad world file (docs/cli.md) also when the file is JSON but not a
    world object, or is a directory: these used to end in a traceback and exit status 1."""
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "directory.json").mkdir()
    path = str(tmp_path / world)
    status, out, err = run(capsys, f"--simulate={path}", "scan", "--timeout", "0.5")
    assert (status, out) == (2, ""), err
    assert err.startswith(f"pygatt: error: --simulate: cannot use world {path!r}: ") and err.count("\n") == 1, err


def test_usage_error_nothing_is_started(capsys, monkeypatch):
    started = []
    monkeypatch.setattr(GATTToolBackend, "start", lambda self, *a, **k: started.append(self))
    assert run(capsys, "--simulate", "write", HR, "2a39", "zz")[0] == 2
    assert started == []


def test_help_documents_the_exit_statuses(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "exit status:" in out
    for code in ("0", "1", "2", "3", "4", "5", "130"):
        assert re.search(rf"^  {code} ", out, re.M), code
    status, out, _ = run(capsys, "read", "--help")
    assert status == 0 and "UUID|HANDLE" in out and "exit status:" in out


@pytest.mark.parametrize(
    "error, status",
    [
        (BLEError("x"), ExitStatus.BLE_ERROR),
        (ReadNotPermittedError("x"), ExitStatus.BLE_ERROR),
        (GATTError("x"), ExitStatus.BLE_ERROR),
        (NotConnectedError("x"), ExitStatus.NOT_CONNECTED),
        (NotificationTimeout("x"), ExitStatus.TIMEOUT),
        (ToolError("x"), ExitStatus.TOOL),
        (PermissionDeniedError("x"), ExitStatus.TOOL),
        (ValueError("x"), ExitStatus.USAGE),
    ],
)
def test_exception_to_exit_status(error, status):
    assert status_of(error) == status


class RecordingBackend(GATTToolBackend):
    """A real backend that counts how often it was stopped."""

    stops: List[RecordingBackend] = []

    def stop(self) -> None:
        RecordingBackend.stops.append(self)
        super().stop()


@pytest.mark.parametrize(
    "argv, status",
    [
        (["read", HR, "2a19"], 0),
        (["read", HR, "2a25"], 1),
        (["read", NAMELESS["address"], "2a19"], 3),
        (["subscribe", HR, "2a37", "--count", "9", "--timeout", "1.2"], 4),
        (["scan", "--timeout", "0.3"], 0),
    ],
)
def test_the_backend_is_always_stopped(capsys, monkeypatch, argv, status):
    RecordingBackend.stops = []
    monkeypatch.setattr(pygatt.cli.app, "GATTToolBackend", RecordingBackend)
    assert run(capsys, "--simulate", *argv)[0] == status
    assert len(RecordingBackend.stops) == 1


def test_ctrl_c_in_process_stops_the_backend_and_exits_130(capsys, monkeypatch):
    RecordingBackend.stops = []
    monkeypatch.setattr(pygatt.cli.app, "GATTToolBackend", RecordingBackend)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pygatt.cli.commands.discover", interrupt)
    status, _, err = run(capsys, "--simulate", "discover", HR)
    assert (status, err) == (130, "pygatt: interrupted\n") and len(RecordingBackend.stops) == 1


def test_library_log_is_quiet_unless_verbose(capsys):
    status, _, err = run(capsys, "--simulate", "read", HR, "2a19")
    assert status == 0 and err == ""
    status, _, err = run(capsys, "--simulate", "-v", "read", HR, "2a19")
    assert status == 0 and f"INFO pygatt.backends.gatttool.gatttool: Connecting to {HR}" in err
    assert "DEBUG" not in err
    status, _, err = run(capsys, "--simulate", "read", HR, "2a19", "-vv")
    assert status == 0 and "DEBUG" in err


@pytest.mark.parametrize(
    "before, after, verbosity",
    [
        ([], [], 0),
        (["-v"], [], 1),
        ([], ["-v"], 1),
        (["-v"], ["-v"], 2),
        (["-v"], ["--verbose"], 2),
        (["-vv"], ["-v"], 3),
        (["-v"], ["-v", "-v"], 3),
    ],
)
def test_verbose_before_and_after_the_command_add_up(before, after, verbosity):
    """Each -v counts wherever it is: ``-v read ... -v`` is ``-vv``, and one after the command
    does not replace those before it."""
    args = pygatt.cli.arguments.parse([*before, "read", HR, "2a19", *after])
    assert args.verbose == verbosity
    assert not [name for name in vars(args) if name.startswith("verbose") and name != "verbose"]


def test_verbose_before_and_after_the_command_logs_at_debug(capsys):
    status, _, err = run(capsys, "--simulate", "-v", "read", HR, "2a19", "-v")
    assert status == 0 and "DEBUG" in err


def test_demo_runs_every_command(capsys):
    status, out, _ = run(capsys, "--simulate", "demo")
    assert status == 0
    for heading in ("$ pygatt scan", f"$ pygatt discover {HR}", f"$ pygatt read {HR} 2a19"):
        assert heading in out
    assert f"{BATTERY}  ({int(BATTERY, 16)})" in out
    assert out.splitlines()[-1].endswith(bytes.fromhex(HEART_RATES[2]).hex(" "))


# -- as a real process -----------------------------------------------------------------


def test_process_scan():
    proc = run_process("--simulate", "scan", "--timeout", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert f"{HR}  Pulse HR" in proc.stdout and f"{NAMELESS['address']}  (unknown)" in proc.stdout


def test_process_read_json():
    proc = run_process("--simulate", "--json", "read", HR, "2a19")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["value"] == BATTERY


def test_process_subscribe_count_3():
    proc = run_process("--simulate", "subscribe", HR, "2a37", "--count", "3")
    assert proc.returncode == 0, proc.stderr
    assert [line.split("  ")[2] for line in proc.stdout.splitlines()] == [
        bytes.fromhex(v).hex(" ") for v in HEART_RATES[:3]
    ]


def test_process_usage_error_exits_2():
    proc = run_process("--simulate", "read", HR, "not-a-uuid")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("pygatt: error: argument UUID|HANDLE: 'not-a-uuid'") and proc.stderr.count("\n") == 1


@contextlib.contextmanager
def sigint_at_default() -> Iterator[None]:
    """SIGINT handled while a child is started, so the child starts with SIGINT at its default.

    A test run started in the background by a shell without job control (``cmd &`` in a script,
    ``nohup``) ignores SIGINT, and its children inherit that: Python then installs no Ctrl-C
    handler in them, and a SIGINT does nothing. A handled signal is reset to its default by exec.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def running(*argv: str) -> Iterator[subprocess.Popen]:
    """``python -m pygatt ARGV`` running in the background, with pipes; killed if still running at the end.

    Its SIGINT is at its default however the tests were started (:func:`sigint_at_default`), and its
    faulthandler is on: a SIGABRT makes it print every thread's stack on stderr (see :func:`ended`).
    """
    with sigint_at_default():
        proc = subprocess.Popen(
            [sys.executable, "-m", "pygatt", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env=dict(_child_env(), PYTHONFAULTHANDLER="1"),
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_child_started_while_sigint_is_ignored_still_gets_ctrl_c():
    show = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as when the suite runs in the background
    try:
        inherited = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True).stdout
        with sigint_at_default():
            given = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True).stdout
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the suite's own disposition is back
    finally:
        signal.signal(signal.SIGINT, saved)
    assert (inherited, given) == ("False\n", "True\n")


def ended(proc: subprocess.Popen, why: str, timeout: float = 15) -> Tuple[str, str]:
    """``proc.communicate()`` within ``timeout``; a process still running then fails the test with the
    stack of each of its threads (faulthandler's answer to SIGABRT), so a hang explains itself."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        state = signal_state(proc.pid)
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"pygatt did not end within {timeout} s {why}; its signal state:\n{state}its threads:\n{err}")


def signal_state(pid: int) -> str:
    """The pending, blocked, ignored and caught signal masks of a process and of each of its threads."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            status = (task / "status").read_text()
        except OSError as exc:  # the thread ended meanwhile
            lines.append(f"{task.name}: {exc}")
            continue
        masks = [line.replace("\t", " ") for line in status.splitlines() if line.startswith(("Name", "Sig", "ShdPnd"))]
        lines.append(f"{task.name}: " + ", ".join(masks))
    return "".join(line + "\n" for line in lines)


def test_a_process_that_does_not_end_fails_with_its_threads_stacks():
    hung = subprocess.Popen(
        [sys.executable, "-c", "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(_child_env(), PYTHONFAULTHANDLER="1"),
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        ended(hung, "of nothing", timeout=0.5)
    assert "did not end within 0.5 s of nothing" in str(failure.value)
    stacks = str(failure.value)
    assert "Thread 0x" in stacks and "Current thread 0x" in stacks and "threading.py" in stacks  # both threads
    assert stacks.count("SigBlk:") == 2 and "ShdPnd:" in stacks  # each thread's signal masks


@pytest.mark.parametrize(
    "signum, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_process_subscribe_ends_cleanly_on_a_signal(tmp_path, signum, status, word):
    world = tmp_path / f"world-{uuid.uuid4().hex}.json"  # a name only this test's processes carry
    shutil.copy(example_world_path("heart-rate"), world)
    with running(f"--simulate={world}", "subscribe", HR, "2a37") as proc:
        first = proc.stdout.readline()
        assert first.split("  ")[2].strip() == bytes.fromhex(HEART_RATES[0]).hex(" ")
        assert processes_mentioning(world.name), "the simulated gatttool should be running"
        proc.send_signal(signum)
        _, err = ended(proc, f"of {signal.Signals(signum).name}")
    assert proc.returncode == status, err
    assert re.fullmatch(rf"pygatt: {word} \(\d+ notifications? received\)\n", err), err
    assert wait_for(lambda: not processes_mentioning(world.name), 3), "a simulated gatttool outlived the command"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_process_scan_ended_by_a_signal_leaves_no_scanner_running(tmp_path, signum, status):
    """The scanning program runs in a session of its own (a terminal's Ctrl-C never reaches it): a
    signal to pygatt during ``scan`` stops and reaps it too, as the end of the scan does."""
    world = tmp_path / f"world-{uuid.uuid4().hex}.json"  # a name only this test's processes carry
    shutil.copy(example_world_path("heart-rate"), world)

    def scanners() -> List[str]:
        return [line for line in processes_mentioning(world.name) if "hcitool" in line]

    with running(f"--simulate={world}", "scan", "--timeout", "20") as proc:
        assert wait_for(scanners, 10), "the simulated hcitool should be running"
        time.sleep(1.5)  # well into the scan (nothing outside shows it): an orphan then keeps running
        proc.send_signal(signum)
        _, err = ended(proc, f"of {signal.Signals(signum).name}")
    assert proc.returncode == status, err
    assert wait_for(lambda: not scanners(), 3), "the scanner outlived the command"


def test_process_closed_pipe_exits_141_quietly():
    with running("--simulate", "subscribe", HR, "2a37") as proc:
        assert proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        assert proc.wait(timeout=15) == 141
        assert proc.stderr.read() == ""


# -- the real BlueZ programs, on a machine without a Bluetooth adapter -------------------

requires_bluez = pytest.mark.skipif(
    shutil.which("gatttool") is None, reason="BlueZ's gatttool is not installed (Debian package 'bluez')"
)
requires_no_adapter = pytest.mark.skipif(
    Path("/sys/class/bluetooth/hci0").exists(), reason="hci0 exists; these tests check the no-adapter errors"
)


def real_tool_output(*argv: str) -> str:
    """What a BlueZ program itself prints, stripped."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    return (proc.stdout + proc.stderr).strip()


@pytest.mark.bluez
@requires_bluez
@requires_no_adapter
def test_real_gatttool_connect_failure_exits_3_quoting_gatttool():
    proc = run_process("--no-reset", "read", "11:22:33:44:55:66", "2a19")
    assert (proc.returncode, proc.stdout) == (3, ""), proc.stderr
    words = real_tool_output("gatttool", "-i", "hci0", "-b", "11:22:33:44:55:66", "--char-read", "-a", "0x0001")
    assert words and proc.stderr == f"pygatt: error: connect 11:22:33:44:55:66 failed: {words}\n"


@pytest.mark.bluez
@requires_bluez
@requires_no_adapter
def test_real_reset_failure_is_a_warning_and_the_connect_error_decides():
    proc = run_process("read", "11:22:33:44:55:66", "2a19")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 3 and lines[-1].startswith("pygatt: error: connect 11:22:33:44:55:66 failed: ")
    assert all(line.startswith("pygatt: warning: Could not reset hci0") for line in lines[:-1])


@pytest.mark.bluez
@requires_bluez
@requires_no_adapter
def test_real_hcitool_scan_without_adapter_exits_5_quoting_hcitool():
    proc = run_process("scan", "--timeout", "2")
    assert (proc.returncode, proc.stdout) == (5, ""), proc.stderr
    assert proc.stderr.startswith("pygatt: error: scan: hcitool -i hci0 lescan exited with status 1: ")
    if shutil.which("hcitool"):
        words = real_tool_output("timeout", "5", "hcitool", "-i", "hci0", "lescan")
        assert words and words in proc.stderr


# -- the same command line on every backend --------------------------------------------------

LONG_VALUE = bytes(range(42))  # longer than one packet at the default MTU (20 bytes)
LONG_UUID = "0000feed-1234-5678-9abc-def012345678"  # a service of its own: BlueZ keeps GAP's to itself


def long_value_world(path: Path) -> Path:
    """One peripheral with a 42-byte readable and writable characteristic (LONG_UUID)."""
    world = {
        "peripherals": [
            {
                "address": "AA:BB:CC:DD:EE:FF",
                "name": "Thing",
                "services": [
                    {
                        "uuid": "0000fee0-1234-5678-9abc-def012345678",
                        "characteristics": [
                            {"uuid": LONG_UUID, "properties": ["read", "write"], "value": LONG_VALUE.hex()}
                        ],
                    }
                ],
            }
        ]
    }
    path.write_text(json.dumps(world))
    return path


@pytest.mark.parametrize(
    "backend",
    [
        "gatttool",
        "bgapi",
        pytest.param(
            "dbus",
            marks=[
                pytest.mark.dbus,
                pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon is not installed"),
            ],
        ),
    ],
)
def test_long_values_are_read_and_written_whole_on_every_backend(capsys, tmp_path, backend):
    """``read`` gives the whole value and ``write`` takes up to 512 bytes, whatever the backend (the
    BGAPI backend's plain read and write stop at one packet)."""
    world = str(long_value_world(tmp_path / "long.json"))
    common = ("--backend", backend, f"--simulate={world}", "--json")
    status, out, err = run(capsys, *common, "read", "AA:BB:CC:DD:EE:FF", LONG_UUID)
    assert status == 0, err
    assert json.loads(out)["value"] == LONG_VALUE.hex()
    status, out, err = run(capsys, *common, "write", "AA:BB:CC:DD:EE:FF", LONG_UUID, (b"\xab" * 30).hex())
    assert status == 0, err
    assert json.loads(out)["value"] == (b"\xab" * 30).hex()


def test_a_timeout_too_long_is_refused_while_parsing(capsys, monkeypatch):
    """Over the library's longest timeout: a usage error before any BlueZ program runs."""
    started = []
    monkeypatch.setattr(GATTToolBackend, "start", lambda self, *args, **kwargs: started.append(args))
    status, _, err = run(capsys, "--timeout", "2000000", "read", "C4:7C:8D:6A:3E:01", "2a19")
    assert status == 2 and "longer than 1000000 s" in err
    assert started == []


def test_a_bgapi_scan_resets_nothing(capsys, monkeypatch):
    """``scan`` leaves the dongle as it is (a reset would end its links): the backend starts without one."""
    starts = []

    def start(self, *args, **kwargs):
        starts.append(kwargs.get("reset", args[0] if args else True))
        raise pygatt.exceptions.NotConnectedError("no dongle here")

    monkeypatch.setattr(pygatt.BGAPIBackend, "start", start)
    status, _, _ = run(capsys, "--backend", "bgapi", "scan", "--timeout", "0.1")
    assert status != 0 and starts == [False]
