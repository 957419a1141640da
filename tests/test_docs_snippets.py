"""Every code block that README.md and docs/*.md show runs as written.

Each fenced block is a test of its own, named ``file:line``:

- ``python`` blocks run in a fresh interpreter, with ``PYGATT_SIMULATE=heart-rate``
  (so ``GATTToolBackend()`` talks to the simulated "Pulse HR" sensor) and this
  checkout first on ``sys.path``; they must exit with status 0.
- ``console`` blocks are transcripts: each ``$ `` line is a command run with bash,
  and the lines up to the next ``$ `` line are its expected output (stdout and
  stderr together). Times of day (``04:17:36.226``) and ``"time"`` values in JSON
  are masked before comparing, since they differ on every run.
- ``sh`` blocks are scripts run with ``bash -e``; they must exit with status 0.
- ``json`` blocks must parse.

Commands run in a scratch directory (one per markdown file) that holds a link to
the repository's ``examples/``, with a ``pygatt`` command on ``PATH`` that runs
this checkout (``python -m pygatt``).

A comment on the line before a block changes how it is treated (see
docs/contributing.md, "Code blocks in the documentation"):

- ``<!-- snippet: skip REASON -->``: not run; the test is reported as skipped
  with REASON (say why it cannot run here: it needs a radio, root, ...).
- ``<!-- snippet: output -->``: this block is the expected output (stdout) of
  the block above it, compared exactly.
- ``<!-- snippet: connected -->``: a ``python`` block that continues a session:
  it runs after ``import pygatt`` and with ``adapter`` (a started
  ``GATTToolBackend``) and ``device`` (connected to ``C4:7C:8D:6A:3E:01``)
  already defined; the adapter is stopped afterwards. ``connected bgapi``: the
  same with a ``BGAPIBackend`` (on the simulated dongle).
- ``<!-- snippet: file NAME -->``: the block is written to NAME in the scratch
  directory (for later blocks of the same page to run) instead of being run.
- ``<!-- snippet: one command -->``: a ``console`` block whose first line is its
  only command; every later line, even one starting with ``$``, is output.
- ``<!-- snippet: world -->``: a ``json`` block that must load as a simulated world.
- ``<!-- snippet: needs PROGRAM -->``: runs when PROGRAM (e.g. ``dbus-daemon``) is on
  ``PATH``; otherwise it is reported as skipped, naming the program.

Blocks in other languages (``text``, ``ini``, ...) are shown, not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"python", "console", "sh", "json"}
KNOWN_MARKERS = ("skip", "output", "connected", "file", "one command", "world", "needs")
SIMULATED_ADDRESS = "C4:7C:8D:6A:3E:01"
TIMEOUT_S = 120

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<text>.*?)\s*-->\s*$")
PROMPT = "$ "

CONNECTED_PRELUDE = f"""\
import atexit
import pygatt

adapter = pygatt.{{backend}}()
atexit.register(adapter.stop)
adapter.start()
device = adapter.connect({SIMULATED_ADDRESS!r})
"""
PRELUDE_BACKENDS = {"": "GATTToolBackend", "bgapi": "BGAPIBackend"}


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: Optional[str] = None  # the text after "snippet:", if any
    expected_output: Optional[str] = None  # from a following "output" block
    output_line: Optional[int] = None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def marker_kind(self) -> Optional[str]:
        if self.marker is None:
            return None
        for kind in KNOWN_MARKERS:
            if self.marker == kind or self.marker.startswith(kind + " "):
                return kind
        return "unknown"

    @property
    def marker_argument(self) -> str:
        kind = self.marker_kind or ""
        return (self.marker or "")[len(kind) :].strip()


@dataclass
class Page:
    path: Path
    blocks: List[Block] = field(default_factory=list)


def parse_page(path: Path) -> Page:
    """All fenced code blocks of a markdown file, with their markers.

    An ``output`` block is attached to the block before it instead of being a
    block of its own.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path)
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening.group("info").strip():
            if opening:  # a fence without a language: skip to its end
                index = _end_of_fence(lines, index, opening) + 1
                continue
            index += 1
            continue
        language = opening.group("info").strip().split()[0]
        end = _end_of_fence(lines, index, opening)
        indent = len(opening.group("indent"))
        body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[index + 1 : end])
        marker = _marker_before(lines, index)
        block = Block(path, index + 1, language, body + "\n", marker)
        if block.marker_kind == "output":
            assert page.blocks, f"{block.name}: an output block needs a block above it"
            previous = page.blocks[-1]
            previous.expected_output = block.text
            previous.output_line = block.line
        else:
            page.blocks.append(block)
        index = end + 1
    return page


