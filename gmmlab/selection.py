"""Model selection over covariance models x numbers of components, as mclust's ``mclustBIC``.

``select(X)`` fits every cell (model, K) with the EM estimator from several starts, keeps the
highest log-likelihood of each cell among the fits that are not degenerate
(:func:`gmmlab.metrics.degeneracy`: a component on tied values, with fewer than D + 1 points,
or at the ``reg_covar`` floor). A cell whose every start is degenerate has no
maximum-likelihood fit to speak of and, like mclust's NA, is never chosen. Criteria are in
scikit-learn's sign (lower is better).

Command line: ``gmmlab-select faithful`` (any data set name of :mod:`gmmlab.datasets`, or a CSV
path) prints the summary.
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from gmmlab import backends, gaussian, metrics
from gmmlab.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError

CRITERIA = ("bic", "icl", "icl_entropy", "aic")
# The default starts of every cell: mclust's hierarchical start, then n_init k-means++ seedings
# and n_init responsibilities of random data points (k-means refined by Lloyd's algorithm ends
# in the same partition from most seeds: on Old Faithful VVV, K = 4, at BIC 2353.24 from every
# seed, where these reach 2336.7; experiments/model_selection/start_coverage.md).
DEFAULT_STARTS = ("hc", "k-means++", "random_from_data")
DEFAULT_N_INIT = 10
# Every start runs EM to this change of the mean log-likelihood, the best N_REFINE distinct
# ones on to the tolerance asked for (best_fit, default TOL).
SHORT_TOL = 1e-4
N_REFINE = 5
TOL = 1e-8
COLUMNS = ["model", "covariance_type", "n_components", "loglik", "n_parameters", "bic", "icl",
           "icl_entropy", "aic", "status", "reason", "degenerate_starts", "start", "converged",
           "n_iter", "seconds"]


def available_models(n_features=2):
    """mclust's model names the EM estimator fits (directly or by its scikit-learn alias),
    in mclust's order; in 1-D the two left, E and V."""
    accepted = backends.COVARIANCE_TYPES["em"]
    alias = {model: name for name, model in gaussian.MCLUST_NAMES.items()}
    fitted = [m for m in gaussian.MCLUST_MODELS if m in accepted or alias.get(m) in accepted]
    if n_features > 1:
        return fitted
    return list(dict.fromkeys(gaussian.mclust_name(m, 1) for m in fitted))


def covariance_type_for(model, n_features):
    """The ``covariance_type`` the EM estimator is given for an mclust model name (or a
    scikit-learn name): the name itself where it is accepted, else its alias."""
    accepted = backends.COVARIANCE_TYPES["em"]
    alias = {m: name for name, m in gaussian.MCLUST_NAMES.items()}
    candidates = [model, alias.get(model)]
    if n_features == 1 and model in ("E", "V"):  # any model of that volume letter
        candidates = [m for m in gaussian.MCLUST_MODELS if m[0] == model]
        candidates += [alias.get(m) for m in candidates]
    for candidate in candidates:
        if candidate in accepted:
            return candidate
    raise ValueError(f"model {model!r} is not fitted by the EM estimator; it fits "
                     f"{available_models(n_features)} (and their scikit-learn names "
                     f"{list(gaussian.MCLUST_NAMES)}).")


def _model_list(models, n_features):
    if isinstance(models, str) and models == "all":
        return available_models(n_features)
    if isinstance(models, str):
        models = [models]
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

    def marked_table(self, criterion=None):
        """:meth:`criterion_table` as text: values to two decimals, 'deg.' or 'fail' where the
        cell is degenerate or failed (never chosen), '-' where no cell was fitted."""
        grid = self.criterion_table(criterion).map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
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
        reasons = self.table[self.table["status"] != "ok"]
        if len(reasons):
            lines.append("\nWhy:")
            lines += [f"  {row.model},{row.n_components}: {row.reason}"
                      for row in reasons.itertuples()]
        return "\n".join(lines)

    def __str__(self):
        return self.summary()


def _ranges(values):
    return f"{values[0]}..{values[-1]}" if values == list(range(values[0], values[-1] + 1)) \
        else ",".join(map(str, values))


def fit_starts(X, model, n_components, runs, *, reg_covar=1e-6, tol=TOL, max_iter=1000,
               resolution=None):
    """EM from each start of ``runs`` (pairs (init_params, seed)); a list of candidates.

    Each candidate: ``start, estimator`` (None when the start collapsed or failed), ``loglik``
    and ``reason`` (:func:`gmmlab.metrics.degeneracy`, the collapse, or the error).
    """
    covariance_type = covariance_type_for(model, X.shape[1])
    candidates = []
    for start, seed in runs:
        estimator = EMGaussianMixture(
            n_components, covariance_type=covariance_type, reg_covar=reg_covar, tol=tol,
            max_iter=max_iter, init_params=start, random_state=seed)
        candidates.append(_run(X, estimator, start, reg_covar, resolution))
    return candidates


