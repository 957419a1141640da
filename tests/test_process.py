"""The gatttool process layer on a real pty: width, no fork, reading, ending."""

from __future__ import annotations

import os
import threading
import time

from pygatt.backends.gatttool.process import PTY_COLUMNS, GatttoolProcess, spawn_on_pty


def read_all(child, deadline_s: float = 5.0) -> str:
    text = ""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        chunk = child.read(4096)
        if not chunk:
            break
        text += chunk
    return text


def test_the_pty_is_wide_enough_for_a_512_byte_write():
    child = spawn_on_pty(["stty", "size"], dict(os.environ), None)
    try:
        assert read_all(child).split() == ["24", str(PTY_COLUMNS)]
        assert child.wait(5)
    finally:
        child.close()
    assert PTY_COLUMNS > len("char-write-req 0xffff ") + 2 * 512 + len("[AA:BB:CC:DD:EE:FF][LE]> ")


def test_sendline_reaches_the_program_and_its_output_comes_back():
    child = spawn_on_pty(["sh", "-c", "stty -echo; read line; echo got:$line"], dict(os.environ), None)
    try:
        time.sleep(0.2)  # let stty run before the line arrives
        child.sendline("hello")
        assert "got:hello" in read_all(child)
    finally:
        child.close()


def test_the_reader_thread_hands_over_output_and_reports_the_end_once():
    chunks = []
    ended = threading.Event()
    calls = []

    def on_exit() -> None:
        calls.append(1)
        ended.set()

    process = GatttoolProcess(["sh", "-c", "echo one; echo two"], chunks.append, on_exit)
    process.start()
    assert ended.wait(5)
    process.close()
    assert "one" in "".join(chunks) and "two" in "".join(chunks)
    assert calls == [1]


def test_a_process_that_ignores_exit_is_killed_and_reaped():
    process = GatttoolProcess(["sh", "-c", "trap '' TERM INT; sleep 30"], lambda text: None, lambda: None)
    process.start()
    pid = process.pid
    assert not process.wait(0.1)
    process.kill()
    assert process.wait(5)
    process.close()
    assert pid is not None
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def _child_that_printed(tmp_path, size: int, then: str = "sleep 10"):
    """A child that printed ``size`` characters (no line breaks) and then runs ``then`` (by default it
    is still running), with all of it already in the pty: it touches a file once its output is
    written. (A pty nobody reads holds about 12 KB here before its writer blocks.)"""
    done = tmp_path / "printed"
    script = f"head -c {size} /dev/zero | tr '\\0' x; touch {done}; {then}"
    child = spawn_on_pty(["sh", "-c", script], dict(os.environ), None)
    deadline = time.monotonic() + 10
    while not done.exists():
        assert time.monotonic() < deadline, "the child did not print in time"
        time.sleep(0.02)
    return child


def test_a_large_read_takes_what_else_the_pty_already_holds(tmp_path):
    """A pty hands over at most ~4 KiB per read; after one that large, the reader gathers the rest."""
    child = _child_that_printed(tmp_path, 9_000)
    try:
        assert child.read(65536) == "x" * 9_000
    finally:
        child.close()


def test_gathering_stops_at_the_size_asked_for(tmp_path):
    child = _child_that_printed(tmp_path, 9_000)
    try:
        first = child.read(6000)
        assert first == "x" * len(first) and 4096 < len(first) <= 6000
        assert first + read_exactly(child, 9_000 - len(first)) == "x" * 9_000
    finally:
        child.close()


def test_gathering_up_to_the_end_of_the_output_keeps_it_and_the_end_is_reported_next(tmp_path):
    """The child printed and exited: gathering reads until the pty reports its other side closed
    (EIO), keeps what it gathered, and the next read reports the end."""
    child = _child_that_printed(tmp_path, 9_000, then="exit 0")
    try:
        assert child.wait(5)
        assert child.read(65536) == "x" * 9_000
        assert child.read(65536) == ""
    finally:
        child.close()


def read_exactly(child, count: int, deadline_s: float = 5.0) -> str:
    text = ""
    deadline = time.monotonic() + deadline_s
    while len(text) < count and time.monotonic() < deadline:
        text += child.read(65536)
    return text
