"""Sphinx configuration for the pygatt documentation (builds offline)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "pygatt"
author = "pygatt developers"
copyright = "2026, pygatt developers"
release = "5.1.0.dev0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]
