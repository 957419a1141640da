"""A private D-Bus message bus for tests: its own ``dbus-daemon`` on a unix socket.

Nothing touches the machine's system or session bus. A client is pointed at the
private bus through its address (``DBUS_SYSTEM_BUS_ADDRESS`` for a client that
talks to BlueZ on the "system" bus); see :meth:`PrivateBus.environ`.
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Type
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

DAEMON = "dbus-daemon"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class BusStartError(RuntimeError):
    """The private dbus-daemon could not be started."""


def find_daemon() -> Optional[str]:
    """The path of ``dbus-daemon``, or None when it is not installed.

    Returns:
        The absolute path found on ``PATH`` (or in ``/usr/bin``), or None.
    """
    return shutil.which(DAEMON) or (f"/usr/bin/{DAEMON}" if os.access(f"/usr/bin/{DAEMON}", os.X_OK) else None)


def bus_config(socket_path: str, deny_send_to: Iterable[str] = ()) -> str:
    """The configuration file of a private bus.

    Anyone on the machine's user may own any name (the simulated BlueZ owns
    ``org.bluez``) and talk to anyone, except to the names in ``deny_send_to``
    (to reproduce a system policy that refuses a client).

    Args:
        socket_path: where the bus listens.
        deny_send_to: bus names nobody may send method calls to.

    Returns:
        The XML text of the configuration.
    """
    denials = "".join(f"\n    <deny send_destination={quoteattr(name)}/>" for name in deny_send_to)
    return (
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
        "<busconfig>\n"
        "  <type>session</type>\n"
        f"  <listen>unix:path={socket_path}</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        '  <policy context="default">\n'
        '    <allow send_destination="*" eavesdrop="true"/>\n'
        '    <allow eavesdrop="true"/>\n'
        f'    <allow own="*"/>{denials}\n'
        "  </policy>\n"
        "</busconfig>\n"
    )


class PrivateBus:
    """A ``dbus-daemon`` of our own, listening on a unix socket in a temporary directory.

    Usable as a context manager::

        with PrivateBus() as bus:
            os.environ.update(bus.environ())
            ...

    Args:
        deny_send_to: bus names the policy forbids sending method calls to
            (``["org.bluez"]`` reproduces a client the system policy refuses).
        daemon: the dbus-daemon program (found on ``PATH`` by default).

    Raises:
        BusStartError: (from :meth:`start`) no dbus-daemon, or it did not start in time.
    """

    def __init__(self, deny_send_to: Iterable[str] = (), daemon: Optional[str] = None) -> None:
        self.deny_send_to = list(deny_send_to)
        self.daemon = daemon
        self.address = ""
        self.pid: Optional[int] = None
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._directory: Optional[str] = None
        self._finalizer: Optional[weakref.finalize[Any, Any]] = None

    def __enter__(self) -> PrivateBus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the daemon process is alive."""
        return self._process is not None and self._process.poll() is None

    def environ(self) -> Dict[str, str]:
        """Environment variables that point D-Bus clients at this bus, as both system and session bus.

        Returns:
            ``DBUS_SYSTEM_BUS_ADDRESS`` and ``DBUS_SESSION_BUS_ADDRESS`` set to :attr:`address`.
        """
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.address, "DBUS_SESSION_BUS_ADDRESS": self.address}

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Start the daemon and wait until it prints its address.

        Args:
            timeout: seconds to wait for the address.

        Returns:
            The bus address (``unix:path=...,guid=...``).

        Raises:
            BusStartError: no dbus-daemon, it exited, or it printed nothing in time.
        """
        if self.running:
            return self.address
        program = self.daemon or find_daemon()
        if program is None:
            raise BusStartError("dbus-daemon is not installed (Debian: apt-get install dbus-daemon)")
        self._directory = tempfile.mkdtemp(prefix="pygatt-bus-")
        socket_path = os.path.join(self._directory, "bus.sock")
        config = Path(self._directory, "bus.conf")
        config.write_text(bus_config(socket_path, self.deny_send_to))
        try:
            self._process = subprocess.Popen(
                [program, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            self._cleanup_directory()
            raise BusStartError(f"cannot run {program}: {exc}") from exc
        self.pid = self._process.pid
        # also at interpreter exit or if this object is dropped unstopped: no daemon outlives us
        self._finalizer = weakref.finalize(self, _terminate, self._process, self._directory)
        try:
            self.address = self._read_address(timeout)
        except BusStartError:
            self.stop()
            raise
        log.debug("private dbus-daemon %d on %s", self.pid, self.address)
        return self.address

    def _read_address(self, timeout: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + timeout
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BusStartError(f"dbus-daemon printed no address within {timeout:g} s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    errors = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    self._process.wait(STOP_TIMEOUT_S)
                    raise BusStartError(f"dbus-daemon exited ({self._process.returncode}): {errors.strip()}")
                received += chunk
        return received.split(b"\n", 1)[0].decode().strip()

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and remove its directory. Always returns."""
        self._process = None
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once
            self._finalizer = None
        self._cleanup_directory()

    def _cleanup_directory(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def _terminate(process: subprocess.Popen[bytes], directory: Optional[str]) -> None:
    """Stop a daemon and remove its directory (also called at interpreter exit)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("dbus-daemon %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait(STOP_TIMEOUT_S)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
