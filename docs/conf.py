"""Sphinx configuration for the fastnet documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
The API reference is generated from the docstrings of the installed package,
so install it first: ``pip install -e '.[docs]'``.
"""

import fastnet

project = "fastnet"
author = "the fastnet authors"
copyright = "fastnet authors"
release = fastnet.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Headings become link targets (``[text](page.md#some-heading)``) up to this depth.
myst_heading_anchors = 3

# The reference documents the public names only, as fastnet.X: not the
# private modules they are defined in, which are being moved.
add_module_names = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "furo"
html_title = f"fastnet {release}"


# fastnet.read_capture's docstring writes ``fastnet.Batch``es, which
# reStructuredText cannot parse (an inline literal must be followed by a space
# or punctuation): "Inline literal start-string without end-string". Until
# the docstring says it another way, the reference shows that one phrase
# rewritten; this does nothing once the phrase is gone, and every other
# warning still fails the build.
_DOCSTRING_FIXES = {
    "fastnet.read_capture": [("``fastnet.Batch``es", "``fastnet.Batch`` objects")],
}


def _fix_docstring(app, what, name, obj, options, lines):
    for old, new in _DOCSTRING_FIXES.get(name, ()):
        lines[:] = [line.replace(old, new) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _fix_docstring)
