"""The backend result contract (gmmlab.backends.check_result) and the check a plug-in author
runs on their own function (check_backend): every built-in backend passes it; impossible
results are failed fits whose message names the backend and what was wrong."""

import sys
from pathlib import Path

import numpy as np
import pytest

from gmmlab import backends
from gmmlab.backends import ResultContractError, check_backend, check_result
from gmmlab.model import metrics

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
import bad_backends  # noqa: E402
import toy_methods  # noqa: E402

# bad_backends' function -> what the failed fit's message says
IMPOSSIBLE = {
    "weights_sum_3": "weights must be non-negative and sum to 1 (within 1e-08), got",
    "nan_weights": "weights must be finite, got nan at index 0",
    "infinite_mean": "means must be finite, got inf at index (0, 0)",
    "negative_covariances": "covariance 0 is not positive definite (smallest eigenvalue -1)",
    "asymmetric_covariances": "covariance 0 is not symmetric",
    "wrong_shape_covariances": "the covariances have shape (2, 3); expected (2, 2, 2) (full)",
    "one_component_too_many": "the weights have shape (3,); expected (2,): K = 2 components",
    "returns_a_list": "it returned list; expected a FitResult or a mapping",
    "exits": "called sys.exit(3)",
}


@pytest.mark.parametrize("name", ["em", "em_select", "sklearn", "sklearn_vb"])
def test_every_fast_built_in_backend_passes_the_contract(faithful, name):
    target = backends.resolve(name)
    results = check_backend(target, faithful, n_components=(1, 2, 3),
                            covariance_types=("full", "diag"))
    assert [r.weights.shape for r in results] == [(1,), (2,), (3,)] * 2
    assert all(r.covariances.shape[1:] == (2, 2) for r in results)


def test_the_plug_in_example_passes_the_contract_by_target():
    results = check_backend("toy_methods:fit_cluster_moments")
    assert [len(r.weights) for r in results] == [1, 2, 3]


@pytest.mark.parametrize("name", list(IMPOSSIBLE))
def test_an_impossible_result_is_a_failed_fit_naming_the_backend(faithful, name):
    result = backends.fit("custom", faithful, 2, seed=0, target=f"bad_backends:{name}")
    assert result.status == "failed" and result.weights is None
    assert f"bad_backends:{name}" in result.message or name == "exits"
    assert IMPOSSIBLE[name] in result.message, result.message
    with pytest.raises(ResultContractError, match="bad_backends"):
        check_backend(getattr(bad_backends, name), faithful, n_components=(2,))


def test_a_backend_gets_a_copy_so_metrics_see_the_data_as_loaded(faithful):
    X = faithful.copy()
    result = backends.fit("custom", X, 2, seed=0, target="bad_backends:zeroes_the_data")
    np.testing.assert_array_equal(X, faithful)
    reference = backends.fit("custom", X, 2, seed=0, target="toy_methods:fit_cluster_moments")
    assert result.status == "ok"
    assert metrics.align(result, reference)["means"] == 0
    with pytest.raises(ResultContractError, match="changed the data array it was given"):
        check_backend(bad_backends.zeroes_the_data, faithful, n_components=(2,))


def test_a_storage_form_is_expanded_and_weights_are_never_renormalised():
    mapping = {"weights": [0.25, 0.75], "means": [[0.0, 0.0], [3.0, 1.0]],
               "covariances": [[1.0, 2.0], [0.5, 0.25]]}
    result = check_result(mapping, 2, 2, "diag")
    np.testing.assert_array_equal(result.covariances[1], np.diag([0.5, 0.25]))
    np.testing.assert_array_equal(result.weights, [0.25, 0.75])
    off = mapping | {"weights": [0.25, 0.75 + 2e-8]}
    with pytest.raises(ResultContractError, match=r"sum 1.00000002"):
        check_result(off, 2, 2, "diag", backend="mine")
    tied = check_result(mapping | {"covariances": np.eye(2)}, 2, 2, "EEE")
    np.testing.assert_array_equal(tied.covariances, [np.eye(2)] * 2)


def test_a_failed_fit_result_passes_as_it_is_and_an_unknown_status_does_not():
    failed = backends.FitResult("mine", 2, "full", status="failed", message="no luck")
    assert check_result(failed, 2, 2) is failed
    odd = backends.FitResult("mine", 2, "full", status="great", weights=np.ones(2) / 2,
                             means=np.zeros((2, 2)), covariances=np.stack([np.eye(2)] * 2))
    with pytest.raises(ResultContractError, match="the status 'great'; expected one of"):
        check_result(odd, 2, 2, backend="mine")


def test_a_failing_function_is_reported_with_its_k(faithful):
    with pytest.raises(ResultContractError, match="failed on K = 3, full: ValueError: "
                                                  "fit_up_to_two cannot fit 3 components"):
        check_backend(toy_methods.fit_up_to_two, faithful)


@pytest.mark.mclust
def test_the_mclust_backend_passes_the_contract(faithful):
    results = check_backend(backends.resolve("mclust"), faithful, n_components=(1, 2, 3),
                            covariance_types=("full", "EEE"))
    assert [len(r.weights) for r in results] == [1, 2, 3] * 2
