"""Turn a BGAPI result code into the exception a caller gets.

ATT errors (0x04xx) become the same typed :class:`~pygatt.exceptions.GATTError`
subclasses as on the other backends (``ReadNotPermittedError`` for 0x0402, ...).
Each is also a :class:`~pygatt.backends.bgapi.exceptions.BGAPIError`, the class
pygatt 5.0.0 raised for failed BGAPI operations, so old ``except`` clauses still
catch it. Other result codes become a ``BGAPIError`` naming the code.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Type

from pygatt import exceptions
from pygatt.backends.bgapi.error_codes import att_error_of, describe, name_of
from pygatt.backends.bgapi.exceptions import BGAPIError, CommandFailed

NOT_CONNECTED = 0x0186


def _bgapi_variant(base: Type[exceptions.GATTError]) -> Type[exceptions.GATTError]:
    doc = f"{base.__doc__ or base.__name__} Raised by the BGAPI backend (also a BGAPIError)."
    variant = type(f"BGAPI{base.__name__}", (base, BGAPIError), {"__doc__": doc, "__module__": __name__})
    return variant


_VARIANTS: Dict[Type[exceptions.GATTError], Type[exceptions.GATTError]] = {}
_BASES: List[Type[exceptions.GATTError]] = [exceptions.GATTError, *exceptions.ATT_ERROR_CLASSES.values()]
for _base in _BASES:
    if _base not in _VARIANTS:
        _VARIANTS[_base] = _bgapi_variant(_base)


def att_exception(operation: str, target: Optional[str], return_code: int) -> exceptions.GATTError:
    """The typed GATT error for an ATT result code (0x04xx).

    Args:
        operation: what was attempted (``"read"``, ``"write"``, ...).
        target: the handle (``"0x002a"``) or UUID it was about.
        return_code: the dongle's result code.

    Returns:
        An instance of the GATTError subclass for the ATT code that is also a BGAPIError.
    """
    att = att_error_of(return_code)
    base = exceptions.ATT_ERROR_CLASSES.get(att if att is not None else -1, exceptions.GATTError)
    what = f"{operation} {target}" if target else operation
    error = _VARIANTS[base](
        f"{what} failed: {describe(return_code)}",
        operation=operation,
        target=target,
        reason=name_of(return_code),
        att_error=att,
    )
    error.return_code = return_code  # type: ignore[attr-defined]
    return error


def result_error(operation: str, target: Optional[str], return_code: int) -> exceptions.BLEError:
    """The exception for a non-zero result of ``operation``.

    Args:
        operation: what was attempted.
        target: the handle or UUID it was about, if any.
        return_code: the dongle's result code (not 0).

    Returns:
        A typed GATTError for ATT codes, NotConnectedError for "not connected",
        else a BGAPIError carrying the code's name and number.
    """
    if att_error_of(return_code) is not None:
        return att_exception(operation, target, return_code)
    what = f"{operation} {target}" if target else operation
    if return_code == NOT_CONNECTED:
        return exceptions.NotConnectedError(f"{what} failed: {describe(return_code)}")
    return CommandFailed(what, return_code)
