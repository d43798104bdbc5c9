"""Interpreting runs: what each fit ended in, how the methods rank, how often a criterion picks
the true K. Reads the results table (one row per run,
``gmmlab.study.results.readable_results``); the
report writer only lays these out.

One outcome rule serves every report (the singularity study's included)::

    failed: <reason>  >  degenerate  >  collapsed  >  re-seeded  >  held at the reg_covar floor
    >  near-empty component  >  local optimum  >  (PyMC: what the posterior did)  >  converged
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gmmlab.backends.bayes import RHAT_MAX
from gmmlab.model.gaussian import MCLUST_MODELS, mclust_name
from gmmlab.model.search import choose_fit
from gmmlab.report.columns import (
    COLUMN,
    CRITERION,
    RANKED,
    format_fixed,
    format_number,
    format_ratio,
    present,
)
from gmmlab.selection import evidence
from gmmlab.study.job import IDATA_FILE

# A maximum-likelihood run is at a worse local optimum when its train log-likelihood (total,
# nats) is this much below the best fit of any maximum-likelihood method on the same data, K,
# covariance model and reg_covar: a likelihood ratio of e^1.
LOCAL_OPTIMUM_GAP = 1.0
# A draw's smallest covariance eigenvalue, relative to the data variance, this close to zero
# counts as near a collapse.
COLLAPSE_NEAR = 1e-3
# PSIS-LOO is unreliable at a K with a Pareto k above PARETO_K_MAX or p_loo above
# P_LOO_FRACTION x N; such a K is flagged and never chosen.
PARETO_K_MAX = 0.7
P_LOO_FRACTION = 1 / 5
# Two fits of one data set by maximum likelihood are at the same optimum when their train
# log-likelihoods differ by at most EM_TOL x N nats (EM's stopping tolerance on the mean
# log-likelihood): their BIC difference is then no evidence.
EM_TOL = 1e-3
# Backend families whose fits are posterior draws: judged by PSIS-LOO and the posterior
# predictive, never by an information criterion at a posterior mean.
BAYESIAN = ("pymc", "gibbs")
# Backend families that do not maximise the likelihood (posterior draws, a variational
# bound): every other backend's fits are judged against the best likelihood any reached.
NOT_MAXIMUM_LIKELIHOOD = (*BAYESIAN, "sklearn_vb")
# The posterior over K decides only when the chosen K's log Bayes factor against the runner-up
# exceeds this many standard errors of the difference (the evidence's Monte Carlo error).
EVIDENCE_TIE_SE = 2.0
# K+ (non-empty components) counts the clusters only under a sparse Dirichlet on the weights
# (Malsiner-Walli et al. 2016 use 0.01): a fit with alpha at most this is a sparse mixture.
SPARSE_ALPHA = 0.1


def fitted(table):
    """Runs that gave parameters (ok or stopped at a collapse)."""
    return table[table["status"] != "failed"]


def rankable(table):
    """Runs that may rank, win or be chosen: finished ('ok': not failed, not stopped at a
    collapse) and not degenerate (gmmlab.model.metrics.degeneracy)."""
    ok = table[table["status"] == "ok"]
    if "degenerate" not in ok:
        return ok
    return ok[~ok["degenerate"].fillna(False).astype(bool)]


def maximises_likelihood(variant):
    """Whether a method maximises the likelihood (any backend but
    :data:`NOT_MAXIMUM_LIKELIHOOD`'s, users' backends included)."""
    return backend_family(variant) not in NOT_MAXIMUM_LIKELIHOOD


def is_bayesian(variant):
    """Whether a method's fits are posterior draws (:data:`BAYESIAN`)."""
    return backend_family(variant) in BAYESIAN


def has_truth(rows):
    """Whether the data of ``rows`` come from a known mixture (parameter errors recorded):
    only then is there a true K; real data have at most a customary or reference K."""
    return "param_error.means" in rows and rows["param_error.means"].notna().any()


# --- outcomes ------------------------------------------------------------------------------


def same_fit_problem(table):
    """Keys of runs fitting the same likelihood: data setting, K, covariance model, reg_covar
    and the data replicate (a synthetic set's own seed, ``dataset_metadata.seed``; -1 where
    there is none). DataFrame aligned with ``table``."""
    def column(name, fill):
        return table[name].fillna(fill) if name in table else pd.Series(fill, index=table.index)

    return pd.DataFrame({"data_setting": table["data_setting"],
                         "n_components": table["n_components"],
                         "covariance_type": column("covariance_type", "full"),
                         "reg_covar": column("reg_covar", -1.0),
                         "replicate": column("dataset_metadata.seed", -1)}, index=table.index)


def maximum_likelihood(table):
    """The rankable runs of methods that maximise the likelihood (:func:`maximises_likelihood`)."""
    ok = rankable(table)
    return ok[[maximises_likelihood(v) for v in ok["variant"]]]


def best_logliks(table):
    """The best train log-likelihood of any maximum-likelihood fit per same_fit_problem key,
    with the method and seed that reached it: DataFrame indexed by the key."""
    ml = maximum_likelihood(table).dropna(subset=["loglik"]) if "loglik" in table else None
    if ml is None or ml.empty:
        return pd.DataFrame(columns=["loglik", "variant", "seed"])
    keys = same_fit_problem(ml)
    best = ml.loc[ml.groupby([keys[c] for c in keys])["loglik"].idxmax()]
    return best.set_index(pd.MultiIndex.from_frame(same_fit_problem(best)))[
        ["loglik", "variant", "seed"]]


