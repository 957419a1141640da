"""Helpers shared by the tests: the mocked gatttool's address, polling with a deadline, the fake spawn."""

from __future__ import annotations

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
