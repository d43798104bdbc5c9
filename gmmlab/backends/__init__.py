"""Backends behind one interface: ``fit(name, X, n_components, covariance_type, seed, ...)``.

Every backend returns a :class:`FitResult` with point estimates in one form (weights (K,),
means (K, D), full covariances (K, D, D)), so :mod:`gmmlab.model.metrics` treats them all alike.
"""

import inspect
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gmmlab import plugins
from gmmlab.model import gaussian
from gmmlab.model.em import SingularCovarianceError

# The built-in backends: name -> "module:function", imported on use (PyMC is slow to import).
BUILT_IN = {"em": "gmmlab.backends.em:fit_em",
            "em_select": "gmmlab.backends.select:fit_em_select",
            "sklearn": "gmmlab.backends.scikit:fit_sklearn",
            "sklearn_vb": "gmmlab.backends.scikit:fit_sklearn_vb",
            "pymc": "gmmlab.backends.bayes:fit_pymc",
            "mclust": "gmmlab.backends.mclust:fit_mclust"}
# The covariance types each built-in backend fits: scikit-learn's four names, and for em and
# mclust also mclust's fourteen models (gmmlab.model.gaussian.MCLUST_MODELS).
COVARIANCE_TYPES = {name: gaussian.COVARIANCE_TYPES for name in BUILT_IN} | {
    name: gaussian.ALL_COVARIANCE_TYPES for name in ("em", "mclust")}
COVARIANCE_TYPES["em_select"] = COVARIANCE_TYPES["em"]  # gmmlab.select's cells: EM's models
# Installed packages add backends under this entry-point group (see gmmlab.plugins).
ENTRY_POINT_GROUP = "gmmlab.backends"
# ``backend=custom backend.target=module:function`` runs any importable function.
CUSTOM = plugins.CUSTOM
# What gmmlab passes to a backend function, by parameter name; the function names those it uses.
STANDARD_ARGUMENTS = ("X", "n_components", "covariance_type", "seed", "reg_covar")


class BackendError(plugins.PluginError):
    """A backend that cannot be used as configured: unknown name, bad target or options."""


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
    """Backend names accepted by :func:`fit` (``custom`` takes a ``target``)."""
    return [*BUILT_IN, *plugins.registered(ENTRY_POINT_GROUP), CUSTOM]


def resolve(name, target=None):
    """The fit function of backend ``name`` (for ``custom``: of ``target``, "module:function").

    Raises PluginError naming what is wrong: an unknown name, a module that does not import,
    a missing function, a function without the parameters ``X`` and ``n_components``.
    """
    function = plugins.find(name, target, kind="backend", key="backend", built_in=BUILT_IN,
                            group=ENTRY_POINT_GROUP, available=available)
    parameters = inspect.signature(function).parameters
    missing = [p for p in ("X", "n_components") if p not in parameters]
    if missing and not _takes_any_keyword(function):
        raise BackendError(f"backend target '{function.__module__}:{function.__name__}': "
                           f"{function.__name__}() must take the parameters X and n_components; "
                           f"it lacks {', '.join(missing)}.")
    return function


def check(name, covariance_type="full", **options):
    """Raise BackendError unless backend ``name`` accepts ``options`` and the covariance type;
    nothing is fitted. Returns the fit function and its keyword arguments but the data."""
    options = dict(options)
    function = resolve(name, options.pop("target", None))
    if covariance_type not in COVARIANCE_TYPES.get(name, (covariance_type,)):
        alias = gaussian.SKLEARN_NAMES.get(covariance_type)
        raise BackendError(
            f"backend {name!r} fits the covariance types {list(COVARIANCE_TYPES[name])}, not "
            f"{covariance_type!r}" + (f" (mclust's name for {alias!r})" if alias else "")
            + "; backend=mclust fits all of mclust's models, and so does backend=em.")
    arguments = _arguments(function, covariance_type, options)
    data = {k: None for k in STANDARD_ARGUMENTS if k not in arguments and _takes(function, k)}
    try:
        inspect.signature(function).bind(**data, **arguments)
    except TypeError as error:
        accepted = [p for p in inspect.signature(function).parameters
                    if p not in STANDARD_ARGUMENTS]
        raise BackendError(f"backend {name!r} ({function.__module__}.{function.__name__}): "
                           f"{error}; its options are {accepted or 'none'}.") from None
    return function, arguments


