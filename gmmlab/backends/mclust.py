"""The ``mclust`` backend: R's mclust (Scrucca, Fop, Murphy & Raftery 2016), called through rpy2.

Needs R with the mclust package and rpy2; on Debian: ``apt-get install r-base-core
r-cran-mclust``, then ``pip install 'gmmlab[r]'`` (``make`` does the second when R is there).

Two starts:

- ``start='hc'`` (mclust's own, what ``Mclust()`` does): model-based agglomerative hierarchical
  clustering (model ``VVV`` on scaled-SVD variables; quantiles in 1-D) cut at K groups, then
  EM. Deterministic: the seed is recorded, not used.
- ``start='random'``: EM (mclust's ``me()``) from responsibilities drawn from Dirichlet(1, ...,
  1) with the seed; :func:`mclust_em` runs ``me()`` from any given responsibilities.

Covariance types are mclust's 14 model names or the scikit-learn names they equal (tied = EEE,
full = VVV, ...); in 1-D only the volume is left (E or V). mclust has no ``reg_covar``: where a
covariance becomes singular (relative condition number below ``emControl()$eps``) mclust gives
NA, and the fit is 'failed' with mclust's reason.
"""

from functools import cache

import numpy as np

from gmmlab.backends import FitResult
from gmmlab.model import gaussian

INSTALL_HINT = ("the mclust backend needs R with the mclust package and rpy2: on Debian "
                "'apt-get install r-base-core r-cran-mclust', then pip install 'gmmlab[r]'")

# mclust's return codes (?mclust::me): what an NA fit means.
RETURN_CODES = {-1: "a covariance became singular (mclust's NA)",
                -2: "a mixing proportion fell below the threshold (mclust's NA)",
                -3: "a mixing proportion became zero or NaN (mclust's NA)",
                -9: "the data are too few or singular for this model (mclust's NA)",
                1: "mclust's iteration limit was reached"}

# One R function for both starts; warnings are kept as text, parameters returned as plain
# arrays: mean (D, K), sigma (D, D, K) also in 1-D.
_FIT = """
function(data, G, modelName, z, tol, itmax) {
  messages <- character(0)
  keep <- function(w) {
    messages <<- c(messages, conditionMessage(w))
    invokeRestart("muffleWarning")
  }
  control <- emControl(tol = tol, itmax = itmax)
  fit <- withCallingHandlers(
    if (is.null(z)) Mclust(data, G = G, modelNames = modelName, control = control,
                           verbose = FALSE)
    else me(data, modelName = modelName, z = z, control = control),
    warning = keep)
  code <- if (is.null(fit)) -9 else if (is.null(z)) attr(fit$BIC, "returnCodes")[1, 1]
          else attr(fit, "returnCode")
  if (is.null(fit) || is.na(fit$loglik))
    return(list(ok = FALSE, code = code, messages = messages))
  d <- ncol(data)
  variance <- fit$parameters$variance
  sigma <- if (d == 1) array(rep_len(variance$sigmasq, G), c(1, 1, G)) else variance$sigma
  list(ok = TRUE, code = code, messages = messages, loglik = fit$loglik,
       pro = rep_len(fit$parameters$pro, G), mean = matrix(fit$parameters$mean, nrow = d),
       sigma = sigma, iterations = if (is.null(z)) NA_real_ else attr(fit, "info")[[1]],
       bic = bic(modelName, fit$loglik, nrow(data), d, G))
}
"""


@cache
def r_session():
    """R with mclust, started once per process.

    Returns
    -------
    robjects : module
        ``rpy2.robjects``, to evaluate R code (``robjects.r("...")``).
    converter : rpy2 converter
        numpy <-> R conversion, for ``with converter.context(): ...``.
    fit : R function
        gmmlab's wrapper of mclust's ``me()`` / ``Mclust()`` (this module's ``_FIT``).

    Raises
    ------
    ImportError
        Without rpy2, or without R's mclust package, saying how to install them.
    """
    try:
        import rpy2.robjects as ro
        from rpy2.robjects import numpy2ri
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error}).") from None
    if not ro.r('isTRUE(suppressWarnings(requireNamespace("mclust", quietly = TRUE)))')[0]:
        raise ImportError(f"{INSTALL_HINT} (R has no package mclust).")
    ro.r("suppressWarnings(suppressPackageStartupMessages(library(mclust)))")
    return ro, ro.default_converter + numpy2ri.converter, ro.r(_FIT)