def outcomes(table):
    """The outcome phrase of every run (Series aligned with ``table``); a maximum-likelihood
    run's local optimum is judged against the best fit of any maximum-likelihood method of
    the same data, K, covariance model and reg_covar (degenerate fits are no reference)."""
    best = best_logliks(table)["loglik"]
    keys = same_fit_problem(table)
    judged = [maximises_likelihood(v) for v in table["variant"]]
    return pd.Series([outcome(row, best.get(tuple(keys.loc[i]), np.nan) if ml else np.nan)
                      for (i, row), ml in zip(table.iterrows(), judged, strict=True)],
                     index=table.index, dtype=object)


def outcome(row, best_loglik=np.nan):
    """One phrase for what a fit ended in (module docstring for the order of the checks).

    row: a run (Series of the results table); best_loglik: the best train log-likelihood of
    any maximum-likelihood fit of the same problem (nan: not judged).
    """
    if row["status"] == "failed":
        return "failed: " + failure_reason(row)
    if present(row.get("degenerate")) and bool(row["degenerate"]):
        reason = row.get("degeneracy_reason")
        return "degenerate" + (f": {reason}" if present(reason) else "")
    if row["status"] == "singular":
        return f"collapsed, stopped at iteration {int(row['singular.collapse.iteration'])}"
    resets = row.get("singular.n_resets")
    if present(resets) and resets > 0:
        return f"re-seeded {int(resets)} time(s)"
    reg_covar = row.get("reg_covar", 0)
    if present(reg_covar) and reg_covar > 0 and row.get("singular.min_eigenvalue",
                                                        np.nan) <= 2 * reg_covar:
        return "held at the reg_covar floor"
    weight_n, n_features = row.get("singular.min_weight_n"), row.get("n_features", 1)
    if present(weight_n) and weight_n < (n_features if present(n_features) else 1) + 1:
        return f"near-empty component (weight x N = {format_number(weight_n)})"
    if is_bayesian(row.get("variant", row.get("backend"))):
        return _posterior_outcome(row)
    gap = best_loglik - row.get("loglik", np.nan)
    if gap > LOCAL_OPTIMUM_GAP:
        return f"local optimum ({format_fixed(gap)} nats below the best fit)"
    return "converged" if row.get("converged", True) is not False else "not converged"


def failure_reason(row):
    """Why a run failed, in a few words: where a covariance became singular, scikit-learn's
    ill-defined covariance, or the first line of the message."""
    error = str(row.get("singular.backend_error") if present(
        row.get("singular.backend_error")) else row.get("message") or "")
    if "at initialisation" in error:
        return "singular covariance at initialisation"
    if "singular at iteration" in error:
        return "singular covariance at iteration " + error.split("iteration ")[1].split(":")[0]
    if "ill-defined" in error:
        return "ill-defined empirical covariance"
    first = error.strip().splitlines()[0] if error.strip() else "no message"
    return first if len(first) <= 100 else first[:99] + "…"


def _posterior_outcome(row):
    """Sampler trouble together with a draw whose smallest covariance eigenvalue is below
    COLLAPSE_NEAR of the mean data variance: the posterior drifts into the collapse (it is
    improper), not kept away from it. Trouble with no draw that close is named beside 'kept
    away' (a cause other than the collapse, e.g. a multimodal posterior); runs without that
    eigenvalue get no verdict."""
    trouble = ", ".join(sampler_trouble(row))
    if not trouble:
        return "posterior kept away by its prior"
    if drifts(row):
        return f"posterior drifts into the collapse ({trouble})"
    smallest = row.get("diagnostics.min_eigenvalue_relative_any_draw", np.nan)
    verdict = "posterior kept away by its prior; " if smallest >= COLLAPSE_NEAR else ""
    return f"{verdict}sampler struggling ({trouble})"


def sampler_trouble(row):
    """Divergences, most draws at the NUTS tree-depth cap, R-hat > RHAT_MAX: phrases, or []."""
    share = row.get("diagnostics.max_treedepth_share", np.nan)
    divergences = row.get("diagnostics.divergences", np.nan)
    rhat = row.get("diagnostics.max_rhat", np.nan)
    plural = "" if divergences == 1 else "s"
    return ([f"{int(divergences)} divergence{plural}"] if divergences > 0 else []) + (
        [f"{share:.0%} of draws at the tree-depth cap"] if share > 0.5 else []) + (
        [f"R-hat {rhat:.3f}"] if rhat > RHAT_MAX else [])


def drifts(row):
    """Sampler trouble and some draw within COLLAPSE_NEAR of the data variance of a collapse."""
    smallest = row.get("diagnostics.min_eigenvalue_relative_any_draw", np.nan)
    return bool(sampler_trouble(row)) and smallest < COLLAPSE_NEAR


def collapsed(outcome_phrase):
    """Whether an outcome is a collapse: failed, degenerate, stopped at a collapse, or a
    posterior drifting into it."""
    return str(outcome_phrase).startswith(("failed", "degenerate", "collapsed",
                                           "posterior drifts"))


