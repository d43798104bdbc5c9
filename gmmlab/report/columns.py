"""The columns reports know: one registry of (name, label, meaning, direction, notation) that
drives the analysis (which direction is better), the tables (header and number notation) and
the glossary; and the criteria a model is chosen by.

Notation: log-likelihoods and information criteria in fixed notation with one decimal
(``2314.3``: a BIC is read to a tenth, and one fit shows one value in every report), other
numbers with four significant digits, ratios as ``5.2x``.
"""

import dataclasses

import numpy as np
import pandas as pd

from gmmlab.model import gaussian

ARROW = {"higher": "↑", "lower": "↓", None: ""}


@dataclasses.dataclass(frozen=True)
class Column:
    """A column of the results table as reports show it.

    Attributes
    ----------
    name : str
        Column of the results table (``gmmlab.study.results.readable_results``).
    label : str
        Its name in tables and figures.
    meaning : str
        One sentence for the glossary.
    better : {'higher', 'lower', None}
        Which direction is better (None: neither).
    notation : {'fixed', 'significant'}
        'fixed': one decimal (log-likelihoods, criteria); 'significant': four significant
        digits.
    """

    name: str
    label: str
    meaning: str
    better: str | None = None
    notation: str = "significant"

    @property
    def header(self):
        """The table header: the label and the arrow of the better direction."""
        return f"{self.label} {ARROW[self.better]}".strip()

    def format(self, value):
        """``value`` in this column's notation."""
        return format_fixed(value) if self.notation == "fixed" else format_number(value)


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A criterion a (covariance model, K) is chosen by, the lowest value winning.

    Attributes
    ----------
    name : str
        Column of the results table.
    label : str
        Its name in tables and figures.
    meaning : str
        One sentence for the glossary.
    judges : {'ml', 'bayes'}
        Which fits it may judge: 'ml' maximum-likelihood point estimates (information
        criteria), 'bayes' posterior draws (PSIS-LOO; Bayesian evidence belongs here too).
    """

    name: str
    label: str
    meaning: str
    judges: str = "ml"


CRITERIA = [
    Criterion("bic", "BIC", "Bayesian information criterion, -2 log L + p log N (lower is "
              "better); in a 'K chosen' table, the K it picks"),
    Criterion("aic", "AIC", "-2 log L + 2p (lower is better)"),
    Criterion("icl", "ICL", "integrated completed likelihood, BIC - 2 sum_n log max_k r_nk: the "
              "MAP labels' complete-data likelihood (Biernacki et al. 2000, mclust's icl; lower "
              "is better)"),
    Criterion("icl_entropy", "ICL (entropy)", "BIC + 2 x entropy of the responsibilities "
              "(lower is better)"),
    Criterion("loo.looic", "LOO", "PSIS-LOO of the PyMC posterior: the K chosen by the "
              "two-dse rule (the smallest K whose elpd is within 2 dse of the best), "
              "unreliable K (p_loo > N/5 or Pareto k > 0.7) excluded", judges="bayes"),
    Criterion("diagnostics.log_evidence", "evidence", "the Bayesian evidence log p(X | K) of "
              "the Gibbs posterior under the conjugate prior (bridge sampling, +- its Monte "
              "Carlo error): the K of highest posterior probability under a uniform prior on "
              "K, unless the runner-up is within 2 standard errors (a tie)", judges="bayes"),
    Criterion("diagnostics.nonempty_components_mode", "K+", "a sparse finite mixture's "
              "estimate of the number of clusters: the mode of the posterior of K+, the "
              "number of non-empty components, under Dirichlet(alpha <= 0.1) weights over a "
              "generous K_max (Malsiner-Walli et al. 2016)", judges="bayes"),
]
CRITERION = {criterion.name: criterion for criterion in CRITERIA}

COLUMNS = [
    Column("test_loglik_per_sample", "held-out log-lik/N", "mean log-density of the held-out "
           "points: under the fitted mixture for maximum-likelihood fits, under the posterior "
           "predictive for PyMC", "higher"),
    Column("loglik_per_sample", "train log-lik/N", "mean log-density of the training points",
           "higher"),
    Column("bic", "BIC", "-2 log-likelihood + (free parameters) log N, on the training points; "
           "not ranked for PyMC (judged by PSIS-LOO and its posterior predictive)", "lower",
           "fixed"),
    Column("param_error.means", "mean error", "RMSE between fitted and true means, components "
           "matched by the Hungarian algorithm (needs the truth)", "lower"),
    Column("param_error.weights", "weight error", "L1 distance between fitted and true weights, "
           "matched components", "lower"),
    Column("param_error.covariances", "covariance error", "relative Frobenius error of the "
           "covariances, matched components", "lower"),
    Column("ari", "ARI", "adjusted Rand index of the MAP labels against the true labels (1 = "
           "the same partition)", "higher"),
    Column("fit_seconds", "time (s)", "wall time of the fit (PyMC: compiling and sampling)",
           "lower"),
]
COLUMN = {column.name: column for column in COLUMNS}
# The columns a method comparison ranks, in this order; time is the cost.
RANKED = ["test_loglik_per_sample", "bic", "param_error.means", "fit_seconds"]

# Headers of the reports' other tables, with their meaning.
HEADERS = {
    "method": "the backend and the options that differ between runs (e.g. 'em_stop "
              "init_params=random reg_covar=0.0')",
    "data setting": "the data set and its options that differ between runs",
    "data set": "the data set",
    "K": "number of mixture components fitted", "true K": "number of components of the truth",
    "seed": "the fitting seed", "runs": "number of runs (seeds)",
    "outcomes": "how many runs ended in each outcome (see 'outcome')",
    "data settings": "number of data settings the method ran on",
    "run": "the run's folder in the sweep directory",
    "nats below the best": "best train log-likelihood of any maximum-likelihood fit of the same "
                           "data, K, covariance model and reg_covar minus this run's (total, "
                           "nats)",
    "best": "the method and seed of the best fit it is compared with",
    "difference ± 2 SE": "held-out log-lik/N minus the best method's ('best'), ± 2 standard "
                         "errors of the paired difference over the test points (a tie when "
                         "the interval holds 0)",
    "elpd": "PSIS-LOO expected log pointwise predictive density (higher is better)",
    "p": "PSIS-LOO effective number of parameters (p_loo)", "elpd_diff": "elpd minus the best "
    "K's (<= 0)",
    "se": "standard error of elpd", "dse": "standard error of elpd_diff",
    "weight": "stacking weight of the K (ArviZ compare)", "rank": "ArviZ compare's rank (0 = best)",
    "reliable": "PSIS-LOO reliable at this K: p_loo <= N/5 and no Pareto k > 0.7 (an unreliable "
                "K is never chosen)",
    "points with Pareto k > 0.7": "points where PSIS-LOO is unreliable (fewer is better)",
    "largest Pareto k": "largest PSIS Pareto k (below 0.7 is reliable)",
    "R-hat as sampled": "largest R-hat of weights and means before relabelling (1 is best)",
    "R-hat": "largest R-hat after relabelling (below 1.01 is good; Vehtari et al. 2021)",
    "ESS bulk": "smallest bulk effective sample size (higher is better)",
    "ESS tail": "smallest tail effective sample size (higher is better)",
    "divergences": "NUTS divergent transitions (0 is best)",
    "share at tree-depth cap": "share of draws whose NUTS tree hit the depth cap",
    "draws permuted": "draws whose labels relabelling changed (label switching)",
    "min eig / var": "smallest covariance eigenvalue over the data variance (0: a collapse)",
    "min eig / var, any draw": "the same, smallest over every posterior draw",
    "min weight x N": "smallest component weight times N (expected points in it)",
    "collapse at": "iteration where the EM stopped at a collapse",
    "resets": "components re-seeded after a collapse",
    "model,K": "mclust's covariance model name and the number of components",
    "BIC - best": "BIC minus the lowest BIC of the table (0 for the chosen cell)",
    "train log-likelihood": "log-likelihood of the training points (total, nats)",
    "free parameters": "free parameters of the model at that K (as mclust counts them)",
    "criterion": "the criterion choosing the model (lower is better; LOO by the two-dse rule; "
                 "evidence: the most probable K; K+: a sparse mixture's mode)",
    "chosen": "the (covariance model,) K the criterion chooses; degenerate or failed fits and "
              "unreliable LOO are never chosen",
    "runner-up": "the next best (covariance model,) K by the same criterion",
    "evidence": "BIC: the runner-up's BIC minus the chosen one's, read on Kass & Raftery's "
                "(1995) scale of 2 log B (0-2 not worth more than a bare mention, 2-6 "
                "positive, 6-10 strong, > 10 very strong); LOO: elpd difference ± dse; evidence: "
                "ln B of the chosen K against the runner-up ± se, on the same scale",
    "log evidence": "the log evidence (marginal likelihood) of the data under K components "
                    "and the conjugate prior, by bridge sampling from the Gibbs draws",
    "evidence se": "Monte Carlo standard error of the log evidence (its relative error)",
    "posterior probability": "the posterior probability of K under a uniform prior on K, ± "
                             "its Monte Carlo error (the log evidence redrawn within its se)",
    "ln B (best : K)": "log Bayes factor of the most probable K against this K, ± se",
    "reading": "Kass & Raftery's (1995) reading of the Bayes factor (by 2 ln B: 0-2 not worth "
               "more than a bare mention, 2-6 positive, 6-10 strong, > 10 very strong)",
    "K_max": "components of the sparse mixture (a generous upper bound)",
    "K+": "mode of the posterior of the number of non-empty components",
    "probability": "posterior probability of that K+",
    "reached the best optimum": "runs within 1 nat of the best train log-likelihood of any "
                                "method on the same data and K, of all runs, with a 95% Wilson "
                                "interval",
    "collapses": "runs that failed, collapsed or ended degenerate, of all runs (what happened "
                 "and at which iteration in 'outcomes')",
    "naive mean error": "RMSE of the posterior mean of the means as sampled (labels switched "
                        "between draws averaged together) against the truth",
    "relabelled mean error": "the same after relabelling the draws (the reported fit)",
    "outcome": "what the fit ended in, by one rule: failed (with the reason) / degenerate / "
               "collapsed (stopped at the iteration) / re-seeded / held at the reg_covar floor / "
               "near-empty component (weight x N below D + 1) / local optimum (train "
               "log-likelihood more than 1 nat below the best maximum-likelihood fit of the "
               "same data, K and model) / for PyMC what the posterior did / converged",
}


def glossary():
    """Every header a report's tables can have, with its meaning: the registry's columns
    (labelled with their direction), the criteria, the other headers and the BIC columns of
    mclust's covariance models."""
    entries = {column.header: f"{column.meaning}; {column.better} is better"
               for column in COLUMNS}
    entries |= {f"rank: {COLUMN[c].label}": f"mean over data settings of the method's rank "
                f"on {COLUMN[c].label} (1 = best or tied with it)" for c in RANKED}
    entries |= {criterion.label: criterion.meaning for criterion in CRITERIA}
    entries |= {f"{criterion.label}: true K found": f"fits (data replicates x seeds) whose "
                f"{criterion.label} chooses the true K, of all, with a 95% Wilson interval"
                for criterion in CRITERIA}
    entries |= HEADERS
    entries |= {model: f"BIC of covariance model {model}, Sigma_k = "
                f"{gaussian.model_formula(model)} (volume lambda, shape A, orientation D; _k "
                "varies between components)" for model in ("E", "V") + gaussian.MCLUST_MODELS}
    return entries


GLOSSARY = glossary()


# --- numbers -------------------------------------------------------------------------------


def format_number(value, digits=4):
    """A number for a reader: '-' when missing, integers as integers, else ``digits``
    significant digits, in fixed notation from 1e-3 to 1e7 ('0.004383', '15620', '1.2e-11')."""
    if not present(value):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    value = float(value)
    if value.is_integer() and abs(value) < 1e7:
        return str(int(value))
    if 10**digits <= abs(value) < 1e7:  # fixed notation, not 1.562e4
        return f"{value:.0f}"
    text = f"{value:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def format_fixed(value, decimals=1):
    """Fixed notation: '2314.3' ('-' when missing)."""
    return f"{float(value):.{decimals}f}" if present(value) else "-"


def format_ratio(value):
    """A ratio as '5.2x' (two significant digits below 10, whole numbers above)."""
    if not present(value):
        return "-"
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def present(value):
    """Not None and not NaN."""
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True
