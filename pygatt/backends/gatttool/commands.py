"""The gatttool commands pygatt sends, each defined once: its line, what ends it, its result.

A :class:`Family` says how gatttool answers a command family (which output
lines are its results, whether it prints a listing, whether only the prompt
ends it). A :class:`Command` is one line to send plus the function that turns
the result lines into what the caller gets. Builders below take arguments that
are already validated; none of them can produce a line break.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, FrozenSet, Generic, List, Optional, Sequence, Tuple, Type, TypeVar

from pygatt.backends.gatttool import parser
from pygatt.util import uuid16_to_uuid

if TYPE_CHECKING:
    import uuid

T = TypeVar("T")


@dataclass(frozen=True)
class Family:
    """How gatttool answers one command family.

    Attributes:
        name: the command word, e.g. ``"char-read-hnd"``; also the family name in error lines.
        results: the parser events that answer it.
        listing: it prints any number of result lines (ended by quiet after a prompt).
        ends_at_prompt: it prints no result; the prompt after its echo ends it.
    """

    name: str
    results: Tuple[Type[Any], ...] = ()
    listing: bool = False
    ends_at_prompt: bool = False


CONNECT = Family("connect", (parser.Connected,))
CHAR_READ_HND = Family("char-read-hnd", (parser.ReadValue,))
CHAR_READ_UUID = Family("char-read-uuid", (parser.UUIDValue,))
CHAR_WRITE_REQ = Family("char-write-req", (parser.WriteAccepted,))
CHAR_WRITE_CMD = Family("char-write-cmd", ends_at_prompt=True)
CHARACTERISTICS_FAMILY = Family("characteristics", (parser.CharacteristicFound,), listing=True)
CHAR_DESC_FAMILY = Family("char-desc", (parser.DescriptorFound,), listing=True)
PRIMARY_FAMILY = Family("primary", (parser.ServiceFound,), listing=True)
MTU = Family("mtu", (parser.MTUExchanged,))
SEC_LEVEL = Family("sec-level", ends_at_prompt=True)
DISCONNECT_FAMILY = Family("disconnect", ends_at_prompt=True)

FAMILIES = {
    family.name: family
    for family in (
        CONNECT,
        CHAR_READ_HND,
        CHAR_READ_UUID,
        CHAR_WRITE_REQ,
        CHAR_WRITE_CMD,
        CHARACTERISTICS_FAMILY,
        CHAR_DESC_FAMILY,
        PRIMARY_FAMILY,
        MTU,
        SEC_LEVEL,
        DISCONNECT_FAMILY,
    )
}


def _nothing(results: Sequence[Any]) -> None:
    return None


def _first_value(results: Sequence[Any]) -> bytes:
    return bytes(results[0].value)


def _all(results: Sequence[Any]) -> List[Any]:
    return list(results)


def _mtu(results: Sequence[Any]) -> int:
    return int(results[0].mtu)


#: The attribute type of a characteristic declaration: one per line of ``characteristics``.
CHARACTERISTIC_DECLARATION = uuid16_to_uuid(0x2803)


def _declarations(descriptors: Sequence[Any]) -> FrozenSet[int]:
    """The handles of the characteristic declarations in a ``char-desc`` listing."""
    return frozenset(d.handle for d in descriptors if d.uuid == CHARACTERISTIC_DECLARATION)


@dataclass(frozen=True)
class Command(Generic[T]):
    """One line for gatttool and how to read its answer.

    Attributes:
        family: how gatttool answers it.
        line: the text sent (no line break).
        target: the handle or UUID it is about, for messages.
        result: turns the family's result events into the caller's value.
        expected_from: for a listing sent as the end marker of the listing before it: given that
            listing's results, the handles of the result lines that complete this one (see
            :mod:`.tracker`). None: only the sync marker can end it.
    """

    family: Family
    line: str
    target: Optional[str] = None
    result: Callable[[Sequence[Any]], T] = field(default=_nothing)  # type: ignore[assignment]
    expected_from: Optional[Callable[[Sequence[Any]], FrozenSet[int]]] = None

    def __post_init__(self) -> None:
        line = self.line
        if "\n" in line or "\r" in line or "\0" in line:
            raise ValueError(f"refusing a gatttool command with a line break: {self.line!r}")

    def describe(self) -> str:
        """``"char-read-hnd 0x002a"``: the command family and what it was about."""
        return f"{self.family.name} {self.target}" if self.target else self.family.name


def _handle(handle: int) -> str:
    return f"0x{handle:04x}"


def connect(address: str, address_type: str) -> Command[None]:
    """``connect AA:BB:CC:DD:EE:FF public|random``."""
    return Command(CONNECT, f"connect {address} {address_type}", address)


@functools.lru_cache(maxsize=256)
def read_handle(handle: int) -> Command[bytes]:
    """``char-read-hnd 0xHHHH`` -> the value (built once per handle: commands are immutable)."""
    return Command(CHAR_READ_HND, f"char-read-hnd {_handle(handle)}", _handle(handle), _first_value)


def read_uuid(characteristic: uuid.UUID) -> Command[bytes]:
    """``char-read-uuid UUID`` -> the first match's value."""
    return Command(CHAR_READ_UUID, f"char-read-uuid {characteristic}", str(characteristic), _first_value)


def write(handle: int, value: bytes, with_response: bool) -> Command[None]:
    """``char-write-req`` / ``char-write-cmd 0xHHHH hex``."""
    family = CHAR_WRITE_REQ if with_response else CHAR_WRITE_CMD
    return Command(family, f"{family.name} {_handle(handle)} {value.hex()}", _handle(handle))


def exchange_mtu(mtu: int) -> Command[int]:
    """``mtu N`` -> the MTU now in use."""
    return Command(MTU, f"mtu {mtu}", str(mtu), _mtu)


def sec_level(level: str) -> Command[None]:
    """``sec-level low|medium|high``."""
    if level not in ("low", "medium", "high"):
        raise ValueError(f"sec-level must be low, medium or high, got {level!r}")
    return Command(SEC_LEVEL, f"sec-level {level}", level)


CHARACTERISTICS: Command[List[Any]] = Command(CHARACTERISTICS_FAMILY, "characteristics", result=_all)
#: ``characteristics`` sent right after ``char-desc`` (as its end marker): it is complete once it has
#: listed every characteristic declaration ``char-desc`` listed (one line per 0x2803 attribute).
CHARACTERISTICS_AFTER_DESC: Command[List[Any]] = Command(
    CHARACTERISTICS_FAMILY, "characteristics", result=_all, expected_from=_declarations
)
CHAR_DESC: Command[List[Any]] = Command(CHAR_DESC_FAMILY, "char-desc", result=_all)
PRIMARY: Command[List[Any]] = Command(PRIMARY_FAMILY, "primary", result=_all)
DISCONNECT: Command[None] = Command(DISCONNECT_FAMILY, "disconnect")
