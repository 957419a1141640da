"""``python -m bench.gaps``: each variant does what it says, against the simulated gatttool on real ptys.

Nothing is timed here: the tests check that every side ran and that each variant's
replacement behaves (lines counted, chunks decoded once), not how fast anything was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest

from bench import gaps
from bench.common import world_file
from bench.gatttool import connected
from pygatt.backends.gatttool.parser import Event, Notification, Prompt, WriteAccepted
from pygatt.testing import load_world

PROMPT = "\x1b[0;94m[C4:7C:8D:6A:3E:01]\x1b[0m[LE]> "
NOTIFICATION = "\r" + " " * 36 + "\rNotification handle = 0x000b value: 01 02 \r\n" + PROMPT


def test_every_write_side_runs_and_the_limit_is_the_unit(tmp_path: Path) -> None:
    heart = world_file(load_world("heart-rate"), str(tmp_path), "heart")
    ratios = gaps.write_gaps(heart, rounds=2, writes=5, blocks=1)
    assert list(ratios) == [
        "library",
        "library, os.write instead of pexpect's send",
        "session alone (no API, backend or link layers)",
        "session alone, each distinct chunk decoded once",
        "floor",
        "limit",
    ]
    assert ratios["limit"] == [1.0, 1.0]
    assert all(len(values) == 2 and all(value > 0 for value in values) for values in ratios.values())


def test_every_flood_side_gets_its_whole_block(tmp_path: Path) -> None:
    # each side's block raises unless exactly `block` notifications (or counted lines) arrived
    ratios = gaps.flood_gaps(str(tmp_path), rounds=1, block=300, blocks=1)
    assert len(ratios) == 7
    assert ratios["limit"] == [1.0]
    assert all(len(values) == 1 and values[0] > 0 for values in ratios.values())


def test_memoized_feed_decodes_each_chunk_once_and_hands_out_copies(tmp_path: Path) -> None:
    heart = world_file(load_world("heart-rate"), str(tmp_path), "heart")
    backend, device = connected(heart)
    try:
        session = gaps.session_of(backend, device)
        decoder = session._decoder
        calls: List[str] = []
        decode = decoder.feed

        def counting(data: str) -> List[Event]:
            calls.append(data)
            return decode(data)

        decoder.feed = counting  # type: ignore[method-assign]
        gaps.memoized_feed(session)
        answer = "\r" + " " * 36 + "\rCharacteristic value was written successfully\r\n" + PROMPT
        first = session._decoder.feed(answer)
        second = session._decoder.feed(answer)
        assert first == second == [WriteAccepted(), Prompt("C4:7C:8D:6A:3E:01", True)]
        assert first is not second
        assert calls == [answer]
    finally:
        backend.stop()


def test_counted_lines_count_marks_split_across_chunks(tmp_path: Path) -> None:
    heart = world_file(load_world("heart-rate"), str(tmp_path), "heart")
    backend, device = connected(heart)
    try:
        session = gaps.session_of(backend, device)
        counted = gaps.CountedLines(session, 2)
        text = NOTIFICATION * 5
        cut = text.index("Notification", len(NOTIFICATION)) + 5  # inside the second line's mark
        assert session._decoder.feed(text[:40]) == []  # off: the real decoder, which waits for the line's end
        counted.off()
        counted.on = True
        events = session._decoder.feed(text[:cut]) + session._decoder.feed(text[cut:])
        assert len(events) == 5
        assert all(type(event) is Notification and event.value == b"\x00\x00" for event in events)
        counted.off()
        assert session._decoder.feed(NOTIFICATION)[0] == Notification(0x000B, b"\x01\x02", False)
    finally:
        backend.stop()


def test_summary_counts_the_rounds_a_variant_beat_the_library() -> None:
    lines = gaps.summary({"library": [0.7, 0.8, 0.9], "variant": [0.8, 0.7, 1.0], "limit": [1.0, 1.0, 1.0]})
    assert lines[0].split() == ["library", "0.80", "[0.70-0.90]"]
    assert lines[1].endswith("above the library in 2 of 3 rounds")
    assert "above" not in lines[2]


@pytest.mark.parametrize("argv", [["--rounds", "x"], ["--bogus"]])
def test_bad_arguments_are_refused_before_measuring(argv: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def measured(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing should be measured")

    monkeypatch.setattr(gaps, "write_gaps", measured)
    with pytest.raises(SystemExit) as stopped:
        gaps.main(argv)
    assert stopped.value.code == 2


def test_quick_run_prints_every_side_and_keeps_every_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = tmp_path / "gaps.json"
    assert gaps.main(["--quick", "--json", str(kept)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(kept.read_text())
    assert results["rounds"] == 1
    for experiment in ("writes", "notify20"):
        for side, ratios in results[experiment].items():
            assert len(ratios) == 1
            assert side in printed
    assert "machine:" in printed and "load average" in printed
