"""Shared fixtures: a backend wired to the mocked gatttool child."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, List
from unittest import mock

import pytest

import pygatt
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


@pytest.fixture
def fake_spawn() -> Iterator[FakeFactory]:
    factory = FakeFactory()
    with mock.patch("pygatt.backends.gatttool.process.spawn_on_pty", new=factory):
        yield factory


@pytest.fixture
def backend(fake_spawn: FakeFactory) -> Iterator[pygatt.GATTToolBackend]:
    threads_before = set(threading.enumerate())
    backend = pygatt.GATTToolBackend()
    backend.start(reset_on_start=False)
    yield backend
    backend.stop()
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leftover, f"threads outlived the backend: {leftover}"


@pytest.fixture
def device(backend: pygatt.GATTToolBackend):
    return backend.connect(ADDRESS)