def local_optima(table):
    """Maximum-likelihood runs more than LOCAL_OPTIMUM_GAP nats of train log-likelihood below
    the best fit of any maximum-likelihood method on the same problem (same_fit_problem):
    rows with columns data setting, method, K, seed, run, nats below the best, best."""
    columns = ["data setting", "method", "K", "seed", "run", "nats below the best", "best"]
    best = best_logliks(table)
    ml = maximum_likelihood(table).dropna(subset=["loglik"]) if "loglik" in table else []
    if len(ml) == 0:
        return pd.DataFrame(columns=columns)
    keys = same_fit_problem(ml)
    lines = []
    for i, row in ml.iterrows():
        reference = best.loc[tuple(keys.loc[i])]
        gap = reference["loglik"] - row["loglik"]
        if gap > LOCAL_OPTIMUM_GAP:
            lines.append({"data setting": row["data_setting"], "method": row["variant"],
                          "K": int(row["n_components"]), "seed": int(row["seed"]),
                          "run": row.get("run_dir", "-"), "nats below the best": gap,
                          "best": f"{reference['variant']} seed {int(reference['seed'])}"})
    return pd.DataFrame(lines, columns=columns)


def judged_by_several(table):
    """Whether some problem (same_fit_problem) has more than one maximum-likelihood fit, so
    that a local optimum can be seen."""
    ml = maximum_likelihood(table)
    return len(ml) > 0 and same_fit_problem(ml).value_counts().max() > 1


# --- rankings ------------------------------------------------------------------------------


# The backend families in the order every table and figure lists methods (a variant's family is
# the longest of these names its label starts with, e.g. 'sklearn_vb n_init=5' -> sklearn_vb).
BACKEND_FAMILIES = ("em", "sklearn", "sklearn_vb", "pymc", "gibbs", "mclust")


def backend_family(variant):
    """The backend family of a method label (:data:`BACKEND_FAMILIES`), None for a user's
    backend."""
    matches = [name for name in BACKEND_FAMILIES if str(variant).startswith(name)]
    return max(matches, key=len) if matches else None


def method_order(table):
    """Methods in one order for every table and figure: by backend family
    (:data:`BACKEND_FAMILIES`, users' backends last), then by name."""

    def rank(variant):
        family = backend_family(variant)
        return BACKEND_FAMILIES.index(family) if family else len(BACKEND_FAMILIES)

    return sorted(table["variant"].unique(), key=lambda v: (rank(v), str(v)))


def judged_values(rows, column):
    """The values of ``column`` a ranking judges (Series aligned with ``rows``, NaN where not
    judged): PyMC's held-out log-likelihood is its posterior predictive's, and its BIC (at a
    posterior mean) is not judged."""
    values = pd.to_numeric(rows[column], errors="coerce") if column in rows else pd.Series(
        np.nan, index=rows.index)
    bayesian = np.array([is_bayesian(v) for v in rows["variant"]], dtype=bool)
    if column == "bic":
        values = values.where(~bayesian)
    predictive = "test_posterior_predictive_loglik_per_sample"
    if column == "test_loglik_per_sample" and predictive in rows:
        values = values.where(~bayesian, pd.to_numeric(rows[predictive], errors="coerce"))
    return values


def ranked_metrics(rows):
    """The RANKED columns with a judged value for some rankable run of ``rows``."""
    ok = rankable(rows)
    return [c for c in RANKED if c in ok and judged_values(ok, c).notna().any()]


