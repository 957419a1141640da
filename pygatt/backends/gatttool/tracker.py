"""``CommandTracker``: which command each line of gatttool output answers. No threads, no I/O.

gatttool answers one command at a time, in order, but prints asynchronous
results *after* its next prompt, interleaved with notifications; a command the
caller gave up on may still be answered later. The tracker keeps the commands
in flight and applies parsed output events (:mod:`.parser`) to them:

* a result completes the oldest command of its family (a listing collects
  results until the sync marker answers, see below);
* an error line completes the command of its family, or the live one;
* commands that print nothing (``char-write-cmd``, ``sec-level low``,
  ``disconnect``) complete at the prompt after their echo;
* a command that timed out stays as *abandoned* for :data:`ABANDONED_LIFETIME_S`
  so that its late answer is swallowed instead of taken for the next command's;
* prompts, ``Command Failed: Disconnected`` and the GLib warning track the link.

**Listings** (``characteristics``, ``char-desc``, ``primary``) have no end line.
gatttool prints a whole listing from one callback of its main loop and reads its
input in another, so once the first result line has arrived, the caller sends
an end marker, which gatttool reads only after the last line of the listing:
either ``sec-level`` (which only prints ``sec-level: <level>``, synchronously),
whose answer ends the listing, or the next command the caller means to run
anyway (a discovery's ``characteristics`` after ``char-desc``), whose echo ends it.

A listing can also know its own end: ``char-desc`` lists every attribute, so the
characteristic declarations (0x2803) among its lines are exactly the lines
``characteristics`` will print. A listing sent as the end marker of the one
before it may take, when that one ends, the handles of the result lines it
waits for (:attr:`~.commands.Command.expected_from`); it is complete with the
last of them, with no sync marker to wait for. A line it did not expect makes
it fall back to the sync marker; a marker sent before the last line arrived
is answered later and finds no listing waiting for it.

The session feeds events from its reader thread under its lock and wakes the
caller whose operation :attr:`Operation.done` became true.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Deque, Dict, List, Optional, Set

from pygatt.backends.gatttool import parser
from pygatt.exceptions import BLEError, NotConnectedError

if TYPE_CHECKING:
    from pygatt.backends.gatttool.commands import Command, Family

log = logging.getLogger(__name__)

#: How long an abandoned command may still receive its late answer. gatttool
#: gives up on an ATT request after 30 s, so nothing comes later than this.
ABANDONED_LIFETIME_S = 35.0
#: Commands gatttool runs without a link, so ``Command Failed: Disconnected`` is never theirs.
NEVER_DISCONNECTED = frozenset({"sec-level", "connect", "disconnect"})
#: The line that ends a listing (see the module docstring).
SYNC_MARKER = "sec-level"
#: Error texts whose command family other commands print too (``sec-level`` prints btio's errors):
#: such a line with none of its family waiting goes to the live command.
SHARED_ERROR_FAMILIES = frozenset({"connect"})
#: The ATT code of gatttool's "unlikely error", which also ends a request gatttool gave up on after 30 s.
UNLIKELY_ERROR = 0x0E
#: Why the link counts as lost when an abandoned request ends in that error: gatttool's own ATT timeout
#: shut the link down while its prompt still shows it up (later commands get no answer at all).
ATT_TIMEOUT_LOSS = "gatttool's ATT request timed out, which leaves its link dead"


class Operation:
    """One command sent to gatttool and what came back for it.

    Attributes:
        command: what was sent.
        family: how gatttool answers it (the command's family).
        results: the result events collected.
        error: the exception to raise (set by the tracker, or by the session).
        error_line: the gatttool error line that ended it, turned into an exception by the session.
        done: no more output belongs to it.
        abandoned_at: when the caller gave up waiting (its late answer is swallowed).
        echo_seen: gatttool echoed the command line.
        marker_sent: the listing's sync marker was sent.
        expected: a listing's result handles still to come, when known (see the module docstring).
    """

    __slots__ = (
        "abandoned_at",
        "command",
        "done",
        "echo_seen",
        "error",
        "error_line",
        "expected",
        "family",
        "marker_sent",
        "results",
    )

    def __init__(self, command: Command[Any]) -> None:
        self.command = command
        self.family: Family = command.family  # read on every output line: a slot, not a property
        self.results: List[Any] = []
        self.error: Optional[BLEError] = None
        self.error_line: Optional[parser.ErrorLine] = None
        self.done = False
        self.abandoned_at: Optional[float] = None
        self.echo_seen = False
        self.marker_sent = False
        self.expected: Optional[Set[int]] = None

    @property
    def wants_marker(self) -> bool:
        """A listing that has results and still needs its sync marker sent."""
        return self.family.listing and bool(self.results) and not self.marker_sent and not self.done

    def __repr__(self) -> str:
        return f"<Operation {self.command.line!r} done={self.done} results={len(self.results)}>"


class CommandTracker:
    """Matches gatttool's output events to the commands in flight (not thread-safe: the session locks)."""

    def __init__(self) -> None:
        self.ops: Deque[Operation] = collections.deque()
        self.connected = False
        self.address: Optional[str] = None
        self.prompt_seen = False
        self.expect_disconnect = False
        self.link_lost: Optional[str] = None
        # After char-read-uuid answered, its further matches are still to come;
        # they all precede the echo of the next command (gatttool is single-threaded).
        self._absorb_extra_matches = False

    # -- commands -------------------------------------------------------------------

    def begin(self, command: Command[Any], now: float) -> Operation:
        """Register a command about to be sent.

        Args:
            command: the command.
            now: the current monotonic time (abandoned commands past their lifetime are dropped).

        Returns:
            Its operation.
        """
        self._drop_expired(now)
        op = Operation(command)
        self.ops.append(op)
        return op

    def abandon(self, op: Operation, now: float) -> None:
        """The caller stopped waiting for ``op``; its late answer will be swallowed."""
        if not op.done:
            op.abandoned_at = now

    def cancel(self, op: Operation) -> None:
        """Forget ``op`` (it could not be sent)."""
        self._finish(op)

    def fail_all(self, error: BLEError) -> None:
        """End every command in flight with ``error``."""
        for op in self.ops:
            if not op.done:
                op.error = error
                op.done = True
        self.ops.clear()

    def start_link(self) -> None:
        """A new connection begins: forget abandoned commands and the last loss."""
        self.expect_disconnect = False
        self.link_lost = None
        self.ops = collections.deque(op for op in self.ops if not op.done and op.abandoned_at is None)

    def closing_link(self) -> None:
        """A disconnect is asked for: no loss is reported, abandoned commands are forgotten."""
        self.expect_disconnect = True
        self.ops = collections.deque(op for op in self.ops if op.abandoned_at is None)

    # -- output ---------------------------------------------------------------------

    def apply(self, event: parser.Event) -> Optional[str]:
        """Apply one output event (notifications are the session's, not the tracker's).

        Args:
            event: a parsed event.

        Returns:
            Why the link went down when this event says it went down unasked, else None.
        """
        handler = self._HANDLERS.get(type(event))
        if handler is None:  # any other kind is a command's result
            self._result(event)
            return None
        return handler(self, event)

    def _link_gone(self, event: parser.LinkLost) -> Optional[str]:
        log.info("gatttool reports the link is gone: %s", event.text)
        return self._link_down("remote device disconnected")

    def _usage(self, event: parser.Usage) -> None:
        op = self._live_op()
        if op is not None:
            op.error = BLEError(f"{op.command.describe()} was refused: {event.text}")
            self._finish(op)

    def _sec_level(self, event: parser.SecLevel) -> None:
        for op in self.ops:
            if op.marker_sent and not op.done:
                self._finish(op)  # the listing's sync marker answered: the listing is complete
                return

    def _other(self, event: parser.Other) -> None:
        op = self._live_op()
        if op is None:
            return
        text = event.text
        line = op.command.line
        # readline echoes the line, or, past the terminal's width, "<" + the tail that fits
        if text.endswith(line) or (text.startswith("<") and len(text) > 8 and line.endswith(text[1:])):
            op.echo_seen = True
            self._absorb_extra_matches = False
            for earlier in list(self.ops):
                if earlier is op:
                    break
                if earlier.marker_sent and not earlier.done:
                    self._finish(earlier)  # a listing whose end marker was this command: it is complete
                    self._foresee(op, earlier)

    @staticmethod
    def _foresee(op: Operation, ended: Operation) -> None:
        """``op`` ended the listing ``ended``: the result lines ``op`` waits for, when ``ended`` tells."""
        expected_from = op.command.expected_from
        if expected_from is not None:
            op.expected = set(expected_from(ended.results)) or None  # nothing foreseen: the sync marker ends it

    def _prompt(self, event: parser.Prompt) -> Optional[str]:
        self.prompt_seen = True
        if event.address is not None:
            self.address = event.address
        lost = None
        if event.connected:
            self.connected = True
        elif self.connected:
            lost = self._link_down("the prompt shows the link is down")
        for op in list(self.ops):
            if not op.done and op.abandoned_at is None and op.family.ends_at_prompt and op.echo_seen:
                self._finish(op)
        return lost

    def _error(self, event: parser.ErrorLine) -> Optional[str]:
        lost = None
        disconnected = event.command_failed and event.message.strip() == "Disconnected"
        if disconnected and self.connected:
            lost = self._link_down("gatttool says Disconnected")
        op = self._owner(event.operation)
        if op is not None and disconnected and op.family.name in NEVER_DISCONNECTED:
            op = None  # the late answer of a GATT command the lost link already ended
        if op is None:
            log.debug("gatttool error with no command waiting: %s", event.message)
            return lost
        if op.family.listing and not op.results and event.att_error == 0x0A:
            self._finish(op)  # an empty range: nothing found is an answer
            return lost
        op.error_line = event
        self._finish(op)
        if op.abandoned_at is not None and event.att_error == UNLIKELY_ERROR and self.connected:
            # the late end of a request the caller gave up on: gatttool's 30 s ATT timeout
            lost = self._link_down(ATT_TIMEOUT_LOSS)
        return lost

    def _result(self, event: parser.Event) -> None:
        """A result line (a value, an acknowledgement, a listing's line): the oldest command of its family's."""
        kind = type(event)
        if kind is parser.Connected:
            self.connected = True
        elif kind is parser.UUIDValue and self._absorb_extra_matches:
            log.debug("Dropping a further char-read-uuid match: %r", event)
            return
        for op in self.ops:
            if not op.done and isinstance(event, op.family.results):
                op.results.append(event)
                if not op.family.listing or op.abandoned_at is not None:
                    self._finish(op)
                elif op.expected is not None:
                    self._expected_result(op, event.handle)
                return
        if kind is not parser.ConnectAttempt:
            log.debug("Output with no command waiting for it: %r", event)

    def _expected_result(self, op: Operation, handle: int) -> None:
        """A listing with foreseen results got the line of ``handle``: complete after the last one."""
        expected = op.expected
        assert expected is not None
        if handle not in expected:
            log.debug("%s listed 0x%04x, which the listing before did not: its end marker ends it", op, handle)
            op.expected = None
            return
        expected.discard(handle)
        if not expected:
            self._finish(op)  # every line foreseen has come: no end marker to wait for

    def _owner(self, family: Optional[str]) -> Optional[Operation]:
        """The operation an error line belongs to: the oldest of its family, or the live one.

        A line naming a family no waiting command belongs to is nobody's (the late answer of a
        command a lost link already ended), unless other commands print that text too.
        """
        if family is not None:
            for op in self.ops:
                if not op.done and op.family.name == family:
                    return op
            if family not in SHARED_ERROR_FAMILIES:
                return None
        return self._live_op()

    def _live_op(self) -> Optional[Operation]:
        for op in reversed(self.ops):
            if not op.done and op.abandoned_at is None:
                return op
        return None

    def _finish(self, op: Operation) -> None:
        op.done = True
        if op.abandoned_at is not None:
            log.debug("Discarding the late answer to %r", op.command.line)
        elif op.family.name == "char-read-uuid":
            self._absorb_extra_matches = True
        try:
            self.ops.remove(op)
        except ValueError:
            log.debug("%r was already finished", op)

    def _link_down(self, why: str) -> Optional[str]:
        was_connected = self.connected
        self.connected = False
        for op in list(self.ops):
            if op.family.name != "disconnect" and not op.done:
                op.error = NotConnectedError(f"{op.command.describe()}: {why}")
                op.done = True
        self.ops = collections.deque(op for op in self.ops if not op.done)
        if was_connected and not self.expect_disconnect:
            self.link_lost = why
            return why
        return None

    def _drop_expired(self, now: float) -> None:
        for op in list(self.ops):
            if op.abandoned_at is not None and now - op.abandoned_at > ABANDONED_LIFETIME_S:
                self.ops.remove(op)

    #: What the tracker does with each kind of event that is not a command's result (see apply).
    _HANDLERS: ClassVar[Dict[type, Callable[[CommandTracker, Any], Optional[str]]]] = {
        parser.Prompt: _prompt,
        parser.ErrorLine: _error,
        parser.LinkLost: _link_gone,
        parser.Usage: _usage,
        parser.Other: _other,
        parser.SecLevel: _sec_level,
    }
