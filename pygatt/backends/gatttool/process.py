"""``GatttoolProcess``: one ``gatttool -I`` on a pseudo-terminal, and the one thread that reads it.

The process is started with :func:`spawn_on_pty`: a pty opened here and
:class:`subprocess.Popen` -- no ``fork()`` of this (threaded) Python process,
so Python 3.12+ has nothing to warn about -- wrapped in pexpect's ``fdspawn``
for sending. The pty is 4096 columns wide, so readline echoes every command
line whole (at 80 columns it would scroll a long line and echo ``<`` + its
tail). The reader thread blocks in ``os.read`` on the terminal (no polling while
it waits), decodes UTF-8 incrementally and hands each chunk of text to
``on_output``; it calls ``on_exit`` once when the process's output ends.

A pty hands over at most about 4 KiB per read. When a read comes back that
large, gatttool is printing faster than it is read (a flood of notifications,
a long listing), so the reader takes whatever else the terminal already holds
(a poll with no wait between reads, up to ``max_read`` bytes) before handing
the text on. In the benchmark's flood of 20-byte values a chunk then holds
about 60 KB instead of 4 KiB, so decoding and the hand-off to the callback
thread happen once per 60 KB, and the library spends about 40 % less CPU per
notification. A small read (a command's echo or answer) is handed on at once,
with no poll.

Tests replace the spawn function (``spawn=``, or by patching
:func:`spawn_on_pty`) with a fake child that has the same few methods (:class:`Child`).
"""

from __future__ import annotations

import codecs
import fcntl
import logging
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import threading
from typing import IO, Callable, Dict, List, Optional, Sequence

from pygatt.exceptions import ToolError

log = logging.getLogger(__name__)

#: The pty's width: wider than the longest command line pygatt sends (a 512-byte write is ~1,050 characters).
PTY_COLUMNS = 4096
PTY_ROWS = 24
#: A read at least this large means more output may already be waiting: the reader takes it too (see above).
GATHER_FROM = 2048


