"""The contract every backend fulfils, and the backend-agnostic base classes.

* :class:`BLEBackend` -- an adapter: start/stop, scan, connect (pygatt 5.0.0's base class).
* :class:`GATTLink` -- one connection to one peripheral: the operations a backend gives
  the shared :class:`~pygatt.device.BLEDevice`, which builds pygatt's public device API
  (handle cache, subscriptions, callbacks, reconnects) on top of them.
* :class:`Characteristic`, :class:`BLEAddressType` -- values shared by every backend.
"""

from __future__ import annotations

import abc
import logging
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union
from uuid import UUID

from pygatt.exceptions import AttributeNotFoundError

if TYPE_CHECKING:
    from pygatt.device import BLEDevice

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5.0


#: The bits of a characteristic declaration's properties byte (Core spec Vol 3 Part G 3.3.1.1),
#: by the names BlueZ gives them.
PROPERTY_BITS = {
    "broadcast": 0x01,
    "read": 0x02,
    "write-without-response": 0x04,
    "write": 0x08,
    "notify": 0x10,
    "indicate": 0x20,
    "authenticated-signed-writes": 0x40,
    "extended-properties": 0x80,
}

#: The ATT MTU every link starts with, until an MTU exchange raises it.
DEFAULT_ATT_MTU = 23


class BLEAddressType(Enum):
    """The address type of a remote device: ``public`` (1) or ``random`` (2), as in pygatt 5.0.0."""

    public = 1
    random = 2


def address_type_of(address_type: Union[BLEAddressType, str, int]) -> BLEAddressType:
    """``BLEAddressType`` from a member, its name (``"random"``) or its pygatt 5.0.0 value (1, 2).

    Raises:
        ValueError: anything else.
    """
    if isinstance(address_type, BLEAddressType):
        return address_type
    if isinstance(address_type, str) and address_type in BLEAddressType.__members__:
        return BLEAddressType[address_type]
    if isinstance(address_type, int) and not isinstance(address_type, bool):
        for member in BLEAddressType:
            if member.value == address_type:
                return member
    raise ValueError(f"address_type must be BLEAddressType.public or BLEAddressType.random, got {address_type!r}")


def resubscribe_or_close(device: BLEDevice, close: Callable[[], None]) -> None:
    """The last step of every backend's reconnect: write the device's subscriptions again.

    A reconnect is not done until the subscriptions are back. When resubscribing fails,
    ``close`` ends the new link (no callbacks; ``auto_reconnect`` stays as it is) and the
    error goes on, so the next attempt, the reconnector's or the caller's, connects and
    resubscribes anew instead of finding the link up with notifications off.

    Args:
        device: the device whose link just came up again.
        close: ends that link.
    """
    try:
        device.resubscribe_all()
    except BaseException:
        close()
        raise


def no_such_characteristic(operation: str, char_uuid: UUID, message: Optional[str] = None) -> AttributeNotFoundError:
    """The error for a characteristic the device lacks, where it is looked up instead of asked for.

    gatttool gets "Attribute Not Found" (0x0a) from the peer for a read by UUID; looking the UUID
    up in the discovered characteristics (``get_handle``, the D-Bus backend) raises the same error.

    Args:
        operation: what was attempted, as the backend names it.
        char_uuid: the UUID looked for.
        message: the error's text; by default it names ``operation`` and ``char_uuid``.

    Returns:
        The error, to raise.
    """
    return AttributeNotFoundError(
        message or f"{operation} {char_uuid} failed: no characteristic with this UUID (Attribute Not Found)",
        operation=operation,
        target=str(char_uuid),
        reason="Attribute Not Found",
        att_error=0x0A,
    )


class BLEBackend:
    """Abstract base class representing a Bluetooth adapter backend. See the
    ``pygatt.backends`` module for available implementations.
    """

    def start(self) -> None:
        """Initialize any resources required to run the backend, e.g. background
        threads, USB device connections, etc.
        """
        raise NotImplementedError()

    def stop(self) -> None:
        """Stop and free any resources required while the backend is running."""
        raise NotImplementedError()

    def supports_unbonded(self) -> bool:
        """Return True if the backend supports unbonded communication - this is
        to make detecting the GATTTool backend easier.
        """
        return True

    def connect(self, address: str, timeout: float = DEFAULT_CONNECT_TIMEOUT_S, **kwargs: Any) -> Any:
        """Connect to a device.

        Args:
            address: the BLE address of the device, e.g. ``"01:23:45:67:89:AB"``.
            timeout: seconds the connection may take.
            **kwargs: the backend's own connection options.

        Returns:
            The connected :class:`~pygatt.device.BLEDevice`.
        """
        raise NotImplementedError()

    def scan(self, *args: Any, **kwargs: Any) -> List[Dict[str, Any]]:
        """Perform a BLE scan and return a list of dicts, each with at least an
        'address' and a 'name' (None when the device did not advertise one).
        """
        raise NotImplementedError()

    def filtered_scan(self, name_filter: str = "", *args: Any, **kwargs: Any) -> List[Dict[str, Any]]:
        """Scan for BLE devices and keep those whose name contains ``name_filter``.

        Devices without a name never match a non-empty filter.

        Args:
            name_filter: the text a device's name must contain.
            *args: passed to :meth:`scan`.
            **kwargs: passed to :meth:`scan`.

        Returns:
            The matching scan results.

        Raises:
            TypeError: ``name_filter`` is not a str (refused before scanning).
        """
        if not isinstance(name_filter, str):
            raise TypeError(f"name_filter must be a str, got {type(name_filter).__name__}")
        devices = self.scan(*args, **kwargs)
        return [device for device in devices if name_filter in (device.get("name") or "")]

    def clear_bond(self, address: Optional[str] = None) -> None:
        """Remove a bond (pairing) with a device.

        Args:
            address: the device's address; None removes every bond.
        """
        raise NotImplementedError()


