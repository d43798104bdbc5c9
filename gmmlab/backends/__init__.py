"""Backends behind one interface: ``fit(name, X, n_components, covariance_type, seed, ...)``.

Every backend returns a :class:`FitResult` with point estimates in one form (weights (K,),
means (K, D), full covariances (K, D, D)), so :mod:`gmmlab.metrics` treats them all alike.
"""

import inspect
import time
import traceback
from dataclasses import dataclass, field
from importlib import import_module

import numpy as np

from gmmlab.em import SingularCovarianceError

# name -> module holding a ``fit_<name>`` function; imported on use (PyMC is slow to import).
BACKENDS = {"em": "em", "sklearn": "scikit", "sklearn_vb": "scikit", "pymc": "bayes"}


@dataclass
class FitResult:
    """A backend's fit of one data set.

    status: 'ok'; 'singular' (finished, but a component collapsed: the parameters are the last
    non-degenerate ones); or 'failed' (``message`` says why, no parameters).
    """

    backend: str
    n_components: int
    covariance_type: str
    status: str = "ok"
    message: str = ""
    weights: np.ndarray | None = None
    means: np.ndarray | None = None
    covariances: np.ndarray | None = None
    n_iter: int | None = None
    converged: bool | None = None
    loglik_history: list | None = None
    fit_seconds: float = 0.0
    singular: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    idata: object = None
    draws: dict | None = None


def available():
    """Backend names accepted by :func:`fit`."""
    return list(BACKENDS)


def fit(name, X, n_components, covariance_type="full", seed=0, reg_covar=1e-6, **options):
    """Fit backend ``name`` to X (N, D); never raises for a failing fit: status 'failed'.

    Bad arguments (unknown backend, bad options) do raise, before anything is fitted.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {available()}.")
    fit_backend = getattr(import_module(f"gmmlab.backends.{BACKENDS[name]}"), f"fit_{name}")
    X = np.asarray(X, dtype=float)
    try:
        inspect.signature(fit_backend).bind(X, n_components, covariance_type, seed, reg_covar,
                                            **options)
    except TypeError as error:
        raise ValueError(f"backend {name!r}: {error}") from None
    started = time.perf_counter()
    try:
        result = fit_backend(X, n_components, covariance_type, seed, reg_covar, **options)
    except Exception as error:  # noqa: BLE001 - a failing fit is a result, not a crash
        result = _failed(name, n_components, covariance_type, error)
    result.fit_seconds = time.perf_counter() - started
    return result


def spike_start(X, n_components, covariance_type, variance, seed):
    """Initial parameters with component 0 on the first sample, variance ``variance``.

    The classic unbounded likelihood: as that variance -> 0, pi_0 N(x_1 | x_1, variance I)
    -> infinity. The other components sit on random samples with the data covariance.
    Returns weights_init, means_init, precisions_init for EM or scikit-learn.
    """
    N, D = X.shape
    K = n_components
    means = X[np.random.RandomState(seed).choice(np.arange(1, N), K - 1, replace=False)]
    data_variance = np.atleast_2d(np.cov(X.T))
    precision = np.linalg.inv(data_variance)  # of the data covariance, once
    spike = np.full(D, 1.0 / variance)
    precisions = {
        "full": np.stack([np.diag(spike)] + [precision] * (K - 1)),
        "tied": precision,
        "diag": np.vstack([spike] + [1 / np.diag(data_variance)] * (K - 1)),
        "spherical": np.array([1.0 / variance] + [1 / np.diag(data_variance).mean()] * (K - 1)),
    }[covariance_type]
    return dict(weights_init=np.full(K, 1.0 / K), means_init=np.vstack([X[:1], means]),
                precisions_init=precisions)


def _failed(name, n_components, covariance_type, error):
    message = f"{type(error).__name__}: {error}"
    singular = {"backend_error": message} if _is_singular_error(error) else {}
    return FitResult(name, n_components, covariance_type, status="failed", message=message,
                     singular=singular | {"traceback": traceback.format_exc(limit=4)})


def _is_singular_error(error):
    """gmmlab's collapse error, or scikit-learn's 'ill-defined empirical covariance'."""
    return (isinstance(error, SingularCovarianceError)
            or "ill-defined empirical covariance" in str(error))
