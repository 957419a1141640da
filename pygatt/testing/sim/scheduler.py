"""Timers for a simulator's single-threaded loop.

A simulator thread waits on its file descriptors with a timeout; this heap of
timers tells it how long that timeout is and runs what became due. Nothing
here touches a file descriptor or a thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from typing import Callable, List, Optional, Tuple

log = logging.getLogger(__name__)


class Timer:
    """A handle on a scheduled action; :meth:`cancel` stops it from running."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the action (harmless when it already ran)."""
        self.cancelled = True


class Scheduler:
    """Actions to run at a later time, earliest first; ties run in the order scheduled."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: List[Tuple[float, int, Timer, Callable[[], None]]] = []
        self._order = itertools.count()

    def after(self, delay: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` once ``delay`` seconds (0 or more) have passed.

        Args:
            delay: seconds from now; negative counts as 0.
            action: called with no arguments on the loop's thread.

        Returns:
            A :class:`Timer` that can cancel the action.
        """
        timer = Timer()
        heapq.heappush(self._heap, (self._clock() + max(0.0, delay), next(self._order), timer, action))
        return timer

    def run_due(self) -> Optional[float]:
        """Run every action that is due (also those scheduled by them with no delay).

        Returns:
            Seconds until the next action, or None when nothing is scheduled.
        """
        while self._heap:
            when, _, timer, action = self._heap[0]
            now = self._clock()
            if when > now:
                return when - now
            heapq.heappop(self._heap)
            if not timer.cancelled:
                action()
        return None

    def next_delay(self) -> Optional[float]:
        """Seconds until the next action (0 when one is due), or None when nothing is scheduled."""
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    def clear(self) -> None:
        """Forget every scheduled action."""
        for _, _, timer, _ in self._heap:
            timer.cancel()
        self._heap.clear()
