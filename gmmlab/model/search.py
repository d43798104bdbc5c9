"""The search for the maximum-likelihood fit of one cell (covariance model, K): EM from several
starts, short runs then long runs, and the one rule that chooses the fit a cell keeps.

A cell keeps the highest log-likelihood among its fits that are not degenerate
(:func:`gmmlab.model.metrics.degeneracy`: a component on tied values, with fewer than D + 1
points, or at the ``reg_covar`` floor); when every fit is degenerate, the best degenerate one
with status 'degenerate' (never chosen by a criterion); when none ran, 'failed'. That rule is
:func:`choose_fit`, shared by :func:`gmmlab.select`, the ``em_select`` backend and the reports.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from gmmlab.model import gaussian, metrics
from gmmlab.model.em import (
    COVARIANCE_TYPES,
    ConvergenceWarning,
    EMGaussianMixture,
    SingularCovarianceError,
)

# The information criteria a cell is ranked by, in scikit-learn's sign (lower is better).
CRITERIA = metrics.INFORMATION_CRITERIA


def available_models(n_features=2):
    """mclust's model names, in mclust's order (:data:`gmmlab.model.gaussian.MCLUST_MODELS`);
    in 1-D the two left, E and V.

    Parameters
    ----------
    n_features : int
        The data's dimension D.

    Returns
    -------
    list of str
    """
    if n_features > 1:
        return list(gaussian.MCLUST_MODELS)
    return list(dict.fromkeys(gaussian.mclust_name(m, 1) for m in gaussian.MCLUST_MODELS))


def covariance_type_for(model, n_features):
    """The ``covariance_type`` the EM estimator is given for an mclust model name or a
    scikit-learn name: the name itself, or in 1-D (models 'E' and 'V') a model of that volume
    letter.

    Raises
    ------
    ValueError
        For a name the EM estimator does not fit, listing those it does.
    """
    if model in COVARIANCE_TYPES:
        return model
    if n_features == 1 and model in ("E", "V"):
        return next(m for m in gaussian.MCLUST_MODELS if m[0] == model)
    raise ValueError(f"model {model!r} is not fitted by the EM estimator; it fits "
                     f"{available_models(n_features)} (and their scikit-learn names "
                     f"{list(gaussian.MCLUST_NAMES)}).")


def choose_fit(logliks, degenerate):
    """The one rule for the fit a cell keeps.

    Parameters
    ----------
    logliks : array-like of shape (n_fits,)
        Total log-likelihood of each fit; NaN where the fit did not finish.
    degenerate : array-like of bool of shape (n_fits,)
        Whether each fit (or its collapse) is degenerate.

    Returns
    -------
    index : int or None
        The fit kept: the highest log-likelihood among the finished fits that are not
        degenerate, else among the finished degenerate ones; None when none finished.
    status : {'ok', 'degenerate', 'failed'}
        'degenerate' also when no fit finished but some collapsed, 'failed' when none ran.
    """
    logliks = np.asarray(logliks, dtype=float)
    degenerate = np.asarray(degenerate, dtype=bool)
    finished = ~np.isnan(logliks)
    for status, pool in (("ok", finished & ~degenerate), ("degenerate", finished & degenerate)):
        if pool.any():
            return int(np.flatnonzero(pool)[np.argmax(logliks[pool])]), status
    return None, "degenerate" if degenerate.any() else "failed"


@dataclass(frozen=True)
class SearchSettings:
    """How one cell is searched.

    Attributes
    ----------
    starts : tuple of str
        ``init_params`` of the starts: 'hc' runs once (it is deterministic), each other method
        ``n_init`` times. Default: mclust's hierarchical start, then k-means++ seedings and
        responsibilities of random data points (k-means refined by Lloyd's algorithm ends in
        the same partition from most seeds: on Old Faithful VVV, K = 4, at BIC 2353.24 from
        every seed, where these reach 2336.7; experiments/model_selection/start_coverage.md).
    n_init : int
        Starts of each random method.
    reg_covar : float
        Added to the covariances' diagonals.
    tol : float
        The long runs stop when the mean log-likelihood changes by less than this.
    max_iter : int
        Iterations of each run at most.
    short_tol : float or None
        Every start first runs to this change of the mean log-likelihood, the best
        ``n_refine`` distinct ones on to ``tol`` (the "short runs, then long run" strategy of
        Biernacki, Celeux & Govaert 2003); None runs every start to ``tol``.
    n_refine : int
        Short runs continued to ``tol``.
    """

    starts: tuple = ("hc", "k-means++", "random_from_data")
    n_init: int = 10
    reg_covar: float = 1e-6
    tol: float = 1e-8
    max_iter: int = 1000
    short_tol: float | None = 1e-4
    n_refine: int = 5

    def runs(self, seed):
        """(init_params, seed) of every start, the random ones' seeds drawn from ``seed``."""
        rng = np.random.RandomState(seed)
        return [(start, 0 if start == "hc" else int(rng.randint(2**31 - 1)))
                for start in self.starts for _ in range(1 if start == "hc" else self.n_init)]


