"""The BGAPI backend (Silicon Labs BLED112 dongles) — not available in this release."""

from .bgapi import BGAPIBackend

__all__ = ["BGAPIBackend"]