def paired_difference(a, b):
    """Mean of ``a - b`` and its standard error over paired points (arrays of shape (n,))."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))


def rankings(rows, pointwise=None):
    """Per method (rows of one data setting, at its main K; degenerate, collapsed and failed
    runs left out): the median over seeds of every ranked metric, its spread (largest minus
    smallest seed), its difference to the best method, the half-width of the interval on that
    difference, whether it ties with the best, and its rank (1 = best or tied with it).

    Ties: held-out log-lik/N within 2 standard errors of the paired difference over the test
    points (``pointwise``: method -> per-test-point log density, shape (n_test,)), else within
    the best method's spread over seeds; BIC within 2 x EM_TOL x N (the same optimum within
    EM's tolerance); mean error within the best method's spread over seeds, or at the same
    optimum (train log-likelihoods within EM_TOL x N); a value at least as good as a tied one
    ties too. DataFrame indexed by method, columns
    (metric, 'median' | 'spread' | 'diff' | 'interval' | 'tied' | 'rank')."""
    ok = rankable(rows)
    order = [v for v in method_order(rows) if v in set(ok["variant"])]
    n_train = float(ok["n_samples"].max()) if "n_samples" in ok else np.nan
    train = pd.to_numeric(ok["loglik"], errors="coerce").groupby(ok["variant"]).median() if (
        "loglik" in ok) else pd.Series(dtype=float)
    frame = {}
    for column in ranked_metrics(rows):
        values = judged_values(ok, column).groupby(ok["variant"])
        medians = values.median().reindex(order)
        spreads = (values.max() - values.min()).reindex(order)
        lower = COLUMN[column].better == "lower"
        judged = medians.dropna().sort_values(ascending=lower)
        diff = pd.Series(np.nan, index=order)
        interval = pd.Series(np.nan, index=order)
        tied = pd.Series(False, index=order)
        if not judged.empty:
            best = judged.index[0]
            for method in judged.index:
                diff[method] = medians[method] - medians[best]
                # inside the best method's own spread over seeds (another method's spread can
                # come from a seed at a worse optimum: no tie)
                within_spread = abs(diff[method]) <= spreads[best]
                if column == "test_loglik_per_sample" and pointwise and method in pointwise \
                        and best in pointwise:
                    diff[method], se = paired_difference(pointwise[method], pointwise[best])
                    interval[method] = 2 * se
                    tied[method] = abs(diff[method]) <= interval[method]
                elif column == "bic":
                    interval[method] = 2 * EM_TOL * n_train
                    tied[method] = abs(diff[method]) <= interval[method]
                elif column == "param_error.means":
                    same_optimum = (not is_bayesian(method) and not is_bayesian(best)
                                    and abs(train.get(method, np.nan) - train.get(best, np.nan))
                                    <= EM_TOL * n_train)
                    tied[method] = within_spread or bool(same_optimum)
                else:
                    tied[method] = method == best
            tied[best] = True
            # a value at least as good as a tied one is tied too (ranks follow the values)
            last = max(i for i, method in enumerate(judged.index) if tied[method])
            tied[judged.index[:last + 1]] = True
        rank = medians.rank(method="min", ascending=lower)
        frame[(column, "median")] = medians
        frame[(column, "spread")] = spreads
        frame[(column, "diff")] = diff
        frame[(column, "interval")] = interval
        frame[(column, "tied")] = tied
        frame[(column, "rank")] = rank.where(~tied, 1.0)
    return pd.DataFrame(frame, index=pd.Index(order, name="method"))


def winners(ranking, column):
    """The methods ranked first on ``column`` (the best and those tied with it)."""
    if (column, "tied") not in ranking:
        return []
    return list(ranking.index[ranking[(column, "tied")].astype(bool)])


def verdict(setting, ranking):
    """One sentence answering a method comparison: the best method on each ranked criterion
    and which tie with it (by the tie rule of :func:`rankings`; the difference to the next
    with its interval when none ties), and the cost of the fastest method against the
    slowest."""
    parts = []
    for column in [c for c in RANKED if (c, "rank") in ranking and c != "fit_seconds"]:
        medians = ranking[(column, "median")].dropna()
        if medians.empty:
            continue
        label = COLUMN[column].label
        first = winners(ranking, column)
        ordered = medians.sort_values(ascending=COLUMN[column].better == "lower")
        value = COLUMN[column].format(ordered.iloc[0])
        if len(medians) == 1:
            parts.append(f"{label} {value} ({ordered.index[0]}, the only method)")
        elif len(first) > 1:
            parts.append(f"{label}: {', '.join(first)} tie ({ordered.index[0]} "
                         f"{value}; {_tie_rule(column)})")
        else:
            second = ordered.index[1]
            gap = abs(ranking.loc[second, (column, "diff")])
            interval = ranking.loc[second, (column, "interval")]
            parts.append(f"{label}: {first[0]} best at {value}, {COLUMN[column].format(gap)}"
                         + (f" ± {format_number(interval)}" if present(interval) and column
                            != "bic" else "") + f" ahead of {second}")
    if ("fit_seconds", "median") in ranking:
        seconds = ranking[("fit_seconds", "median")].dropna().sort_values()
        if len(seconds) > 1:
            parts.append(f"fastest {seconds.index[0]} ({format_number(seconds.iloc[0])} s), "
                         f"slowest {seconds.index[-1]} ({format_number(seconds.iloc[-1])} s, "
                         f"{format_ratio(seconds.iloc[-1] / seconds.iloc[0])} slower)")
    return f"{setting}: " + "; ".join(parts) + "." if parts else f"{setting}: no fitted run."


def _tie_rule(column):
    return {"test_loglik_per_sample": "differences within 2 paired SE over the test points",
            "bic": "the same optimum within EM's tolerance",
            "param_error.means": "within the best's spread over seeds or at the same "
                                 "optimum"}.get(
        column, "")


def cross_setting_ranks(rankings_by_setting):
    """Per method, its mean rank over data settings on each ranked metric and the number of
    settings it ranked on."""
    lines = {}
    for ranking in rankings_by_setting.values():
        for method in ranking.index:
            line = lines.setdefault(method, {"method": method, "data settings": 0})
            line["data settings"] += 1
            for column in RANKED:
                if (column, "rank") in ranking and pd.notna(ranking.loc[method, (column, "rank")]):
                    line.setdefault(column, []).append(ranking.loc[method, (column, "rank")])
    frame = pd.DataFrame([{key: (np.mean(value) if isinstance(value, list) else value)
                           for key, value in line.items()} for line in lines.values()])
    return frame[["method", "data settings", *[c for c in RANKED if c in frame]]]


def main_k(rows):
    """The K a data setting is summarised at: its true or customary K if known, else the most
    run."""
    truth = rows["true_components"].dropna() if "true_components" in rows else []
    if len(truth):
        return int(truth.iloc[0])
    return int(rows["n_components"].mode().iloc[0])


def pointwise_test_logliks(rows, base):
    """Per method, the log density of every held-out point under its rankable fits, averaged
    over seeds (ML fits: the fitted mixture; PyMC: the posterior predictive of its stored
    draws): dict method -> array of shape (n_test,); methods without held-out points left
    out."""
    from gmmlab.model.metrics import log_likelihood_per_sample, posterior_predictive_log_density
    from gmmlab.study.job import load_spec_dataset

    out = {}
    ok = rankable(rows)
    if "test_loglik_per_sample" not in ok or ok["test_loglik_per_sample"].isna().all():
        return out
    X_test = None
    for variant, runs in ok.groupby("variant", sort=False):
        values = []
        for _, row in runs.iterrows():
            if X_test is None:
                record = json.loads((Path(base) / row["run_dir"] / "result.json").read_text())
                X_test = load_spec_dataset(record["provenance"]["config"]["dataset"]).X_test
            if X_test is None:
                return out
            path = Path(base) / row["run_dir"] / IDATA_FILE
            if is_bayesian(variant) and path.exists():
                import arviz as az

                posterior = az.from_netcdf(str(path))["posterior"]
                draws = [posterior[name].stack(draw_all=("chain", "draw")).transpose(
                    "draw_all", ...).to_numpy() for name in ("weights", "means", "covariances")]
                values.append(posterior_predictive_log_density(X_test, *draws))
            elif not is_bayesian(variant):
                values.append(log_likelihood_per_sample(X_test, *[
                    np.asarray(json.loads(row[f"params.{key}"]))
                    for key in ("weights", "means", "covariances")]))
        if values:
            out[variant] = np.mean(values, axis=0)
    return out


# --- model selection -----------------------------------------------------------------------


def criteria_present(rows, judges="ml"):
    """The criteria (columns.CRITERIA) judging ``judges`` fits with a value in some rankable
    run."""
    ok = rankable(rows)
    return [c.name for c in CRITERION.values()
            if c.judges == judges and c.name in ok and ok[c.name].notna().any()]


def model_table(rows):
    """The covariance models x K of one method's runs on one data setting, in the shape of
    ``gmmlab.select``'s table: one row per mclust model name (for the data's dimension) and K,
    the run the cell keeps by select's rule (:func:`gmmlab.model.search.choose_fit`: the best
    train log-likelihood among the runs not degenerate), columns ``model, n_components,
    loglik, n_parameters``, the information criteria, ``status`` ('ok', 'degenerate' when
    every run of the cell is or the kept run collapsed, 'failed' when none fitted) and
    ``reason``."""
    lines = []
    n_features = int(rows["n_features"].max())  # a failed run may not record it
    models = rows.assign(model=[mclust_name(c, n_features) for c in rows["covariance_type"]])
    criteria = [c for c in ("bic", "aic", "icl", "icl_entropy") if c in rows]
    for (model, k), cell in models.groupby(["model", "n_components"], sort=False):
        finished = cell["status"].ne("failed") & cell["loglik"].notna()
        degenerate = cell.get("degenerate", pd.Series(False, index=cell.index)).fillna(
            False).astype(bool) | cell["status"].eq("singular")
        index, status = choose_fit(cell["loglik"].where(finished), degenerate & finished)
        best = cell.iloc[0] if index is None else cell.iloc[index]
        reason = {"ok": None, "degenerate": best.get("degeneracy_reason"),
                  "failed": failure_reason(best)}[status]
        fitted_values = status != "failed"
        lines.append({"model": model, "n_components": int(k), "status": status,
                      "reason": reason} | {
                     column: best[column] if fitted_values else np.nan for column in
                     ("loglik", *criteria)} | {"n_parameters": best.get("n_params", np.nan)})
    order = {model: i for i, model in enumerate(("E", "V") + MCLUST_MODELS)}
    return pd.DataFrame(lines).sort_values(["model", "n_components"], key=lambda c: c.map(
        order) if c.name == "model" else c).reset_index(drop=True)


def cell_name(cell, with_model):
    """'EEE,3' (covariance model and K) or '3'."""
    return f"{cell['model']},{int(cell['n_components'])}" if with_model else str(
        int(cell["n_components"]))


def kass_raftery(difference):
    """The evidence a BIC difference (about 2 log B) gives on Kass & Raftery's scale
    (:func:`gmmlab.selection.evidence.kass_raftery` of log B = difference / 2)."""
    return evidence.kass_raftery(difference / 2)


def ml_choices(rows):
    """Per maximum-likelihood method (not Bayesian) and information criterion: the cell it
    chooses (lowest value among the 'ok' cells of :func:`model_table`), the runner-up and the
    difference between them. DataFrame with columns method, criterion, chosen, runner-up,
    difference, evidence (the Kass-Raftery reading, for BIC)."""
    lines = []
    with_model = rows["covariance_type"].nunique() > 1
    for variant in method_order(rows):
        runs = rows[rows["variant"] == variant]
        if is_bayesian(variant) or runs["n_components"].nunique() < 2:
            continue
        cells = model_table(runs)
        cells = cells[cells["status"] == "ok"]
        for criterion in criteria_present(runs):
            ordered = cells.dropna(subset=[criterion]).sort_values(criterion)
            if ordered.empty:
                continue
            line = {"method": variant, "criterion": CRITERION[criterion].label,
                    "chosen": cell_name(ordered.iloc[0], with_model),
                    "value": ordered.iloc[0][criterion], "runner-up": "-",
                    "difference": np.nan, "evidence": "-"}
            if len(ordered) > 1:
                difference = ordered.iloc[1][criterion] - ordered.iloc[0][criterion]
                line |= {"runner-up": cell_name(ordered.iloc[1], with_model),
                         "difference": difference}
                line["evidence"] = (f"{format_fixed(difference)}: {kass_raftery(difference)}"
                                    if criterion == "bic" else format_fixed(difference))
            lines.append(line)
    return pd.DataFrame(lines, columns=["method", "criterion", "chosen", "value", "runner-up",
                                        "difference", "evidence"])


def loo_unreliable(row):
    """Why PSIS-LOO is unreliable for a run ('' when it is not): p_loo above P_LOO_FRACTION x N
    or a Pareto k above PARETO_K_MAX."""
    reasons = []
    p, n = row.get("loo.p", np.nan), row.get("n_samples", np.nan)
    if present(p) and present(n) and p > P_LOO_FRACTION * n:
        reasons.append(f"p_loo {format_number(p)} > N/5 = {format_number(n / 5)}")
    k = row.get("loo.pareto_k_max", np.nan)
    if present(k) and k > PARETO_K_MAX:
        reasons.append(f"Pareto k {k:.2f} > {PARETO_K_MAX}")
    return ", ".join(reasons)


def loo_choice(comparison):
    """The two-dse rule on an ``arviz.compare`` table of reliable K (index: K as text; columns
    elpd_diff <= 0, dse): the smallest K whose elpd is within two standard errors of the
    difference of the best K's."""
    close = comparison.index[-comparison["elpd_diff"] <= 2 * comparison["dse"]]
    return min(close, key=int)


