"""Model selection over covariance models x numbers of components, as mclust's ``mclustBIC``.

``select(X)`` fits every cell (model, K) with the EM estimator from several starts, keeps the
highest log-likelihood of each cell among the fits that are not degenerate
(:func:`gmmlab.model.metrics.degeneracy`: a component on tied values, with fewer than D + 1 points,
or at the ``reg_covar`` floor). A cell whose every start is degenerate has no
maximum-likelihood fit to speak of and, like mclust's NA, is never chosen. Criteria are in
scikit-learn's sign (lower is better).

The search of one cell is :mod:`gmmlab.model.search`; the command line ``gmmlab-select``
is :mod:`gmmlab.selection.cli`.
"""

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from gmmlab.model import gaussian, metrics
from gmmlab.model.em import EMGaussianMixture
from gmmlab.model.search import (
    CRITERIA,
    DEFAULT_SEARCH,
    SearchSettings,
    available_models,
    covariance_type_for,
    fit_cell,
)

# Data whose largest absolute value lies outside this range are fitted divided by a power of two
# (exact in floating point) that brings it near 1: squares and covariances of values near 1e200
# overflow, near 1e-200 they underflow. Log-likelihoods and criteria are reported for the data
# as given.
SAFE_MAGNITUDE = (1e-50, 1e50)

COLUMNS = ["model", "covariance_type", "n_components", "loglik", "n_parameters", "bic", "icl",
           "icl_entropy", "aic", "status", "reason", "degenerate_starts", "start", "converged",
           "n_iter", "seconds"]


def _model_list(models, n_features):
    if isinstance(models, str) and models == "all":
        return available_models(n_features)
    if isinstance(models, str):
        models = [models]
    models = list(models)
    if not models:
        raise ValueError(f"models=[] selects no model; expected 'all' or names from "
                         f"{available_models(n_features)}.")
    names = []
    for model in models:
        covariance_type_for(model, n_features)  # raises with the list when unknown
        name = gaussian.mclust_name(model, n_features)
        if name not in names:
            names.append(name)
    return names


