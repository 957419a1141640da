"""``timeout=None`` as the method's default (pygatt.backends.timeouts), without any backend."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import pytest

from pygatt.backends.timeouts import TimeoutSlot, none_means_default


class Calls:
    @none_means_default
    def scan(self, timeout: float = 10, run_as_root: bool = False) -> Any:
        return timeout, run_as_root

    @none_means_default
    def write(self, handle: int, value: bytes, *, timeout: float = 30) -> Any:
        return handle, value, timeout


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.scan(), (10, False)),
        (lambda c: c.scan(None), (10, False)),
        (lambda c: c.scan(timeout=None), (10, False)),
        (lambda c: c.scan(None, True), (10, True)),
        (lambda c: c.scan(2.5), (2.5, False)),
        (lambda c: c.scan(timeout=0.5, run_as_root=True), (0.5, True)),
        (lambda c: c.write(3, b"x", timeout=None), (3, b"x", 30)),
        (lambda c: c.write(3, None), (3, None, 30)),  # keyword-only: a None elsewhere is left alone
    ],
)
def test_none_is_replaced_by_the_default_and_nothing_else(call: Any, expected: Any) -> None:
    assert call(Calls()) == expected


def test_the_signature_is_the_methods_own() -> None:
    parameters = inspect.signature(Calls.scan).parameters
    assert list(parameters) == ["self", "timeout", "run_as_root"]
    assert parameters["timeout"].default == 10


def test_skip_counts_leading_parameters_the_caller_does_not_pass() -> None:
    def method(self: Any, device: Any, handle: int, timeout: float = 4) -> None: ...

    slot = TimeoutSlot(method, skip=2)
    kwargs: dict = {}
    assert slot.fill((0x10, None), kwargs) == (0x10, 4) and kwargs == {}
    kwargs = {"timeout": None}
    assert slot.fill((0x10,), kwargs) == (0x10,) and kwargs == {"timeout": 4}


def test_a_method_without_a_defaulted_timeout_is_refused_when_decorated() -> None:
    def no_timeout(self: Any) -> None: ...

    def no_default(self: Any, timeout: Optional[float]) -> None: ...

    for method in (no_timeout, no_default):
        with pytest.raises(TypeError, match="no timeout parameter"):
            none_means_default(method)
