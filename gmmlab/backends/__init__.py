"""Backends behind one interface: ``fit(name, X, n_components, covariance_type, seed, ...)``.

Every backend returns a :class:`FitResult` with point estimates in one form (weights (K,),
means (K, D), full covariances (K, D, D)), so :mod:`gmmlab.model.metrics` treats them all alike.
What a backend returns is checked against the result contract (:func:`check_result`) before any
metric sees it; a plug-in author runs the same check on their own function with
:func:`check_backend`.
"""

import inspect
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gmmlab import console, plugins
from gmmlab.datasets import check_mixture, load_dataset
from gmmlab.model import gaussian
from gmmlab.model.em import SingularCovarianceError

# The built-in backends: name -> "module:function", imported on use (PyMC is slow to import).
BUILT_IN = {"em": "gmmlab.backends.em:fit_em",
            "em_select": "gmmlab.backends.select:fit_em_select",
            "sklearn": "gmmlab.backends.scikit:fit_sklearn",
            "sklearn_vb": "gmmlab.backends.scikit:fit_sklearn_vb",
            "pymc": "gmmlab.backends.bayes:fit_pymc",
            "gibbs": "gmmlab.backends.gibbs:fit_gibbs",
            "mclust": "gmmlab.backends.mclust:fit_mclust"}
# The covariance types each built-in backend fits: scikit-learn's four names, and for em and
# mclust also mclust's fourteen models (gmmlab.model.gaussian.MCLUST_MODELS).
COVARIANCE_TYPES = {name: gaussian.COVARIANCE_TYPES for name in BUILT_IN} | {
    name: gaussian.ALL_COVARIANCE_TYPES for name in ("em", "mclust")}
COVARIANCE_TYPES["em_select"] = COVARIANCE_TYPES["em"]  # gmmlab.select's cells: EM's models
COVARIANCE_TYPES["gibbs"] = ("full",)  # the conjugate prior is written for full covariances
# Installed packages add backends under this entry-point group (see gmmlab.plugins).
ENTRY_POINT_GROUP = "gmmlab.backends"
# ``backend=custom backend.target=module:function`` runs any importable function.
CUSTOM = plugins.CUSTOM
# What gmmlab passes to a backend function, by parameter name; the function names those it uses.
STANDARD_ARGUMENTS = ("X", "n_components", "covariance_type", "seed", "reg_covar")


# A backend's weights must sum to 1 within this (they are never renormalised silently).
WEIGHTS_ATOL = 1e-8
STATUSES = ("ok", "singular", "failed")


class BackendError(plugins.PluginError):
    """A backend that cannot be used as configured: unknown name, bad target or options."""