def mclust_em(X, model, responsibilities, tol=1e-5, max_iter=None):
    """EM by mclust's ``me()`` from given responsibilities (N, K).

    tol: mclust's relative change of the log-likelihood, ``|l_t - l_{t-1}| / (1 + |l_t|)``.
    Returns a dict: ok, message, loglik, weights (K,), means (K, D), covariances (K, D, D),
    n_iter, bic (mclust's sign: higher is better).
    """
    return _call(np.asarray(X, dtype=float), model, np.asarray(responsibilities, dtype=float),
                 tol, max_iter)


def fit_mclust(X, n_components, covariance_type, seed, *, start="hc", tol=1e-5,
               max_iter=None):
    """mclust's EM for one model and K; see the module docstring for the starts."""
    model = gaussian.mclust_name(covariance_type, X.shape[1])
    if start == "hc":
        responsibilities = None
    elif start == "random":
        responsibilities = np.random.default_rng(seed).dirichlet(np.ones(n_components), len(X))
    else:
        raise ValueError(f"start must be 'hc' or 'random', got {start!r}.")
    out = _call(X, model, responsibilities, tol, max_iter, n_components)
    diagnostics = {"mclust_model": model, "start": start, "mclust_messages": out["messages"]}
    if not out["ok"]:
        return FitResult("mclust", n_components, covariance_type, status="failed",
                         message=out["message"], diagnostics=diagnostics,
                         singular={"backend_error": out["message"]} if out["code"] == -1 else {})
    # mclust's log-likelihood is that of the E-step before its last M-step; gmmlab's metrics
    # use the returned parameters, so the two differ by about the tolerance.
    diagnostics |= {"mclust_loglik": out["loglik"], "mclust_bic": -out["bic"]}
    return FitResult("mclust", n_components, covariance_type, weights=out["weights"],
                     means=out["means"], covariances=out["covariances"], n_iter=out["n_iter"],
                     converged=out["code"] == 0, diagnostics=diagnostics)


def _call(X, model, responsibilities, tol, max_iter, n_components=None):
    ro, converter, fit = r_session()
    K = n_components if responsibilities is None else responsibilities.shape[1]
    itmax = ro.IntVector([max_iter or 2147483647, 2147483647])
    with ro.conversion.localconverter(converter):
        out = fit(X, K, model, ro.NULL if responsibilities is None else responsibilities,
                  ro.FloatVector([tol, np.sqrt(np.finfo(float).eps)]), itmax)
    code = int(np.asarray(out["code"]).item())
    messages = [str(m) for m in np.atleast_1d(out["messages"])]
    if not bool(np.asarray(out["ok"]).item()):
        reason = RETURN_CODES.get(code, f"mclust returned code {code}")
        return {"ok": False, "code": code, "messages": messages,
                "message": "; ".join([reason, *messages])}
    iterations = np.asarray(out["iterations"]).item()
    return {"ok": True, "code": code, "messages": messages,
            "loglik": float(np.asarray(out["loglik"]).item()),
            "weights": np.asarray(out["pro"], dtype=float),
            "means": np.asarray(out["mean"], dtype=float).T,
            "covariances": np.transpose(np.asarray(out["sigma"], dtype=float), (2, 0, 1)),
            # mclust counts its first M-step (from the start) as an iteration and makes the
            # count negative when it stopped at itmax.
            "n_iter": None if np.isnan(iterations) else abs(int(iterations)) - 1,
            "bic": float(np.asarray(out["bic"]).item())}
