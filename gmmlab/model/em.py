"""Expectation-maximisation for Gaussian mixtures, written from scratch with numpy, scipy and
Numba (the E-step and the M-step's sufficient statistics in one compiled pass,
:mod:`gmmlab.model.kernels`).

``EMGaussianMixture`` takes the constructor parameters of ``sklearn.mixture.GaussianMixture`` and
exposes the same fitted attributes, so either can stand in for the other. scikit-learn supplies
only the estimator protocol (``BaseEstimator`` for get/set_params and cloning, ``validate_data``
for input checking); the algorithm lives here, in :mod:`gmmlab.model.gaussian` and in
:mod:`gmmlab.model.kernels`.

One EM iteration from parameters theta_t:

* E-step: log r_nk = log pi_k + log N(x_n | mu_k, Sigma_k) - log sum_j pi_j N(x_n | mu_j, Sigma_j);
  the log-sum-exp term summed over n is the log-likelihood l(theta_t).
* M-step: pi_k = N_k / N, mu_k the responsibility-weighted mean, and Sigma_k the weighted
  covariance constrained to the covariance type: scikit-learn's four or mclust's fourteen models
  lambda_k D_k A_k D_k^T (:data:`gmmlab.model.gaussian.MODEL_M_STEPS`).

l(theta_t) never decreases (with ``reg_covar=0``) unless a component collapses, which this
estimator detects and handles as ``singular`` says.
"""

import numbers
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from gmmlab.model import gaussian, hc, metrics

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data", "hc")
COVARIANCE_TYPES = gaussian.ALL_COVARIANCE_TYPES
# Restarts are distinct starts: a start whose partition an earlier restart had is drawn again,
# up to this many draws per restart asked for.
DRAWS_PER_RESTART = 10
SINGULAR_MODES = ("error", "stop", "reset")


