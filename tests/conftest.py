"""Shared fixtures: a backend wired to the mocked gatttool child."""

from __future__ import annotations

import threading
from typing import Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, settings

import pygatt
from tests.helpers import ADDRESS, FakeFactory

# Property tests assert behaviour, never speed: hypothesis's per-example deadline (200 ms) and its
# "too slow" health check would fail them whenever a shared 2-core machine is busy elsewhere.
settings.register_profile("pygatt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pygatt")


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


@pytest.fixture
def no_simulation_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --simulate the CLI must run the real programs (or the real port, or the real bus)."""
    monkeypatch.delenv("PYGATT_SIMULATE", raising=False)
