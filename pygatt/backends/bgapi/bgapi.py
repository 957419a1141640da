"""Placeholder for the BGAPI backend so that ``from pygatt import BGAPIBackend`` works.

pygatt 5.0.0 user code imports the name even when it only uses GATTTool; the
import succeeds here, and creating one raises a clear :class:`BLEError`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pygatt.backends.backend import BLEBackend
from pygatt.exceptions import BLEError


class BGAPIBackend(BLEBackend):
    """A BLE backend for a BGAPI compatible USB adapter (not available in this release)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._unavailable()

    @staticmethod
    def _unavailable() -> NoReturn:
        raise BLEError(
            "The BGAPI backend is not available in this release of pygatt; "
            "use pygatt.GATTToolBackend (BlueZ gatttool) instead."
        )
