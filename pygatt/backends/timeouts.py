"""``timeout=None`` on a backend method: the default its signature shows.

pygatt 5.0.0 accepted ``None`` for its timeouts (as no deadline with gatttool, as its
default with BGAPI). Here every wait has a deadline, so a script that passes ``None``
gets the method's default instead of a ``TypeError``. The slot and the default are
found once, when a method is decorated, so a call pays for one or two checks.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


class TimeoutSlot:
    """Where a method takes ``timeout``, and its default.

    Args:
        func: the method (its signature must have a ``timeout`` parameter with a default).
        skip: leading parameters the caller does not pass positionally (``self``, a device).

    Raises:
        TypeError: ``func`` has no ``timeout`` parameter with a default.
    """

    def __init__(self, func: Callable[..., Any], skip: int = 0) -> None:
        parameters = list(inspect.signature(func).parameters.values())
        names = [parameter.name for parameter in parameters]
        if "timeout" not in names or parameters[names.index("timeout")].default is inspect.Parameter.empty:
            raise TypeError(f"{func.__qualname__} has no timeout parameter with a default")
        timeout = parameters[names.index("timeout")]
        self.default: float = timeout.default
        # None when timeout is keyword-only: then only kwargs can hold it
        self.position: Optional[int] = (
            None if timeout.kind is inspect.Parameter.KEYWORD_ONLY else names.index("timeout") - skip
        )

    def fill(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, ...]:
        """Put the default where the call has ``timeout=None`` (in ``kwargs``, in place); return the arguments."""
        if "timeout" in kwargs:
            if kwargs["timeout"] is None:
                kwargs["timeout"] = self.default
        elif self.position is not None and len(args) > self.position and args[self.position] is None:
            args = (*args[: self.position], self.default, *args[self.position + 1 :])
        return args


def none_means_default(func: F) -> F:
    """Decorate a method so that ``timeout=None``, by keyword or by position, is its default."""
    slot = TimeoutSlot(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*slot.fill(args, kwargs), **kwargs)

    return cast("F", wrapper)


__all__ = ["TimeoutSlot", "none_means_default"]