def loo_across_k(group, base):
    """PSIS-LOO of one PyMC method and seed across K: (table, chosen K, best K). The table has
    one row per K: ArviZ compare's columns over the reliable K (:func:`loo_unreliable`), the
    unreliable K with their elpd and p only, and ``reliable``; the chosen K is the two-dse
    rule's over the reliable K (None when none is)."""
    import arviz as az

    group = group.sort_values("n_components")
    rows = {str(int(row["n_components"])): row for _, row in group.iterrows()
            if (Path(base) / row["run_dir"] / IDATA_FILE).exists()}
    reliable = {k: row for k, row in rows.items() if not loo_unreliable(row)}
    columns = ["rank", "elpd", "p", "elpd_diff", "se", "dse", "weight"]
    if len(reliable) >= 2:
        comparison = az.compare({k: az.from_netcdf(str(Path(base) / row["run_dir"] / IDATA_FILE))
                                 for k, row in reliable.items()}, round_to="none")[columns]
        chosen, best = loo_choice(comparison), comparison.index[0]
    elif reliable:
        (k, row), = reliable.items()
        comparison = pd.DataFrame([{"rank": 0, "elpd": row["loo.elpd"], "p": row["loo.p"],
                                    "elpd_diff": 0.0, "se": row["loo.se"], "dse": 0.0,
                                    "weight": 1.0}], index=[k])
        chosen = best = k
    else:
        comparison, chosen, best = pd.DataFrame(columns=columns), None, None
    rest = pd.DataFrame([{"elpd": row["loo.elpd"], "p": row["loo.p"], "se": row["loo.se"]}
                         for k, row in rows.items() if k not in reliable],
                        index=[k for k in rows if k not in reliable], columns=columns)
    table = pd.concat([comparison.astype(float), rest.astype(float)]) if len(rest) else (
        comparison.astype(float))
    table["reliable"] = ["yes" if k in reliable else loo_unreliable(rows[k]) for k in table.index]
    table["points with Pareto k > 0.7"] = [rows[k].get("loo.pareto_k_above_0.7", np.nan)
                                           for k in table.index]
    return table, chosen, best