DEFAULT_SEARCH = SearchSettings()


def fit_starts(X, model, n_components, runs, settings=DEFAULT_SEARCH, *, tol=None,
               resolution=None):
    """EM from each start of ``runs`` (pairs (init_params, seed)) to ``tol`` (default
    ``settings.tol``).

    Returns
    -------
    list of dict
        One candidate per start: ``start``, ``estimator`` (None when the start collapsed or
        failed), ``loglik`` (total), ``reason`` (:func:`gmmlab.model.metrics.degeneracy`, the
        collapse, or the error) and ``degenerate``.
    """
    covariance_type = covariance_type_for(model, X.shape[1])
    candidates = []
    for start, seed in runs:
        estimator = EMGaussianMixture(
            n_components, covariance_type=covariance_type, reg_covar=settings.reg_covar,
            tol=settings.tol if tol is None else tol, max_iter=settings.max_iter,
            init_params=start, random_state=seed)
        candidates.append(_run(X, estimator, start, settings.reg_covar, resolution))
    return candidates


def refine(X, candidate, settings=DEFAULT_SEARCH, *, resolution=None):
    """Continue EM from a candidate's fit until the mean log-likelihood changes by less than
    ``settings.tol``; the refined candidate."""
    estimator = candidate["estimator"].set_params(tol=settings.tol, max_iter=settings.max_iter,
                                                  warm_start=True)
    return _run(X, estimator, candidate["start"], settings.reg_covar, resolution)


