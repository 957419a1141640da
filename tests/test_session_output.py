"""The session's memory of gatttool's recent output (quoted in error messages)."""

from __future__ import annotations

from pygatt.backends.gatttool.session import RecentOutput


def test_recent_output_keeps_the_last_characters_across_chunks() -> None:
    recent = RecentOutput(limit=10)
    assert recent.text() == ""
    recent.add("abc")
    recent.add("defgh")
    assert recent.text() == "abcdefgh"
    recent.add("ijklmnopqrstuvwxyz")
    assert recent.text() == "qrstuvwxyz"


def test_recent_output_stays_bounded_under_many_chunks() -> None:
    recent = RecentOutput(limit=100)
    text = "".join(f"{n:05d}" for n in range(10_000))
    for start in range(0, len(text), 7):
        recent.add(text[start : start + 7])
    assert recent.text() == text[-100:]
    assert sum(len(chunk) for chunk in recent._chunks) <= 2 * 100 + 7
