"""Running the short-lived BlueZ programs: ``hcitool``, ``hciconfig``, ``bluetoothctl``.

Every run has a timeout, takes an argument list (never a shell string), reads
no standard input, and turns a failure into a :class:`~pygatt.exceptions.ToolError`
that quotes the program's own words. ``sudo -n`` is used when privileges are
asked for and we are not root, so a password prompt is an error, never a hang.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

from pygatt.backends.gatttool.parser import ANSI_REGEX, parse_lescan_line
from pygatt.exceptions import PermissionDeniedError, ToolError

if TYPE_CHECKING:
    from pygatt.backends.gatttool.process import PtyChild

log = logging.getLogger(__name__)

#: How long past its timeout a scan waits for a program that has printed nothing yet.
START_ALLOWANCE_S = 5.0

PERMISSION_HINTS = (
    "Operation not permitted",
    "Permission denied",
    "a password is required",
    "a terminal is required",
)
SUDO_ADVICE = (
    "run as root, use run_as_root=True with passwordless sudo for hcitool, "
    "or grant capabilities: sudo setcap 'cap_net_raw,cap_net_admin+eip' $(readlink -f $(which hcitool))"
)


def _env() -> Dict[str, str]:
    return dict(os.environ, LC_ALL="C", LANG="C", TERM="dumb")


def with_privileges(argv: Sequence[str], as_root: bool) -> List[str]:
    """``argv`` prefixed with ``sudo -n`` when ``as_root`` and we are not root."""
    if as_root and os.geteuid() != 0:
        return ["sudo", "-n", *argv]
    return list(argv)


def clean(text: str) -> str:
    """Output without colour codes and carriage returns, stripped."""
    return ANSI_REGEX.sub("", text).replace("\r", "").strip()


#: Seconds a program asked to end (SIGTERM, which ``sudo`` passes on) gets before it is killed.
END_GRACE_S = 0.5


class RunningTools:
    """The short-lived programs running for one adapter, so that ``stop()`` can end them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Set[subprocess.Popen[bytes]] = set()
        self._ended: Set[subprocess.Popen[bytes]] = set()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        """Track ``proc`` until :meth:`discard`."""
        with self._lock:
            self._running.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> bool:
        """Stop tracking ``proc``; True when :meth:`end_all` ended it."""
        with self._lock:
            self._running.discard(proc)
            ended = proc in self._ended
            self._ended.discard(proc)
        return ended

    def end_all(self) -> None:
        """End every program still running: SIGTERM, then SIGKILL after :data:`END_GRACE_S`."""
        with self._lock:
            procs = list(self._running)
            self._ended.update(procs)
        for proc in procs:
            proc.terminate()  # does nothing for a process already reaped
        deadline = time.monotonic() + END_GRACE_S
        for proc in procs:
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if proc.poll() is None:
                log.warning("%s ignored SIGTERM; killing it", proc.args)
                proc.kill()


def run_tool(argv: Sequence[str], timeout: float, what: str, running: Optional[RunningTools] = None) -> str:
    """Run a program to completion; return its combined output.

    Raises :class:`PermissionDeniedError` when it says it lacks privileges,
    :class:`ToolError` when it cannot start, times out, exits non-zero, or was
    ended by ``running.end_all()`` (the backend was stopped).
    """
    log.debug("Running %s", argv)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{what}: {argv[0]} is not installed ({exc.strerror}); install BlueZ (apt-get install bluez)")
    except OSError as exc:  # e.g. not executable
        raise ToolError(f"{what}: could not run {argv[0]}: {exc}")
    if running is not None:
        running.add(proc)
    with proc:  # closes the pipe and reaps the process
        try:
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                output = clean((exc.output or b"").decode("utf-8", "replace"))
                raise ToolError(
                    f"{what}: {argv[0]} gave no answer within {timeout} s: {output!r}", output, None
                ) from None
            except BaseException:
                proc.kill()
                raise
        finally:
            ended_by_stop = running is not None and running.discard(proc)
    output = clean(stdout.decode("utf-8", "replace"))
    if ended_by_stop:
        raise ToolError(f"{what}: {argv[0]} was ended because the backend was stopped", output, proc.returncode)
    if proc.returncode != 0:
        raise failure(what, argv, output, proc.returncode)
    return output


def failure(what: str, argv: Sequence[str], output: str, returncode: Optional[int]) -> ToolError:
    """The error for a tool that failed with ``output``."""
    if returncode is not None and returncode < 0:
        status = f"was killed by signal {-returncode}"
    else:
        status = f"exited with status {returncode}"
    words = output or "(no output)"
    if any(hint in output for hint in PERMISSION_HINTS):
        return PermissionDeniedError(
            f"{what}: {argv[0]} lacks permissions: {words!r}. To fix: {SUDO_ADVICE}", output, returncode
        )
    return ToolError(f"{what}: {' '.join(argv)} {status}: {words!r}", output, returncode)


