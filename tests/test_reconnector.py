"""The shared auto-reconnect thread (pygatt.reconnect.Reconnector), alone: no backend, no radio."""

from __future__ import annotations

import threading
from typing import List

from pygatt.exceptions import BLEError
from pygatt.reconnect import Reconnector
from tests.helpers import wait_for

ADDRESS = "C4:7C:8D:6A:3E:01"


def test_a_drop_reported_while_the_last_attempt_ends_is_attempted_again() -> None:
    """A link that drops again right after a successful attempt, before its thread has ended, is
    reconnected once more: schedule() then finds the thread alive, and that thread takes the request."""
    reconnector = Reconnector(delay=0.01)
    attempts: List[int] = []

    def attempt() -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:  # the new link drops before this attempt has returned
            assert not reconnector.schedule(ADDRESS, attempt, lambda: True)

    try:
        assert reconnector.schedule(ADDRESS, attempt, lambda: True)
        assert wait_for(lambda: reconnector.running() == 0, timeout=3)
        assert attempts == [1, 2]
    finally:
        reconnector.stop(1)


def test_retries_until_an_attempt_succeeds_then_a_new_drop_starts_a_new_thread() -> None:
    reconnector = Reconnector(delay=0.01)
    failures = {"left": 2}
    calls: List[str] = []

    def attempt() -> None:
        calls.append("attempt")
        if failures["left"]:
            failures["left"] -= 1
            raise BLEError("not yet")

    try:
        assert reconnector.schedule(ADDRESS, attempt, lambda: True)
        assert wait_for(lambda: reconnector.running() == 0, timeout=3)
        assert calls == ["attempt"] * 3
        assert reconnector.schedule(ADDRESS, attempt, lambda: True)  # the thread ended: a new one starts
        assert wait_for(lambda: len(calls) == 4 and reconnector.running() == 0, timeout=3)
    finally:
        reconnector.stop(1)


def test_stop_ends_a_reconnect_waiting_between_attempts_and_refuses_new_ones() -> None:
    reconnector = Reconnector(delay=30)
    tried = threading.Event()

    def attempt() -> None:
        tried.set()
        raise BLEError("the device is away")

    assert reconnector.schedule(ADDRESS, attempt, lambda: True)
    assert tried.wait(3)
    reconnector.stop(2)
    assert reconnector.running() == 0
    assert not reconnector.schedule(ADDRESS, attempt, lambda: True)


def test_an_unwanted_reconnect_makes_no_attempt() -> None:
    reconnector = Reconnector(delay=0.01)
    calls: List[int] = []
    try:
        assert reconnector.schedule(ADDRESS, lambda: calls.append(1), lambda: False)
        assert wait_for(lambda: reconnector.running() == 0, timeout=3)
        assert calls == []
    finally:
        reconnector.stop(1)


def test_an_attempt_that_succeeds_after_the_reconnect_was_given_up_is_undone() -> None:
    """disconnect() while an attempt connects: the attempt still succeeds, and ``undo`` closes its link."""
    reconnector = Reconnector(delay=0.01)
    state = {"wanted": True}
    undone: List[int] = []

    def attempt() -> None:
        state["wanted"] = False  # the device is disconnected on purpose while this attempt connects

    try:
        assert reconnector.schedule(ADDRESS, attempt, lambda: state["wanted"], lambda: undone.append(1))
        assert wait_for(lambda: reconnector.running() == 0, timeout=3)
        assert undone == [1]
    finally:
        reconnector.stop(1)