def refine(X, candidate, *, reg_covar=1e-6, tol=TOL, max_iter=1000, resolution=None):
    """Continue EM from a candidate's fit until the mean log-likelihood changes by less than
    ``tol``; the refined candidate."""
    estimator = candidate["estimator"].set_params(tol=tol, max_iter=max_iter, warm_start=True)
    return _run(X, estimator, candidate["start"], reg_covar, resolution)


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


def start_runs(starts, n_init, seed):
    """(init_params, seed) of every start: 'hc' once (it is deterministic), the others
    ``n_init`` times with seeds drawn from ``seed``."""
    rng = np.random.RandomState(seed)
    return [(start, 0 if start == "hc" else int(rng.randint(2**31 - 1)))
            for start in starts for _ in range(1 if start == "hc" else n_init)]


def best_fit(X, model, n_components, *, starts=DEFAULT_STARTS, n_init=DEFAULT_N_INIT, seed=0,
             reg_covar=1e-6, tol=TOL, max_iter=1000, short_tol=SHORT_TOL,
             n_refine=N_REFINE, resolution=None):
    """Fit one (model, K) cell from every start and keep the best non-degenerate fit.

    Every start runs EM until the mean log-likelihood changes by less than ``short_tol``, then
    the best ``n_refine`` distinct ones (short log-likelihoods more than short_tol x N apart;
    those not degenerate after the short run first) continue to ``tol`` (the "short runs,
    then long run" strategy of Biernacki, Celeux & Govaert 2003; further ones while every
    refined fit is degenerate);
    ``short_tol=None`` runs every start to ``tol``. Degenerate fits
    (:func:`gmmlab.metrics.degeneracy`) are spurious maximisers of an unbounded likelihood; as
    McLachlan & Peel (2000, sec. 3.10) advise, the cell keeps the highest log-likelihood among
    the others (``degenerate_starts`` counts the refined fits set aside). The cell is
    'degenerate' when every fit is, 'failed' when none ran. Returns the row of the table and
    the fitted :class:`~gmmlab.em.EMGaussianMixture` (None if none).
    """
    D = X.shape[1]
    covariance_type = covariance_type_for(model, D)
    started = time.perf_counter()
    options = dict(reg_covar=reg_covar, max_iter=max_iter, resolution=resolution)
    candidates = fit_starts(X, model, n_components, start_runs(starts, n_init, seed),
                            tol=tol if short_tol is None else short_tol, **options)
    # sound short runs first, best first: a start degenerate after its short run rarely
    # recovers, and refining it would crowd out sound ones
    fitted = sorted((c for c in candidates if c["estimator"] is not None),
                    key=lambda c: (c["degenerate"], -c["loglik"]))
    if short_tol is not None:
        refined, seen = [], []
        for candidate in fitted:
            if len(refined) >= n_refine and any(not c["degenerate"] for c in refined):
                break
            # starts whose short runs end within short_tol x N of one already refined are
            # taken for the same optimum
            if any(abs(candidate["loglik"] - other) < short_tol * len(X) for other in seen):
                continue
            seen.append(candidate["loglik"])
            refined.append(refine(X, candidate, tol=tol, **options))
        candidates = refined + [c for c in candidates if c["estimator"] is None]
        fitted = [c for c in refined if c["estimator"] is not None]
    row = {"model": model, "covariance_type": covariance_type, "n_components": n_components,
           "n_parameters": gaussian.n_parameters(n_components, D, covariance_type),
           "degenerate_starts": sum(c["degenerate"] for c in candidates)}
    pool = [c for c in fitted if not c["degenerate"]] or fitted
    if not pool:
        degenerate = [c for c in candidates if c["degenerate"]]
        return row | {"loglik": np.nan, "bic": np.nan, "icl": np.nan, "icl_entropy": np.nan,
                      "aic": np.nan, "status": "degenerate" if degenerate else "failed",
                      "reason": (degenerate or candidates)[0]["reason"], "start": None,
                      "converged": False, "n_iter": 0,
                      "seconds": time.perf_counter() - started}, None
    best = max(pool, key=lambda c: c["loglik"])
    estimator = best["estimator"]
    covariances = gaussian.full_covariances(estimator.covariances_, covariance_type,
                                            n_components, D)
    criteria = metrics.information_criteria(X, estimator.weights_, estimator.means_,
                                            covariances, covariance_type)
    return row | {key: criteria[key] for key in ("loglik", "bic", "icl", "icl_entropy", "aic")} | {
        "status": "degenerate" if best["degenerate"] else "ok", "reason": best["reason"],
        "start": best["start"], "converged": bool(estimator.converged_),
        "n_iter": int(estimator.n_iter_), "seconds": time.perf_counter() - started}, estimator


