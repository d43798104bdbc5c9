"""Fixtures shared by the test modules (plain helpers are in support.py)."""

import pytest

from gmmlab.datasets import load_dataset


@pytest.fixture(scope="session")
def faithful():
    """Old Faithful's 272 eruptions x (duration, waiting), as an array (272, 2)."""
    return load_dataset("faithful").X


@pytest.fixture(scope="session")
def mclust():
    """(robjects, converter) of R with mclust; skips the test without them."""
    from support import r_session

    session = r_session()
    if session is None:
        pytest.skip("needs R with mclust and rpy2 (.ci/run installs them as root)")
    return session
