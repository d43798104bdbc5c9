"""The documentation's generated parts and the README front page (the site itself is built,
executed and link-checked by ``make docs``)."""

import inspect
import re
import sys
from pathlib import Path

import pytest

from gmmlab.backends.bayes import fit_pymc
from gmmlab.study.runner import RunSchema

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
gmmlab_docs = pytest.importorskip("gmmlab_docs")


@pytest.fixture(scope="module")
def tables():
    return gmmlab_docs.configuration_tables()


def test_configuration_reference_lists_every_key_group_and_option(tables):
    for field in RunSchema.__dataclass_fields__:
        if field not in ("dataset", "backend"):
            assert f"| `{field}` |" in tables, field
    for group in ("dataset", "backend", "hydra/launcher"):
        for path in (ROOT / "conf" / group).glob("*.yaml"):
            assert f"### `{group}={path.stem}`" in tables, path
    for path in (ROOT / "experiments").glob("*.yaml"):
        assert f"| `{path.stem}` |" in tables, path


def test_configuration_reference_defaults_are_the_code_s(tables):
    """Every keyword option of the PyMC backend's function, with its default, in the table of
    backend=pymc: the table comes from the signature, not from hand."""
    section = tables.split("### `backend=pymc`")[1].split("###")[0]
    rows = dict(re.findall(r"\| `([\w.]+)` \| [^|]+ \| `([^`]*)` \|", section))
    for name, parameter in inspect.signature(fit_pymc).parameters.items():
        if parameter.kind is parameter.KEYWORD_ONLY:
            expected = parameter.default
            shown = ("null" if expected is None else str(expected).lower()
                     if isinstance(expected, bool) else str(expected))
            assert rows[name] == shown, name
    assert rows["name"] == "pymc"
    top = dict(re.findall(r"\| `(\w+)` \| [^|]+ \| `([^`]*)` \|",
                          tables.split("## Group")[0]))
    assert top["reg_covar"] == "1e-06" and top["alignment_cost"] == "means"


def test_readme_is_a_front_page_with_working_links():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).exists(), link
