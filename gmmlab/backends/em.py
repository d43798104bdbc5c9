"""The ``em`` backend: gmmlab's from-scratch :class:`~gmmlab.model.em.EMGaussianMixture`."""

import warnings

from gmmlab.backends import FitResult, spike_start
from gmmlab.model import gaussian
from gmmlab.model.em import ConvergenceWarning, EMGaussianMixture


def fit_em(X, n_components, covariance_type, seed, reg_covar, *, n_init=1, max_iter=100,
           tol=1e-3, init_params="kmeans", singular="error", spike_variance=None):
    """EM with restarts (``diagnostics['n_distinct_starts']``: how many distinct starts ran); a
    collapse under singular='stop' gives status 'singular'. covariance_type: scikit-learn's four
    names or mclust's fourteen models.

    spike_variance: start component 0 on the first sample with this variance (the unbounded
    likelihood case, see :func:`gmmlab.backends.spike_start`).
    """
    start = {} if spike_variance is None else spike_start(
        X, n_components, covariance_type, spike_variance, seed)
    model = EMGaussianMixture(n_components, covariance_type=covariance_type, tol=tol,
                              reg_covar=reg_covar, max_iter=max_iter, n_init=n_init,
                              init_params=init_params, random_state=seed, singular=singular,
                              **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    collapse = model.collapse_
    return FitResult(
        "em", n_components, covariance_type,
        status="ok" if collapse is None else "singular",
        message="" if collapse is None else
        f"component {collapse['component']} collapsed at iteration {collapse['iteration']}",
        weights=model.weights_, means=model.means_,
        covariances=gaussian.full_covariances(model.covariances_, covariance_type,
                                              n_components, X.shape[1]),
        n_iter=int(model.n_iter_), converged=bool(model.converged_),
        loglik_history=[float(v) for v in model.log_likelihood_history_],
        singular={"collapse": collapse, "n_resets": int(model.n_resets_)},
        diagnostics={"n_distinct_starts": int(model.n_distinct_starts_)},
    )
