"""The ``em_select`` backend: one cell of :func:`gmmlab.select` through the runner.

EM from the hc start and ``n_init`` k-means++ and random_from_data starts, the best fit that is
not degenerate kept (:func:`gmmlab.model.search.best_fit`), so a sweep over covariance types x K
gives the cells of ``gmmlab.select``'s table, one result.json each.
"""

from gmmlab.backends import FitResult
from gmmlab.model import gaussian, search


def fit_em_select(X, n_components, covariance_type, seed, reg_covar, *,
                  n_init=search.DEFAULT_SEARCH.n_init, tol=search.DEFAULT_SEARCH.tol,
                  max_iter=search.DEFAULT_SEARCH.max_iter):
    """The best non-degenerate of select's starts; every start collapsed: status 'failed'
    with the collapse as a singular-covariance error."""
    settings = search.SearchSettings(n_init=n_init, reg_covar=reg_covar, tol=tol,
                                     max_iter=max_iter)
    row, model = search.best_fit(X, covariance_type, n_components, settings, seed=seed)
    diagnostics = {"start": row["start"], "degenerate_starts": row["degenerate_starts"],
                   "starts": len(settings.runs(seed))}
    if model is None:
        singular = {"backend_error": row["reason"]} if row["status"] == "degenerate" else {}
        return FitResult("em_select", n_components, covariance_type, status="failed",
                         message=row["reason"], singular=singular, diagnostics=diagnostics)
    return FitResult(
        "em_select", n_components, covariance_type, weights=model.weights_,
        means=model.means_,
        covariances=gaussian.full_covariances(model.covariances_, model.covariance_type,
                                              n_components, X.shape[1]),
        n_iter=int(model.n_iter_), converged=bool(model.converged_),
        loglik_history=[float(v) for v in model.log_likelihood_history_],
        singular={"collapse": None, "n_resets": 0}, diagnostics=diagnostics)