def loo_choices(rows, base):
    """Per Bayesian method and seed of ``rows`` (runs at several K): (method, seed, table, chosen
    K, best K) of :func:`loo_across_k`."""
    out = []
    for (variant, seed), group in posterior_runs(rows).groupby(["variant", "seed"]):
        if group["n_components"].nunique() >= 2:
            out.append((variant, int(seed), *loo_across_k(group, base)))
    return out


def posterior_runs(rows):
    """The fitted (not failed) runs of Bayesian methods (:func:`is_bayesian`)."""
    return rows[rows["variant"].map(is_bayesian).astype(bool) & (rows["status"] != "failed")]


def evidence_across_k(group):
    """The posterior over K of one Bayesian method and seed from its runs' evidence
    (``diagnostics.log_evidence`` +- ``diagnostics.log_evidence_se``), uniform prior on K:
    (table, chosen K or None, best K). The table has one row per K: log evidence, se, posterior
    probability +- its Monte Carlo error, ln B of the best K against it +- se, and Kass &
    Raftery's reading. The best K is the most probable; it is chosen unless the runner-up is
    within EVIDENCE_TIE_SE standard errors of the difference (a tie: None)."""
    group = group.dropna(subset=["diagnostics.log_evidence"]).sort_values("n_components")
    results = [evidence.EvidenceResult(row["diagnostics.log_evidence"],
                                       row["diagnostics.log_evidence_se"],
                                       int(row["n_components"]),
                                       row.get("diagnostics.evidence_method", "bridge"), {})
               for _, row in group.iterrows()]
    posterior = evidence.model_posterior(results)
    best = posterior.best
    lines = []
    for k, probability, spread in zip(posterior.n_components, posterior.probabilities,
                                      posterior.probabilities_se, strict=True):
        at = posterior.n_components == k
        line = {"K": str(k), "log evidence": f"{posterior.log_evidence[at].item():.2f}",
                "evidence se": f"{posterior.se[at].item():.3f}",
                "posterior probability": f"{probability:.3f} ± {spread:.3f}",
                "ln B (best : K)": "best", "reading": "-"}
        if k != best:
            log_factor, error, reading = posterior.bayes_factor(best, k)
            line |= {"ln B (best : K)": f"{log_factor:.2f} ± {error:.2f}", "reading": reading}
        lines.append(line)
    table = pd.DataFrame(lines)
    runner = max((k for k in posterior.n_components if k != best),
                 key=lambda k: posterior.probabilities[posterior.n_components == k].item(),
                 default=None)
    if runner is None:
        return table, best, best, runner, posterior
    log_factor, error, _ = posterior.bayes_factor(best, runner)
    tied = log_factor <= EVIDENCE_TIE_SE * error
    return table, None if tied else best, best, runner, posterior


