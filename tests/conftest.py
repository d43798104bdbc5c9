"""Fixtures shared by the test modules (plain helpers are in support.py), and the skip of the
tests marked ``mclust`` when R, mclust or rpy2 is missing."""

import pytest
from support import r_session

from gmmlab.datasets import load_dataset

NO_MCLUST = ("needs R with mclust and rpy2 (.ci/run installs them as root); then run `make test` "
             "again (the Makefile adds rpy2 when R and mclust are there)")


@pytest.hookimpl(trylast=True)  # after -m deselected: R is started only for tests that run
def pytest_collection_modifyitems(config, items):
    """Tests marked ``mclust`` are skipped, saying why, without R's mclust through rpy2."""
    marked = [item for item in items if item.get_closest_marker("mclust")]
    if marked and r_session() is None:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=NO_MCLUST))


@pytest.fixture(scope="session")
def faithful():
    """Old Faithful's 272 eruptions x (duration, waiting), as an array (272, 2)."""
    return load_dataset("faithful").X
