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
# private modules they are defined in.
add_module_names = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "furo"
html_title = f"fastnet {release}"