def fit(name, X, n_components, covariance_type="full", seed=0, reg_covar=1e-6, **options):
    """Fit backend ``name`` to X (N, D); never raises for a failing fit: status 'failed'.

    A backend function gets, by name, those of ``X, n_components, covariance_type, seed,
    reg_covar`` it takes, and the options; it returns a :class:`FitResult` or a mapping with
    ``weights`` (K,), ``means`` (K, D) and ``covariances`` (full (K, D, D) or in the shape of
    the covariance type), optionally ``n_iter``, ``converged`` and ``diagnostics``.

    Parameters
    ----------
    name : str
        A backend of :func:`available`: ``'em'``, ``'em_select'``, ``'sklearn'``,
        ``'sklearn_vb'``, ``'pymc'``, ``'mclust'``, an installed plug-in's name, or
        ``'custom'`` with ``target="module:function"`` among the options.
    X : array-like of shape (N, D)
        The data.
    n_components : int
        K, the number of components.
    covariance_type : str, default='full'
        scikit-learn's 'full', 'tied', 'diag', 'spherical', or one of mclust's 14 models for
        the backends that fit them (:data:`COVARIANCE_TYPES`).
    seed : int, default=0
        Seeds the backend's starts and sampler.
    reg_covar : float, default=1e-6
        Added to every covariance's diagonal by the EM backends (>= 0).
    **options
        The backend function's keyword options (``singular='stop'``, ``draws=500``, ...).

    Returns
    -------
    FitResult
        Weights (K,), means (K, D), full covariances (K, D, D), ``status`` ('ok',
        'singular' or 'failed' with ``message``), iterations, log-likelihood history, wall
        time, diagnostics (and the draws for PyMC).

    Raises
    ------
    BackendError
        An unknown backend, an option its function does not take, a covariance type it
        cannot fit or a bad target, before anything is fitted.

    Examples
    --------
    >>> from gmmlab import backends, load_dataset
    >>> X = load_dataset("faithful").X
    >>> result = backends.fit("em", X, n_components=2, seed=0)
    >>> result.status, result.means.shape, result.covariances.shape
    ('ok', (2, 2), (2, 2, 2))
    >>> backends.fit("em", X, 2, singular="never").message  # a failing fit is recorded
    "ValueError: singular must be one of ['error', 'stop', 'reset'], got 'never'."
    >>> backends.fit("em", X, 2, shrinkage=0.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    gmmlab.backends.BackendError: an option fit_em does not take
    """
    function, arguments = check(name, covariance_type, **options)
    X = np.asarray(X, dtype=float)
    data = {"X": X, "n_components": n_components, "seed": seed, "reg_covar": reg_covar}
    arguments |= {k: v for k, v in data.items() if _takes(function, k)}
    started = time.perf_counter()
    try:
        result = _as_fit_result(function(**arguments), name, n_components, covariance_type,
                                X.shape[1])
    except Exception as error:  # noqa: BLE001 - a failing fit is a result, not a crash
        result = _failed(name, n_components, covariance_type, error)
    result.fit_seconds = time.perf_counter() - started
    return result


def _takes(function, parameter):
    return parameter in inspect.signature(function).parameters or _takes_any_keyword(function)


def _takes_any_keyword(function):
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(function).parameters.values())


def _arguments(function, covariance_type, options):
    """The covariance type (when the function takes one) and the options, as keywords. A
    function without ``covariance_type`` fits full covariances and accepts only 'full'."""
    if _takes(function, "covariance_type"):
        return {"covariance_type": covariance_type} | options
    if covariance_type != "full":
        raise BackendError(f"backend function {function.__name__}() has no covariance_type "
                           f"parameter, so it fits full covariances; got covariance_type="
                           f"{covariance_type!r}.")
    return dict(options)


def _as_fit_result(returned, name, n_components, covariance_type, n_features):
    """A backend's return value as a FitResult (a mapping of parameters is wrapped)."""
    if isinstance(returned, FitResult):
        return returned
    if not isinstance(returned, Mapping) or not {"weights", "means", "covariances"} <= set(
            returned):
        raise TypeError(f"backend {name!r} returned {type(returned).__name__}; expected a "
                        "FitResult or a mapping with weights, means and covariances.")
    weights = np.asarray(returned["weights"], dtype=float)
    means = np.asarray(returned["means"], dtype=float).reshape(len(weights), n_features)
    covariances = np.asarray(returned["covariances"], dtype=float)
    if covariances.shape != (len(weights), n_features, n_features):
        covariances = gaussian.full_covariances(covariances, covariance_type, len(weights),
                                                n_features)
    return FitResult(name, n_components, covariance_type, weights=weights, means=means,
                     covariances=covariances, n_iter=returned.get("n_iter"),
                     converged=returned.get("converged"),
                     diagnostics=dict(returned.get("diagnostics") or {}))


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
    }[gaussian.storage(covariance_type)]
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
