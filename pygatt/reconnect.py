"""Auto-reconnect: bring a dropped link back, the same way for every backend.

A backend owns one :class:`Reconnector`. When a device with ``auto_reconnect``
loses its link, the backend calls :meth:`Reconnector.schedule` with a function
that opens the link again (and resubscribes); the reconnector runs it on a
thread of its own, retrying after :data:`DEFAULT_RECONNECT_DELAY` until it
succeeds, the device is disconnected on purpose, or the backend stops. There
is never more than one reconnect thread per device, and :meth:`Reconnector.stop`
ends them all.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, NamedTuple, Optional

from pygatt.exceptions import BLEError

log = logging.getLogger(__name__)

#: Seconds between two reconnect attempts (pygatt 5.0.0's value).
DEFAULT_RECONNECT_DELAY = 1.0


class _Request(NamedTuple):
    """What :meth:`Reconnector.schedule` was given for one address (see there)."""

    attempt: Callable[[], None]
    wanted: Callable[[], bool]
    undo: Optional[Callable[[], None]]


class Reconnector:
    """Reconnect threads for the devices of one backend.

    Args:
        delay: seconds to wait between two attempts.
        max_attempts: give up after this many failed attempts (None: retry until stopped).
    """

    def __init__(self, delay: float = DEFAULT_RECONNECT_DELAY, max_attempts: Optional[int] = None) -> None:
        self._delay = delay
        self._max_attempts = max_attempts
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._threads: Dict[str, threading.Thread] = {}
        # a drop reported while an address's thread runs: that thread attempts again before it ends
        self._again: Dict[str, _Request] = {}

    def start(self) -> None:
        """Allow reconnects again (after :meth:`stop`)."""
        self._stopped.clear()

    def schedule(
        self,
        address: str,
        attempt: Callable[[], None],
        wanted: Callable[[], bool],
        undo: Optional[Callable[[], None]] = None,
    ) -> bool:
        """Start reconnecting ``address`` unless a reconnect for it already runs.

        Args:
            address: the device's address (one thread per address at most).
            attempt: opens the link again (and resubscribes); raises BLEError on failure.
            wanted: False once the reconnect should give up (device disconnected on purpose).
            undo: closes the link again when an attempt succeeded although the reconnect stopped
                being wanted meanwhile (``device.disconnect()`` while it was connecting).

        Returns:
            True when a new reconnect thread started.
        """
        request = _Request(attempt, wanted, undo)
        with self._lock:
            if self._stopped.is_set():
                return False
            running = self._threads.get(address)
            if running is not None and running.is_alive():
                # It may be past its last attempt already (the link dropped again right after it came
                # up): it takes this request before it ends, so the drop is never left unhandled.
                log.debug("A reconnect to %s is already running; it will attempt again", address)
                self._again[address] = request
                return False
            thread = threading.Thread(
                target=self._run, args=(address, request), name=f"pygatt-reconnect-{address}", daemon=True
            )
            self._threads[address] = thread
            thread.start()
            return True

    def _run(self, address: str, request: _Request) -> None:
        while True:
            self._attempts(address, request)
            with self._lock:  # the same lock as schedule(): a request is taken here, or starts a new thread
                again = self._again.pop(address, None)
                if again is None or self._stopped.is_set():
                    if self._threads.get(address) is threading.current_thread():
                        del self._threads[address]
                    return
            request = again

    def _attempts(self, address: str, request: _Request) -> None:
        """Attempt until one succeeds, the reconnect is no longer wanted, it gives up, or stop()."""
        attempt, wanted, undo = request
        tries = 0
        while not self._stopped.is_set() and wanted():
            tries += 1
            with self._lock:
                self._again.pop(address, None)  # this attempt answers every drop reported before it
            try:
                attempt()
            except BLEError as exc:
                log.warning("Reconnect %d to %s failed: %s", tries, address, exc)
            else:
                if undo is not None and not wanted():
                    log.info("Reconnecting to %s was given up while it connected; closing the new link", address)
                    self._undo(address, undo)
                    return
                log.info("Reconnected to %s after %d attempt(s)", address, tries)
                return
            if self._max_attempts is not None and tries >= self._max_attempts:
                log.error("Giving up reconnecting to %s after %d attempts", address, tries)
                return
            self._stopped.wait(self._delay)

    @staticmethod
    def _undo(address: str, undo: Callable[[], None]) -> None:
        try:
            undo()
        except BLEError as exc:
            log.warning("Closing the link to %s again failed: %s", address, exc)

    def stop(self, timeout: float = 2.0) -> None:
        """End every reconnect: no new attempt starts; running ones are joined.

        Args:
            timeout: seconds to wait for all threads together.
        """
        self._stopped.set()
        with self._lock:
            threads = list(self._threads.values())
            self._threads.clear()
            self._again.clear()
        per_thread = timeout / max(1, len(threads))
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(per_thread)
                if thread.is_alive():
                    log.warning("Reconnect thread %s did not end", thread.name)

    def running(self) -> int:
        """How many reconnect threads are alive."""
        with self._lock:
            return sum(1 for t in self._threads.values() if t.is_alive())
