"""The ``sklearn`` (GaussianMixture) and ``sklearn_vb`` (BayesianGaussianMixture) backends."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from gmmlab.backends import FitResult, spike_start
from gmmlab.model import gaussian


def fit_sklearn(X, n_components, covariance_type, seed, reg_covar, *, n_init=1, max_iter=100,
                tol=1e-3, init_params="kmeans", spike_variance=None):
    """Maximum likelihood by scikit-learn's EM (``spike_variance`` as for the em backend)."""
    start = {} if spike_variance is None else spike_start(
        X, n_components, covariance_type, spike_variance, seed)
    model = GaussianMixture(n_components, covariance_type=covariance_type, tol=tol,
                            reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                            init_params=init_params, random_state=seed, **start)
    return _result("sklearn", model, X)


def fit_sklearn_vb(X, n_components, covariance_type, seed, reg_covar, *, n_init=1,
                   max_iter=500, tol=1e-3, init_params="kmeans",
                   weight_concentration_prior_type="dirichlet_distribution",
                   weight_concentration_prior=None, mean_precision_prior=0.01,
                   covariance_prior_scale=0.01):
    """Variational Bayes: the posterior-mean parameters of BayesianGaussianMixture.

    The Dirichlet-distribution weight prior (not the Dirichlet process) keeps K fixed, as the
    other backends do; unused components shrink towards weight 0.

    Priors are weak by default, like the PyMC backend's: mean precision 0.01 (scikit-learn: 1)
    and a Wishart scale of 0.01 x the data covariance (scikit-learn: 1 x). scikit-learn's
    defaults (``mean_precision_prior=None, covariance_prior_scale=None``) pull the covariances
    of narrow, distant components far towards the data's when components have few points:
    on ``tutorial_1d`` they inflate the variances 0.17 / 0.08 of the MLE to 0.86 / 0.59.
    """
    covariance_prior = None
    if covariance_prior_scale is not None:
        data_covariance = np.atleast_2d(np.cov(X.T))
        covariance_prior = covariance_prior_scale * {
            "full": data_covariance, "tied": data_covariance,
            "diag": np.diag(data_covariance), "spherical": np.diag(data_covariance).mean(),
        }[covariance_type]
    model = BayesianGaussianMixture(
        n_components=n_components, covariance_type=covariance_type, tol=tol,
        reg_covar=reg_covar, max_iter=max_iter, n_init=n_init, init_params=init_params,
        random_state=seed, weight_concentration_prior_type=weight_concentration_prior_type,
        weight_concentration_prior=weight_concentration_prior,
        mean_precision_prior=mean_precision_prior, covariance_prior=covariance_prior,
    )
    return _result("sklearn_vb", model, X)


def _result(name, model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    K, D = model.means_.shape
    return FitResult(
        name, K, model.covariance_type,
        weights=model.weights_, means=model.means_,
        covariances=gaussian.full_covariances(model.covariances_, model.covariance_type, K, D),
        n_iter=int(model.n_iter_), converged=bool(model.converged_),
        diagnostics={"lower_bound": float(model.lower_bound_)},
    )
