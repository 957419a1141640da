"""One deadline for a whole operation, shared by the steps it takes."""

from __future__ import annotations

import time


class Deadline:
    """A point in time that an operation must finish by.

    A call that takes several steps (start a process, set the security level,
    connect) measures every step against the same deadline, so the whole call
    takes at most the ``timeout`` the caller gave.

    Args:
        seconds: how long from now the deadline is (already validated).
    """

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self, floor: float = 0.001) -> float:
        """Seconds left, never below ``floor`` (so a step still gets a last look).

        Args:
            floor: the smallest value returned.

        Returns:
            The time left until the deadline, at least ``floor``.
        """
        return max(floor, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self._end
