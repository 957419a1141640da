"""The BGAPI backend: Silicon Labs (Bluegiga) BLED112/BLED113 USB dongles over a serial port."""

from .bgapi import MAX_CONNECTION_ATTEMPTS, AdvertisingAndScanInfo, BGAPIBackend, bgapi_address_to_hex
from .device import BGAPIBLEDevice
from .exceptions import BGAPIError, ExpectedResponseTimeout

__all__ = [
    "MAX_CONNECTION_ATTEMPTS",
    "AdvertisingAndScanInfo",
    "BGAPIBLEDevice",
    "BGAPIBackend",
    "BGAPIError",
    "ExpectedResponseTimeout",
    "bgapi_address_to_hex",
]