def _run(X, estimator, start, reg_covar, resolution):
    """Fit (or continue) an estimator and judge the fit: a candidate."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X)
    except SingularCovarianceError as error:
        return dict(start=start, estimator=None, loglik=np.nan, reason=str(error),
                    degenerate=True)
    except ValueError as error:
        return dict(start=start, estimator=None, loglik=np.nan, reason=f"{start}: {error}",
                    degenerate=False)
    covariances = gaussian.full_covariances(estimator.covariances_, estimator.covariance_type,
                                            *estimator.means_.shape)
    reason = metrics.degeneracy(X, estimator.weights_, covariances, reg_covar, resolution)
    return dict(start=start, estimator=estimator, loglik=estimator.score(X) * len(X),
                reason=reason, degenerate=reason is not None)


def best_fit(X, model, n_components, settings=DEFAULT_SEARCH, *, seed=0, resolution=None):
    """Fit one (model, K) cell from every start of ``settings`` and keep a fit by
    :func:`choose_fit`.

    Every start runs EM to ``settings.short_tol``; the best ``n_refine`` distinct ones (short
    log-likelihoods more than short_tol x N apart; those not degenerate after the short run
    first) continue to ``settings.tol``, further ones while every refined fit is degenerate.
    Degenerate fits are spurious maximisers of an unbounded likelihood; as McLachlan & Peel
    (2000, sec. 3.10) advise, the cell keeps the highest log-likelihood among the others
    (``degenerate_starts`` counts the fits set aside).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    model : str
        An mclust model name or a scikit-learn covariance type.
    n_components : int
    settings : SearchSettings
    seed : int
        Seeds the random starts.
    resolution : ndarray of shape (n_features,) or None
        The data's resolution (:func:`gmmlab.model.metrics.data_resolution`).

    Returns
    -------
    row : dict
        The cell's line of :func:`gmmlab.select`'s table.
    estimator : EMGaussianMixture or None
        The fit kept (None when the cell failed or every start collapsed).
    """
    D = X.shape[1]
    covariance_type = covariance_type_for(model, D)
    started = time.perf_counter()
    candidates = fit_starts(X, model, n_components, settings.runs(seed), settings,
                            tol=settings.tol if settings.short_tol is None else settings.short_tol,
                            resolution=resolution)
    # sound short runs first, best first: a start degenerate after its short run rarely
    # recovers, and refining it would crowd out sound ones
    fitted = sorted((c for c in candidates if c["estimator"] is not None),
                    key=lambda c: (c["degenerate"], -c["loglik"]))
    if settings.short_tol is not None:
        refined, seen = [], []
        for candidate in fitted:
            if len(refined) >= settings.n_refine and any(not c["degenerate"] for c in refined):
                break
            # starts whose short runs end within short_tol x N of one already refined are
            # taken for the same optimum
            if any(abs(candidate["loglik"] - other) < settings.short_tol * len(X)
                   for other in seen):
                continue
            seen.append(candidate["loglik"])
            refined.append(refine(X, candidate, settings, resolution=resolution))
        candidates = refined + [c for c in candidates if c["estimator"] is None]
    row = {"model": model, "covariance_type": covariance_type, "n_components": n_components,
           "n_parameters": gaussian.n_parameters(n_components, D, covariance_type),
           "degenerate_starts": sum(c["degenerate"] for c in candidates)}
    index, status = choose_fit([c["loglik"] for c in candidates],
                               [c["degenerate"] for c in candidates])
    if index is None:
        reason = next((c for c in candidates if c["degenerate"]), candidates[0])["reason"]
        return row | {"loglik": np.nan, "bic": np.nan, "icl": np.nan, "icl_entropy": np.nan,
                      "aic": np.nan, "status": status, "reason": reason, "start": None,
                      "converged": False, "n_iter": 0,
                      "seconds": time.perf_counter() - started}, None
    best = candidates[index]
    estimator = best["estimator"]
    covariances = gaussian.full_covariances(estimator.covariances_, covariance_type,
                                            n_components, D)
    criteria = metrics.information_criteria(X, estimator.weights_, estimator.means_,
                                            covariances, covariance_type)
    return row | {key: criteria[key] for key in ("loglik",) + CRITERIA} | {
        "status": status, "reason": kept_reason(candidates, index), "start": best["start"],
        "converged": bool(estimator.converged_), "n_iter": int(estimator.n_iter_),
        "seconds": time.perf_counter() - started}, estimator


def kept_reason(candidates, index):
    """The ``reason`` of a cell that keeps ``candidates[index]``: the kept fit's own (None for
    a sound fit), or, when a degenerate fit reached a higher log-likelihood and was set aside,
    a sentence saying so with the highest one's log-likelihood, start and degeneracy.

    Parameters
    ----------
    candidates : list of dict
        The cell's fits (``loglik``, ``degenerate``, ``start``, ``reason``), as
        :func:`fit_starts` returns them.
    index : int
        The fit kept (:func:`choose_fit`).

    Returns
    -------
    str or None
    """
    kept = candidates[index]
    if kept["degenerate"]:
        return kept["reason"]
    higher = [c for c in candidates if c["degenerate"] and c["loglik"] > kept["loglik"]]
    if not higher:
        return kept["reason"]
    top = max(higher, key=lambda c: c["loglik"])
    return (f"a higher optimum, log-likelihood {top['loglik']:.2f} against the kept "
            f"{kept['loglik']:.2f} (from the {top['start']} start), set aside as degenerate: "
            f"{top['reason']}")


def fit_cell(X, model, n_components, settings=DEFAULT_SEARCH, **options):
    """The table row of :func:`best_fit` (same arguments)."""
    return best_fit(X, model, n_components, settings, **options)[0]
