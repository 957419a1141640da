"""One ``gatttool -I`` process, the thread that reads it, and the commands in flight.

A :class:`GATTToolSession` owns a pexpect child and exactly one reader thread.
The reader blocks on the terminal (no polling), feeds what it reads to the pure
:class:`~pygatt.backends.gatttool.parser.OutputDecoder`, and applies each event:

* notifications go straight to ``on_notification`` (which only queues them);
* results and errors complete the command waiting for them, matched by the
  command family that prints them, oldest first;
* prompts and the GLib warning track whether the link is up, and a link that
  goes away unasked is reported once through ``on_link_lost``.

Commands are sent one at a time (gatttool answers ATT requests in order). A
caller waits on its own operation with a timeout; a command that timed out
stays in the queue as *abandoned* so its late answer is swallowed instead of
being taken for the next command's answer.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from typing import IO, Any, Callable, Deque, List, Optional, Sequence, Tuple, Union

from pygatt.backends.gatttool import parser
from pygatt.backends.gatttool.commands import Command, Family, T
from pygatt.backends.gatttool.errors import describe, error_from_line
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout, ToolError

log = logging.getLogger(__name__)

#: How long an abandoned command may still receive its late answer. gatttool
#: gives up on an ATT request after 30 s, so nothing comes later than this.
ABANDONED_LIFETIME_S = 35.0
#: After a multi-line listing (characteristics, char-desc, primary), how long the
#: output must stay quiet after a prompt before the listing counts as complete.
LISTING_SETTLE_S = 0.03
#: How much of gatttool's latest output is kept for error messages.
RECENT_OUTPUT_CHARS = 4096
#: How long ``close`` waits for ``exit`` before killing the process.
EXIT_GRACE_S = 0.5

NotificationHandler = Callable[[int, bytes, bool], None]
LinkLostHandler = Callable[[str], None]


class _Operation:
    """One command sent to gatttool and what came back for it."""

    __slots__ = (
        "kind",
        "command",
        "target",
        "results",
        "error",
        "done",
        "abandoned_at",
        "echo_seen",
        "prompt_after_result",
        "last_result_at",
    )

    def __init__(self, kind: Family, command: str, target: Optional[str]) -> None:
        self.kind = kind
        self.command = command
        self.target = target
        self.results: List[Any] = []
        self.error: Optional[BLEError] = None
        self.done = False
        self.abandoned_at: Optional[float] = None
        self.echo_seen = False
        self.prompt_after_result = False
        self.last_result_at = 0.0


def _open_logfile(logfile: Union[None, str, os.PathLike[str], IO[str]]) -> Tuple[Optional[IO[str]], bool]:
    """Return (file object, whether we opened it) for a path or an open file."""
    if logfile is None:
        return None, False
    if isinstance(logfile, (str, os.PathLike)):
        return open(logfile, "a", encoding="utf-8", errors="replace"), True
    if not hasattr(logfile, "write"):
        raise TypeError("gatttool_logfile must be a path or a file object with write()")
    return logfile, False


class GATTToolSession:
    """A running ``gatttool -I`` and the commands sent to it."""

    def __init__(
        self,
        argv: Sequence[str],
        on_notification: NotificationHandler,
        on_link_lost: LinkLostHandler,
        logfile: Union[None, str, os.PathLike[str], IO[str]] = None,
        max_read: Optional[int] = None,
        search_window_size: Optional[int] = None,
        name: str = "gatttool",
    ) -> None:
        self._argv = list(argv)
        self._on_notification = on_notification
        self._on_link_lost = on_link_lost
        self._logfile_spec = logfile
        self._max_read = max_read or 65536
        self._decoder = parser.OutputDecoder(max_pending=search_window_size or (1 << 20))
        self._name = name
        self._child: Any = None
        self._logfile: Optional[IO[str]] = None
        self._own_logfile = False
        self._reader: Optional[threading.Thread] = None
        self._cond = threading.Condition()
        self._command_lock = threading.Lock()
        self._ops: Deque[_Operation] = collections.deque()
        self._recent = ""  # the tail of gatttool's output, for error messages
        self._prompt_seen = False
        self._alive = False
        self._closing = False
        self.connected = False
        self.address: Optional[str] = None
        self.notifications_seen = 0  # every notification/indication line read, delivered or not
        self._expect_disconnect = False
        # After char-read-uuid answered, its further matches are still to come;
        # they all precede the echo of the next command (gatttool is single-threaded).
        self._absorb_extra_matches = False

    # -- life cycle -------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the gatttool process runs and its output is being read."""
        return self._alive

    @property
    def pid(self) -> Optional[int]:
        """The gatttool process id, once started."""
        return None if self._child is None else self._child.pid

    def start(self, timeout: float) -> None:
        """Spawn gatttool and wait for its first prompt."""
        try:
            import pexpect
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BLEError('The GATTTool backend needs pexpect: pip install "pygatt[GATTTOOL]"') from exc
        env = dict(os.environ, TERM="dumb", LC_ALL="C", LANG="C")
        self._logfile, self._own_logfile = _open_logfile(self._logfile_spec)
        log.debug("Starting %s", " ".join(self._argv))
        try:
            self._child = pexpect.spawn(
                self._argv[0],
                self._argv[1:],
                env=env,
                encoding="utf-8",
                codec_errors="replace",
                timeout=None,
                maxread=self._max_read,
                logfile=self._logfile,
            )
        except pexpect.ExceptionPexpect as exc:
            self._close_logfile()
            raise ToolError(
                f"Could not start {self._argv[0]!r} ({exc}). Is BlueZ installed (apt-get install bluez)?"
            ) from exc
        # pexpect sleeps 50 ms before every send by default: that alone would cap
        # us at 20 commands a second. gatttool reads its input when it is ready.
        self._child.delaybeforesend = None
        self._alive = True
        self._reader = threading.Thread(target=self._read_loop, name=f"pygatt-{self._name}-reader", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._prompt_seen and self._alive:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            started = self._prompt_seen and self._alive
        if not started:
            output = self.recent_output()
            self.close()
            raise ToolError(f"{self._argv[0]} did not start within {timeout} s; it printed: {output!r}", output)

    def close(self, timeout: float = 1.5) -> None:
        """End gatttool: ``exit``, then SIGKILL if it lingers; join the reader.

        The process is ended before its terminal is closed, so the reader wakes
        up on end-of-file instead of blocking on a closed descriptor. Always
        returns within about ``timeout`` seconds, in any state.
        """
        self._closing = True
        child = self._child
        if child is not None:
            if self._alive:
                try:
                    child.sendline("exit")
                except OSError as exc:
                    log.debug("Could not send exit: %s", exc)
            self._wait_dead(min(EXIT_GRACE_S, timeout / 2))
            if self._alive:
                log.debug("gatttool did not exit; killing pid %s", child.pid)
                try:
                    child.kill(signal.SIGKILL)
                except OSError as exc:
                    log.debug("Could not kill gatttool: %s", exc)
                self._wait_dead(timeout / 2)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(0.2)
            if reader.is_alive():
                log.warning("gatttool reader thread did not end")
        if child is not None:
            try:
                child.close(force=True)
            except Exception as exc:  # pexpect raises its own and OS errors here
                log.debug("Closing gatttool: %s", exc)
        self._fail_all(NotConnectedError("The gatttool session was closed"))
        self._close_logfile()

    def _wait_dead(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._alive:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _close_logfile(self) -> None:
        if self._own_logfile and self._logfile is not None:
            self._logfile.close()
        self._logfile = None

    # -- output ---------------------------------------------------------------------

    def recent_output(self, limit: int = 2000) -> str:
        """The last ``limit`` characters gatttool printed, colours removed."""
        with self._cond:
            text = self._recent
        return parser.ANSI_REGEX.sub("", text)[-limit:]

    def _read_loop(self) -> None:
        import pexpect

        child = self._child
        while True:
            try:
                data = child.read_nonblocking(self._max_read, timeout=None)
            except (pexpect.EOF, pexpect.TIMEOUT, OSError, ValueError):
                break
            events = self._decoder.feed(data)
            with self._cond:
                self._recent = (self._recent + data[-RECENT_OUTPUT_CHARS:])[-RECENT_OUTPUT_CHARS:]
                for event in events:
                    try:
                        self._apply(event)
                    except Exception:  # a bug here must not end the reader and strand every caller
                        log.exception("Could not apply gatttool output %r", event)
                self._cond.notify_all()
        self._on_exit()

    def _on_exit(self) -> None:
        with self._cond:
            self._alive = False
            was_connected = self.connected
            self.connected = False
            self._cond.notify_all()
        why = "gatttool exited" if self._closing else "gatttool exited unexpectedly"
        self._fail_all(NotConnectedError(f"{why}; last output: {self.recent_output(300)!r}"))
        if was_connected and not self._closing and not self._expect_disconnect:
            self._on_link_lost(why)

    def _fail_all(self, error: BLEError) -> None:
        with self._cond:
            for op in self._ops:
                if not op.done:
                    op.error = error
                    op.done = True
            self._ops.clear()
            self._cond.notify_all()

    # -- applying events (reader thread, under self._cond) ---------------------------

    def _apply(self, event: parser.Event) -> None:
        if type(event) is parser.Notification:
            self.notifications_seen += 1
            self._on_notification(event.handle, event.value, event.indication)
        elif type(event) is parser.Prompt:
            self._apply_prompt(event)
        elif type(event) is parser.ErrorLine:
            self._apply_error(event)
        elif type(event) is parser.LinkLost:
            log.info("gatttool reports the link is gone: %s", event.text)
            self._link_down("remote device disconnected")
        elif type(event) is parser.Usage:
            op = self._live_op()
            if op is not None:
                op.error = BLEError(f"{describe(op.kind.name, op.target)} was refused: {event.text}")
                self._finish(op)
        elif type(event) is parser.Other:
            op = self._live_op()
            if op is not None and op.command and event.text.endswith(op.command):
                op.echo_seen = True
                self._absorb_extra_matches = False
        else:
            self._apply_result(event)

    def _apply_prompt(self, event: parser.Prompt) -> None:
        self._prompt_seen = True
        if event.address is not None:
            self.address = event.address
        if event.connected:
            self.connected = True
        elif self.connected:
            self._link_down("the prompt shows the link is down")
        for op in list(self._ops):
            if op.done or op.abandoned_at is not None:
                continue
            if op.kind.ends_at_prompt and op.echo_seen:
                self._finish(op)
            elif op.kind.listing and op.results:
                op.prompt_after_result = True

    def _apply_error(self, event: parser.ErrorLine) -> None:
        disconnected = event.command_failed and event.message.strip() == "Disconnected"
        if disconnected and self.connected:
            self._link_down("gatttool says Disconnected")
        op = self._owner(event.operation)
        if op is None:
            log.debug("gatttool error with no command waiting: %s", event.message)
            return
        if op.kind.listing and not op.results and event.att_error == 0x0A:
            self._finish(op)  # an empty range: nothing found is an answer
            return
        op.error = error_from_line(event, op.kind.name, op.target, self.recent_output(500))
        self._finish(op)

    def _apply_result(self, event: parser.Event) -> None:
        if type(event) is parser.Connected:
            self.connected = True
        elif type(event) is parser.UUIDValue and self._absorb_extra_matches:
            log.debug("Dropping a further char-read-uuid match: %r", event)
            return
        for op in list(self._ops):
            if not op.done and isinstance(event, op.kind.results):
                op.results.append(event)
                if op.kind.listing and op.abandoned_at is None:
                    op.prompt_after_result = False
                    op.last_result_at = time.monotonic()
                else:
                    self._finish(op)
                return
        if type(event) is not parser.Other:
            log.debug("gatttool output with no command waiting: %r", event)

    def _owner(self, family: Optional[str]) -> Optional[_Operation]:
        """The operation an error line belongs to: the oldest of its family, or the live one."""
        if family is not None:
            for op in self._ops:
                if not op.done and op.kind.name == family:
                    return op
        return self._live_op()

    def _live_op(self) -> Optional[_Operation]:
        for op in reversed(self._ops):
            if not op.done and op.abandoned_at is None:
                return op
        return None

    def _finish(self, op: _Operation) -> None:
        op.done = True
        if op.abandoned_at is not None:
            log.debug("Discarding the late answer to %r", op.command)
        elif op.kind.name == "char-read-uuid":
            self._absorb_extra_matches = True
        try:
            self._ops.remove(op)
        except ValueError:
            pass

    def _link_down(self, why: str) -> None:
        """The link went away (seen from the reader thread)."""
        was_connected = self.connected
        self.connected = False
        for op in list(self._ops):
            if op.kind.name != "disconnect" and not op.done:
                op.error = NotConnectedError(f"{describe(op.kind.name, op.target)}: {why}")
                op.done = True
        self._ops = collections.deque(op for op in self._ops if not op.done)
        if was_connected and not self._expect_disconnect and not self._closing:
            self._on_link_lost(why)

    # -- commands -------------------------------------------------------------------

    def send(self, command: str) -> None:
        """Send one raw line to gatttool. The line must not contain a line break."""
        if "\n" in command or "\r" in command or "\0" in command:
            raise ValueError(f"refusing to send a command with a line break: {command!r}")
        if not self._alive:
            raise NotConnectedError("gatttool is not running")
        log.debug("gatttool <- %s", command)
        try:
            self._child.sendline(command)
        except OSError as exc:
            raise NotConnectedError(f"Could not write to gatttool: {exc}") from exc

    def run(self, command: Command[T], timeout: float) -> T:
        """Send ``command`` and wait for the result events of its family.

        Args:
            command: what to send and how to read the answer.
            timeout: seconds to wait for the answer.

        Returns:
            The command's result (a value, a listing, an MTU, or None).

        Raises:
            BLEError: the error gatttool printed (a GATTError subclass for ATT errors).
            NotConnectedError: the link or the process went away.
            NotificationTimeout: no answer within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        if not self._command_lock.acquire(timeout=timeout):
            raise NotificationTimeout(
                f"{command.describe()}: another command kept gatttool busy for {timeout} s",
                self.recent_output(),
            )
        try:
            op = _Operation(command.family, command.line, command.target)
            with self._cond:
                self._drop_expired()
                self._ops.append(op)
            try:
                self.send(command.line)
            except BLEError:
                with self._cond:
                    self._finish(op)
                raise
            return command.result(self._wait(op, deadline, timeout))
        finally:
            self._command_lock.release()

    def _wait(self, op: _Operation, deadline: float, timeout: float) -> List[Any]:
        with self._cond:
            while True:
                if op.done:
                    break
                now = time.monotonic()
                if op.kind.listing and op.prompt_after_result and now - op.last_result_at >= LISTING_SETTLE_S:
                    self._finish(op)
                    break
                if now >= deadline:
                    if op.kind.listing and op.results:
                        log.debug("%s: listing ended by the timeout", op.command)
                        self._finish(op)
                        break
                    op.abandoned_at = now
                    raise NotificationTimeout(
                        f"Timed out after {timeout} s waiting for gatttool to answer "
                        f"{describe(op.kind.name, op.target)!r}",
                        self.recent_output(),
                    )
                wait = deadline - now
                if op.kind.listing and op.prompt_after_result:
                    wait = min(wait, LISTING_SETTLE_S)
                self._cond.wait(wait)
        if op.error is not None:
            raise op.error
        return op.results

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for op in list(self._ops):
            if op.abandoned_at is not None and now - op.abandoned_at > ABANDONED_LIFETIME_S:
                self._ops.remove(op)

    # -- connection helpers ----------------------------------------------------------

    def expect_disconnect(self, expected: bool) -> None:
        """Mark a coming disconnect as asked for (no ``on_link_lost`` for it)."""
        with self._cond:
            self._expect_disconnect = expected
            if not expected:
                return
            # Abandoned commands will never be answered on a link we close.
            self._ops = collections.deque(op for op in self._ops if op.abandoned_at is None)

    def connection_reset(self) -> None:
        """Forget every abandoned command (a new link starts with a clean slate)."""
        with self._cond:
            self._ops = collections.deque(op for op in self._ops if not op.done and op.abandoned_at is None)


__all__ = ["GATTToolSession"]
