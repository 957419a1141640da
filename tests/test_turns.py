"""Turns per key (pygatt/backends/turns.py): what connect and reconnect take per address."""

from __future__ import annotations

import pytest

from pygatt.backends.turns import Turns
from pygatt.exceptions import NotConnectedError


def test_a_held_turn_makes_the_next_holder_of_the_key_fail_with_the_busy_message() -> None:
    turns = Turns()
    with turns.hold("AA", 1.0, "first"):
        with pytest.raises(NotConnectedError, match="^second busy$"):
            with turns.hold("AA", 0.05, "second busy"):
                pytest.fail("got a turn its key's holder still holds")
        with turns.hold("BB", 0.05, "other key"):  # another key's turn is free
            pass
    with turns.hold("AA", 0.05, "released"):  # released after the block, also after the failure
        pass


def test_a_turn_is_released_when_its_block_raises() -> None:
    turns = Turns()
    with pytest.raises(RuntimeError):
        with turns.hold("AA", 1.0, "busy"):
            raise RuntimeError("inside")
    with turns.hold("AA", 0.05, "not released"):
        pass
