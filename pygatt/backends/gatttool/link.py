"""``GATTToolLink``: the backend contract (:class:`~pygatt.backends.backend.GATTLink`)
fulfilled by one ``gatttool -I`` process that holds one connection.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Union

from pygatt.backends.backend import DEFAULT_ATT_MTU, Characteristic, GATTLink
from pygatt.backends.gatttool import commands
from pygatt.backends.gatttool.session import GATTToolSession
from pygatt.exceptions import BLEError, NotConnectedError, NotificationTimeout
from pygatt.util import uuid16_to_uuid

log = logging.getLogger(__name__)

#: Service and characteristic declarations (0x2800-0x2803): they end a characteristic's descriptors.
DECLARATION_UUIDS = frozenset(uuid16_to_uuid(n) for n in range(0x2800, 0x2804))


class GATTToolLink(GATTLink):
    """One connected gatttool session, seen through the backend contract.

    Args:
        session: the gatttool process holding the connection.
        address: the peer's address.
        rssi: reads the link's RSSI (the backend runs ``hcitool rssi``).
    """

    def __init__(self, session: GATTToolSession, address: str, rssi: Callable[[str, float], int]) -> None:
        self.session = session
        self.address = address
        self._mtu = DEFAULT_ATT_MTU
        self._rssi = rssi

    @property
    def connected(self) -> bool:
        """True while gatttool runs and shows the link up."""
        return self.session.alive and self.session.connected

    @property
    def mtu(self) -> int:
        """The ATT MTU in use (23 until :meth:`exchange_mtu`)."""
        return self._mtu

    def read_handle(self, handle: int, timeout: float) -> bytes:
        """``char-read-hnd``; gatttool itself follows a long value with Read Blob requests."""
        return self.session.run(commands.read_handle(handle), timeout)

    def read_uuid(self, uuid: uuid.UUID, timeout: float) -> bytes:
        """``char-read-uuid``: the first match, at most one packet."""
        return self.session.run(commands.read_uuid(uuid), timeout)

    def write_handle(self, handle: int, value: bytes, with_response: bool, timeout: float) -> None:
        """``char-write-req`` (acknowledged) or ``char-write-cmd``."""
        self.session.run(commands.write(handle, value, with_response), timeout)

    def write_long_handle(self, handle: int, value: bytes, timeout: float) -> None:
        """``char-write-req``: gatttool uses prepared writes for values above MTU - 3."""
        self.session.run(commands.write(handle, value, True), timeout)

    def discover(self, timeout: float) -> Dict[uuid.UUID, Characteristic]:
        """``char-desc``, then ``characteristics`` (sent as the first listing's end marker).

        Two round trips: ``char-desc`` lists every characteristic declaration, so
        ``characteristics`` ends with the last line of one (see :mod:`.tracker`), and needs
        no sync marker. When ``char-desc`` fails or finds nothing, the characteristics are
        listed alone and subscribing falls back to the value handle + 1.
        """
        deadline = time.monotonic() + timeout
        descriptors: Optional[List[Any]] = None
        listing: Union[List[Any], BLEError, None] = None
        try:
            descriptors, listing = self.session.run_listings(
                commands.CHAR_DESC, commands.CHARACTERISTICS_AFTER_DESC, timeout
            )
        except (NotConnectedError, NotificationTimeout):
            raise
        except BLEError as exc:
            log.warning("Could not list descriptors (%s); subscribing falls back to value handle + 1", exc)
        if listing is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotificationTimeout(f"No time left within {timeout} s to list the characteristics")
            listing = self.session.run(commands.CHARACTERISTICS, remaining)
        elif isinstance(listing, BLEError):
            raise listing
        characteristics: Dict[uuid.UUID, Characteristic] = {}
        by_value_handle: List[Characteristic] = []
        for line in sorted(listing, key=lambda c: c.value_handle):
            characteristic = Characteristic(line.uuid, line.value_handle)
            by_value_handle.append(characteristic)
            characteristics.setdefault(line.uuid, characteristic)
        if descriptors:
            self._add_descriptors(by_value_handle, descriptors)
        log.debug("Discovered %d characteristics on %s", len(characteristics), self.address)
        return characteristics

    @staticmethod
    def _add_descriptors(characteristics: List[Characteristic], descriptors: List[Any]) -> None:
        """Attach each ``char-desc`` descriptor to the characteristic whose value it follows."""
        by_handle = {c.handle: c for c in characteristics}
        owner: Optional[Characteristic] = None
        for descriptor in sorted(descriptors, key=lambda d: d.handle):
            if descriptor.handle in by_handle:
                owner = by_handle[descriptor.handle]  # a value handle: what follows is its descriptors
            elif descriptor.uuid in DECLARATION_UUIDS:
                owner = None  # a service or characteristic declaration ends the run
            elif owner is not None:
                owner.add_descriptor(descriptor.uuid, descriptor.handle)

    def exchange_mtu(self, mtu: int, timeout: float) -> int:
        """``mtu N``: gatttool allows one exchange per connection."""
        self._mtu = self.session.run(commands.exchange_mtu(mtu), timeout)
        return self._mtu

    def bond(self, permanent: bool, timeout: float) -> None:
        """``sec-level medium``, which makes BlueZ pair; ``permanent`` is ignored as in pygatt 5.0.0."""
        log.info("Bonding with %s", self.address)
        self.session.run(commands.sec_level("medium"), timeout)
        if not self.session.connected:
            raise NotConnectedError(f"Bonding with {self.address} failed: the link dropped")

    def rssi(self, timeout: float) -> int:
        """The RSSI from ``hcitool rssi``."""
        return self._rssi(self.address, timeout)

    def disconnect(self, timeout: float) -> None:
        """``disconnect``; the process is closed when gatttool does not confirm."""
        self.session.expect_disconnect(True)
        try:
            self.session.run(commands.DISCONNECT, timeout)
        except BLEError as exc:
            log.info("gatttool did not confirm the disconnect of %s (%s); ending its process", self.address, exc)
            self.session.close()