class Child:
    """What the session needs of a running gatttool (the real one, or a test's fake)."""

    pid: Optional[int]

    def read(self, size: int) -> str:  # pragma: no cover - interface
        """Block until output is available; return it ('' at the end of output)."""
        raise NotImplementedError

    def sendline(self, line: str) -> None:  # pragma: no cover - interface
        """Write ``line`` and a newline to gatttool's input."""
        raise NotImplementedError

    def kill(self) -> None:  # pragma: no cover - interface
        """SIGKILL the process."""
        raise NotImplementedError

    def wait(self, timeout: float) -> bool:  # pragma: no cover - interface
        """Wait for the process to end; True when it did."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        """Release the terminal and reap the process."""
        raise NotImplementedError


class PtyChild(Child):
    """gatttool running on a pty opened here.

    Args:
        process: the started process.
        master: the pty's master descriptor (owned from now on).
        logfile: receives everything read and sent, or None.
    """

    def __init__(self, process: subprocess.Popen[bytes], master: int, logfile: Optional[IO[str]]) -> None:
        import pexpect.fdpexpect

        self._process = process
        self._master = master
        self.pid = process.pid
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._logfile = logfile
        self._write_lock = threading.Lock()
        # pexpect drives the input side; reading is a plain blocking os.read (see read()).
        self._pexpect = pexpect.fdpexpect.fdspawn(master, encoding="utf-8", codec_errors="replace", timeout=None)
        self._pexpect.delaybeforesend = None
        self._closed = False
        self._waiting = select.poll()  # is more output already there? (no wait: see the module's docstring)
        self._waiting.register(master, select.POLLIN)

    def read(self, size: int) -> str:
        """Block in ``os.read`` until output arrives, take what else is already there (up to ``size``
        bytes in all, see the module's docstring); '' once gatttool's output has ended."""
        while True:
            try:
                data = os.read(self._master, size)
            except OSError:  # EIO: the other side of the pty is closed
                data = b""
            if len(data) >= GATHER_FROM:
                data = self._gather(data, size)
            if not data:
                tail = self._decoder.decode(b"", final=True)
                return tail
            text = self._decoder.decode(data)
            if text:
                if self._logfile is not None:
                    self._log(text)
                return text

    def _gather(self, data: bytes, size: int) -> bytes:
        """``data`` and whatever output the terminal already holds, up to ``size`` bytes in all."""
        pieces = [data]
        held = len(data)
        while held < size and self._waiting.poll(0):
            try:
                more = os.read(self._master, size - held)
            except OSError:  # the other side closed: the next read reports the end
                break
            if not more:
                break
            pieces.append(more)
            held += len(more)
        return b"".join(pieces) if len(pieces) > 1 else data

    def sendline(self, line: str) -> None:
        """Write one line to gatttool."""
        with self._write_lock:
            self._pexpect.send(line + "\n")
        if self._logfile is not None:
            self._log(line + "\n")

    def _log(self, text: str) -> None:
        try:
            self._logfile.write(text)  # type: ignore[union-attr]
            self._logfile.flush()  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:
            log.debug("Could not write the gatttool log: %s", exc)

    def kill(self) -> None:
        """SIGKILL the program."""
        self.send_signal(signal.SIGKILL)

    def send_signal(self, signum: int) -> None:
        """Send a signal to the program (nothing when it has ended)."""
        try:
            self._process.send_signal(signum)
        except OSError as exc:
            log.debug("Could not signal pid %s: %s", self.pid, exc)

    def fileno(self) -> int:
        """The pty's master descriptor, for ``select``."""
        return self._master

    @property
    def returncode(self) -> Optional[int]:
        """The exit status (negative: the signal), or None while the program runs."""
        return self._process.poll()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for gatttool to end."""
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        """Close the terminal and reap gatttool (killing it if it still runs)."""
        if self._closed:
            return
        self._closed = True
        if self._process.poll() is None:
            self.kill()
            self.wait(1.0)
        try:
            os.close(self._master)
        except OSError as exc:
            log.debug("Closing the pty: %s", exc)


def spawn_on_pty(argv: Sequence[str], env: Dict[str, str], logfile: Optional[IO[str]]) -> PtyChild:
    """Start ``argv`` on a new pty, without forking this process.

    Args:
        argv: the program and its arguments.
        env: its environment.
        logfile: receives everything read and sent, or None.

    Returns:
        The running child.

    Raises:
        ToolError: the program cannot be run.
    """
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLUMNS, 0, 0))
        process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        os.close(master)
        raise ToolError(f"Could not start {argv[0]!r} ({exc}). Is BlueZ installed (apt-get install bluez)?") from exc
    finally:
        os.close(slave)
    return PtyChild(process, master, logfile)


Spawn = Callable[[Sequence[str], Dict[str, str], Optional[IO[str]]], Child]


class GatttoolProcess:
    """A running gatttool and its reader thread.

    Args:
        argv: the command line.
        on_output: called on the reader thread with each chunk of output text.
        on_exit: called once on the reader thread when the output ends.
        logfile: receives gatttool's raw input and output, or None.
        max_read: the largest chunk read at once.
        spawn: starts the program (tests pass a fake); default :func:`spawn_on_pty`.
        name: a name for the reader thread.
    """

    def __init__(
        self,
        argv: Sequence[str],
        on_output: Callable[[str], None],
        on_exit: Callable[[], None],
        logfile: Optional[IO[str]] = None,
        max_read: int = 65536,
        spawn: Optional[Spawn] = None,
        name: str = "gatttool",
    ) -> None:
        self._argv: List[str] = list(argv)
        self._on_output = on_output
        self._on_exit = on_exit
        self._logfile = logfile
        self._max_read = max_read
        self._spawn = spawn
        self._name = name
        self._child: Optional[Child] = None
        self._reader: Optional[threading.Thread] = None

    @property
    def pid(self) -> Optional[int]:
        """The process id, once started."""
        return None if self._child is None else self._child.pid

    def start(self) -> None:
        """Spawn gatttool and start reading it.

        Raises:
            ToolError: gatttool cannot be run.
        """
        env = dict(os.environ, TERM="dumb", LC_ALL="C", LANG="C")
        spawn = self._spawn or spawn_on_pty  # looked up now, so tests may patch it
        log.debug("Starting %s", " ".join(self._argv))
        self._child = spawn(self._argv, env, self._logfile)
        self._reader = threading.Thread(target=self._read_loop, name=f"pygatt-{self._name}-reader", daemon=True)
        self._reader.start()

    def send(self, line: str) -> None:
        """Write one line (no line break inside) to gatttool.

        Raises:
            OSError: the terminal is gone.
        """
        assert self._child is not None
        self._child.sendline(line)

    def kill(self) -> None:
        """SIGKILL gatttool."""
        if self._child is not None:
            self._child.kill()

    def wait(self, timeout: float) -> bool:
        """Wait for gatttool to end; True when it did."""
        return True if self._child is None else self._child.wait(timeout)

    def close(self, join_timeout: float = 0.5) -> None:
        """Release the terminal, reap the process and join the reader (call after gatttool ended)."""
        child = self._child
        if child is not None:
            child.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(join_timeout)
            if reader.is_alive():
                log.warning("gatttool reader thread did not end")

    def _read_loop(self) -> None:
        child = self._child
        assert child is not None
        size = self._max_read
        on_output = self._on_output
        try:
            while True:
                data = child.read(size)
                if not data:
                    break
                on_output(data)
        except Exception:  # a bug in a handler must not strand every caller without an exit
            log.exception("The gatttool reader stopped")
        finally:
            self._on_exit()