class ResultContractError(ValueError):
    """What a backend returned breaks the result contract (:func:`check_result`); the message
    names the backend and what was wrong."""


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
    the covariance type), optionally ``n_iter``, ``converged`` and ``diagnostics``. The
    function gets its own copy of X, so the data the metrics see are the data as loaded;
    what it returns must pass :func:`check_result`, else the fit is 'failed' with the reason.
    Any exception the function raises, ``SystemExit`` included, is a 'failed' fit;
    ``KeyboardInterrupt`` is not caught.

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
    >>> failed = backends.fit("em", X, 2, tol=-1.0)  # a failing fit is recorded
    >>> failed.status, failed.message.split(" must ")[0]
    ('failed', "InvalidParameterError: The 'tol' parameter of EMGaussianMixture")
    >>> backends.fit("em", X, 2, shrinkage=0.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    gmmlab.backends.BackendError: an option fit_em does not take
    """
    function, arguments = check(name, covariance_type, **options)
    label = options.get("target") or name
    return _fit_function(function, label, X, n_components, covariance_type, seed, reg_covar,
                         arguments)


def _fit_function(function, label, X, n_components, covariance_type, seed, reg_covar,
                  arguments):
    """Call backend ``function`` (named ``label`` in messages) on a copy of X; its checked
    FitResult, or a 'failed' one with the reason."""
    X = np.array(X, dtype=float)  # the backend's own copy
    data = {"X": X, "n_components": n_components, "seed": seed, "reg_covar": reg_covar}
    arguments = arguments | {k: v for k, v in data.items() if _takes(function, k)}
    started = time.perf_counter()
    try:
        result = check_result(function(**arguments), n_components, X.shape[1],
                              covariance_type, backend=label)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a failing fit is a result
        result = _failed(label, n_components, covariance_type, error)
    result.fit_seconds = time.perf_counter() - started
    return result


def check_result(returned, n_components, n_features, covariance_type="full", *,
                 backend="backend"):
    """The result contract: what a backend function may return, as a checked FitResult.

    Parameters
    ----------
    returned : FitResult or mapping
        A :class:`FitResult`, or a mapping with ``weights``, ``means``, ``covariances`` and
        optionally ``n_iter``, ``converged``, ``diagnostics``.
    n_components : int
        K, the number of components asked for.
    n_features : int
        D, the number of features of the data.
    covariance_type : str, default='full'
        The declared covariance type: covariances come as full (K, D, D) matrices or in the
        type's storage form ((D, D) tied, (K, D) diagonal, (K,) spherical; see
        :func:`gmmlab.model.gaussian.storage`).
    backend : str
        The backend's name in messages (a plug-in's target, ``module:function``).

    Returns
    -------
    FitResult
        With ``weights`` of shape (K,), ``means`` (K, D) and ``covariances`` (K, D, D). A
        result of status 'failed' is returned as it is (it has no parameters).

    Raises
    ------
    ResultContractError
        Unless: the status is 'ok', 'singular' or 'failed'; there are K weights, every entry
        finite, weights >= 0 summing to 1 within ``WEIGHTS_ATOL`` (1e-8; never renormalised);
        means of shape (K, D); covariances in the declared type's shape (or full), symmetric
        and positive definite (:func:`gmmlab.datasets.check_mixture`).

    Examples
    --------
    >>> import numpy as np
    >>> result = check_result({"weights": [0.5, 0.5], "means": [[0.0], [3.0]],
    ...                        "covariances": [1.0, 2.0]}, 2, 1, "spherical")
    >>> result.covariances.shape
    (2, 1, 1)
    >>> check_result({"weights": [1.5, 1.5], "means": [[0.0], [3.0]],
    ...               "covariances": [1.0, 2.0]}, 2, 1, "spherical", backend="mine")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gmmlab.backends.ResultContractError: backend 'mine' broke the result contract: weights...
    """
    def broken(what):
        return ResultContractError(f"backend {backend!r} broke the result contract: {what}")

    if isinstance(returned, FitResult):
        result = returned
        if result.status not in STATUSES:
            raise broken(f"the status {result.status!r}; expected one of {list(STATUSES)}.")
        if result.status == "failed":
            return result
        parameters = result.weights, result.means, result.covariances
    elif isinstance(returned, Mapping) and {"weights", "means", "covariances"} <= set(returned):
        result = FitResult(backend, n_components, covariance_type,
                           n_iter=returned.get("n_iter"), converged=returned.get("converged"),
                           diagnostics=dict(returned.get("diagnostics") or {}))
        parameters = returned["weights"], returned["means"], returned["covariances"]
    else:
        raise broken(f"it returned {type(returned).__name__}; expected a FitResult or a "
                     "mapping with weights, means and covariances.")
    if any(value is None for value in parameters):
        raise broken(f"the status {result.status!r} without weights, means and covariances.")
    try:
        weights, means, covariances = (np.asarray(value, dtype=float) for value in parameters)
    except (TypeError, ValueError) as error:
        raise broken(f"the parameters are not arrays of numbers ({error}).") from None
    K, D = n_components, n_features
    if weights.shape != (K,):
        raise broken(f"the weights have shape {weights.shape}; expected ({K},): K = {K} components "
                     "were asked for.")
    if means.shape != (K, D) and not (D == 1 and means.shape == (K,)):
        raise broken(f"the means have shape {means.shape}; expected ({K}, {D}).")
    form = gaussian.storage(covariance_type)
    declared = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[form]
    if covariances.shape not in ((K, D, D), declared):
        raise broken(f"the covariances have shape {covariances.shape}; expected {declared} "
                     f"({covariance_type}) or full ({K}, {D}, {D}).")
    if covariances.shape != (K, D, D):
        covariances = gaussian.full_covariances(covariances, covariance_type, K, D)
    try:
        weights, means, covariances = check_mixture(weights, means.reshape(K, D), covariances,
                                                    atol=WEIGHTS_ATOL)
    except ValueError as error:
        raise broken(str(error)) from None
    result.weights, result.means, result.covariances = weights, means, covariances
    return result


def check_backend(function, X=None, n_components=(1, 2, 3), covariance_types=("full",),
                  seed=0, **options):
    """Run a backend function as gmmlab does and check what it returns: the contract test for
    a plug-in author, e.g. in their own test suite ``check_backend(fit_mine)``.

    Parameters
    ----------
    function : callable or str
        The backend function, or a ``"module:function"`` target.
    X : ndarray of shape (n_samples, n_features), optional
        The data; Old Faithful's (272, 2) by default.
    n_components : sequence of int, default=(1, 2, 3)
        The K to fit.
    covariance_types : sequence of str, default=('full',)
        The covariance types to fit (a function without a ``covariance_type`` parameter fits
        'full' only).
    seed : int, default=0
    **options
        The function's own keyword options.

    Returns
    -------
    list of FitResult
        One checked result per (covariance type, K).

    Raises
    ------
    ResultContractError
        When a fit fails (its message says why) or returns what breaks :func:`check_result`,
        or when the function changed the array it was given (gmmlab passes a copy, so this
        does not harm a study, but it is a bug of the function).
    """
    if isinstance(function, str):
        function = plugins.import_target(function, "backend")
    label = f"{function.__module__}:{function.__qualname__}"
    X = load_dataset("faithful").X if X is None else np.asarray(X, dtype=float)
    found = []
    for covariance_type in covariance_types:
        arguments = _arguments(function, covariance_type, options)
        for K in n_components:
            given = np.array(X)
            data = {"X": given, "n_components": K, "seed": seed, "reg_covar": 1e-6}
            call = arguments | {k: v for k, v in data.items() if _takes(function, k)}
            try:
                returned = function(**call)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - reported below
                raise ResultContractError(
                    f"backend {label!r} failed on K = {K}, {covariance_type}: "
                    f"{type(error).__name__}: {error}") from error
            if not np.array_equal(given, X):
                raise ResultContractError(f"backend {label!r} changed the data array it was "
                                          f"given (K = {K}, {covariance_type}).")
            result = check_result(returned, K, X.shape[1], covariance_type, backend=label)
            if result.status == "failed":
                raise ResultContractError(f"backend {label!r} failed on K = {K}, "
                                          f"{covariance_type}: {result.message}")
            found.append(result)
    return found


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
    message = console.plugin_failure_message(error)
    singular = {"backend_error": message} if _is_singular_error(error) else {}
    return FitResult(name, n_components, covariance_type, status="failed", message=message,
                     singular=singular | {"traceback": traceback.format_exc(limit=4)})


def _is_singular_error(error):
    """gmmlab's collapse error, or scikit-learn's 'ill-defined empirical covariance'."""
    return (isinstance(error, SingularCovarianceError)
            or "ill-defined empirical covariance" in str(error))
