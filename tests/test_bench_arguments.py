"""The benchmark's command line refuses what it cannot do before it measures anything."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import pytest

from bench import run


def test_plot_without_matplotlib_is_refused_before_measuring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError

    def measured(*args: object) -> None:
        raise AssertionError("nothing should be measured")

    monkeypatch.setattr(run.gatttool, "run", measured)
    png = tmp_path / "plot.png"
    with pytest.raises(SystemExit) as stopped:
        run.main(["--backend", "gatttool", "--plot", str(png)])
    assert stopped.value.code == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not png.exists()


def test_plotting_is_available_when_matplotlib_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    found = importlib.util.module_from_spec(importlib.machinery.ModuleSpec("matplotlib", None))
    monkeypatch.setitem(sys.modules, "matplotlib", found)
    assert run.plotting_available()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not run.plotting_available()