def _end_of_fence(lines: List[str], start: int, opening: re.Match) -> int:
    fence = opening.group("fence")
    for index in range(start + 1, len(lines)):
        if lines[index].strip().startswith(fence) and not lines[index].strip().strip(fence[0]):
            return index
    raise AssertionError(f"unclosed code block at line {start + 1}")


def _marker_before(lines: List[str], index: int) -> Optional[str]:
    previous = index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None
    match = MARKER.match(lines[previous])
    return match.group("text") if match else None


ALL_PAGES = [parse_page(path) for path in PAGES]
RUNNABLE = [block for page in ALL_PAGES for block in page.blocks if block.language in RUN_LANGUAGES]


# -- the environment the blocks run in ----------------------------------------------------


@pytest.fixture(scope="session")
def shim_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a ``pygatt`` command that runs this checkout."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "pygatt"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pygatt "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    python = bin_dir / "python"
    python.symlink_to(sys.executable)
    return bin_dir


_WORKDIRS: Dict[Path, Path] = {}


@pytest.fixture
def workdir(block: Block, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch directory of the page the block is on, shared by its blocks."""
    if block.page not in _WORKDIRS:
        directory = tmp_path_factory.mktemp(block.page.stem)
        (directory / "examples").symlink_to(ROOT / "examples")
        page = next(page for page in ALL_PAGES if page.path == block.page)
        for other in page.blocks:
            if other.marker_kind == "file":
                (directory / other.marker_argument).write_text(other.text)
        _WORKDIRS[block.page] = directory
    return _WORKDIRS[block.page]


def environment(shim_bin: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYGATT_SIMULATE"] = "heart-rate"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as printed
    env["PATH"] = str(shim_bin) + os.pathsep + env.get("PATH", "")
    env["COLUMNS"] = "80"
    return env


def run(argv: List[str], cwd: Path, env: Dict[str, str], merge_stderr: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=TIMEOUT_S,
    )


# -- comparing output -----------------------------------------------------------------------

_TIME_OF_DAY = re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}\b")
_JSON_TIME = re.compile(r'"time": \d+(\.\d+)?')


def normalized(text: str) -> str:
    text = _TIME_OF_DAY.sub("HH:MM:SS.mmm", text)
    text = _JSON_TIME.sub('"time": T', text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def transcript(block: Block) -> List[Tuple[str, str]]:
    """(command, expected output) pairs of a console block."""
    pairs: List[Tuple[str, List[str]]] = []
    lines = block.text.rstrip("\n").splitlines()
    for number, line in enumerate(lines):
        if line.startswith(PROMPT) and (block.marker_kind != "one command" or number == 0):
            pairs.append((line[len(PROMPT) :], []))
        else:
            assert pairs, f"{block.name}: a console block starts with a '$ ' command"
            pairs[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in pairs]


# -- the tests ----------------------------------------------------------------------------------


def test_the_pages_have_runnable_blocks():
    """The collection itself works: the README and the guides contribute blocks."""
    names = {block.page.name for block in RUNNABLE}
    assert {"README.md", "getting-started.md", "cli.md"} <= names
    assert len(RUNNABLE) > 30


@pytest.mark.parametrize("block", [b for page in ALL_PAGES for b in page.blocks], ids=lambda b: b.name)
def test_markers_are_known_and_skips_say_why(block: Block):
    assert block.marker_kind != "unknown", f"{block.name}: unknown snippet marker {block.marker!r}"
    if block.marker_kind == "skip":
        assert len(block.marker_argument) >= 10, f"{block.name}: a skip needs a reason a reader accepts"
    if block.marker_kind == "connected":
        assert block.language == "python", f"{block.name}: 'connected' is for python blocks"
        assert block.marker_argument in PRELUDE_BACKENDS, f"{block.name}: 'connected' takes {sorted(PRELUDE_BACKENDS)}"
    if block.marker_kind == "needs":
        assert block.marker_argument and " " not in block.marker_argument, f"{block.name}: 'needs' names one program"
    if block.marker_kind in ("one command",):
        assert block.language == "console", f"{block.name}: '{block.marker_kind}' is for console blocks"
    if block.language == "console":
        assert block.text.startswith(PROMPT), f"{block.name}: a console block is a transcript of '$ ' commands"


@pytest.mark.simulator
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.name)
def test_snippet_runs_as_written(block: Block, workdir: Path, shim_bin: Path):
    if block.marker_kind == "skip":
        pytest.skip(f"marked in {block.page.name}: {block.marker_argument}")
    if block.marker_kind == "needs" and shutil.which(block.marker_argument) is None:
        pytest.skip(f"{block.page.name} needs {block.marker_argument}, which is not installed")
    if block.marker_kind == "file":
        assert (workdir / block.marker_argument).read_text() == block.text
        return
    env = environment(shim_bin)

    if block.language == "json":
        document = json.loads(block.text)
        if block.marker_kind == "world":
            from pygatt.testing.world import World

            world = World.from_json(block.text)
            assert world.peripherals, f"{block.name}: the world has no peripherals"
        else:
            assert document is not None
        return

    if block.language == "python":
        source = block.text
        if block.marker_kind == "connected":
            source = CONNECTED_PRELUDE.format(backend=PRELUDE_BACKENDS[block.marker_argument]) + "\n" + source
        script = workdir / f"snippet_{block.line}.py"
        script.write_text(source)
        proc = run([sys.executable, script.name], workdir, env, merge_stderr=False)
        assert proc.returncode == 0, f"{block.name} failed:\n{proc.stdout}\n{proc.stderr}"
        if block.expected_output is not None:
            assert normalized(proc.stdout) == normalized(block.expected_output), (
                f"{block.name}: the output shown at line {block.output_line} differs"
            )
        return

    if block.language == "sh":
        proc = run(["bash", "-e", "-c", block.text], workdir, env, merge_stderr=False)
        assert proc.returncode == 0, f"{block.name} failed:\n{proc.stdout}\n{proc.stderr}"
        if block.expected_output is not None:
            assert normalized(proc.stdout) == normalized(block.expected_output), (
                f"{block.name}: the output shown at line {block.output_line} differs"
            )
        return

    assert block.language == "console"
    for command, expected in transcript(block):
        proc = run(["bash", "-c", command], workdir, env, merge_stderr=True)
        assert normalized(proc.stdout) == normalized(expected), f"{block.name}: $ {command}"


# -- links outside the Sphinx build ---------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _heading_anchors(path: Path) -> set:
    """GitHub-style anchors of a markdown file's headings (what MyST generates too)."""
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            title = match.group(1).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", ["README.md", "CHANGELOG.md"])
def test_relative_links_resolve(name: str):
    """README.md and CHANGELOG.md are read on their own (on a forge, in the sdist),
    outside the Sphinx build that checks the links of docs/: their relative links
    must name files that exist, and headings that exist in them."""
    page = ROOT / name
    checked = 0
    for match in _LINK.finditer(page.read_text(encoding="utf-8")):
        target = match.group("target")
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL: not checked offline
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        assert linked.exists(), f"{name}: the link {target!r} names a missing file"
        if anchor:
            assert anchor in _heading_anchors(linked), f"{name}: the link {target!r} names a missing heading"
        checked += 1
    if name == "README.md":
        assert checked >= 10
