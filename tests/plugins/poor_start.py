"""A user backend for the report tests: gmmlab's EM from a given start, poor for one seed.

``poor_seed``: the seed whose start splits the points of smallest first feature (a third of
the data) among K - 1 means and gives the rest one mean, so that on three separated clusters
EM ends with two components on one cluster and one on two (a worse local optimum); other
seeds start from k-means as the ``em`` backend does.
"""

import numpy as np

from gmmlab import EMGaussianMixture
from gmmlab.model import gaussian


def fit_em_from_start(X, n_components, covariance_type="full", seed=0, reg_covar=1e-6, *,
                      poor_seed=0):
    start = {}
    if seed == poor_seed:
        order = np.argsort(X[:, 0])
        third = len(X) // 3
        groups = [*np.array_split(order[:third], n_components - 1), order[third:]]
        start["means_init"] = np.array([X[group].mean(axis=0) for group in groups])
    model = EMGaussianMixture(n_components, covariance_type=covariance_type,
                              reg_covar=reg_covar, random_state=seed, **start).fit(X)
    return {"weights": model.weights_, "means": model.means_,
            "covariances": gaussian.full_covariances(model.covariances_, covariance_type,
                                                     n_components, X.shape[1])}