class SingularCovarianceError(ValueError):
    """A component's covariance became singular (the maximum-likelihood collapse)."""

    def __init__(self, component, iteration, min_eigenvalue, detail="", singular="error"):
        self.component, self.iteration, self.min_eigenvalue = component, iteration, min_eigenvalue
        which = ("the covariance shared by all components" if component is None
                 else f"component {component}")
        stage = "at initialisation" if iteration == 0 else f"at iteration {iteration}"
        super().__init__(
            f"Covariance of {which} became singular {stage}: smallest eigenvalue "
            f"{min_eigenvalue:.3g}. The likelihood is unbounded there (a component collapsing "
            f"onto a point or a subspace); use reg_covar > 0, fewer components, or "
            f"singular={'/'.join(repr(m) for m in ('stop', 'reset') if m != singular)}.{detail}"
        )


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."""


class EMGaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM, with the interface of ``sklearn.mixture.GaussianMixture``.

    The same constructor parameters, fitted attributes and methods (``fit, fit_predict,
    predict, predict_proba, score_samples, score, bic, aic, sample``); the E-step in the log
    domain with Cholesky factors of the precisions; mclust's fourteen covariance models
    beside scikit-learn's four.

    Parameters
    ----------
    n_components : int, default=1
        K, the number of components.
    covariance_type : str, default='full'
        scikit-learn's 'full', 'tied', 'diag', 'spherical', or one of mclust's models
        lambda_k D_k A_k D_k^T (Celeux & Govaert 1995) 'EII', 'VII', 'EEI', 'VEI', 'EVI',
        'VVI', 'EEE', 'VEE', 'EVE', 'VVE', 'EEV', 'VEV', 'EVV', 'VVV' (volume lambda, shape A,
        orientation D: Equal, Variable or Identity); spherical = VII, diag = VVI, tied = EEE,
        full = VVV. ``covariances_`` has the shape of the model's storage form (see
        :mod:`gmmlab.model.gaussian`): (K,) for EII and VII, (K, D) for the \\*I models,
        (D, D) for EEE, (K, D, D) for the rest; so has ``precisions_init``, whose covariances
        the first M-step constrains to the model.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood per sample changes by less.
    reg_covar : float, default=1e-6
        Added to every covariance's diagonal (>= 0).
    max_iter : int, default=100
        EM iterations at most per restart.
    n_init : int, default=1
        Restarts, each from a different start: a k-means (or other hard) start whose
        partition an earlier restart had is drawn again with the next seed, up to
        ``DRAWS_PER_RESTART`` (10) draws per restart; ``n_distinct_starts_`` says how many
        were run.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'}, default='kmeans'
        The start: scikit-learn's four, or mclust's model-based hierarchical clustering
        (:mod:`gmmlab.model.hc`, deterministic).
    weights_init : array-like of shape (K,), default=None
        Initial weights (overrides ``init_params``), as in scikit-learn.
    means_init : array-like of shape (K, D), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions, in the shape of ``covariances_``.
    random_state : int, RandomState or None, default=None
        Seeds the starts (and re-seeding with ``singular='reset'``).
    warm_start : bool, default=False
        Start from the last fit's parameters, as in scikit-learn.
    verbose : int, default=0
        Print the lower bound and its change when > 0, every ``verbose_interval``
        iterations.
    verbose_interval : int, default=10
        Iterations between two printouts of ``verbose``.
    singular : {'error', 'stop', 'reset'}, default='error'
        What to do when a covariance's smallest eigenvalue falls to ``singular_tol`` times the
        mean feature variance of the data or below (or its Cholesky factor fails): raise
        :class:`SingularCovarianceError`; stop and keep the last non-degenerate parameters,
        recording ``collapse_``; or re-seed the component at a random data point with the data
        covariance and go on, counting ``n_resets_``.
    singular_tol : float, default=1e-10
        The collapse threshold, relative to the data scale.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        The fitted parameters, as in scikit-learn (shapes by ``covariance_type``).
    converged_ : bool
        Whether the best restart converged before ``max_iter``.
    n_iter_ : int
        Iterations of the best restart.
    lower_bound_ : float
        Mean log-likelihood per sample of the best restart; ``lower_bounds_`` per iteration.
    log_likelihood_history_ : ndarray of shape (``n_iter_`` + 1,)
        Total train log-likelihood of the best restart: entry t is l(theta_t), after t
        iterations (entry 0 is the initial parameters). ``restart_histories_`` holds the same
        for every restart, in order.
    collapse_ : dict or None
        ``component, iteration, min_eigenvalue, log_likelihood`` of the collapse that stopped
        the best restart (``singular='stop'``), else None.
    n_resets_ : int
        Components re-seeded over all restarts (``singular='reset'``).
    n_distinct_starts_ : int
        Restarts run, each from a distinct start (at most ``n_init``; fewer when the data admit
        fewer distinct k-means partitions, or the start is given by ``*_init``).

    Every constructor parameter is checked as scikit-learn checks its estimators' (declared
    in ``_parameter_constraints``, applied by ``fit``): a value of the wrong type, out of range,
    NaN or infinite (``tol``, ``reg_covar``, ``singular_tol``) raises scikit-learn's
    ``InvalidParameterError`` (a ValueError) naming the parameter, what it must be and the
    value given.

    Raises
    ------
    SingularCovarianceError
        From ``fit`` when a component collapses with ``singular='error'``.

    Examples
    --------
    >>> from gmmlab import EMGaussianMixture, load_dataset
    >>> X = load_dataset("faithful").X
    >>> model = EMGaussianMixture(n_components=2, n_init=5, random_state=0).fit(X)
    >>> round(model.score(X) * len(X), 3)
    -1130.264
    >>> model.means_.round(2)
    array([[ 4.29, 79.97],
           [ 2.04, 54.48]])
    >>> EMGaussianMixture(3, covariance_type="EEE", random_state=0).fit(X).covariances_.shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, np.inf, closed="left")],
        "reg_covar": [Interval(Real, 0.0, np.inf, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_PARAMS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "singular": [StrOptions(set(SINGULAR_MODES))],
        "singular_tol": [Interval(Real, 0.0, np.inf, closed="left")],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        singular="error",
        singular_tol=1e-10,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.singular = singular
        self.singular_tol = singular_tol

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit by EM (``n_init`` restarts, the best lower bound kept). X : (N, D). Returns self."""
        self.fit_predict(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of every sample: (N,)."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        self._check_parameters(X)
        warm = self.warm_start and hasattr(self, "converged_")
        rng = _random_state(self.random_state)
        self._threshold = self.singular_tol * X.var(axis=0).mean()
        self.n_resets_ = 0
        self.restart_histories_ = []
        best = None
        n_restarts = 1 if warm else self.n_init
        seen = set()  # the partitions restarts started from
        for _ in range(DRAWS_PER_RESTART * n_restarts):
            if warm:
                params = self._get_parameters()
            else:
                params, partition = self._initial_parameters(X, rng)
                if partition in seen:
                    continue
                if partition is not None:
                    seen.add(partition)
            run = self._run_em(X, params, rng, self.lower_bound_ if warm else -np.inf)
            self.restart_histories_.append(run["history"])
            if self.verbose:
                print(f"restart {len(self.restart_histories_) - 1}: lower bound "
                      f"{run['lower_bound']:.6g}")
            if best is None or run["lower_bound"] > best["lower_bound"]:
                best = run
            if len(self.restart_histories_) == n_restarts:
                break
        self.n_distinct_starts_ = len(self.restart_histories_)
        self._set_parameters(best["params"])
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        self.lower_bound_ = best["lower_bound"]
        self.lower_bounds_ = best["lower_bounds"]
        self.log_likelihood_history_ = best["history"]
        self.collapse_ = best["collapse"]
        if not self.converged_ and self.max_iter > 0 and self.collapse_ is None:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return best["labels"]

    def _run_em(self, X, params, rng, lower_bound):
        """One restart: E- and M-steps from ``params`` until |change of lower bound| < tol."""
        N = X.shape[0]
        history, lower_bounds = [], []
        converged, collapse, n_iter = False, None, 0
        centre = X.mean(axis=0)
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            log_prob_norm, resp, statistics = gaussian.e_step_statistics(
                X, params["weights"], params["means"], params["precisions_cholesky"],
                self.covariance_type, centre)
            history.append(log_prob_norm.sum())
            nk, means, covariances = gaussian.parameters_from_statistics(
                *statistics, centre, self.reg_covar, self.covariance_type, params["covariances"])
            candidate = dict(weights=nk / nk.sum(), means=means, covariances=covariances)
            found = self._find_collapse(candidate)
            if found is not None:
                component, min_eig = found
                if self.singular == "error":
                    raise SingularCovarianceError(component, n_iter, min_eig)
                if self.singular == "stop":
                    collapse = dict(component=component, iteration=n_iter,
                                    min_eigenvalue=float(min_eig),
                                    log_likelihood=float(history[-1]))
                    break
                candidate = self._reset(X, candidate, found, rng, n_iter)
            params = candidate
            lower_bound = log_prob_norm.mean()
            lower_bounds.append(lower_bound)
            change = lower_bound - previous
            if self.verbose and n_iter % self.verbose_interval == 0:
                print(f"  iteration {n_iter}: lower bound {lower_bound:.6g}, change {change:.3g}")
            if abs(change) < self.tol:
                converged = True
                break
        if collapse is None:
            log_prob_norm, resp = self._e_step(X, params)
            history.append(log_prob_norm.sum())
        else:  # resp is still that of the kept parameters
            n_iter -= 1
            lower_bound = history[-1] / N
        return dict(params=params, converged=converged, n_iter=n_iter, lower_bound=lower_bound,
                    lower_bounds=lower_bounds, history=np.array(history), collapse=collapse,
                    labels=resp.argmax(axis=1))

    def _e_step(self, X, params):
        """log p(x_n) (N,) and responsibilities r_nk (N, K) under ``params``.

        With a_nk = log pi_k + log N(x_n | mu_k, Sigma_k) and m_n = max_k a_nk (log-sum-exp):
        log p(x_n) = m_n + log sum_k exp(a_nk - m_n) and r_nk = exp(a_nk - m_n) / sum_j (...),
        compiled (:func:`gmmlab.model.gaussian.e_step_statistics`; the fit's iterations also
        take the M-step's statistics from the same pass).
        """
        log_prob_norm, resp, _ = gaussian.e_step_statistics(
            X, params["weights"], params["means"], params["precisions_cholesky"],
            self.covariance_type)
        return log_prob_norm, resp

    def _m_step(self, X, resp, previous=None):
        """pi_k = N_k / N and the Gaussian parameters; Cholesky factors only if non-degenerate.

        ``previous``: the current covariances, where an iterative M-step starts (None: cold)."""
        nk, means, covariances = gaussian.estimate_gaussian_parameters(
            X, resp, self.reg_covar, self.covariance_type, previous
        )
        return dict(weights=nk / nk.sum(), means=means, covariances=covariances)

    def _find_collapse(self, params):
        """(component, smallest eigenvalue) of a degenerate covariance, or None.

        On success, the parameters gain their ``precisions_cholesky``. Component is None for
        a covariance shared by all components (EII, EEI, EEE).
        """
        found = self._degenerate(params["covariances"])
        if found is not None:
            return found
        try:
            params["precisions_cholesky"] = gaussian.precisions_cholesky(
                params["covariances"], self.covariance_type
            )
        except np.linalg.LinAlgError:
            return self._degenerate(params["covariances"], threshold=np.inf)
        return None

    def _degenerate(self, covariances, threshold=None):
        """(component, smallest eigenvalue) of the worst covariance if it is non-finite or its
        smallest eigenvalue is at most the threshold (default: singular_tol x data scale)."""
        threshold = self._threshold if threshold is None else threshold
        shared = gaussian.shares_one_covariance(self.covariance_type)
        if not np.all(np.isfinite(covariances)):
            bad = ~np.isfinite(covariances).reshape(len(covariances), -1).all(axis=1)
            return (None if shared else int(np.argmax(bad))), np.nan
        eigenvalues = gaussian.smallest_eigenvalues(covariances, self.covariance_type)
        worst = int(np.argmin(eigenvalues))
        if eigenvalues[worst] <= threshold:
            return (None if shared else worst), eigenvalues[worst]
        return None

    def _reset(self, X, params, found, rng, iteration):
        """Re-seed every collapsed component at a random sample with the data covariance.

        ``found`` is the (component, smallest eigenvalue) of the first collapse. Raises if a
        re-seeded component (or the re-seeded shared covariance) is degenerate again: then the
        data covariance itself is singular. The next M-step constrains the covariances again.
        """
        data_covariance = gaussian.estimate_gaussian_parameters(
            X, np.ones((len(X), 1)), self.reg_covar, gaussian.storage(self.covariance_type)
        )[2]
        params = {name: params[name].copy() for name in ("weights", "means", "covariances")}
        reseeded = []
        while found is not None:
            component, min_eig = found
            if component in reseeded:
                raise SingularCovarianceError(
                    component, iteration, min_eig,
                    detail=" The data covariance itself is singular, so re-seeding cannot help.",
                )
            if component is None:
                params["covariances"] = np.broadcast_to(
                    data_covariance, params["covariances"].shape).copy()
            else:
                params["means"][component] = X[rng.randint(len(X))]
                params["covariances"][component] = data_covariance[0]
                params["weights"][component] = 1.0 / self.n_components
                params["weights"] /= params["weights"].sum()
            reseeded.append(component)
            self.n_resets_ += 1
            if self.verbose:
                print(f"  iteration {iteration}: re-seeded component {component}")
            found = self._find_collapse(params)
        return params

    # ---------------------------------------------------------- initialisation

    def _initial_parameters(self, X, rng):
        """theta_0: an M-step on the responsibilities of ``init_params``, then the user's inits.

        Returns theta_0 and what identifies the start: the partition of a hard start (labels
        numbered by first appearance, as bytes), "given" for a start given by ``*_init``, None
        for soft (random) responsibilities, which never repeat.
        """
        if all(p is not None for p in (self.weights_init, self.means_init, self.precisions_init)):
            params = dict(weights=np.asarray(self.weights_init, dtype=float),
                          means=np.asarray(self.means_init, dtype=float))
            partition = "given"
        else:
            resp = self._initial_responsibilities(X, rng)
            partition = _partition(resp)
            params = self._m_step(X, resp)
            if self.weights_init is not None:
                params["weights"] = np.asarray(self.weights_init, dtype=float)
            if self.means_init is not None:
                params["means"] = np.asarray(self.means_init, dtype=float)
        if self.precisions_init is not None:
            precisions_chol = gaussian.precisions_cholesky_from_precisions(
                np.asarray(self.precisions_init, dtype=float), self.covariance_type
            )
            params["precisions_cholesky"] = precisions_chol
            params["covariances"] = gaussian.covariances_from_cholesky(
                precisions_chol, self.covariance_type
            )
            found = self._degenerate(params["covariances"])
        else:
            found = self._find_collapse(params)
        if found is not None:
            if self.singular != "reset":
                raise SingularCovarianceError(found[0], 0, found[1], singular=self.singular)
            params = self._reset(X, params, found, rng, 0)
        return params, partition

    def _initial_responsibilities(self, X, rng):
        """Hard or random responsibilities (N, K) from the ``init_params`` method."""
        N, K = len(X), self.n_components
        if self.init_params == "hc":  # deterministic: mclust's hierarchical start (gmmlab.model.hc)
            return hc.responsibilities(X, K)
        if self.init_params == "random":
            resp = rng.uniform(size=(N, K))
            return resp / resp.sum(axis=1, keepdims=True)
        if self.init_params == "random_from_data":
            centres = X[rng.choice(N, size=K, replace=False)]
        else:
            centres = _kmeans_plusplus(X, K, rng)
            if self.init_params == "kmeans":
                centres = _lloyd(X, centres)
        labels = _nearest(X, centres)
        resp = np.zeros((N, K))
        resp[np.arange(N), labels] = 1.0
        return resp

    # ------------------------------------------------------------- prediction

    def score_samples(self, X):
        """log p(x_n) under the fitted mixture: (N,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._e_step(X, self._get_parameters())[0]

    def score(self, X, y=None):
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X):
        """Responsibilities r_nk: (N, K), rows summing to 1."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._e_step(X, self._get_parameters())[1]

    def predict(self, X):
        """argmax_k r_nk: (N,)."""
        return self.predict_proba(X).argmax(axis=1)

    def _n_parameters(self):
        return gaussian.n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)

    def bic(self, X):
        """Bayesian information criterion -2 l + p log N (lower is better)."""
        return metrics.bic_of(self.score(X) * len(X), self._n_parameters(), len(X))

    def aic(self, X):
        """Akaike information criterion -2 l + 2 p (lower is better)."""
        return metrics.aic_of(self.score(X) * len(X), self._n_parameters())

    def sample(self, n_samples=1):
        """Ancestor sampling: z ~ Categorical(weights), x ~ N(mu_z, Sigma_z).

        Returns X (n_samples, D) and the components z (n_samples,), grouped by component.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = _random_state(self.random_state)
        D = self.means_.shape[1]
        counts = rng.multinomial(n_samples, self.weights_)
        covariances = gaussian.full_covariances(
            self.covariances_, self.covariance_type, self.n_components, D
        )
        X = np.vstack([
            rng.multivariate_normal(mean, covariance, int(count))
            for mean, covariance, count in zip(self.means_, covariances, counts, strict=True)
        ])
        return X, np.repeat(np.arange(self.n_components), counts)

    # ------------------------------------------------------------- parameters

    def _get_parameters(self):
        return dict(weights=self.weights_, means=self.means_, covariances=self.covariances_,
                    precisions_cholesky=self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weights_ = params["weights"]
        self.means_ = params["means"]
        self.covariances_ = params["covariances"]
        self.precisions_cholesky_ = params["precisions_cholesky"]
        self.precisions_ = gaussian.precisions_from_cholesky(
            self.precisions_cholesky_, self.covariance_type
        )

    def _check_parameters(self, X):
        """Reject what depends on the data (K above N, initial values of the wrong shape or
        impossible) with a message naming it; the rest is ``_parameter_constraints``'."""
        N, D = X.shape
        K = self.n_components
        if N < K:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {N}."
            )
        if self.weights_init is not None:
            weights = _check_init("weights_init", self.weights_init, (K,))
            if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
                raise ValueError(
                    f"weights_init must be non-negative and sum to 1, got sum {weights.sum():.6g}."
                )
        if self.means_init is not None:
            _check_init("means_init", self.means_init, (K, D))
        if self.precisions_init is not None:
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
            form = gaussian.storage(self.covariance_type)
            precisions = _check_init("precisions_init", self.precisions_init, shape[form])
            if form in ("full", "tied"):
                matrices = precisions.reshape(-1, D, D)
                if not np.allclose(matrices, matrices.transpose(0, 2, 1)):
                    raise ValueError("precisions_init must be symmetric.")
                if np.any(np.linalg.eigvalsh(matrices)[:, 0] <= 0):
                    raise ValueError("precisions_init must be positive definite.")
            elif np.any(precisions <= 0):
                raise ValueError("precisions_init must be positive.")


