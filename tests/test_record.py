"""The run record's typed description (gmmlab.study.record.RunRecord) covers every key a job
writes, so the type cannot drift from the records."""

import typing

import pytest

from gmmlab.study.job import run_job
from gmmlab.study.record import RunRecord
from gmmlab.study.results import read_result

SPEC = {"dataset": {"name": "tutorial_1d", "test_size": 0.2}, "backend": {"name": "em"},
        "n_components": 3, "covariance_type": "full", "seed": 0, "reg_covar": 1e-6}
HINTS = typing.get_type_hints(RunRecord)


@pytest.mark.parametrize("spec, status", [
    (SPEC, "ok"),
    (SPEC | {"backend": {"name": "em", "singular": "never"}}, "failed"),
], ids=["ok", "failed"])
def test_every_key_a_job_writes_is_typed(tmp_path, spec, status):
    record = run_job(spec, tmp_path)
    assert record["status"] == status
    assert set(record) <= set(HINTS), sorted(set(record) - set(HINTS))
    assert set(read_result(tmp_path)) == set(record)  # what is read back is what was written
    for key in ("status", "backend", "dataset", "covariance_type", "message"):
        assert isinstance(record[key], str), key
    assert isinstance(record["n_components"], int) and isinstance(record["seed"], int)
    if status == "ok":
        for key in ("loglik", "loglik_per_sample", "test_loglik_per_sample", "aic",
                    "fit_seconds"):
            assert isinstance(record[key], float), key
        assert isinstance(record["params"], dict) and isinstance(record["converged"], bool)