def evidence_choices(rows):
    """Per Bayesian method and seed of ``rows`` with the evidence at several K: (method, seed,
    table, chosen K, best K, runner-up K, ModelPosterior) of :func:`evidence_across_k`."""
    if "diagnostics.log_evidence" not in rows:
        return []
    runs = posterior_runs(rows).dropna(subset=["diagnostics.log_evidence"])
    return [(variant, int(seed), *evidence_across_k(group))
            for (variant, seed), group in runs.groupby(["variant", "seed"], sort=False)
            if group["n_components"].nunique() >= 2]


def sparse_mixture(row):
    """Whether a run is a sparse finite mixture: a Bayesian fit with a K+ posterior and a
    Dirichlet concentration of at most SPARSE_ALPHA."""
    alpha = row.get("diagnostics.alpha", np.nan)
    return (is_bayesian(row.get("variant")) and present(alpha) and alpha <= SPARSE_ALPHA
            and present(row.get("diagnostics.nonempty_components_mode")))


def sparse_choices(rows):
    """The number of clusters each sparse finite mixture run estimates: DataFrame with columns
    method, seed, K_max, K+ (the mode of its posterior), probability (the mode's), R-hat."""
    if "diagnostics.alpha" not in rows:
        return pd.DataFrame(columns=["method", "seed", "K_max", "K+", "probability", "R-hat"])
    runs = posterior_runs(rows)
    runs = runs[[sparse_mixture(row) for _, row in runs.iterrows()]]
    lines = []
    for _, row in runs.iterrows():
        shares = row["diagnostics.nonempty_components_probabilities"]  # JSON text in a table
        mode = int(row["diagnostics.nonempty_components_mode"])
        lines.append({"method": row["variant"], "seed": int(row["seed"]),
                      "K_max": int(row["n_components"]), "K+": mode,
                      "probability": (json.loads(shares) if isinstance(shares, str)
                                      else shares)[mode - 1],
                      "R-hat": row.get("diagnostics.max_rhat", np.nan)})
    return pd.DataFrame(lines, columns=["method", "seed", "K_max", "K+", "probability",
                                        "R-hat"])


def wilson_interval(successes, n, z=1.96):
    """The Wilson score interval (lower, upper) of a proportion: successes of n."""
    if n == 0:
        return np.nan, np.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def rate(successes, n):
    """'17/20 (64-95%)': a count with its 95% Wilson interval."""
    if n == 0:
        return "-"
    lower, upper = wilson_interval(successes, n)
    return f"{successes}/{n} ({100 * lower:.0f}-{100 * upper:.0f}%)"


def selection_accuracy(table):
    """How often every information criterion picks the true K, per data setting and method,
    as 'hits/n (95% Wilson interval)': one pick per data replicate and seed, degenerate,
    collapsed and failed fits never picked; None when no data setting has several K and a
    known truth (real data have no true K)."""
    if "true_components" not in table or not has_truth(table):
        return None
    replicate = [c for c in ("dataset_metadata.seed", "seed") if c in table]
    ok = rankable(table)
    ok = ok[ok["true_components"].notna() & ~ok["variant"].map(is_bayesian).astype(bool)]
    present_criteria = criteria_present(ok)
    lines = []
    for (setting, variant), rows in ok.groupby(["data_setting", "variant"], sort=False):
        if rows["n_components"].nunique() < 2 or not has_truth(rows):
            continue
        line = {"data setting": setting, "method": variant,
                "true K": int(rows["true_components"].iloc[0])}
        for criterion in present_criteria:
            picks = [group.loc[group[criterion].idxmin(), "n_components"]
                     for _, group in rows.dropna(subset=[criterion]).groupby(replicate)]
            hits = sum(int(k) == line["true K"] for k in picks)
            line[CRITERION[criterion].label] = rate(hits, len(picks))
        lines.append(line)
    lines.extend(bayesian_selection_accuracy(table, replicate))
    return pd.DataFrame(lines) if lines else None


def bayesian_selection_accuracy(table, replicate):
    """How often the evidence (the most probable K, a tie counting as a miss) and a sparse
    mixture's K+ mode recover the true K, per data setting and Bayesian method: lines of
    :func:`selection_accuracy`'s table."""
    runs = posterior_runs(table)
    runs = runs[runs["true_components"].notna()]
    lines = []
    for (setting, variant), rows in runs.groupby(["data_setting", "variant"], sort=False):
        line = {"data setting": setting, "method": variant,
                "true K": int(rows["true_components"].iloc[0])}
        # one choice per replicate and seed (evidence_choices: (method, seed, table, chosen, ...))
        picks = [choice[3] for _, group in rows.groupby(replicate)
                 for choice in evidence_choices(group)]
        if picks:
            line[CRITERION["diagnostics.log_evidence"].label] = rate(
                sum(str(k) == str(line["true K"]) for k in picks), len(picks))
        sparse = [row for _, row in rows.iterrows() if sparse_mixture(row)]
        if sparse:
            line[CRITERION["diagnostics.nonempty_components_mode"].label] = rate(
                sum(int(row["diagnostics.nonempty_components_mode"]) == line["true K"]
                    for row in sparse), len(sparse))
        if len(line) > 3:
            lines.append(line)
    return lines


