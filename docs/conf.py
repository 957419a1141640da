"""Sphinx configuration for the pygatt documentation.

Builds offline with only ``pip install ".[docs]"``; warnings are errors and
every cross-reference must resolve (``-n``, nitpicky)::

    python -m sphinx -E -W --keep-going -n -b html docs docs/_build/html
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import tempfile
import zlib
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.abspath(".."))

import pygatt  # noqa: F401  (after the path tweak, so a checkout documents itself)


def _project_version() -> str:
    """The version in pyproject.toml: the one this checkout builds.

    Not ``pygatt.__version__``, which comes from the metadata of whatever
    distribution named pygatt is installed, possibly another release.
    """
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyproject.toml")) as pyproject:
        match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read())
    if match is None:
        raise RuntimeError("pyproject.toml names no version")
    return match.group(1)


project = "pygatt"
author = "pygatt developers"
copyright = "2026, pygatt developers"
release = _project_version()
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "myst_parser",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
nitpicky = True  # every reference must resolve; `-n` on the command line says the same
# References that resolve to nothing yet, each with what would fix it. Keep this short.
nitpick_ignore = [
    # pygatt/dispatch.py: `dropped` is an instance attribute that CallbackDispatcher's
    # docstring does not list yet (an `Attributes:` section would document it).
    ("py:attr", "CallbackDispatcher.dropped"),
    # The BGAPI backend's type hints name its internal layers, which the API
    # reference does not document (they are not for users): the serial-port
    # lister type, the link and protocol objects, the connection parameters.
    ("py:class", "util.ComportsFunction"),
    ("py:class", "pygatt.backends.bgapi.link.BGAPILink"),
    ("py:class", "pygatt.backends.bgapi.protocol.BGAPIProtocol"),
    ("py:class", "ConnectionParams"),
    ("py:class", "pygatt.backends.bgapi.transport.SerialTransport"),
    # The D-Bus backend's agent hook names a message type of its bus layer (not for users).
    ("py:class", "pygatt.backends.dbus.bus.IncomingCall"),
]

# -- HTML: Furo, a responsive theme with a phone menu, "on this page" and prev/next ----

html_theme = "furo"
html_title = f"pygatt {release}"
html_short_title = "pygatt"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {"navigation_with_keys": True}
html_copy_source = False
html_show_sourcelink = False
pygments_style = "friendly"
pygments_dark_style = "monokai"

# The copy button copies commands, not prompts or output: in a `$ ` or `>>> `
# transcript only the prompted lines are copied, without the prompt.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True

# -- Python objects: short names -------------------------------------------------------

add_module_names = False  # "GATTToolBackend", not "pygatt.backends.gatttool.gatttool.GATTToolBackend"
python_use_unqualified_type_names = True  # "UUID" in signatures, linked to the standard library
toc_object_entries_show_parents = "hide"
maximum_signature_line_length = 72  # longer signatures get one parameter per line (phones)

# -- autodoc ---------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"  # no "Return type: None" noise
autodoc_preserve_defaults = True
autoclass_content = "both"  # the class docstring, then __init__'s (where 5.0.0-style docstrings put the arguments)
autodoc_default_options = {"show-inheritance": True}

# -- napoleon: Google-style docstrings (Args:, Returns:, Raises:, Attributes:) ---------

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False  # the return type goes with the description
napoleon_attr_annotations = True

# -- MyST ------------------------------------------------------------------------------

myst_heading_anchors = 3  # [text](page.md#a-heading) links
myst_enable_extensions = ["deflist", "substitution"]

# The guides of the backends being written. "Choosing a backend" says "coming"
# until a guide's page exists, then links to it; add the page to index.md's
# toctree (after gatttool-backend) when it lands.
_BACKEND_GUIDES = {"bgapi": ("bgapi-backend", "the BGAPI backend"), "dbus": ("dbus-backend", "the D-Bus backend")}
myst_substitutions: Dict[str, str] = {}
for _key, (_page, _title) in _BACKEND_GUIDES.items():
    _present = os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), _page + ".md"))
    myst_substitutions[f"{_key}_status"] = "available" if _present else "coming"
    myst_substitutions[f"{_key}_guide"] = (
        f"**Guide:** [{_title}]({_page}.md)." if _present else "**Guide:** with the backend, when it lands."
    )
myst_substitutions["bgapi_note"] = (
    ""
    if myst_substitutions["bgapi_status"] == "available"
    else "Programs written for pygatt 5.0.0 that create a `BGAPIBackend` import without errors in this "
    "release, but creating one raises `BLEError` until the BGAPI backend lands "
    "(see [migrating](migrating.md#bgapibackend))."
)

# -- intersphinx: the Python standard library, offline ---------------------------------
#
# The build must run without network access, so the inventory of the standard
# library objects the docs and docstrings mention is written here, from this
# list, instead of being downloaded. Links go to docs.python.org. A nitpicky
# build names any standard-library object missing from the list; add it here.

PYTHON_DOCS = "https://docs.python.org/3"
_PYTHON_OBJECTS = {
    "py:class": {
        "bool": "library/functions.html#bool",
        "bytearray": "library/stdtypes.html#bytearray",
        "bytes": "library/stdtypes.html#bytes",
        "dict": "library/stdtypes.html#dict",
        "float": "library/functions.html#float",
        "int": "library/functions.html#int",
        "list": "library/stdtypes.html#list",
        "object": "library/functions.html#object",
        "str": "library/stdtypes.html#str",
        "tuple": "library/stdtypes.html#tuple",
        "abc.ABC": "library/abc.html#abc.ABC",
        "enum.Enum": "library/enum.html#enum.Enum",
        "logging.NullHandler": "library/logging.handlers.html#logging.NullHandler",
        "os.PathLike": "library/os.html#os.PathLike",
        "pathlib.Path": "library/pathlib.html#pathlib.Path",
        "threading.Thread": "library/threading.html#threading.Thread",
        "typing.IO": "library/typing.html#typing.IO",
        "typing.Sequence": "library/typing.html#typing.Sequence",
        "typing.TextIO": "library/typing.html#typing.TextIO",
        "uuid.UUID": "library/uuid.html#uuid.UUID",
    },
    "py:exception": {
        "Exception": "library/exceptions.html#Exception",
        "KeyboardInterrupt": "library/exceptions.html#KeyboardInterrupt",
        "OSError": "library/exceptions.html#OSError",
        "TypeError": "library/exceptions.html#TypeError",
        "ValueError": "library/exceptions.html#ValueError",
    },
    "py:data": {
        "None": "library/constants.html#None",
        "typing.Any": "library/typing.html#typing.Any",
        "typing.Callable": "library/typing.html#typing.Callable",
        "typing.Optional": "library/typing.html#typing.Optional",
        "typing.Union": "library/typing.html#typing.Union",
    },
    "py:module": {
        "logging": "library/logging.html#module-logging",
        "uuid": "library/uuid.html#module-uuid",
    },
}


def _write_python_inventory() -> str:
    lines = [
        f"{name} {role} 1 {uri} -"
        for role, objects in sorted(_PYTHON_OBJECTS.items())
        for name, uri in sorted(objects.items())
    ]
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: Python\n"
        "# Version: 3\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    data = header.encode() + zlib.compress(("\n".join(lines) + "\n").encode())
    path = os.path.join(tempfile.gettempdir(), f"pygatt-docs-python-{zlib.crc32(data):08x}.inv")
    if not os.path.exists(path):
        with open(path, "wb") as inventory:
            inventory.write(data)
    return path


intersphinx_mapping = {"python": (PYTHON_DOCS, _write_python_inventory())}
intersphinx_disabled_reftypes = ["std:doc"]

# -- docstrings: Google style only (napoleon) -------------------------------------------
#
# An ``__init__`` docstring that only says this, appended to the class's own
# docstring by ``autoclass_content = "both"``, is dropped.
_BOILERPLATE = {"Initialize.", "Initialize self.  See help(type(self)) for accurate signature."}


def _drop_boilerplate(app: Any, what: str, name: str, obj: Any, options: Any, lines: List[str]) -> None:
    if what not in ("class", "exception"):
        return
    kept = [line for line in lines if line.strip() not in _BOILERPLATE]
    while len(kept) >= 2 and not kept[0].strip():
        kept.pop(0)
    lines[:] = kept


def _no_inherited_exception_signature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: Optional[str], return_annotation: Optional[str]
) -> Optional[tuple]:
    """``InvalidHandleError``, not ``InvalidHandleError(message, operation=None, ...)``.

    An exception that inherits its constructor shows no signature: the base
    class documents it once, with the attributes it sets.
    """
    if what != "exception" or not inspect.isclass(obj) or "__init__" in vars(obj):
        return None
    if any("__init__" in vars(base) for base in obj.__mro__[1:] if base.__module__.startswith("pygatt")):
        return "", return_annotation
    return None


def _no_object_base(app: Any, name: str, obj: Any, options: Any, bases: List[type]) -> None:
    """No "Bases: object" line: every class has it."""
    bases[:] = [base for base in bases if base is not object]


# -- cross-references to the other import paths ----------------------------------------
#
# Each object is documented once, under the short path users type
# (``pygatt.GATTToolBackend``); autodoc records the defining module's path as
# its canonical name, so both resolve. Docstrings and type hints also name
# objects by their other import paths; resolve those aliases to the documented
# object instead of leaving them unlinked.

_ALIASES: Dict[str, str] = {
    "pygatt.backends.GATTToolBackend": "pygatt.GATTToolBackend",
    "pygatt.backends.gatttool.GATTToolBackend": "pygatt.GATTToolBackend",
    "pygatt.backends.gatttool.GATTToolBLEDevice": "pygatt.backends.GATTToolBLEDevice",
    "pygatt.backends.gatttool.device.GATTToolBLEDevice": "pygatt.backends.GATTToolBLEDevice",
    "pygatt.backends.gatttool.ToolCommands": "pygatt.backends.ToolCommands",
    "pygatt.backends.gatttool.tools.ToolCommands": "pygatt.backends.ToolCommands",
    "pygatt.device.BLEDevice": "pygatt.BLEDevice",
    "pygatt.BLEError": "pygatt.exceptions.BLEError",
    "pygatt.backends.backend.BLEBackend": "pygatt.backends.BLEBackend",
    "pygatt.backends.backend.Characteristic": "pygatt.backends.Characteristic",
    "pygatt.backends.backend.BLEAddressType": "pygatt.BLEAddressType",
    "pygatt.backends.BLEAddressType": "pygatt.BLEAddressType",
    "pygatt.backends.BGAPIBackend": "pygatt.BGAPIBackend",
    "pygatt.backends.bgapi.BGAPIBackend": "pygatt.BGAPIBackend",
    "pygatt.backends.bgapi.bgapi.BGAPIBackend": "pygatt.BGAPIBackend",
    "pygatt.backends.bgapi.device.BGAPIBLEDevice": "pygatt.backends.bgapi.BGAPIBLEDevice",
    "pygatt.backends.bgapi.exceptions.BGAPIError": "pygatt.backends.bgapi.BGAPIError",
    "pygatt.backends.bgapi.exceptions.ExpectedResponseTimeout": "pygatt.backends.bgapi.ExpectedResponseTimeout",
    "pygatt.backends.bgapi.bgapi.AdvertisingAndScanInfo": "pygatt.backends.bgapi.AdvertisingAndScanInfo",
}


# Bare standard-library names that type hints leave unqualified.
_STDLIB_SHORT_NAMES = {"UUID": "uuid.UUID", "Path": "pathlib.Path", "Enum": "enum.Enum"}


def _qualify_stdlib_name(app: Any, env: Any, node: Any, contnode: Any) -> None:
    """Runs before intersphinx: ``UUID`` becomes ``uuid.UUID``, which intersphinx then links."""
    if node.get("refdomain") == "py" and node.get("reftarget") in _STDLIB_SHORT_NAMES:
        node["reftarget"] = _STDLIB_SHORT_NAMES[node["reftarget"]]


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    domain = env.get_domain("py")
    real = _ALIASES.get(target)
    if real is None:  # a member of an aliased class: pygatt.device.BLEDevice.link_lost
        owner, _, member = target.rpartition(".")
        if owner in _ALIASES:
            real = f"{_ALIASES[owner]}.{member}"
    if real is None and target and "." not in target:
        # A bare class name (``BLEError``) that names exactly one documented object.
        matches = [
            name
            for name, entry in domain.objects.items()
            if name.rsplit(".", 1)[-1] == target and not entry.aliased  # a canonical name is an alias too
        ]
        real = matches[0] if len(matches) == 1 else None
    if real is None:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], real, node, contnode)


def setup(app: Any) -> Dict[str, Any]:
    app.connect("autodoc-process-docstring", _drop_boilerplate)
    app.connect("autodoc-process-bases", _no_object_base)
    app.connect("autodoc-process-signature", _no_inherited_exception_signature)
    app.connect("missing-reference", _qualify_stdlib_name, priority=100)
    app.connect("missing-reference", _resolve_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
