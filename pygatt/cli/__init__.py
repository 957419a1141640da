"""The ``pygatt`` command: scan, discover, read, write and subscribe from a shell.

Run it as ``pygatt`` (installed console script) or ``python -m pygatt``;
``pygatt --help`` and docs/cli.md describe every command, option and exit
status. In Python, ``main(["--simulate", "scan"])`` runs it and returns the
exit status.

The modules: :mod:`~pygatt.cli.arguments` (the grammar and argument checks),
:mod:`~pygatt.cli.commands` (what each command does), :mod:`~pygatt.cli.output`
(tables and JSON), :mod:`~pygatt.cli.status` (exit statuses) and
:mod:`~pygatt.cli.app` (``main``).
"""

from pygatt.cli.app import main
from pygatt.cli.arguments import build_parser
from pygatt.cli.status import ExitStatus

__all__ = ["ExitStatus", "build_parser", "main"]