# --- initialisation, singularity, label switching ------------------------------------------


def success_rates(table):
    """Per data setting and method: runs that reached the best optimum (a rankable fit within
    LOCAL_OPTIMUM_GAP nats of the best train log-likelihood of any maximum-likelihood method
    on the same problem) with a 95% Wilson interval, and the median time. DataFrame with
    columns data setting, method, K, successes, runs, reached the best optimum, time (s) ↓."""
    best = best_logliks(table)["loglik"]
    keys = same_fit_problem(table)
    ok = set(rankable(table).index)
    lines = []
    for (setting, variant, k), rows in table.groupby(["data_setting", "variant",
                                                      "n_components"], sort=False):
        hits = sum(i in ok and best.get(tuple(keys.loc[i]), np.nan) - rows.loc[i, "loglik"]
                   <= LOCAL_OPTIMUM_GAP for i in rows.index)
        lines.append({"data setting": setting, "method": variant, "K": int(k),
                      "successes": hits, "runs": len(rows),
                      "reached the best optimum": rate(hits, len(rows)),
                      COLUMN["fit_seconds"].header: rows["fit_seconds"].median()})
    frame = pd.DataFrame(lines)
    order = {m: i for i, m in enumerate(method_order(table))}
    return frame.sort_values(["data setting", "method"], key=lambda c: c.map(order) if (
        c.name == "method") else c, kind="stable").reset_index(drop=True)


def collapse_table(table):
    """Per method and data setting: runs that collapsed (failed, degenerate, stopped at a
    collapse or a posterior drifting into it) of all, and the outcomes with their counts.
    DataFrame with columns method, data setting, collapses, n_collapsed, runs, outcomes."""
    lines = []
    for (variant, setting), rows in table.groupby(["variant", "data_setting"], sort=False):
        counts = rows["outcome"].value_counts()
        n_collapsed = int(sum(n for phrase, n in counts.items() if collapsed(phrase)))
        lines.append({"method": variant, "data setting": setting,
                      "collapses": f"{n_collapsed}/{len(rows)}", "n_collapsed": n_collapsed,
                      "runs": len(rows),
                      "outcomes": "; ".join(f"{n} {phrase}" for phrase, n in counts.items())})
    frame = pd.DataFrame(lines)
    order = {m: i for i, m in enumerate(method_order(table))}
    return frame.sort_values(["data setting", "method"], key=lambda c: c.map(order) if (
        c.name == "method") else c, kind="stable").reset_index(drop=True)


def relabelling_gains(table):
    """Per PyMC run with the truth: the error of the naive posterior mean of the means (draws
    as sampled) and of the relabelled one, with R-hat before and after relabelling. DataFrame
    with columns data setting, method, K, seed, draws permuted, R-hat as sampled, R-hat, naive
    mean error, relabelled mean error."""
    pymc = fitted(table[table["backend"] == "pymc"])
    if "param_error_naive.means" not in pymc:
        return None
    pymc = pymc.sort_values(["data_setting", "variant", "seed"])
    return pd.DataFrame({
        "data setting": pymc["data_setting"], "method": pymc["variant"],
        "K": pymc["n_components"].astype(int), "seed": pymc["seed"].astype(int),
        "draws permuted": pymc.get("diagnostics.draws_permuted"),
        "R-hat as sampled": pymc.get("diagnostics.max_rhat_raw"),
        "R-hat": pymc.get("diagnostics.max_rhat"),
        "naive mean error": pymc["param_error_naive.means"],
        "relabelled mean error": pymc["param_error.means"]}).reset_index(drop=True)


def with_icl_forms(table):
    """The table with ``icl`` (MAP labels) and ``icl_entropy`` as today's records have them:
    records written before the MAP form hold the entropy form under ``icl``; it moves to
    ``icl_entropy`` and their MAP ICL is missing."""
    if "icl" not in table:
        return table
    table = table.copy()
    if "icl_entropy" not in table:
        table["icl_entropy"] = np.nan
    before = table["icl_entropy"].isna() & table["icl"].notna()
    table.loc[before, "icl_entropy"] = table.loc[before, "icl"]
    table.loc[before, "icl"] = np.nan
    return table


# --- numbers -------------------------------------------------------------------------------


def spread(values, seeds, column=None):
    """Values over seeds as a reader sees them (in ``column``'s notation): each seed's value
    (in seed order) when there are at most three, else 'median (min to max)'; '-' when
    none."""
    show = COLUMN[column].format if column in COLUMN else format_number
    values = pd.to_numeric(pd.Series(list(values), index=list(seeds)), errors="coerce").dropna()
    if values.empty:
        return "-"
    values = values.sort_index()
    if len(values) <= 3:
        return " / ".join(show(v) for v in values)
    return f"{show(values.median())} ({show(values.min())} to {show(values.max())})"
