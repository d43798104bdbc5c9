"""Parametric bootstrap likelihood-ratio test of K against K + 1 components of one model
(McLachlan 1987), as mclust's ``mclustBootstrapLRT``.

The statistic LRTS = 2 (l_{K+1} - l_K) has no chi-squared null distribution for mixtures (the
null sits on the boundary of the alternative), so it is calibrated by simulation: B samples of
size N are drawn from the fitted K-component mixture, both models are refitted to each by EM
started at the fits to the data (as mclust does), and

    p = (1 + #{b : LRTS_b >= LRTS_observed}) / (B + 1).

A replicate whose refit collapses (a singular covariance, or one at the ``reg_covar`` floor) is
drawn again, as mclust draws again where its fit is NA; ``n_redrawn`` counts them. A refit
that empties a component is kept, as mclust keeps it: on samples from the K-component null the
extra component often has few points (Old Faithful EEE, 3 vs 4: 30 of 49 replicates), and
dropping those samples would shift the null distribution up.

    python -m gmmlab.selection.bootstrap faithful --model EEE -k 3 -B 999 -o lrt_faithful_EEE_3.png
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed

from gmmlab.model import gaussian, search
from gmmlab.model.em import ConvergenceWarning, EMGaussianMixture, SingularCovarianceError
from gmmlab.selection import cli


@dataclass
class BootstrapLRT:
    """The test of ``n_components`` (K) against K + 1 components of ``model``."""

    model: str
    n_components: int
    observed: float
    replicates: np.ndarray
    p_value: float
    loglik_null: float
    loglik_alternative: float
    n_redrawn: int
    seconds: float

    def summary(self):
        """One line, as mclust's print: the statistic, its p-value and the replicates."""
        B = len(self.replicates)
        return (f"{self.model} {self.n_components} vs {self.n_components + 1}: LRTS "
                f"{self.observed:.4f}, bootstrap p-value {self.p_value:.4f} (B = {B}, Monte "
                f"Carlo s.e. {np.sqrt(self.p_value * (1 - self.p_value) / B):.4f}; "
                f"{self.n_redrawn} replicates drawn again; {self.seconds:.1f} s)")


