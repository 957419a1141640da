"""Runs user callbacks on one thread of their own, in the order they were queued.

The thread that reads a tool's output only queues work here, so a slow
callback never stalls parsing, and a callback may call back into the device
(a read from a notification callback) without deadlock.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

_STOP = object()


class CallbackDispatcher:
    """A single daemon thread calling queued functions in FIFO order."""

    def __init__(self, name: str = "pygatt-callbacks") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._name = name
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once; later calls do nothing while it runs)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue ``function(*args)``. Dropped (and logged) when the dispatcher is stopped."""
        if self._thread is None:
            log.debug("Dispatcher %s is stopped; dropping call to %r", self._name, function)
            return
        self._queue.put((function, args))

    def stop(self, timeout: float = 1.0) -> bool:
        """Run what is queued, then end the thread; True if it ended within ``timeout``.

        Called from a callback, it only asks the thread to end.
        """
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is None:
            return True
        self._queue.put(_STOP)
        if thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("A callback is still running after %.1f s; leaving its thread behind", timeout)
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            function, args = item
            try:
                function(*args)
            except Exception:
                log.exception("Callback %r raised", function)
