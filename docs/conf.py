"""Sphinx configuration of gmmlab's documentation site (make docs)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import gmmlab  # noqa: E402

project = "gmmlab"
author = "the gmmlab developers"
copyright = "the gmmlab developers"  # noqa: A001
version = release = gmmlab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "gmmlab_docs",  # docs/_ext: the configuration reference from the schemas, shared pages
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "reference/configuration_tables.md"]
root_doc = "index"
smartquotes = False  # commands and report lines keep their quotes and dashes as typed

# API reference: autosummary writes one page per public name (reference/generated/).
autosummary_generate = True
templates_path = ["_templates"]  # one page per module: automodule, its submodules below
# Each module documents what it defines (not what it imports or re-exports), constants too.
autodoc_default_options = {"members": True, "undoc-members": True, "ignore-module-all": True}
autodoc_typehints = "none"  # types are written in the numpydoc sections
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Validated (a missing section fails the build): the API most code needs, each with its
# Parameters, Returns and Examples; the examples run as doctests in make docs (pytest).
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "RT01", "EX01"}
KEY_API = (r"model\.em\.EMGaussianMixture", r"selection\.select\.select", r"backends\.fit",
           r"datasets\.load_dataset", r"study\.results\.(collect|read_result|load_results)",
           r"report\.builder\.build_report")
numpydoc_validation_exclude = {rf"^(?!gmmlab\.({'|'.join(KEY_API)})$)"}

# Module constants (MODEL_M_STEPS, COVARIANCE_TYPES, ...) carry no docstrings, so autodoc does
# not document them as objects and a :data: reference to one has no target; every other
# reference must resolve (-n).
nitpick_ignore_regex = [("py:data", r"(gmmlab\..*\.)?[A-Z][A-Z0-9_]+")]

# MyST and the executed tutorials: every code cell runs at build; a failing cell (an assert on
# a key number among them) fails the build. Cached in docs/_build/.jupyter_cache.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# Link check: this machine reaches no web site, so every external address is left out and
# linkcheck sees the internal ones only (docs/check_links.py checks the built pages' relative
# links and anchors).
linkcheck_ignore = [r"https?://.*"]

html_theme = "pydata_sphinx_theme"
html_title = "gmmlab"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "changelog": []}
html_show_sourcelink = False