# ------------------------------------------------------------------ helpers


def check_choice(name, value, choices):
    """Raise ValueError naming the parameter, its allowed values and the value given."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


def _random_state(seed):
    """A ``numpy.random.RandomState`` from None, an int or an existing RandomState."""
    if seed is None or isinstance(seed, numbers.Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a RandomState, got {seed!r}.")


def _check_init(name, value, shape):
    array = np.asarray(value, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _partition(resp):
    """The partition of hard responsibilities (N, K) as bytes, labels numbered by first
    appearance (so relabelled partitions are equal); None for soft responsibilities."""
    if not np.all((resp == 0) | (resp == 1)):
        return None
    _, first, labels = np.unique(resp.argmax(axis=1), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels].tobytes()


def _squared_distances(X, centres):
    """||x_n - c_k||^2: (N, K), by the expansion ||x||^2 - 2 x.c + ||c||^2."""
    return np.maximum(
        (X * X).sum(axis=1)[:, None] - 2 * X @ centres.T + (centres * centres).sum(axis=1), 0.0
    )


def _nearest(X, centres):
    return _squared_distances(X, centres).argmin(axis=1)


def _kmeans_plusplus(X, n_clusters, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each centre drawn with p ~ D(x)^2."""
    centres = [X[rng.randint(len(X))]]
    closest = _squared_distances(X, np.array(centres))[:, 0]
    for _ in range(1, n_clusters):
        total = closest.sum()
        index = rng.choice(len(X), p=closest / total) if total > 0 else rng.randint(len(X))
        centres.append(X[index])
        closest = np.minimum(closest, _squared_distances(X, X[index : index + 1])[:, 0])
    return np.array(centres)


def _lloyd(X, centres, max_iter=300):
    """Lloyd's k-means iterations until assignments stop changing; empty clusters keep centres."""
    labels = None
    for _ in range(max_iter):
        new_labels = _nearest(X, centres)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        members = np.eye(len(centres))[labels]
        counts, sums = members.sum(axis=0), members.T @ X
        occupied = counts > 0
        centres = centres.copy()
        centres[occupied] = sums[occupied] / counts[occupied, None]
    return centres
