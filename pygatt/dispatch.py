"""Runs user callbacks on one thread of their own, in the order they were queued.

The thread that reads a tool's output only queues work here, so a slow
callback never stalls parsing, and a callback may call back into the device
(a read from a notification callback) without deadlock.

Policy for a callback that cannot keep up: notifications wait in a queue of at
most ``max_pending`` entries; beyond that new notifications are dropped,
counted (:attr:`CallbackDispatcher.dropped`) and logged (the first drop, then
every :data:`DROP_LOG_EVERY`-th) -- never silently. Control work (a lost link)
is never dropped.

The reader is never blocked for long, because that would also hold back the
answers a callback may be waiting for. But the reader and the callback thread
share one GIL, and a reader with output always ready keeps winning it: in a
flood the queue would fill and drop notifications the callback thread had the
CPU to handle. So a notification (queued alone or in a batch) that finds the
queue over half full holds the reader back for at most :data:`THROTTLE_S` while
the callback thread takes from the queue -- and not at all while one batch of
callbacks has run for more than :data:`STUCK_S` (a callback blocked, say, on a
read whose answer the reader has yet to read).

For speed, a reader hands over the notifications of one chunk of output in one
call (:meth:`CallbackDispatcher.submit_batch`, which has them delivered by one
call per :data:`BATCH_CALL_VALUES` values, or :meth:`CallbackDispatcher.submit_many`),
and the callback thread takes up to :data:`RUN_BATCH` calls off the queue per
lock round trip; both keep the order, and callbacks still run one at a time.

After :meth:`CallbackDispatcher.stop` returns, no queued callback runs; a
callback already running when ``stop`` gave up waiting is left to finish on
its own (logged). A batch's values are queued as several calls so that
``stop`` can discard between them: a chunk of output can carry hundreds of
notifications, and one call delivering them all could not be stopped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

#: Notifications that may wait for the callback thread before new ones are dropped.
DEFAULT_MAX_PENDING = 10_000
#: After the first dropped notification, one log line per this many more.
DROP_LOG_EVERY = 10_000
#: How many queued calls the callback thread takes per lock round trip (they no longer count as waiting).
RUN_BATCH = 64
#: The most values one call queued by ``submit_batch`` carries (``stop`` discards between calls).
BATCH_CALL_VALUES = 32
#: The longest a batch of notifications holds the reader back when the queue is over half full.
THROTTLE_S = 0.002
#: Seconds after which a batch of callbacks counts as stuck (the reader is then not held back for it).
STUCK_S = 0.05

# (function, arguments, how many notifications it carries: 0 for control work, never dropped)
_Item = Tuple[Callable[..., Any], Tuple[Any, ...], int]


def _calls_of(function: Callable[[Sequence[Any]], Any], values: Sequence[Any]) -> List[_Item]:
    """``function`` over ``values`` as queued calls of at most :data:`BATCH_CALL_VALUES` values each."""
    return [
        (function, (values[at : at + BATCH_CALL_VALUES],), min(BATCH_CALL_VALUES, len(values) - at))
        for at in range(0, len(values), BATCH_CALL_VALUES)
    ]


class _Generation:
    """The queue and thread of one start(): a later start() never shares them."""

    def __init__(self) -> None:
        self.items: Deque[_Item] = collections.deque()
        self.droppable = 0
        lock = threading.Lock()
        self.cond = threading.Condition(lock)  # items arrived, or stop
        self.drained = threading.Condition(lock)  # the callback thread took a batch
        self.busy_since: Optional[float] = None  # when the callback thread took the batch it runs
        self.stopping = False
        self.discarded = False  # set with the queue cleared: the thread runs nothing more
        self.thread: Optional[threading.Thread] = None


class CallbackDispatcher:
    """A single daemon thread calling queued functions in FIFO order.

    Args:
        name: the thread's name.
        max_pending: how many droppable items (notifications) may wait.
    """

    def __init__(self, name: str = "pygatt-callbacks", max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._name = name
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._current: Optional[_Generation] = None
        self.dropped = 0

    def start(self) -> None:
        """Start the thread (once; later calls do nothing while it runs)."""
        with self._lock:
            if self._current is not None:
                return
            generation = _Generation()
            generation.thread = threading.Thread(target=self._run, args=(generation,), name=self._name, daemon=True)
            self._current = generation
            generation.thread.start()

    def submit(self, function: Callable[..., Any], *args: Any, droppable: bool = False) -> bool:
        """Queue ``function(*args)``.

        Args:
            function: what to call on the callback thread.
            *args: its arguments.
            droppable: it may be dropped (and counted) when the queue is full.

        Returns:
            False when the call was dropped (dispatcher stopped, or queue full). A droppable call
            that finds the queue over half full holds the caller back as a batch does (see above).
        """
        return self.submit_many(function, (args,), droppable) == 1

    def submit_many(
        self, function: Callable[..., Any], calls: Sequence[Tuple[Any, ...]], droppable: bool = False
    ) -> int:
        """Queue ``function(*args)`` for each ``args`` of ``calls``, in order, in one hand-off.

        Args:
            function: what to call on the callback thread.
            calls: the argument tuples, one per call.
            droppable: the calls may be dropped (and counted) when the queue is full; the
                first ones that fit are kept, the rest dropped.

        Returns:
            How many calls were queued.
        """
        weight = 1 if droppable else 0
        return self._queue(calls, droppable, lambda kept: [(function, args, weight) for args in kept])

    def submit_batch(self, function: Callable[[Sequence[Any]], Any], values: Sequence[Any]) -> int:
        """Queue calls ``function(some_values)`` that each handle up to :data:`BATCH_CALL_VALUES`
        notifications at once, in order.

        The queue counts each value as one notification: when it is full, the first values
        that fit are kept and the rest dropped (and counted), as :meth:`submit_many` does.

        Args:
            function: what to call on the callback thread, with each slice of the values kept.
            values: the notifications, in order.

        Returns:
            How many values were queued.
        """
        return self._queue(values, True, lambda kept: _calls_of(function, kept))

    def _queue(self, values: Sequence[Any], droppable: bool, items: Callable[[Sequence[Any]], Sequence[_Item]]) -> int:
        """Keep what fits of ``values``, queue ``items(kept)``; return how many values were kept."""
        generation = self._current
        if generation is None:
            log.debug("Dispatcher %s is stopped; dropping %d call(s)", self._name, len(values))
            return 0
        with generation.cond:
            if generation.stopping:
                return 0
            if droppable:
                room = max(0, self._max_pending - generation.droppable)
                if room < len(values):
                    self._count_drops(len(values) - room)
                    values = values[:room]
                generation.droppable += len(values)
            generation.items.extend(items(values))
            if values:
                generation.cond.notify()
                if droppable and generation.droppable > self._max_pending // 2:
                    self._throttle(generation)
        return len(values)

    @staticmethod
    def _throttle(generation: _Generation) -> None:
        """Let the callback thread take a batch (called with the lock held, on a thread not its own)."""
        if generation.thread is threading.current_thread():
            return
        busy_since = generation.busy_since
        if busy_since is not None and time.monotonic() - busy_since > STUCK_S:
            return  # a callback is blocked: holding the reader back would not drain anything
        generation.drained.wait(THROTTLE_S)  # releases the lock (and the GIL) for the callback thread

    def _count_drops(self, count: int) -> None:
        before = self.dropped
        self.dropped += count
        if before == 0 or before // DROP_LOG_EVERY != self.dropped // DROP_LOG_EVERY:
            log.warning(
                "Callbacks cannot keep up: %d notification(s) dropped so far (more than %d waiting)",
                self.dropped,
                self._max_pending,
            )

    def pending(self) -> int:
        """How many calls wait to run."""
        generation = self._current
        return 0 if generation is None else len(generation.items)

    def stop(self, timeout: float = 1.0, discard: bool = False) -> bool:
        """End the thread; True if it ended within ``timeout``.

        Args:
            timeout: seconds to wait for the thread.
            discard: drop what is still queued instead of running it first.

        Returns:
            True when the thread ended in time. Called from a callback, it only
            asks the thread to end.
        """
        with self._lock:
            generation = self._current
            self._current = None
        if generation is None:
            return True
        with generation.cond:
            generation.stopping = True
            if discard:
                generation.items.clear()
                generation.discarded = True
            generation.cond.notify()
        thread = generation.thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            with generation.cond:
                generation.items.clear()  # whatever happens to the running callback, nothing else runs
                generation.discarded = True
            log.warning("A callback is still running after %.1f s; leaving its thread behind", timeout)
            return False
        return True

    def _run(self, generation: _Generation) -> None:
        items = generation.items
        while True:
            with generation.cond:
                generation.busy_since = None
                while not items and not generation.stopping:
                    generation.cond.wait()
                if not items:
                    return
                # several calls per lock round trip: a flood costs one lock per batch, not per notification
                batch = [items.popleft() for _ in range(min(len(items), RUN_BATCH))]
                generation.droppable -= sum(weight for _, _, weight in batch)
                generation.busy_since = time.monotonic()
                generation.drained.notify()
            for function, args, _ in batch:
                if generation.discarded:  # stop() discarded the queue: this batch was part of it
                    return
                try:
                    function(*args)
                except BaseException:  # not even sys.exit() in a callback may end this thread
                    log.exception("Callback %r raised", function)
