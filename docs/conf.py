"""Sphinx configuration for the pygatt documentation.

Builds offline with only ``pip install ".[docs]"``::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.abspath(".."))

import pygatt  # noqa: E402  (after the path tweak, so a checkout documents itself)

project = "pygatt"
author = "pygatt developers"
copyright = "2026, pygatt developers"
release = pygatt.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = False

html_theme = "alabaster"
html_title = f"pygatt {release}"

# -- autodoc ---------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autoclass_content = "both"  # the class docstring, then __init__'s (where the arguments are described)
autodoc_default_options = {"show-inheritance": True}

# -- MyST ------------------------------------------------------------------------

myst_heading_anchors = 3  # [text](page.md#a-heading) links

# -- docstrings in the pygatt 5.0.0 style ----------------------------------------
#
# Many docstrings describe arguments as ``name -- what it is`` lines, as pygatt
# 5.0.0 did. Rendered as is, those lines run together into one paragraph. This
# hook turns each such line whose name is a real parameter of the documented
# callable into a ``:param name:`` field, so it renders as a parameter list
# (merged with the type hints). The source files are not changed.

_ARG_LINE = re.compile(r"^(?P<indent>\s*)(?P<name>[A-Za-z_][A-Za-z0-9_]*) -- (?P<text>.*)$")


def _parameter_names(obj: Any) -> List[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return []


def _dash_arguments_to_fields(app: Any, what: str, name: str, obj: Any, options: Any, lines: List[str]) -> None:
    if what not in ("class", "method", "function", "exception"):
        return
    names = set(_parameter_names(obj)) - {"self"}
    if not names:
        return
    out: List[str] = []
    field_indent: Optional[int] = None  # indentation of the field list being built
    for line in lines:
        match = _ARG_LINE.match(line)
        if match and match.group("name") in names:
            indent = len(match.group("indent"))
            if field_indent is None and out and out[-1].strip():
                out.append("")  # a field list must not continue a paragraph
            field_indent = indent
            out.append(f"{match.group('indent')}:param {match.group('name')}: {match.group('text')}")
            continue
        if field_indent is not None:
            stripped = line.strip()
            current = len(line) - len(line.lstrip())
            if stripped and current > field_indent:
                out.append(" " * (field_indent + 3) + stripped)  # continuation of the field
                continue
            if stripped:
                out.append("")  # end the field list before the next paragraph
            field_indent = None
        out.append(line)
    lines[:] = out


# -- cross-references to the short import paths -----------------------------------
#
# Each object is documented once, at one path; docstrings and type hints also
# name it by its other import paths (``pygatt.GATTToolBackend`` is
# ``pygatt.backends.gatttool.gatttool.GATTToolBackend``). Resolve those aliases
# to the documented object instead of leaving them unlinked.

_ALIASES: Dict[str, str] = {
    "pygatt.GATTToolBackend": "pygatt.backends.gatttool.gatttool.GATTToolBackend",
    "pygatt.backends.GATTToolBackend": "pygatt.backends.gatttool.gatttool.GATTToolBackend",
    "pygatt.backends.gatttool.GATTToolBackend": "pygatt.backends.gatttool.gatttool.GATTToolBackend",
    "pygatt.backends.GATTToolBLEDevice": "pygatt.backends.gatttool.device.GATTToolBLEDevice",
    "pygatt.backends.gatttool.GATTToolBLEDevice": "pygatt.backends.gatttool.device.GATTToolBLEDevice",
    "pygatt.backends.ToolCommands": "pygatt.backends.gatttool.tools.ToolCommands",
    "pygatt.backends.gatttool.ToolCommands": "pygatt.backends.gatttool.tools.ToolCommands",
    "pygatt.BLEDevice": "pygatt.device.BLEDevice",
    "pygatt.BLEError": "pygatt.exceptions.BLEError",
    "pygatt.BLEAddressType": "pygatt.backends.BLEAddressType",
    "pygatt.BGAPIBackend": "pygatt.backends.BGAPIBackend",
    "pygatt.backends.bgapi.BGAPIBackend": "pygatt.backends.BGAPIBackend",
    "pygatt.backends.bgapi.bgapi.BGAPIBackend": "pygatt.backends.BGAPIBackend",
}


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    domain = env.get_domain("py")
    real = _ALIASES.get(target)
    if real is None and target and "." not in target:
        # A bare class name (``BLEError``) that names exactly one documented object.
        matches = [name for name in domain.objects if name.rsplit(".", 1)[-1] == target]
        real = matches[0] if len(matches) == 1 else None
    if real is None:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], real, node, contnode)


def setup(app: Any) -> Dict[str, Any]:
    app.connect("autodoc-process-docstring", _dash_arguments_to_fields)
    app.connect("missing-reference", _resolve_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