class Characteristic:
    """A GATT characteristic: its value handle and the descriptors found for it.

    Args:
        uuid: the UUID of the characteristic.
        handle: the value handle of the characteristic.

    Attributes:
        descriptors: each descriptor's UUID mapped to its handle.
    """

    def __init__(self, uuid: UUID, handle: int) -> None:
        self.uuid = uuid
        self.handle = handle
        self.descriptors: Dict[UUID, int] = {}

    def add_descriptor(self, uuid: UUID, handle: int) -> None:
        """Record a descriptor of this characteristic.

        Args:
            uuid: the UUID of the descriptor.
            handle: the handle of the descriptor.
        """
        self.descriptors[uuid] = handle

    def __str__(self) -> str:
        return f"<{self.__class__.__name__} uuid={self.uuid} handle={self.handle}>"

    __repr__ = __str__


class GATTLink(abc.ABC):
    """One connection to one peripheral: what a backend gives :class:`~pygatt.device.BLEDevice`.

    A backend implements this once per transport (a gatttool process, a BGAPI
    connection handle, a BlueZ device object). Every method takes ``timeout``,
    already validated, as the deadline for the whole operation, and raises
    pygatt's typed errors: :class:`~pygatt.exceptions.NotConnectedError` when the
    link is down, :class:`~pygatt.exceptions.NotificationTimeout` when the peer
    did not answer in time, a :class:`~pygatt.exceptions.GATTError` subclass
    (built with :func:`pygatt.exceptions.gatt_error`) for an ATT error, and
    :class:`~pygatt.exceptions.BLEError` for anything else.

    A link reports what happens on its own -- notifications and an unasked
    disconnect -- through its backend, which calls the device's public
    :meth:`~pygatt.device.BLEDevice.receive_notification` and
    :meth:`~pygatt.device.BLEDevice.link_lost` on its callback thread, never on
    the thread that reads the transport.
    """

    #: The peer's address, ``AA:BB:CC:DD:EE:FF``.
    address: str

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """True while the link is up."""

    @property
    def mtu(self) -> int:
        """The ATT MTU in use (23 until an exchange raised it)."""
        return DEFAULT_ATT_MTU

    @abc.abstractmethod
    def read_handle(self, handle: int, timeout: float) -> bytes:
        """Read an attribute by handle (one ATT Read; long values as the transport reads them).

        Args:
            handle: the attribute handle.
            timeout: seconds the whole read may take.

        Returns:
            The value.
        """

    @abc.abstractmethod
    def read_uuid(self, uuid: UUID, timeout: float) -> bytes:
        """Read the first characteristic value with this UUID (ATT Read By Type).

        Args:
            uuid: the characteristic's UUID.
            timeout: seconds the whole read may take.

        Returns:
            The value (at most one packet).
        """

    def read_long_handle(self, handle: int, timeout: float) -> bytes:
        """Read a value longer than one packet (ATT Read, then Read Blob until the end).

        Args:
            handle: the attribute handle.
            timeout: seconds the whole read may take.

        Returns:
            The whole value. The default reads with :meth:`read_handle`.
        """
        return self.read_handle(handle, timeout)

    @abc.abstractmethod
    def write_handle(self, handle: int, value: bytes, with_response: bool, timeout: float) -> None:
        """Write an attribute: a Write Request (acknowledged) or a Write Command.

        Args:
            handle: the attribute handle.
            value: the bytes to write (validated; at most MTU - 3 without response).
            with_response: wait for the peer's acknowledgement.
            timeout: seconds the write may take.
        """

    def write_long_handle(self, handle: int, value: bytes, timeout: float) -> None:
        """Write a value longer than one packet (Prepare Write + Execute Write).

        Args:
            handle: the attribute handle.
            value: the bytes to write.
            timeout: seconds the whole write may take.
        """
        self.write_handle(handle, value, True, timeout)

    @abc.abstractmethod
    def discover(self, timeout: float) -> Dict[UUID, Characteristic]:
        """Discover the characteristics and their descriptors.

        Args:
            timeout: seconds the whole discovery may take.

        Returns:
            ``{UUID: Characteristic}`` with value handles and descriptors; a UUID
            found on several characteristics keeps the lowest value handle.
        """

    def exchange_mtu(self, mtu: int, timeout: float) -> int:
        """Ask for an ATT MTU.

        Args:
            mtu: the MTU wanted (23..517, validated).
            timeout: seconds the exchange may take.

        Returns:
            The MTU now in use.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot exchange the MTU")

    def bond(self, permanent: bool, timeout: float) -> None:
        """Pair (bond) with the peer and encrypt the link.

        Args:
            permanent: keep the bond after the link ends (where the backend can choose).
            timeout: seconds pairing may take.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot bond")

    def rssi(self, timeout: float) -> int:
        """The received signal strength of the link, in dBm.

        Args:
            timeout: seconds the query may take.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read the RSSI")

    @abc.abstractmethod
    def disconnect(self, timeout: float) -> None:
        """End the link (asked for: no disconnect callback runs). Always returns.

        Args:
            timeout: seconds to wait for the peer or tool to confirm.
        """