class Scanner:
    """Runs a scanning program (``hcitool lescan``, ``btmgmt find``) on a pty.

    A pty, because hcitool's output is block-buffered on a pipe. :meth:`run`
    collects output until the timeout, then stops the program with SIGINT so it
    disables scanning on the adapter (a SIGKILL would leave the controller
    scanning and make the next scan fail). :meth:`kill` ends a running scan
    early from another thread.
    """

    def __init__(self, argv: Sequence[str]) -> None:
        self._argv = list(argv)
        self._stop = threading.Event()

    def run(self, timeout: float) -> Tuple[str, Optional[int], bool]:
        """Scan for ``timeout`` seconds.

        The time counts from the program's first output, so a slow start (a
        loaded machine) does not eat the scan; a program that prints nothing
        at all is stopped :data:`START_ALLOWANCE_S` after the timeout.

        Returns:
            (output, exit status or -signal, whether we had to end it): a program
            still running at the end was stopped by us, so its exit status says
            nothing about the scan.

        Raises:
            ToolError: the program cannot be started.
        """
        from pygatt.backends.gatttool.process import spawn_on_pty  # a pty without forking this process

        try:
            child = spawn_on_pty(self._argv, _env(), None)
        except ToolError as exc:
            raise ToolError(f"scan: {exc}") from None
        chunks: List[str] = []
        started = time.monotonic()
        deadline = started + timeout + START_ALLOWANCE_S
        try:
            while not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ready, _, _ = select.select([child.fileno()], [], [], min(remaining, 0.1))
                if not ready:
                    continue
                data = child.read(65536)
                if not data:
                    child.wait(1.0)  # its output ended: let it finish exiting before asking how
                    break
                if not chunks:
                    deadline = time.monotonic() + timeout  # the scan runs from its first output
                chunks.append(data)
        except BaseException:
            # KeyboardInterrupt, a signal turned into an exception, ...: the program (in a session of
            # its own, so the terminal's Ctrl-C never reached it) is stopped the same way, then reaped
            self._interrupt(child)
            raise
        ended_by_us = child.returncode is None
        chunks.append(self._interrupt(child))
        returncode = child.returncode
        if ended_by_us and returncode not in (0, -signal.SIGINT):
            log.warning("%s ignored SIGINT and was killed; the adapter may still be scanning", self._argv[0])
        return "".join(chunks), returncode, ended_by_us

    @staticmethod
    def _interrupt(child: PtyChild) -> str:
        """SIGINT, collect the last output, and make sure the process is gone."""
        tail = []
        if child.returncode is None:
            child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                ready, _, _ = select.select([child.fileno()], [], [], 0.05)
                if ready:
                    data = child.read(65536)
                    if not data:
                        break
                    tail.append(data)
                elif child.returncode is not None:
                    break
        child.close()  # kills what still runs, reaps it, releases the pty
        return "".join(tail)

    def kill(self) -> None:
        """Stop a running scan early (from any thread); it returns what it found."""
        self._stop.set()


def devices_from_lescan(output: str) -> List[Dict[str, Any]]:
    """Merge ``hcitool lescan`` lines: one dict per address, a name beats ``(unknown)``.

    hcitool prints no signal strength, so 'rssi' is None.
    """
    devices: Dict[str, Dict[str, Any]] = {}
    for line in output.splitlines():
        parsed = parse_lescan_line(line)
        if parsed is None:
            continue
        address, name = parsed
        known = devices.get(address)
        if known is None:
            devices[address] = {"address": address, "name": name, "rssi": None}
        elif known["name"] is None and name is not None:
            known["name"] = name
    return list(devices.values())


BTMGMT_FOUND = re.compile(
    r"hci\d+ dev_found: ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}) type (LE Public|LE Random|BR/EDR) "
    r"rssi (-?\d+) flags 0x([0-9a-fA-F]{4}) (?:AD flags 0x([0-9a-fA-F]{2}) )?(?:name (.*)|eir_len \d+)"
)
BTMGMT_ADDRESS_TYPES = {"LE Public": "public", "LE Random": "random", "BR/EDR": "bredr"}


def devices_from_btmgmt(output: str) -> List[Dict[str, Any]]:
    """Merge ``btmgmt find`` ``dev_found`` lines: one dict per address.

    Keys: 'address', 'name' (None when not advertised), 'rssi' (dBm, the latest
    report), 'address_type' ('public', 'random' or 'bredr') and 'flags' (the AD
    flags byte, None when not reported).
    """
    devices: Dict[str, Dict[str, Any]] = {}
    for line in output.splitlines():
        match = BTMGMT_FOUND.search(ANSI_REGEX.sub("", line).rstrip("\r "))
        if match is None:
            continue
        address = match.group(1).upper()
        name = match.group(6).strip() if match.group(6) else None
        device = devices.setdefault(address, {"address": address, "name": None})
        device["rssi"] = int(match.group(3))
        device["address_type"] = BTMGMT_ADDRESS_TYPES[match.group(2)]
        device["flags"] = int(match.group(5), 16) if match.group(5) else device.get("flags")
        if name:
            device["name"] = name
    return list(devices.values())


RSSI_LINE = re.compile(r"RSSI return value:\s*(-?\d+)")


def parse_rssi(output: str) -> Optional[int]:
    """The RSSI in ``hcitool rssi`` output, or None."""
    match = RSSI_LINE.search(output)
    return int(match.group(1)) if match else None
