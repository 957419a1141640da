"""Helpers shared by the tests: the mocked gatttool's address, polling with a deadline, the fake spawn."""

from __future__ import annotations

import threading
import time
from typing import Callable, List

from tests.fake_child import FakeGatttool

ADDRESS = "C4:7C:8D:6A:3E:01"


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def run_at_once(action: Callable[[], object], threads: int, timeout: float = 10.0) -> List[BaseException]:
    """Run ``action`` on ``threads`` threads at once; return what they raised (fails if one hangs)."""
    raised: List[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller, which asserts on it
            raised.append(exc)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in started), f"{action!r} hung for {timeout} s"
    return raised


class FakeFactory:
    """Replaces the gatttool spawn function: each spawn gets a fresh FakeGatttool."""

    def __init__(self) -> None:
        self.children: List[FakeGatttool] = []
        self.argv: List[List[str]] = []
        self.kwargs: List[dict] = []
        self.configure = lambda child: None

    def __call__(self, argv: List[str], env: dict, logfile: object) -> FakeGatttool:
        child = FakeGatttool(ADDRESS)
        self.configure(child)
        self.children.append(child)
        self.argv.append(list(argv))
        self.kwargs.append({"env": env, "logfile": logfile})
        return child

    @property
    def child(self) -> FakeGatttool:
        return self.children[-1]
