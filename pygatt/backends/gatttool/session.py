"""``GATTToolSession``: a gatttool process, its commands in flight, and callers waiting for them.

The session glues three pieces, each testable alone:

* :class:`~.process.GatttoolProcess` -- the process on its pty and the one reader thread;
* :class:`~.parser.OutputDecoder` -- pure: terminal output to events;
* :class:`~.tracker.CommandTracker` -- pure: events to finished commands and link state.

On the reader thread each chunk of output is decoded; its notifications go, in
order and in one call, to ``on_notifications`` (which only queues them); every
other event goes to the tracker under the session's lock (a chunk of nothing
but notifications, the common case in a flood, does not take the lock), and the caller waiting on a command is woken
only when its command completes (or a listing needs its sync marker). A lost
link is reported once through ``on_link_lost``. Commands are sent one at a time,
since gatttool answers them in order.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import IO, TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple, Union, cast

from pygatt.backends.gatttool import parser
from pygatt.backends.gatttool.errors import error_from_line
from pygatt.backends.gatttool.process import GatttoolProcess, Spawn
from pygatt.backends.gatttool.tracker import SYNC_MARKER, CommandTracker, Operation
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout, ToolError

if TYPE_CHECKING:
    from pygatt.backends.gatttool.commands import Command, T

log = logging.getLogger(__name__)

#: How much of gatttool's latest output is kept for error messages.
RECENT_OUTPUT_CHARS = 4096
#: How long ``close`` waits for ``exit`` before killing the process.
EXIT_GRACE_S = 0.5

#: A chunk's notifications, in order: single ones and runs of one handle.
Notifications = List[Union[parser.Notification, parser.NotificationRun]]
NotificationHandler = Callable[[Notifications], None]
LinkLostHandler = Callable[[str], None]
#: The decoder's events that carry notifications.
_NOTIFICATION_EVENTS = frozenset({parser.Notification, parser.NotificationRun})
#: What must never reach gatttool's readline: line breaks, NUL, Ctrl-C/D/U, TAB, ESC, DEL.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


class RecentOutput:
    """The tail of gatttool's output, for error messages: appended on the reader thread, read anywhere.

    Chunks are kept as they came and joined only when the kept text is twice the limit
    (or when read), instead of copying the whole tail for every chunk.
    """

    def __init__(self, limit: int = RECENT_OUTPUT_CHARS) -> None:
        self._limit = limit
        self._chunks: List[str] = []
        self._size = 0

    def add(self, data: str) -> None:
        """Keep ``data`` (reader thread only)."""
        self._chunks.append(data)
        self._size += len(data)
        if self._size > 2 * self._limit:
            text = "".join(self._chunks)[-self._limit :]
            self._chunks = [text]  # one assignment: a reader joining meanwhile sees the old list or this
            self._size = len(text)

    def text(self) -> str:
        """The last ``limit`` characters (any thread: joining a list is atomic under the GIL)."""
        return "".join(self._chunks)[-self._limit :]


def _open_logfile(logfile: Union[str, os.PathLike[str], IO[str], None]) -> Tuple[Optional[IO[str]], bool]:
    """Return (file object, whether we opened it) for a path or an open file."""
    if logfile is None:
        return None, False
    if isinstance(logfile, (str, os.PathLike)):
        return open(logfile, "a", encoding="utf-8", errors="replace"), True
    if not hasattr(logfile, "write"):
        raise TypeError("gatttool_logfile must be a path or a file object with write()")
    return logfile, False


class GATTToolSession:
    """A running ``gatttool -I`` and the commands sent to it.

    Args:
        argv: gatttool's command line.
        on_notifications: called on the reader thread with the notifications (and indications) of one
            chunk of output, in order; must only queue them.
        on_link_lost: called once per unasked link loss, with the reason.
        logfile: a path or text file receiving gatttool's raw input and output.
        max_read: the largest chunk read at once.
        search_window_size: the longest unfinished output line kept.
        name: a name for the reader thread.
        spawn: starts gatttool (tests pass a fake); default a pty + subprocess.
    """

    def __init__(
        self,
        argv: Sequence[str],
        on_notifications: NotificationHandler,
        on_link_lost: LinkLostHandler,
        logfile: Union[str, os.PathLike[str], IO[str], None] = None,
        max_read: Optional[int] = None,
        search_window_size: Optional[int] = None,
        name: str = "gatttool",
        spawn: Optional[Spawn] = None,
    ) -> None:
        self._argv = list(argv)
        self._on_notifications = on_notifications
        self._on_link_lost = on_link_lost
        self._logfile_spec = logfile
        self._max_read = max_read or 65536
        self._search_window_size = search_window_size
        self._spawn = spawn
        self._name = name
        self._decoder = parser.OutputDecoder(max_pending=search_window_size or (1 << 20))
        self._tracker = CommandTracker()
        self._process: Optional[GatttoolProcess] = None
        self._logfile: Optional[IO[str]] = None
        self._own_logfile = False
        # One lock guards the tracker, ``_waiting`` and the life-cycle flags; ``_cond`` waits on the same
        # lock (for the first prompt and for the process's end). A plain lock: ``with`` on it costs less
        # than on a Condition, and nothing here takes it twice.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._command_lock = threading.Lock()
        self._waiting: Optional[Operation] = None
        # The caller waiting for ``_waiting`` blocks on this lock (held while nobody woke it). Released,
        # always under ``_lock``, when its command completes, wants its end marker, or the session ends.
        # One lock serves every command: they run one at a time. Cheaper to wake than a Condition.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._recent = RecentOutput()  # the tail of gatttool's output, for error messages
        self._alive = False
        self._closing = False
        self.notifications_seen = 0  # every notification/indication line read, delivered or not

    # -- state ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the gatttool process runs and its output is being read."""
        return self._alive

    @property
    def connected(self) -> bool:
        """True while gatttool shows the link up."""
        return self._tracker.connected

    @property
    def address(self) -> Optional[str]:
        """The address in gatttool's prompt."""
        return self._tracker.address

    @property
    def pid(self) -> Optional[int]:
        """The gatttool process id, once started."""
        return None if self._process is None else self._process.pid

    def recent_output(self, limit: int = 2000) -> str:
        """The last ``limit`` characters gatttool printed, colours removed."""
        return parser.ANSI_REGEX.sub("", self._recent.text())[-limit:]

    # -- life cycle -------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Spawn gatttool and wait for its first prompt.

        Raises:
            ToolError: gatttool could not be run, or printed no prompt within ``timeout``.
        """
        self._logfile, self._own_logfile = _open_logfile(self._logfile_spec)
        self._process = GatttoolProcess(
            self._argv,
            self._on_output,
            self._on_exit,
            logfile=self._logfile,
            max_read=self._max_read,
            spawn=self._spawn,
            name=self._name,
        )
        self._alive = True
        try:
            self._process.start()
        except BaseException:
            self._alive = False
            self._close_logfile()
            raise
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._tracker.prompt_seen and self._alive:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            started = self._tracker.prompt_seen and self._alive
        if not started:
            output = self.recent_output()
            self.close()
            raise ToolError(f"{self._argv[0]} did not start within {timeout} s; it printed: {output!r}", output)

    def close(self, timeout: float = 1.5) -> None:
        """End gatttool: ``exit``, then SIGKILL if it lingers; join the reader.

        Always returns within about ``timeout`` seconds, in any state.
        """
        self._closing = True
        process = self._process
        if process is not None:
            if self._alive:
                try:
                    process.send("exit")
                except OSError as exc:
                    log.debug("Could not send exit: %s", exc)
            self._wait_dead(min(EXIT_GRACE_S, timeout / 2))
            if self._alive:
                log.debug("gatttool did not exit; killing pid %s", process.pid)
                process.kill()
                self._wait_dead(timeout / 2)
            process.close()
        with self._lock:
            self._tracker.fail_all(NotConnectedError("The gatttool session was closed"))
            self._cond.notify_all()
            self._wake_waiter()
        self._close_logfile()

    def _wait_dead(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._alive:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _close_logfile(self) -> None:
        if self._own_logfile and self._logfile is not None:
            self._logfile.close()
        self._logfile = None

    # -- reader thread ------------------------------------------------------------------

    def _on_output(self, data: str) -> None:
        self._recent.add(data)  # the reader is its only writer
        events = self._decoder.feed(data)
        kinds = _NOTIFICATION_EVENTS
        others: List[parser.Event] = [event for event in events if type(event) not in kinds]
        if len(others) < len(events):
            notifications = cast(
                "Notifications",
                [event for event in events if type(event) in kinds] if others else events,  # else: no copy
            )
            self.notifications_seen += sum(
                len(event.values) if type(event) is parser.NotificationRun else 1 for event in notifications
            )
            self._on_notifications(notifications)  # one hand-off per chunk, not per line
        if not others:
            return  # nothing for the tracker, so no lock (the common case of a flood)
        lost: Optional[str] = None
        with self._lock:
            tracker = self._tracker
            starting = not tracker.prompt_seen
            for event in others:
                try:
                    why = tracker.apply(event)
                except Exception:  # a bug here must not end the reader and strand every caller
                    log.exception("Could not apply gatttool output %r", event)
                    continue
                if why is not None:
                    lost = why
            waiting = self._waiting
            if waiting is not None and (waiting.done or waiting.wants_marker):
                self._wake_waiter()
            if lost is not None or (starting and tracker.prompt_seen):
                self._cond.notify_all()
        if lost is not None and not self._closing:
            self._on_link_lost(lost)

    def _wake_waiter(self) -> None:
        """Wake the caller waiting for a command (call with ``_lock`` held, so wakes never race)."""
        if self._wake.locked():
            self._wake.release()

    def _on_exit(self) -> None:
        with self._lock:
            self._alive = False
            was_connected = self._tracker.connected
            self._tracker.connected = False
            why = "gatttool exited" if self._closing else "gatttool exited unexpectedly"
            self._tracker.fail_all(NotConnectedError(f"{why}; last output: {self._recent.text()[-300:]!r}"))
            expected = self._tracker.expect_disconnect
            self._cond.notify_all()
            self._wake_waiter()
        if was_connected and not self._closing and not expected:
            self._on_link_lost(why)

    # -- commands -------------------------------------------------------------------

    def send(self, line: str) -> None:
        """Send one raw line to gatttool.

        Raises:
            ValueError: the line contains a line break or another control character (gatttool
                reads through readline on a pty, where Ctrl-C, Ctrl-D, Ctrl-U, DEL, TAB or ESC
                edit, discard or end the line instead of reaching gatttool).
            NotConnectedError: gatttool is not running.
        """
        # every command's path: isprintable() is false for each control character, and cheap
        if not line.isprintable() and _CONTROL_CHARACTER.search(line) is not None:
            raise ValueError(f"refusing to send a command with a line break or another control character: {line!r}")
        if not self._alive or self._process is None:
            raise NotConnectedError("gatttool is not running")
        log.debug("gatttool <- %s", line)
        try:
            self._process.send(line)
        except OSError as exc:
            raise NotConnectedError(f"Could not write to gatttool: {exc}") from exc

    def run(self, command: Command[T], timeout: float) -> T:
        """Send ``command`` and wait for its answer.

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
        self._take_turn(command, timeout)
        try:
            op = self._begin(command)
            results, _ = self._wait(op, deadline, timeout)
            return command.result(results)
        finally:
            self._command_lock.release()

    def run_listings(
        self, first: Command[List[Any]], then: Command[List[Any]], timeout: float
    ) -> Tuple[List[Any], Union[List[Any], BLEError, None]]:
        """Run two listings back to back, ``then`` sent as the end marker of ``first``.

        A listing has no end line (see :mod:`.tracker`): run alone, each needs a
        sync marker after its first result, one more round trip. Here ``then`` is
        that marker for ``first`` (gatttool reads it only after printing all of
        ``first``, so its echo ends ``first``), and only ``then`` needs the sync
        marker: three round trips instead of four -- or two, when ``then`` knows
        from ``first``'s results which lines complete it
        (:attr:`~.commands.Command.expected_from`). ``then`` is sent only when
        ``first`` found something.

        Args:
            first: the first listing; its errors are raised.
            then: the second listing; its error is returned, not raised.
            timeout: seconds for both.

        Returns:
            ``first``'s results, and ``then``'s results, the error that ended it, or
            None when it was not sent.

        Raises:
            BLEError: ``first`` failed (a NotificationTimeout when nothing came in time).
        """
        deadline = time.monotonic() + timeout
        self._take_turn(first, timeout)
        try:
            op = self._begin(first)
            results, follow = self._wait(op, deadline, timeout, then)
            if follow is None:
                return first.result(results), None
            with self._lock:
                self._waiting = follow
            try:
                more, _ = self._wait(follow, deadline, timeout)
            except NotConnectedError:
                raise
            except BLEError as exc:
                return first.result(results), exc
            return first.result(results), then.result(more)
        finally:
            self._command_lock.release()

    def _take_turn(self, command: Command[Any], timeout: float) -> None:
        """Take the command lock (one command at a time), or time out."""
        if not self._command_lock.acquire(timeout=timeout):
            raise NotificationTimeout(
                f"{command.describe()}: another command kept gatttool busy for {timeout} s", self.recent_output()
            )

    def _begin(self, command: Command[Any]) -> Operation:
        """Register ``command`` as the one waited for, and send it."""
        with self._lock:
            op = self._tracker.begin(command, time.monotonic())
            self._waiting = op
            self._wake.acquire(blocking=False)  # armed: a wake left over from the last command is dropped
        try:
            self.send(command.line)
        except BLEError:
            with self._lock:
                self._tracker.cancel(op)
                self._waiting = None
            raise
        return op

    def _wait(
        self, op: Operation, deadline: float, timeout: float, then: Optional[Command[Any]] = None
    ) -> Tuple[List[Any], Optional[Operation]]:
        """Wait for ``op`` to finish; then no one waits (``_waiting`` is cleared under the lock).

        Returns:
            Its results, and the operation of ``then`` when ``then`` was sent as its end marker.
        """
        with self._lock:
            try:
                follow = self._wait_locked(op, deadline, timeout, then)
            finally:
                self._waiting = None
        if op.error is not None:
            raise op.error
        if op.error_line is not None:
            raise error_from_line(op.error_line, op.family.name, op.command.target, self.recent_output(500))
        return op.results, follow

    def _wait_locked(
        self, op: Operation, deadline: float, timeout: float, then: Optional[Command[Any]]
    ) -> Optional[Operation]:
        """The waiting loop, with ``_lock`` held: sends a listing's end marker, raises on the deadline.

        The end marker is ``then`` (registered as a command of its own and returned) or the sync marker.
        """
        follow: Optional[Operation] = None
        try:
            while not op.done:
                if op.wants_marker:
                    op.marker_sent = True
                    line = SYNC_MARKER
                    if then is not None:
                        follow = self._tracker.begin(then, time.monotonic())
                        line = then.line
                    self._lock.release()  # never write to the pty while holding the reader's lock
                    try:
                        self.send(line)
                    finally:
                        self._lock.acquire()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if op.family.listing and op.results:
                        log.debug("%s: listing ended by the timeout", op.command.line)
                        self._tracker.cancel(op)
                        break
                    self._tracker.abandon(op, time.monotonic())
                    raise NotificationTimeout(
                        f"Timed out after {timeout} s waiting for gatttool to answer {op.command.describe()!r}",
                        self.recent_output(),
                    )
                self._lock.release()
                try:
                    self._wake.acquire(timeout=remaining)
                finally:
                    self._lock.acquire()
        except BaseException:
            if follow is not None:
                self._tracker.abandon(follow, time.monotonic())  # nobody will wait for it
            raise
        if follow is not None and (op.error is not None or op.error_line is not None):
            self._tracker.abandon(follow, time.monotonic())  # the caller raises op's error: nobody waits for it
            return None
        return follow

    # -- connection helpers ----------------------------------------------------------

    def expect_disconnect(self, expected: bool) -> None:
        """Mark a coming disconnect as asked for (no ``on_link_lost`` for it)."""
        with self._lock:
            if expected:
                self._tracker.closing_link()
            else:
                self._tracker.expect_disconnect = False

    def connection_reset(self) -> None:
        """Forget every abandoned command (a new link starts with a clean slate)."""
        with self._lock:
            self._tracker.start_link()


__all__ = ["GATTToolSession"]
