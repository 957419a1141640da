"""``SessionPool``: the gatttool processes of one backend that hold no connection.

``start()`` opens one process and keeps it as the *spare*; a connect takes the
spare (or a new process) and a disconnect gives it back, so one device uses one
process for the backend's whole life. Processes in the middle of a connect are
tracked too, so that ``stop()`` can end them at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, List, Optional, Set

from pygatt.backends.gatttool.session import GATTToolSession
from pygatt.exceptions import NotConnectedError

log = logging.getLogger(__name__)

SessionFactory = Callable[[float], GATTToolSession]


class SessionPool:
    """The idle and connecting gatttool sessions of a backend.

    Args:
        factory: starts a new session, waiting at most the given seconds for its prompt.
    """

    def __init__(self, factory: SessionFactory) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._open = False
        self._spare: Optional[GATTToolSession] = None
        self._connecting: Set[GATTToolSession] = set()

    @property
    def spare(self) -> Optional[GATTToolSession]:
        """The idle session, if one is kept."""
        return self._spare

    def open(self, timeout: float) -> None:
        """Start the first session (the spare).

        Raises:
            ToolError: gatttool could not be started.
        """
        session = self._factory(timeout)
        with self._lock:
            self._open = True
            self._spare = session

    def take(self, timeout: float) -> GATTToolSession:
        """A session for a new connection, marked as connecting.

        Raises:
            NotConnectedError: the pool is closed.
            ToolError: a new gatttool could not be started.
        """
        with self._lock:
            if not self._open:
                raise NotConnectedError("The backend is stopped")
            session, self._spare = self._spare, None
        if session is not None and not session.alive:
            session.close()  # it died while idle: reap it
            session = None
        if session is None:
            session = self._factory(timeout)
        with self._lock:
            if not self._open:
                closing: Optional[GATTToolSession] = session
            else:
                closing = None
                self._connecting.add(session)
        if closing is not None:
            closing.close()
            raise NotConnectedError("The backend was stopped while connecting")
        return session

    def connected(self, session: GATTToolSession) -> bool:
        """A connect on ``session`` succeeded; False when the pool closed meanwhile (it is then closed)."""
        with self._lock:
            self._connecting.discard(session)
            still_open = self._open
        if not still_open:
            session.close()
        return still_open

    def give_back(self, session: GATTToolSession) -> None:
        """Keep an unconnected session as the spare, or end it."""
        with self._lock:
            self._connecting.discard(session)
            if self._open and self._spare is None and session.alive:
                self._spare = session
                return
        session.close()

    def close(self) -> List[GATTToolSession]:
        """Close the pool; returns the sessions to end (the spare and those connecting)."""
        with self._lock:
            self._open = False
            sessions = list(self._connecting)
            self._connecting.clear()
            if self._spare is not None:
                sessions.append(self._spare)
                self._spare = None
        return sessions
