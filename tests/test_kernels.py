"""The compiled EM engine (gmmlab.model.kernels through gaussian.e_step_statistics) against the
numpy path it replaced in the EM loop (gaussian.estimate_log_gaussian_prob, sufficient_statistics,
estimate_gaussian_parameters), on every one of the fourteen models."""

import numpy as np
import pytest
from scipy.special import logsumexp

from gmmlab.datasets import ancestor_sample, load_dataset, random_truth
from gmmlab.model import gaussian, kernels


def data(name):
    """A shipped data set, or 'synthetic': 1100 samples of a random 10-D mixture (D >= the
    kernels' GEMM_FEATURES, so the full and tied forms go through the matrix products, over
    more than two blocks of samples)."""
    if name != "synthetic":
        return load_dataset(name).X
    truth = random_truth(4, 10, separation=2.0, seed=0)
    return ancestor_sample(truth.weights, truth.means, truth.covariances, 1100, 0)[0]


def test_the_synthetic_case_goes_through_the_matrix_products():
    assert data("synthetic").shape[1] >= kernels.GEMM_FEATURES
    assert len(data("synthetic")) > 2 * kernels.BLOCK_ROWS


def parameters(X, model_name, n_components, seed):
    """Parameters of the model from random responsibilities (numpy M-step)."""
    resp = np.random.default_rng(seed).dirichlet(np.ones(n_components), len(X))
    nk, means, covariances = gaussian.estimate_gaussian_parameters(X, resp, 1e-6, model_name)
    return nk / nk.sum(), means, gaussian.precisions_cholesky(covariances, model_name)


@pytest.mark.parametrize("model_name", gaussian.MCLUST_MODELS)
@pytest.mark.parametrize("name, n_components", [("iris", 3), ("faithful", 5),
                                                ("synthetic", 4)])
def test_compiled_e_step_and_statistics_equal_the_numpy_path(model_name, name, n_components):
    """log p(x_n), the responsibilities and the M-step that follows from the compiled pass equal
    the numpy path's to 1e-12 relative (log-likelihoods, weights, means, covariances)."""
    X = data(name)
    weights, means, precisions_chol = parameters(X, model_name, n_components, seed=3)
    log_norm, resp, statistics = gaussian.e_step_statistics(
        X, weights, means, precisions_chol, model_name, centre=X.mean(axis=0))
    weighted = gaussian.estimate_log_gaussian_prob(X, means, precisions_chol, model_name)
    weighted += np.log(weights)
    expected = logsumexp(weighted, axis=1)
    np.testing.assert_allclose(log_norm, expected, rtol=1e-12)
    np.testing.assert_allclose(resp, np.exp(weighted - expected[:, np.newaxis]), rtol=1e-10,
                               atol=1e-14)
    reference = gaussian.estimate_gaussian_parameters(X, resp, 1e-6, model_name)
    compiled = gaussian.parameters_from_statistics(*statistics, X.mean(axis=0), 1e-6,
                                                   model_name)
    for ours, theirs in zip(compiled, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * np.abs(theirs).max())


@pytest.mark.parametrize("form, model_name", [("full", "VVV"), ("tied", "EEE"),
                                              ("diag", "VVI"), ("spherical", "VII")])
@pytest.mark.parametrize("name", ["iris", "synthetic"])
def test_compiled_statistics_are_the_sufficient_statistics(form, model_name, name):
    """N_k, F_k and Q_k (or Q, or diag Q_k) of the compiled pass equal the numpy sums of the
    same responsibilities to 1e-12 relative."""
    X = data(name)
    weights, means, precisions_chol = parameters(X, model_name, 4, seed=5)
    centre = X.mean(axis=0)
    _, resp, statistics = gaussian.e_step_statistics(X, weights, means, precisions_chol,
                                                     model_name, centre=centre)
    expected = gaussian.sufficient_statistics(X - centre, resp, form)
    for ours, theirs in zip(statistics, expected, strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * np.abs(theirs).max())
