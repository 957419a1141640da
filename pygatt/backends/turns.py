"""Turns per key: one operation per address at a time, each wait for a turn with a deadline.

A backend's connects and reconnects of one address take that address's turn, so two of
them never open two links to one peer: the second waits, then finds the first one's link.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Dict, Iterator

from pygatt.exceptions import NotConnectedError


class Turns:
    """A lock per key, made when first asked for (keys are addresses: few, and kept)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: Dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, key: str, seconds: float, busy: str) -> Iterator[None]:
        """Hold ``key``'s turn for the ``with`` block.

        Args:
            key: what the turn is for (an address).
            seconds: the longest to wait for the turn.
            busy: the error's message when the turn did not come in time.

        Raises:
            NotConnectedError: another holder kept the turn for ``seconds``.
        """
        with self._lock:
            turn = self._turns.setdefault(key, threading.Lock())
        if not turn.acquire(timeout=seconds):
            raise NotConnectedError(busy)
        try:
            yield
        finally:
            turn.release()


__all__ = ["Turns"]