@dataclass
class SelectionResult:
    """The table of a :func:`select` run and the choice it makes.

    table: one row per model x K (columns :data:`COLUMNS`); ``status`` is 'ok', 'degenerate'
    (``reason`` says why) or 'failed' (``reason`` holds the error).
    """

    table: pd.DataFrame
    criterion: str
    n_samples: int
    n_features: int
    seconds: float

    def best(self, n=3, criterion=None):
        """The n best ok cells by ``criterion`` (default: the run's), lowest first; degenerate
        and failed cells never count."""
        criterion = criterion or self.criterion
        ok = self.table[self.table["status"] == "ok"]
        return ok.sort_values([criterion, "n_parameters"]).head(n).reset_index(drop=True)

    def criterion_table(self, criterion=None):
        """Models as columns, K as rows, the criterion where the cell is ok, NaN elsewhere."""
        criterion = criterion or self.criterion
        values = self.table[criterion].where(self.table["status"] == "ok")
        frame = self.table.assign(value=values)
        return frame.pivot(index="n_components", columns="model", values="value")[
            list(dict.fromkeys(self.table["model"]))]

    def marked_table(self, criterion=None, decimals=2):
        """:meth:`criterion_table` as text: values to ``decimals`` decimals, 'deg.' or 'fail'
        where the cell is degenerate or failed (never chosen), '-' where no cell was fitted."""
        grid = self.criterion_table(criterion).map(
            lambda v: "-" if pd.isna(v) else f"{v:.{decimals}f}")
        for cell in self.table[self.table["status"] != "ok"].itertuples():
            grid.loc[cell.n_components, cell.model] = {"degenerate": "deg.",
                                                       "failed": "fail"}[cell.status]
        return grid

    def summary(self, n=3):
        """A printout like mclust's ``summary(mclustBIC)``: the top models by BIC and ICL and
        the criterion table, degenerate cells shown as such."""
        lines = [f"gmmlab.select: {self.n_samples} samples x {self.n_features} features, "
                 f"{self.table['model'].nunique()} models x K = "
                 f"{_ranges(sorted(self.table['n_components'].unique()))}, "
                 f"{self.seconds:.1f} s. Criteria lower is better (scikit-learn's sign)."]
        for criterion in dict.fromkeys([self.criterion, "bic", "icl"]):
            top = self.best(n, criterion)
            if top.empty:
                lines.append(f"\nNo ok cell to rank by {criterion.upper()}.")
                continue
            lines.append(f"\nTop {len(top)} by {criterion.upper()}:")
            lines.append(pd.DataFrame({
                "model,K": top["model"] + "," + top["n_components"].astype(str),
                criterion.upper(): top[criterion].map("{:.3f}".format),
                "difference": (top[criterion] - top[criterion].iloc[0]).map("{:.3f}".format),
                **({"BIC": top["bic"].map("{:.3f}".format)} if criterion != "bic" else {}),
                **({"ICL": top["icl"].map("{:.3f}".format)} if criterion != "icl" else {}),
            }).to_string(index=False))
        lines.append(f"\n{self.criterion.upper()} per model and K "
                     "(deg. = degenerate, fail = failed: never chosen):")
        lines.append(self.marked_table().to_string())
        reasons = self.table[(self.table["status"] != "ok") | self.table["reason"].notna()]
        if len(reasons):
            lines.append("\nWhy:")
            lines += [f"  {row.model},{row.n_components}: {row.reason}"
                      for row in reasons.itertuples()]
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def _component_counts(n_components, n_samples):
    """The K to try, sorted and distinct: an int or integers (2.0 counts as 2) in
    [1, n_samples]; ValueError naming the value otherwise."""
    values = [n_components] if isinstance(n_components, numbers.Number | str) else list(
        n_components)
    for k in values:
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not float(k).is_integer():
            raise ValueError(f"n_components holds {k!r}; expected whole numbers of components "
                             "(e.g. range(1, 10) or 3).")
    ks = sorted({int(k) for k in values})
    if not ks or ks[0] < 1 or ks[-1] > n_samples:
        raise ValueError(f"n_components must be between 1 and n_samples = {n_samples}, got "
                         f"{values}.")
    return ks


def _working_scale(X):
    """(X / scale, scale): scale a power of two near the largest |x| when that lies outside
    :data:`SAFE_MAGNITUDE`, else 1."""
    largest = float(np.abs(X).max()) if X.size else 0.0
    if largest == 0.0 or SAFE_MAGNITUDE[0] <= largest <= SAFE_MAGNITUDE[1]:
        return X, 1.0
    scale = 2.0 ** math.floor(math.log2(largest))
    return X / scale, scale


def _ranges(values):
    return f"{values[0]}..{values[-1]}" if values == list(range(values[0], values[-1] + 1)) \
        else ",".join(map(str, values))


