"""The hand-written posterior (gmmlab.backends.mixture_posterior) against finite differences,
PyMC's log density of the same model, and a numerical Jacobian determinant."""

import numpy as np
import pytest

from gmmlab.backends import mixture_posterior as mp
from gmmlab.backends.bayes import _effective_type, build_model
from gmmlab.datasets import load_dataset

K = 3
CASES = [(D, covariance_type) for D in (1, 2, 3)
         for covariance_type in ("full", "tied", "diag", "spherical")]


def _problem(D, covariance_type, seed=0):
    """Data (synthetic, 60 points), the effective covariance type, its data array and three
    random points of the unconstrained space."""
    X = load_dataset("synthetic", n_components=K, n_features=D, n_samples=60, seed=seed).X
    effective = _effective_type(covariance_type, D)
    data = mp.posterior_data(X, K, effective)
    n = mp.n_unconstrained(K, D, mp.CODES[effective])
    thetas = np.random.default_rng(seed).normal(0, 0.7, size=(3, n))
    return X, effective, data, thetas


def _value(theta, data):
    return mp.log_density(theta, data, np.zeros_like(theta))


def _constrained(theta, data):
    """PyMC's value coordinates at theta: pi_1..pi_(K-1), the means, then per factor the
    packed lower triangle of L (rows in order) or the standard deviations."""
    K_, D, code = int(data[0]), int(data[1]), int(data[2])
    log_weights, means, sds, correlations, _, _ = mp._parameters(theta, K_, D, code)
    parts = [np.exp(log_weights[:-1]), means[:, 0], means[:, 1:].ravel()]
    rows, columns = np.tril_indices(D)
    for sd, W in zip(sds, correlations, strict=True):
        if code in (mp.FULL, mp.TIED):
            parts.append((sd[:, None] * W)[rows, columns])
        else:
            parts.append(sd[:1] if code == mp.SPHERICAL else sd)
    return np.concatenate(parts)


@pytest.mark.parametrize("D, covariance_type", CASES)
def test_gradient_matches_central_differences(D, covariance_type):
    _, _, data, thetas = _problem(D, covariance_type)
    step = 1e-6
    for theta in thetas:
        gradient = np.zeros_like(theta)
        mp.log_density(theta, data, gradient)
        numerical = np.array([
            (_value(theta + step * e, data)[0] - _value(theta - step * e, data)[0]) / (2 * step)
            for e in np.eye(theta.size)])
        np.testing.assert_allclose(gradient, numerical, rtol=1e-6, atol=1e-6 * (
            1 + np.abs(_value(theta, data)[0]) * 1e-3))


@pytest.mark.parametrize("D, covariance_type", CASES)
def test_log_jacobian_matches_a_numerical_determinant(D, covariance_type):
    """log|d constrained / d theta| returned with the density, against slogdet of the
    central-difference Jacobian of :func:`_constrained`."""
    _, _, data, thetas = _problem(D, covariance_type, seed=1)
    step = 1e-6
    for theta in thetas:
        jacobian = np.column_stack([
            (_constrained(theta + step * e, data) - _constrained(theta - step * e, data))
            / (2 * step) for e in np.eye(theta.size)])
        sign, log_det = np.linalg.slogdet(jacobian)
        assert sign != 0
        assert _value(theta, data)[1] == pytest.approx(log_det, abs=1e-6)


@pytest.mark.pymc
@pytest.mark.parametrize("D, covariance_type", CASES)
def test_density_without_jacobian_equals_pymc_at_the_same_point(D, covariance_type):
    """Same posterior, different coordinates: the value minus log|J| equals PyMC's
    ``compile_logp(jacobian=False)`` of build_model at the constrained point (1e-10)."""
    import pytensor.tensor as pt

    X, effective, data, thetas = _problem(D, covariance_type, seed=2)
    model = build_model(X, K, covariance_type)
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    for theta in thetas:
        out = np.zeros(K + K * D + K * D * D)
        mp.expand(theta, data, out)
        weights, means = out[:K], out[K:K + K * D].reshape(K, D)
        chols = np.linalg.cholesky(out[K + K * D:].reshape(K, D, D))
        constrained = {"weights": weights, "mu_first": means[:, 0], "mu_rest": means[:, 1:]}
        rows, columns = np.tril_indices(D)
        for k in range(K):
            constrained[f"chol_{k}"] = chols[k][rows, columns]
        constrained["chol"] = chols[0][rows, columns]
        constrained["sigma"] = (np.sqrt(np.diagonal(out[K + K * D:].reshape(K, D, D),
                                                    axis1=1, axis2=2))
                                if effective == "diag" else chols[:, 0, 0])
        point = {}
        for rv in model.free_RVs:
            value = np.asarray(constrained[rv.name], dtype=float)
            transform = model.rvs_to_transforms.get(rv)
            if transform is not None:
                value = transform.forward(pt.as_tensor(value), *rv.owner.inputs).eval(
                    mode="FAST_COMPILE")
            point[model.rvs_to_values[rv].name] = value
        value, log_jacobian = _value(theta, data)
        assert value - log_jacobian == pytest.approx(logp(point), rel=1e-12, abs=1e-10)


def test_expand_gives_the_model_quantities():
    """Weights on the simplex, means ordered along the first feature, covariances symmetric
    positive definite; tied: one covariance for all components."""
    _, _, data, thetas = _problem(2, "tied")
    out = np.zeros(K + 2 * K + 4 * K)
    mp.expand(thetas[0], data, out)
    weights, means, covariances = out[:K], out[K:3 * K].reshape(K, 2), out[3 * K:].reshape(K, 2, 2)
    assert weights.sum() == pytest.approx(1) and (weights > 0).all()
    assert (np.diff(means[:, 0]) > 0).all()
    np.testing.assert_allclose(covariances, covariances.transpose(0, 2, 1))
    assert (np.linalg.eigvalsh(covariances) > 0).all()
    np.testing.assert_array_equal(covariances[0], covariances[2])
