"""Backends and data sets that misbehave, as a user's plug-in may: each returns an impossible
result, changes its input, exits or interrupts. gmmlab must record every one as that run's
failure (or, for the changed input, compute the metrics on the data as loaded)."""

import sys

import numpy as np
from toy_methods import fit_cluster_moments


def _fit(X, n_components, seed, **changes):
    """The toy method's fit of X, with some of its parameters replaced."""
    return fit_cluster_moments(np.array(X), n_components, seed) | changes


def weights_sum_3(X, n_components, seed):
    result = _fit(X, n_components, seed)
    return result | {"weights": 3 * result["weights"]}


def nan_weights(X, n_components, seed):
    return _fit(X, n_components, seed, weights=np.full(n_components, np.nan))


def infinite_mean(X, n_components, seed):
    result = _fit(X, n_components, seed)
    result["means"][0, 0] = np.inf
    return result


def negative_covariances(X, n_components, seed):
    return _fit(X, n_components, seed,
                covariances=-np.stack([np.eye(X.shape[1])] * n_components))


def asymmetric_covariances(X, n_components, seed):
    result = _fit(X, n_components, seed)
    result["covariances"][0, 0, 1] += 1.0
    return result


def wrong_shape_covariances(X, n_components, seed):
    return _fit(X, n_components, seed, covariances=np.ones((n_components, 3)))


def one_component_too_many(X, n_components, seed):
    return fit_cluster_moments(np.array(X), n_components + 1, seed)


def returns_a_list(X, n_components, seed):
    return [1, 2, 3]


def zeroes_the_data(X, n_components, seed):
    """A valid fit of the data, after which the array it was given is zeroed in place."""
    result = fit_cluster_moments(np.array(X), n_components, seed)
    X[:] = 0.0
    return result


def exits(X, n_components, seed):
    sys.exit(3)


def interrupts(X, n_components, seed):
    raise KeyboardInterrupt


def exiting_data(n_samples=10):
    """A data set whose loader calls sys.exit."""
    sys.exit("no data today")
