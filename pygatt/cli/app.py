"""``main()``: parse, build the backend, run the command, always stop, map errors to exit statuses."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Tuple, Union

from pygatt.backends import BGAPIBackend, DBusBackend, GATTToolBackend, ToolCommands
from pygatt.backends.gatttool.tools import SIMULATE_ENV
from pygatt.cli import arguments, commands
from pygatt.cli.output import Output
from pygatt.cli.status import ExitStatus, status_of
from pygatt.exceptions import BLEError

if TYPE_CHECKING:
    import argparse
    from types import FrameType

log = logging.getLogger(__name__)

VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: end like Ctrl-C, stopping the backend first."""


class _StderrHandler(logging.Handler):
    """Writes log records to whatever ``sys.stderr`` is at the time (so captured stderr works)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a log line must never end the command
            self.handleError(record)


class _QuietFormatter(logging.Formatter):
    """``pygatt: warning: <message>``, like the CLI's own error lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"pygatt: {record.levelname.lower()}: {record.getMessage()}"


@contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Show pygatt's log on stderr while the command runs: WARNING and up, INFO with -v, DEBUG with -vv.

    Args:
        verbosity: how many ``-v`` were given.
    """
    logger = logging.getLogger("pygatt")
    handler = _StderrHandler()
    if verbosity:
        handler.setFormatter(logging.Formatter(VERBOSE_FORMAT))
    else:
        handler.setFormatter(_QuietFormatter())
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    saved = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


@contextmanager
def _sigterm_ends_cleanly() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated`, so the backend is stopped (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
        raise Terminated()

    saved = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


def _uninterrupted(action: Callable[[], Any]) -> None:
    """Run an action with Ctrl-C and SIGTERM held off, so stopping is never cut short.

    Args:
        action: what to run.
    """
    if threading.current_thread() is not threading.main_thread():
        action()
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        action()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _error(message: object) -> None:
    """Print ``pygatt: error: MESSAGE`` on stderr.

    Args:
        message: what went wrong.
    """
    sys.stderr.write(f"pygatt: error: {message}\n")
    sys.stderr.flush()


def _load_world(world: str, given_by: str) -> Any:
    """Load a simulated world, a bad one being a usage error whatever the backend.

    Args:
        world: a shipped world's name or a world file's path.
        given_by: where it came from, for the message: ``--simulate`` or ``PYGATT_SIMULATE``.

    Returns:
        The world.

    Raises:
        UsageError: the world cannot be loaded.
    """
    from pygatt.testing import load_world  # only needed, and only imported, for a simulation

    try:
        return load_world(world)
    except (ValueError, TypeError, KeyError) as exc:
        raise arguments.UsageError(f"{given_by}: cannot use world {world!r}: {exc}") from None


def _world(args: argparse.Namespace) -> Any:
    """Load the world of ``--simulate``.

    Args:
        args: the parsed command line.

    Returns:
        The world.

    Raises:
        UsageError: the world cannot be loaded.
    """
    return _load_world(args.simulate, "--simulate")


def _check_environment_world(args: argparse.Namespace) -> None:
    """Without ``--simulate``, check the world ``PYGATT_SIMULATE`` names, when the backend will use it.

    The backends find a bad world at different times (the BGAPI and GATTTool
    backends when they are built, the D-Bus backend at ``start()``), each with its
    own words, so it is checked here, once, for all of them: a usage error that
    says where the world came from.

    Args:
        args: the parsed command line.

    Raises:
        UsageError: ``PYGATT_SIMULATE`` names a world that cannot be loaded.
    """
    world = os.environ.get(SIMULATE_ENV, "").strip()
    if args.simulate is not None or not world:
        return
    if args.backend == "bgapi" and args.port is not None:
        return  # a BGAPIBackend given a port ignores PYGATT_SIMULATE
    _load_world(world, SIMULATE_ENV)


def _tools(args: argparse.Namespace) -> Optional[ToolCommands]:
    """Choose the programs the backend runs.

    Args:
        args: the parsed command line.

    Returns:
        The simulator for ``--simulate``; None (the BlueZ programs, or
        ``PYGATT_SIMULATE``) otherwise.

    Raises:
        UsageError: the world given to ``--simulate`` cannot be loaded.
    """
    if args.simulate is None:
        return None
    _world(args)
    return ToolCommands.simulated(args.simulate)


Backend = Union[GATTToolBackend, BGAPIBackend, DBusBackend]


def _backend(args: argparse.Namespace) -> Tuple[Backend, Optional[Any]]:
    """Build the backend ``--backend`` names.

    Args:
        args: the parsed command line.

    Returns:
        The backend, and for ``--backend bgapi --simulate`` the simulated dongle
        (None otherwise), which the caller closes.

    Raises:
        UsageError: the world of ``--simulate`` or ``PYGATT_SIMULATE`` cannot be loaded.
    """
    _check_environment_world(args)
    if args.backend == "dbus":
        if args.simulate is not None:
            _world(args)  # so a bad world reads as it does with the other backends
        return DBusBackend(hci_device=args.hci, simulate=None if args.simulate is None else str(args.simulate)), None
    if args.backend != "bgapi":
        return GATTToolBackend(hci_device=args.hci, gatttool_logfile=args.log_file, tools=_tools(args)), None
    if args.simulate is None:
        return BGAPIBackend(serial_port=args.port), None
    from pygatt.testing.sim.bgapi import SimulatedDongle

    dongle = SimulatedDongle(_world(args))
    dongle.open_socket()
    return BGAPIBackend(comports=dongle.comports), dongle


def _start(args: argparse.Namespace, backend: Backend) -> None:
    """Start the backend, resetting the adapter or dongle unless ``--no-reset`` or ``--simulate``.

    Args:
        args: the parsed command line.
        backend: the backend to start; a GATTTool scan needs no gatttool, so it is not started for one.
    """
    reset = not (args.no_reset or args.simulate or args.command == "scan")  # a scan resets nothing
    if isinstance(backend, BGAPIBackend):
        backend.start(reset=reset)
    elif isinstance(backend, DBusBackend):
        backend.start()  # never resets the adapter
    elif args.command != "scan":  # a gatttool scan runs hcitool on its own, without gatttool
        backend.start(reset_on_start=reset)


def _run(args: argparse.Namespace) -> ExitStatus:
    """Run one parsed command; the backend (and a simulated dongle) is stopped whatever happens.

    Args:
        args: the parsed command line.

    Returns:
        The exit status when the command succeeds (it raises otherwise).
    """
    backend, dongle = _backend(args)
    ctx = commands.Context(args, backend, Output(sys.stdout, args.json))
    log.debug("Running %s with %s", args.command, vars(args))
    try:
        _start(args, backend)
        commands.run(ctx)
        return ExitStatus.OK
    finally:
        _uninterrupted(backend.stop)
        if dongle is not None:
            _uninterrupted(dongle.close)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``pygatt`` command line.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    return int(_main(argv))


def _main(argv: Optional[Sequence[str]]) -> int:
    try:
        args = arguments.parse(sys.argv[1:] if argv is None else argv)
    except arguments.UsageError as exc:
        _error(exc)
        return ExitStatus.USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
    with _logging(args.verbose), _sigterm_ends_cleanly():
        try:
            return _run(args)
        except arguments.UsageError as exc:
            _error(exc)
            return ExitStatus.USAGE
        except (BLEError, ValueError) as exc:
            _error(exc)
            return status_of(exc)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
            terminated = isinstance(exc, Terminated)
            detail = f" ({exc})" if str(exc) else ""
            sys.stderr.write(f"pygatt: {'terminated' if terminated else 'interrupted'}{detail}\n")
            return ExitStatus.TERMINATED if terminated else ExitStatus.INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            return ExitStatus.BROKEN_PIPE


def _silence_stdout() -> None:
    """The reader of our output went away (``| head``): send the rest nowhere, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured output)
        pass
