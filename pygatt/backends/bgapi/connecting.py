"""Opening a link: the connection parameters, checked, and the gap_connect_direct procedure."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from pygatt.backends.backend import BLEAddressType
from pygatt.backends.bgapi.codec import AddressType, ConnectionFlag, Message
from pygatt.backends.bgapi.error_codes import describe
from pygatt.backends.bgapi.exceptions import ExpectedResponseTimeout
from pygatt.backends.bgapi.link import BGAPILink, LinkEvents
from pygatt.exceptions import NotConnectedError

if TYPE_CHECKING:
    from pygatt.backends.bgapi.protocol import BGAPIProtocol, EventInbox

log = logging.getLogger(__name__)


def bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` if it is an int within ``low..high``.

    Raises:
        TypeError: not an int.
        ValueError: out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low}..{high}, got {value}")
    return value


def address_type_code(address_type: Any) -> int:
    """BGAPI's code for ``BLEAddressType.public`` / ``.random`` (or ``"public"`` / ``"random"``).

    Raises:
        ValueError: anything else.
    """
    if address_type is BLEAddressType.public or address_type == "public":
        return AddressType.PUBLIC
    if address_type is BLEAddressType.random or address_type == "random":
        return AddressType.RANDOM
    raise ValueError(f"address_type must be BLEAddressType.public or BLEAddressType.random, got {address_type!r}")


class ConnectionParams(NamedTuple):
    """What gap_connect_direct is given besides the address (units as BGAPI's)."""

    address_type: int = AddressType.PUBLIC
    interval_min: int = 60  # x 1.25 ms
    interval_max: int = 76  # x 1.25 ms
    supervision_timeout: int = 100  # x 10 ms
    latency: int = 0  # connection events

    @classmethod
    def checked(
        cls, address_type: Any, interval_min: Any, interval_max: Any, supervision_timeout: Any, latency: Any
    ) -> ConnectionParams:
        """Parameters from user arguments, each checked against BGAPI's range.

        Raises:
            TypeError: not an int.
            ValueError: out of range, or interval_min above interval_max.
        """
        imin = bounded_int(interval_min, "interval_min", 6, 3200)
        imax = bounded_int(interval_max, "interval_max", 6, 3200)
        if imin > imax:
            raise ValueError(f"interval_min ({imin}) must not exceed interval_max ({imax})")
        return cls(
            address_type_code(address_type),
            imin,
            imax,
            bounded_int(supervision_timeout, "supervision_timeout", 10, 3200),
            bounded_int(latency, "latency", 0, 500),
        )


def open_connection(
    protocol: BGAPIProtocol, address: str, params: ConnectionParams, seconds: float, events: LinkEvents
) -> BGAPILink:
    """Connect to ``address`` and return its link, registered with ``protocol``.

    Args:
        protocol: the dongle's router.
        address: the peer's address (validated).
        params: the connection parameters.
        seconds: the deadline for the whole connect.
        events: where the link reports notifications and an unasked disconnect.

    Raises:
        NotConnectedError: refused, failed or timed out; the reason is in the message.
    """
    deadline = time.monotonic() + seconds

    def accepts(message: Message) -> bool:
        if message.name == "connection_status":
            return bool(message["address"] == address)
        return message.name == "connection_disconnected"

    with protocol.inbox(accepts) as inbox:
        response = protocol.command(
            "gap_connect_direct",
            wait=max(0.001, deadline - time.monotonic()),
            address=address,
            addr_type=params.address_type,
            conn_interval_min=params.interval_min,
            conn_interval_max=params.interval_max,
            timeout=params.supervision_timeout,
            latency=params.latency,
        )
        if response["result"]:
            raise NotConnectedError(f"Connecting to {address} failed: {describe(response['result'])}")
        link = BGAPILink(protocol, address, response["connection_handle"], events)
        protocol.add_listener(link.connection, link)
        try:
            _await_connection(protocol, inbox, link, deadline, seconds)
        except BaseException:
            protocol.remove_listener(link.connection, link)
            raise
    return link


def _await_connection(
    protocol: BGAPIProtocol, inbox: EventInbox, link: BGAPILink, deadline: float, seconds: float
) -> None:
    while True:
        try:
            message = inbox.get(deadline, f"the connection to {link.address}")
        except ExpectedResponseTimeout:
            end_procedure(protocol)
            raise NotConnectedError(f"Timed out connecting to {link.address} after {seconds:g} s") from None
        if message.name == "connection_disconnected":
            if message["connection"] != link.connection:
                continue
            raise NotConnectedError(f"Connecting to {link.address} failed: {describe(message['reason'])}")
        if message["flags"] & ConnectionFlag.CONNECTED:
            if message["connection"] != link.connection:  # the dongle moved it: follow
                protocol.remove_listener(link.connection, link)
                link.connection = message["connection"]
                protocol.add_listener(link.connection, link)
            link.on_status(message)
            return
        flags = message["flags"]
        raise NotConnectedError(f"Connecting to {link.address} failed (connection_status flags 0x{flags:02x})")


def end_procedure(protocol: BGAPIProtocol) -> None:
    """Stop a connect still being tried (gap_end_procedure); failures are only logged."""
    try:
        result = protocol.command("gap_end_procedure")["result"]
        if result:
            log.debug("gap_end_procedure: %s", describe(result))
    except (ExpectedResponseTimeout, NotConnectedError) as exc:
        log.warning("Ending the GAP procedure failed: %s", exc)
