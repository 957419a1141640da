"""What the command-line tests of every backend share (their fixture is in conftest.py)."""

from __future__ import annotations

from typing import Tuple

import pytest

from pygatt.cli import main

#: The shipped world's heart-rate sensor (public address) and its nameless tag (random address).
HR = "C4:7C:8D:6A:3E:01"
NAMELESS = "5D:2B:9F:11:04:7E"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err
