"""A method and data sets defined outside gmmlab, as a user's own module or package would be.

``fit_cluster_moments`` is the simple backend form: it names only the arguments it uses and
returns a mapping of parameters. gmmlab computes every metric from them.
"""

import numpy as np
from sklearn.cluster import KMeans


def fit_cluster_moments(X, n_components, seed, *, shrinkage=0.0):
    """k-means, then each cluster's share, mean and covariance (shrunk towards the diagonal by
    ``shrinkage`` in [0, 1]): a one-step Gaussian mixture."""
    labels = KMeans(n_components, n_init=10, random_state=seed).fit_predict(X)
    weights = np.bincount(labels, minlength=n_components) / len(X)
    means = np.array([X[labels == k].mean(axis=0) for k in range(n_components)])
    covariances = np.array([np.atleast_2d(np.cov(X[labels == k].T, bias=True))
                            for k in range(n_components)])
    diagonal = covariances * np.eye(X.shape[1])
    covariances = (1 - shrinkage) * covariances + shrinkage * diagonal
    return {"weights": weights, "means": means, "covariances": covariances,
            "diagnostics": {"cluster_sizes": np.bincount(labels).tolist()}}


def fit_up_to_two(X, n_components, seed):
    """The toy method, failing (as a user's method may) for more than two components."""
    if n_components > 2:
        raise ValueError(f"fit_up_to_two cannot fit {n_components} components")
    return fit_cluster_moments(X, n_components, seed)


def fit_without_data(n_components):
    """Not a backend: it cannot see the data."""
    return {}


def two_blobs(n_samples=200, seed=0):
    """Two unit Gaussians in 2-D, centred at (0, 0) and (6, 0): an (N, 2) array."""
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n_samples // 2, 2)),
                      rng.normal(size=(n_samples - n_samples // 2, 2)) + [6.0, 0.0]])
