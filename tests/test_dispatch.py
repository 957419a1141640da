"""CallbackDispatcher: order, batches, the drop policy for notifications, and stop()."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Iterator, List, Tuple

import pytest

from pygatt.dispatch import BATCH_CALL_VALUES, RUN_BATCH, CallbackDispatcher


@contextlib.contextmanager
def held(max_pending: int) -> Iterator[Tuple[CallbackDispatcher, threading.Event]]:
    """A started dispatcher whose callback thread is held until the yielded gate is set: nothing leaves
    its queue meanwhile. Stopped (and the gate set) on the way out."""
    dispatcher = CallbackDispatcher(max_pending=max_pending)
    dispatcher.start()
    gate, entered = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        gate.wait(5)

    try:
        dispatcher.submit(hold)
        assert entered.wait(5)
        yield dispatcher, gate
    finally:
        gate.set()
        assert dispatcher.stop(5)


def test_single_and_batched_calls_run_in_the_order_queued() -> None:
    dispatcher = CallbackDispatcher()
    dispatcher.start()
    seen: List[int] = []
    try:
        dispatcher.submit(seen.append, 0)
        assert dispatcher.submit_many(seen.append, [(n,) for n in range(1, 500)], droppable=True) == 499
        dispatcher.submit(seen.append, 500)
    finally:
        assert dispatcher.stop(5)
    assert seen == list(range(501))


def test_a_full_queue_keeps_the_first_of_a_batch_and_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    seen: List[Tuple[int, ...]] = []
    with held(max_pending=10) as (dispatcher, _):
        with caplog.at_level(logging.WARNING, logger="pygatt.dispatch"):
            assert dispatcher.submit_many(lambda *a: seen.append(a), [(n,) for n in range(8)], droppable=True) == 8
            assert dispatcher.submit_many(lambda *a: seen.append(a), [(n,) for n in range(8, 13)], droppable=True) == 2
            assert not dispatcher.submit(lambda *a: seen.append(a), 99, droppable=True)
        assert dispatcher.dropped == 4
        assert dispatcher.submit(lambda *a: seen.append(a), 100)  # control work is never dropped
    assert seen == [(n,) for n in range(10)] + [(100,)]
    assert sum("cannot keep up" in r.getMessage() for r in caplog.records) == 1  # logged once, not per drop


def test_a_flood_from_a_reader_that_never_waits_loses_nothing_when_callbacks_keep_up() -> None:
    """The reader holds the GIL while output is ready; the throttle lets the callback thread keep up."""
    dispatcher = CallbackDispatcher()
    dispatcher.start()
    seen: List[int] = []
    try:
        for start in range(0, 100_000, 25):
            dispatcher.submit_many(seen.append, [(n,) for n in range(start, start + 25)], droppable=True)
    finally:
        assert dispatcher.stop(10)
    assert dispatcher.dropped == 0
    assert seen == list(range(100_000))


def test_a_stuck_callback_holds_the_reader_back_once_not_per_batch() -> None:
    with held(max_pending=100) as (dispatcher, _):
        for start in range(0, 2000, 20):  # 100 batches; a 2 ms hold each would take 0.2 s or more
            dispatcher.submit_many(lambda n: None, [(n,) for n in range(start, start + 20)], droppable=True)
        assert dispatcher.dropped == 1900


def test_room_comes_back_as_callbacks_run() -> None:
    dispatcher = CallbackDispatcher(max_pending=5)
    dispatcher.start()
    done = threading.Event()
    try:
        for _ in range(4):
            finished = threading.Event()
            assert dispatcher.submit_many(lambda n: None, [(n,) for n in range(5)], droppable=True) == 5
            dispatcher.submit(finished.set)
            assert finished.wait(5)
        dispatcher.submit(done.set)
        assert done.wait(5)
    finally:
        dispatcher.stop(5)
    assert dispatcher.dropped == 0


def stop_discarding_while_held(
    dispatcher: CallbackDispatcher, entered: threading.Event, release: threading.Event
) -> None:
    """Once the first queued call has ``entered`` (and waits for ``release``), stop ``dispatcher``
    with discard on another thread, let that call finish once the queue is cleared, and check
    that stop() returned."""
    assert entered.wait(5)
    stopper = threading.Thread(target=dispatcher.stop, args=(5, True))
    stopper.start()
    deadline = time.monotonic() + 5
    while dispatcher.pending():  # stop() clears the queue before it waits for the thread
        assert time.monotonic() < deadline, "stop() did not clear the queue"
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()


def test_stop_with_discard_runs_nothing_more_of_a_batch_taken_off_the_queue() -> None:
    dispatcher = CallbackDispatcher()
    dispatcher.start()
    entered, release = threading.Event(), threading.Event()
    seen: List[int] = []

    def first(n: int) -> None:
        if n == 0:
            entered.set()
            release.wait(5)
        seen.append(n)

    dispatcher.submit_many(first, [(n,) for n in range(RUN_BATCH * 2)], droppable=True)
    stop_discarding_while_held(dispatcher, entered, release)
    assert seen == [0]


def test_a_large_batch_runs_as_calls_of_bounded_size_in_order() -> None:
    dispatcher = CallbackDispatcher()
    dispatcher.start()
    seen: List[List[int]] = []
    try:
        assert dispatcher.submit_batch(seen.append, list(range(3 * BATCH_CALL_VALUES + 5))) == 3 * BATCH_CALL_VALUES + 5
    finally:
        assert dispatcher.stop(5)
    assert [len(call) for call in seen] == [BATCH_CALL_VALUES] * 3 + [5]
    assert [n for call in seen for n in call] == list(range(3 * BATCH_CALL_VALUES + 5))


def test_stop_with_discard_runs_no_more_of_a_large_batch_than_the_call_under_way() -> None:
    """A chunk of output can carry hundreds of notifications: stop() must not wait for them all
    (a slow callback would keep running long after stop() gave up waiting)."""
    dispatcher = CallbackDispatcher()
    dispatcher.start()
    entered, release = threading.Event(), threading.Event()
    seen: List[int] = []

    def deliver(values: List[int]) -> None:
        if values[0] == 0:
            entered.set()
            release.wait(5)
        seen.extend(values)

    dispatcher.submit_batch(deliver, list(range(5000)))
    stop_discarding_while_held(dispatcher, entered, release)
    assert seen == list(range(BATCH_CALL_VALUES))


def test_a_stopped_dispatcher_queues_nothing() -> None:
    dispatcher = CallbackDispatcher()
    assert dispatcher.submit_many(print, [(1,)]) == 0
    assert not dispatcher.submit(print, 1)


def test_a_batch_counts_each_value_and_keeps_what_fits() -> None:
    seen: List[List[int]] = []
    with held(max_pending=10) as (dispatcher, gate):
        assert dispatcher.submit_batch(seen.append, list(range(6))) == 6
        assert dispatcher.submit_batch(seen.append, list(range(6, 12))) == 4  # 10 values wait: the rest dropped
        assert dispatcher.submit_batch(seen.append, [12]) == 0
        assert dispatcher.dropped == 3
        gate.set()
        done = threading.Event()
        dispatcher.submit(done.set)
        assert done.wait(5)
        assert dispatcher.submit_batch(seen.append, list(range(20, 30))) == 10  # the delivered values made room
    assert seen == [list(range(6)), list(range(6, 10)), list(range(20, 30))]


def test_single_droppable_calls_are_throttled_like_batches() -> None:
    """Backends that queue one notification per event (BGAPI, D-Bus) get the same flood protection."""
    slow_seen: List[int] = []

    def slow(n: int) -> None:  # slower than the producer: without the throttle the queue would overflow
        slow_seen.append(n)
        for _ in range(200):
            pass

    dispatcher = CallbackDispatcher(max_pending=1000)
    dispatcher.start()
    try:
        for n in range(20_000):
            dispatcher.submit(slow, n, droppable=True)
    finally:
        assert dispatcher.stop(30)
    assert dispatcher.dropped == 0
    assert slow_seen == list(range(20_000))