def fit_cell(X, model, n_components, **options):
    """The table row of :func:`best_fit` (same arguments)."""
    return best_fit(X, model, n_components, **options)[0]


def select(X, n_components=range(1, 10), models="all", criterion="bic", n_init=DEFAULT_N_INIT,
           random_state=0, n_jobs=None, starts=DEFAULT_STARTS, reg_covar=1e-6, tol=TOL,
           max_iter=1000):
    """Fit every model x K and rank them: mclust's ``mclustBIC`` with degenerate cells named.

    X : array-like (N, D). n_components: the K to try. models: 'all' (mclust's models the EM
    estimator fits, :func:`available_models`) or a list of mclust or scikit-learn names.
    criterion: 'bic', 'icl', 'icl_entropy' or 'aic' (lower is better). Each cell is fitted
    from ``starts`` (default: the hc start once, ``n_init`` k-means++ and ``n_init``
    random_from_data starts) with seeds from ``random_state``; the best non-degenerate
    log-likelihood is kept. n_jobs: cells in parallel (joblib).
    Returns a :class:`SelectionResult`.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n_samples, n_features) array, got shape "
                         f"{X.shape}" + ("" if X.ndim != 2 else " with NaN or infinity") + ".")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}.")
    ks = sorted({int(k) for k in np.atleast_1d(list(n_components))})
    if not ks or ks[0] < 1 or ks[-1] > len(X):
        raise ValueError(f"n_components must be between 1 and n_samples = {len(X)}, got "
                         f"{list(n_components)}.")
    names = _model_list(models, X.shape[1])
    resolution = metrics.data_resolution(X)
    seeds = np.random.SeedSequence(random_state).generate_state(len(names) * len(ks))
    cells = [(model, k) for model in names for k in ks]
    started = time.perf_counter()
    # one cell a task, the largest K first, so that no worker is left with a long cell at the
    # end while the others wait (the cost of a cell grows with K)
    order = sorted(range(len(cells)), key=lambda i: -cells[i][1])
    fitted = Parallel(n_jobs=n_jobs, batch_size=1)(
        delayed(fit_cell)(X, *cells[i], starts=starts, n_init=n_init, seed=int(seeds[i]),
                          reg_covar=reg_covar, tol=tol, max_iter=max_iter,
                          resolution=resolution)
        for i in order)
    rows = [row for _, row in sorted(zip(order, fitted, strict=True), key=lambda p: p[0])]
    table = pd.DataFrame(rows, columns=COLUMNS)
    return SelectionResult(table, criterion, len(X), X.shape[1], time.perf_counter() - started)


# ------------------------------------------------------------------ command line


def _parse_ks(text):
    """'1-9' or '1,2,3' or '4' -> list of ints."""
    try:
        if "-" in text:
            low, high = text.split("-")
            return list(range(int(low), int(high) + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a range like 1-9 or a list like 1,2,3, got {text!r}") from None


def load_data(source, columns=None):
    """X of a data set name (:func:`gmmlab.datasets.available`) or a CSV path."""
    from gmmlab.datasets import available, load_dataset

    if Path(source).suffix.lower() == ".csv" or Path(source).exists():
        return load_dataset("csv", path=source, columns=columns).X
    if source not in available():
        raise ValueError(f"{source!r} is neither a data set ({', '.join(available())}) nor "
                         f"an existing CSV file.")
    return load_dataset(source).X


def main(argv=None):
    """Console entry point ``gmmlab-select`` (errors explained by gmmlab.console)."""
    from gmmlab.console import run_command

    run_command("gmmlab-select", select_command, argv)


def select_command(argv=None):
    """``gmmlab-select DATA``: the BIC / ICL table of a data set and the models it chooses."""
    parser = argparse.ArgumentParser(
        prog="gmmlab-select", description=select_command.__doc__.split(":")[1].strip())
    parser.add_argument("data", help="a data set name (e.g. faithful) or a CSV file")
    parser.add_argument("--columns", nargs="+", help="CSV columns to use (default: numeric)")
    parser.add_argument("-k", "--n-components", type=_parse_ks, default=list(range(1, 10)),
                        help="numbers of components, e.g. 1-9 (default) or 2,3")
    parser.add_argument("--models", nargs="+", default=["all"],
                        help="mclust model names (default: all the EM estimator fits)")
    parser.add_argument("--criterion", choices=CRITERIA, default="bic")
    parser.add_argument("--n-init", type=int, default=DEFAULT_N_INIT,
                        help="starts of each random method per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--top", type=int, default=3, help="models listed (default 3)")
    parser.add_argument("-o", "--output", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    X = load_data(args.data, args.columns)
    result = select(X, args.n_components, "all" if args.models == ["all"] else args.models,
                    args.criterion, args.n_init, args.seed, args.n_jobs)
    print(result.summary(args.top))
    if args.output:
        result.table.to_csv(args.output, index=False)
        print(f"\ntable written to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