def bootstrap_lrt(X, model, n_components, n_boot=999, random_state=0, n_jobs=None,
                  reg_covar=1e-6, tol=search.DEFAULT_SEARCH.tol, replicate_tol=1e-6,
                  max_iter=1000, n_init=search.DEFAULT_SEARCH.n_init):
    """Bootstrap LRT of K = ``n_components`` against K + 1 components of ``model``.

    X : (N, D). The two fits to X are :func:`gmmlab.model.search.best_fit` (the default starts of
    :func:`gmmlab.select`, EM until the mean log-likelihood changes by less than ``tol``); the
    refits to the replicates stop at ``replicate_tol`` (select's tolerance: a replicate's
    statistic needs less precision than the observed one, and slow EM on a null sample with an
    emptying component would otherwise run to ``max_iter``).
    Replicates are seeded from ``random_state`` one by one (numpy's SeedSequence), so the
    result does not depend on ``n_jobs`` (joblib). Returns a :class:`BootstrapLRT`.
    """
    X = np.asarray(X, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    started = time.perf_counter()
    settings = search.SearchSettings(n_init=n_init, reg_covar=reg_covar, tol=tol,
                                     max_iter=max_iter)
    fits = []
    for k in (n_components, n_components + 1):
        row, estimator = search.best_fit(X, model, k, settings, seed=random_state)
        if row["status"] != "ok":
            raise ValueError(f"{model} with K = {k} has no sound fit to these data "
                             f"({row['status']}: {row['reason']}); the LRT needs both.")
        fits.append(estimator)
    null, alternative = fits
    loglik = [estimator.score(X) * len(X) for estimator in fits]
    observed = 2 * (loglik[1] - loglik[0])
    seeds = np.random.SeedSequence(random_state).spawn(n_boot)
    replicates = Parallel(n_jobs=n_jobs)(
        delayed(_replicate)(null, alternative, len(X), seed, reg_covar, replicate_tol, max_iter)
        for seed in seeds)
    statistics = np.array([statistic for statistic, _ in replicates])
    return BootstrapLRT(
        model=gaussian.mclust_name(model, X.shape[1]),
        n_components=n_components, observed=observed, replicates=statistics,
        p_value=(1 + int((statistics >= observed).sum())) / (n_boot + 1),
        loglik_null=loglik[0], loglik_alternative=loglik[1],
        n_redrawn=sum(redrawn for _, redrawn in replicates),
        seconds=time.perf_counter() - started)


def simulate(estimator, n_samples, rng):
    """N samples of a fitted mixture: counts ~ Multinomial(N, weights), x ~ N(mu_k, Sigma_k)."""
    K, D = estimator.means_.shape
    covariances = gaussian.full_covariances(estimator.covariances_, estimator.covariance_type,
                                            K, D)
    counts = rng.multinomial(n_samples, estimator.weights_)
    return np.vstack([rng.multivariate_normal(mean, covariance, size=count)
                      for mean, covariance, count in zip(estimator.means_, covariances, counts,
                                                         strict=True)])


def _refit(X, estimator, reg_covar, tol, max_iter):
    """EM on X started at a fitted estimator's parameters: the log-likelihood, or None when a
    covariance collapses or ends at the reg_covar floor (smallest eigenvalue <= 2 reg_covar,
    the floor of :func:`gmmlab.model.metrics.degeneracy`)."""
    refit = EMGaussianMixture(
        estimator.n_components, covariance_type=estimator.covariance_type, tol=tol,
        reg_covar=reg_covar, max_iter=max_iter, weights_init=estimator.weights_,
        means_init=estimator.means_, precisions_init=estimator.precisions_)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            refit.fit(X)
    except SingularCovarianceError:
        return None
    smallest = gaussian.smallest_eigenvalues(refit.covariances_, refit.covariance_type).min()
    return None if 0 < reg_covar and smallest <= 2 * reg_covar else refit.score(X) * len(X)


def _replicate(null, alternative, n_samples, seed, reg_covar, tol, max_iter):
    """One bootstrap statistic 2 (l_{K+1} - l_K) on a sample from the null fit, and the
    number of samples drawn again before it (collapsed refits)."""
    rng = np.random.default_rng(seed)
    redrawn = 0
    while True:
        X = simulate(null, n_samples, rng)
        l0 = _refit(X, null, reg_covar, tol, max_iter)
        l1 = None if l0 is None else _refit(X, alternative, reg_covar, tol, max_iter)
        if l1 is not None:
            return 2 * (l1 - l0), redrawn
        redrawn += 1


def plot_bootstrap_lrt(results, title=""):
    """One panel per bootstrap LRT (:class:`BootstrapLRT`): the histogram of
    the replicate statistics, the observed statistic as a line, and the p-value. Returns the
    Figure (matplotlib's, imported here: computing a test needs no plotting library)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.2),
                                squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        # bins over the replicates and the observed statistic, so both show on one axis
        edges = np.linspace(min(result.replicates.min(), 0.0),
                            max(result.replicates.max(), result.observed), 50)
        ax.hist(result.replicates, bins=edges, color="0.6", edgecolor="white")
        ax.axvline(result.observed, color="tab:red", label=f"observed {result.observed:.2f}")
        ax.set_title(f"{result.model}: {result.n_components} vs {result.n_components + 1}, "
                     f"p = {result.p_value:.3f} (B = {len(result.replicates)})", fontsize=9)
        ax.set_xlabel(r"bootstrap LRTS = $2\,(\ell_{K+1} - \ell_K)$")
        ax.legend(frameon=False, fontsize=8)
    axes[0, 0].set_ylabel("replicates")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def main(argv=None):
    """``python -m gmmlab.selection.bootstrap DATA --model M -k K``: bootstrap LRTs of K vs
    K + 1."""
    parser = argparse.ArgumentParser(prog="python -m gmmlab.selection.bootstrap",
                                     description="Bootstrap LRT of K vs K + 1 components.")
    parser.add_argument("data", help="a data set name (e.g. faithful) or a CSV file")
    parser.add_argument("--columns", nargs="+", help="CSV columns to use (default: numeric)")
    parser.add_argument("--model", required=True, help="mclust model name, e.g. EEE")
    parser.add_argument("-k", "--n-components", type=cli.parse_ks, default=[1],
                        help="the null K, or several: 1-3 tests 1 vs 2, 2 vs 3, 3 vs 4")
    parser.add_argument("-B", "--n-boot", type=int, default=999)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("-o", "--output", help="write the figure of the bootstrap "
                                               "distributions here (png, pdf, svg)")
    args = parser.parse_args(argv)
    try:
        X = cli.load_data(args.data, args.columns)
        results = []
        for k in args.n_components:
            results.append(bootstrap_lrt(X, args.model, k, args.n_boot, args.seed,
                                         args.n_jobs))
            print(results[-1].summary())
    except (ValueError, KeyError, OSError) as error:
        print(f"gmmlab.selection.bootstrap: error: {error}", file=sys.stderr)
        return 1
    if args.output:
        import matplotlib

        matplotlib.use("Agg")  # the figure goes to a file; no screen is assumed
        plot_bootstrap_lrt(results, title=args.data).savefig(args.output,
                                                                    bbox_inches="tight")
        print(f"figure written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