def select(X, n_components=range(1, 10), models="all", criterion="bic",
           n_init=DEFAULT_SEARCH.n_init, random_state=0, n_jobs=None,
           starts=DEFAULT_SEARCH.starts, reg_covar=DEFAULT_SEARCH.reg_covar,
           tol=DEFAULT_SEARCH.tol, max_iter=DEFAULT_SEARCH.max_iter):
    """Fit every model x K and rank them: mclust's ``mclustBIC`` with degenerate cells named.

    Each cell is fitted from ``starts`` with seeds from ``random_state``; the best
    non-degenerate log-likelihood is kept (:func:`gmmlab.model.search.best_fit`).

    Parameters
    ----------
    X : array-like of shape (N, D)
        The data, of any magnitude (beyond :data:`SAFE_MAGNITUDE` they are fitted divided by
        a power of two, ``reg_covar`` with them, and the criteria reported for X).
    n_components : int or iterable of int, default=range(1, 10)
        The K to try.
    models : 'all' or list of str, default='all'
        'all' (mclust's models the EM estimator fits,
        :func:`gmmlab.model.search.available_models`: 14, or E and V in 1-D) or a non-empty
        list of mclust or scikit-learn names.
    criterion : {'bic', 'icl', 'icl_entropy', 'aic'}, default='bic'
        The ranking of ``best`` (lower is better).
    n_init : int, default=10
        Random starts of each kind per cell.
    random_state : int, default=0
        Seeds every cell's starts.
    n_jobs : int or None, default=None
        Cells fitted in parallel (joblib).
    starts : tuple of str
        The kinds of start: the hc start once, ``n_init`` k-means++ and ``n_init``
        random_from_data starts by default.
    reg_covar : float
        Added to every covariance's diagonal (default 1e-6).
    tol : float
        The long runs' tolerance on the change of the mean log-likelihood.
    max_iter : int
        EM iterations at most per run.

    Returns
    -------
    SelectionResult
        ``table`` (one row per model x K), ``best(n)``, ``criterion_table()``,
        ``summary()``.

    Raises
    ------
    ValueError
        A bad argument, named (an unknown model or criterion, an empty model list, K not a
        whole number >= 1, non-finite data): every argument is checked before any fit.

    Examples
    --------
    >>> from gmmlab import load_dataset, select
    >>> result = select(load_dataset("faithful").X, n_components=[2, 3], models=["EEE"])
    >>> best = result.best(1).iloc[0]
    >>> best["model"], int(best["n_components"]), round(float(best["bic"]), 3)
    ('EEE', 3, 2314.296)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n_samples, n_features) array, got shape "
                         f"{X.shape}" + ("" if X.ndim != 2 else " with NaN or infinity") + ".")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}.")
    ks = _component_counts(n_components, len(X))
    names = _model_list(models, X.shape[1])
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(
            random_state, numbers.Integral) or random_state < 0):
        raise ValueError(f"random_state must be None or an integer >= 0, got {random_state!r}.")
    # the estimator's own constraints (scikit-learn's messages, naming the parameter)
    EMGaussianMixture(n_init=n_init, reg_covar=reg_covar, tol=tol,
                      max_iter=max_iter)._validate_params()
    X, scale = _working_scale(X)
    scaled_floor = reg_covar / scale / scale  # scale**2 may overflow; the quotient may not
    if not math.isfinite(scaled_floor):
        raise ValueError(f"reg_covar={reg_covar:g} is far above the variance of the data (their "
                         f"largest value is of order {scale:.1g}); expected reg_covar well "
                         "below it, e.g. reg_covar=0.")
    settings = SearchSettings(starts=tuple(starts), n_init=n_init, reg_covar=scaled_floor,
                              tol=tol, max_iter=max_iter)
    resolution = metrics.data_resolution(X)
    seeds = np.random.SeedSequence(random_state).generate_state(len(names) * len(ks))
    cells = [(model, k) for model in names for k in ks]
    started = time.perf_counter()
    # one cell a task, the largest K first, so that no worker is left with a long cell at the
    # end while the others wait (the cost of a cell grows with K)
    order = sorted(range(len(cells)), key=lambda i: -cells[i][1])
    fitted = Parallel(n_jobs=n_jobs, batch_size=1)(
        delayed(fit_cell)(X, *cells[i], settings, seed=int(seeds[i]), resolution=resolution)
        for i in order)
    rows = [row for _, row in sorted(zip(order, fitted, strict=True), key=lambda p: p[0])]
    table = pd.DataFrame(rows, columns=COLUMNS)
    if scale != 1.0:  # log L(X) = log L(X / scale) - N D log(scale); criteria are -2 log L + c
        shift = X.size * math.log(scale)
        table["loglik"] -= shift
        table[list(CRITERIA)] += 2 * shift
    return SelectionResult(table, criterion, len(X), X.shape[1], time.perf_counter() - started)
