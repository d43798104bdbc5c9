"""Interpreting runs: what each fit ended in, how the methods rank, how often a criterion picks
the true K. Reads the results table (one row per run,
``gmmlab.study.results.readable_results``); the
report writer only lays these out.

One outcome rule serves every report (the singularity study's included)::

    failed: <reason>  >  degenerate  >  collapsed  >  re-seeded  >  held at the reg_covar floor
    >  near-empty component  >  local optimum  >  (PyMC: what the posterior did)  >  converged
"""

import dataclasses

import numpy as np
import pandas as pd

from gmmlab.model.gaussian import MCLUST_MODELS, mclust_name
from gmmlab.model.metrics import INFORMATION_CRITERIA
from gmmlab.model.search import choose_fit

# A run is at a worse local optimum when its train log-likelihood (total, nats) is this much
# below the best seed of the same method, data setting and K: a likelihood ratio of e^1.
LOCAL_OPTIMUM_GAP = 1.0
# A draw's smallest covariance eigenvalue, relative to the data variance, this close to zero
# counts as near a collapse.
COLLAPSE_NEAR = 1e-3
# The criteria of a run reports compare across K: the information criteria, then PSIS-LOO.
CRITERIA = [*INFORMATION_CRITERIA, "loo.looic"]


@dataclasses.dataclass(frozen=True)
class Metric:
    """A column of the results table as reports show it."""

    column: str
    label: str
    better: str  # "higher" or "lower"
    meaning: str


METRICS = [
    Metric("test_loglik_per_sample", "held-out log-lik/N", "higher",
           "mean log-density of the held-out points under the fitted mixture"),
    Metric("loglik_per_sample", "train log-lik/N", "higher",
           "mean log-density of the training points"),
    Metric("bic", "BIC", "lower", "-2 log-likelihood + (free parameters) log N, on the "
           "training points"),
    Metric("param_error.means", "mean error", "lower", "RMSE between fitted and true means, "
           "components matched by the Hungarian algorithm (needs the truth)"),
    Metric("param_error.weights", "weight error", "lower",
           "L1 distance between fitted and true weights, matched components"),
    Metric("param_error.covariances", "covariance error", "lower",
           "relative Frobenius error of the covariances, matched components"),
    Metric("ari", "ARI", "higher", "adjusted Rand index of the MAP labels against the true "
           "labels (1 = the same partition)"),
    Metric("fit_seconds", "time (s)", "lower", "wall time of the fit (PyMC: compiling and "
           "sampling)"),
]
METRIC = {metric.column: metric for metric in METRICS}
# The criteria the summary ranks methods on, in this order; time is the cost.
RANKED = ["test_loglik_per_sample", "bic", "param_error.means", "fit_seconds"]


def fitted(table):
    """Runs that gave parameters (ok or stopped at a collapse)."""
    return table[table["status"] != "failed"]


# --- outcomes ------------------------------------------------------------------------------


def same_fit_problem(table):
    """Keys of runs fitting the same data with the same method and K: data setting, method, K
    and the data replicate (a synthetic set's own seed, ``dataset_metadata.seed``; -1 where
    there is none). DataFrame aligned with ``table``."""
    replicate = table["dataset_metadata.seed"] if "dataset_metadata.seed" in table else -1
    return pd.DataFrame({"data_setting": table["data_setting"], "variant": table["variant"],
                         "n_components": table["n_components"], "replicate": replicate},
                        index=table.index).fillna({"replicate": -1})


def outcomes(table):
    """The outcome phrase of every run (Series aligned with ``table``); a run's local optimum
    is judged against the best train log-likelihood of the same data, method and K."""
    keys = same_fit_problem(table)
    ok = table["status"] != "failed"
    best = (table.loc[ok, "loglik"].groupby([keys.loc[ok, c] for c in keys]).max()
            if "loglik" in table else {})
    return pd.Series([outcome(row, best.get(tuple(keys.loc[i]), np.nan))
                      for i, row in table.iterrows()], index=table.index, dtype=object)


def outcome(row, best_loglik=np.nan):
    """One phrase for what a fit ended in (module docstring for the order of the checks).

    row: a run (Series of the results table); best_loglik: the best train log-likelihood of
    the same method, data setting and K (nan: not judged).
    """
    if row["status"] == "failed":
        return "failed: " + failure_reason(row)
    if _present(row.get("degenerate")) and bool(row["degenerate"]):
        reason = row.get("degeneracy_reason")
        return "degenerate" + (f": {reason}" if _present(reason) else "")
    if row["status"] == "singular":
        return f"collapsed, stopped at iteration {int(row['singular.collapse.iteration'])}"
    resets = row.get("singular.n_resets")
    if _present(resets) and resets > 0:
        return f"re-seeded {int(resets)} time(s)"
    reg_covar = row.get("reg_covar", 0)
    if _present(reg_covar) and reg_covar > 0 and row.get("singular.min_eigenvalue",
                                                         np.nan) <= 2 * reg_covar:
        return "held at the reg_covar floor"
    weight_n, n_features = row.get("singular.min_weight_n"), row.get("n_features", 1)
    if _present(weight_n) and weight_n < (n_features if _present(n_features) else 1) + 1:
        return f"near-empty component (weight x N = {format_number(weight_n)})"
    gap = best_loglik - row.get("loglik", np.nan)
    if gap > LOCAL_OPTIMUM_GAP:
        return f"local optimum ({format_number(gap)} nats below the best seed)"
    if row.get("backend") == "pymc":
        return _posterior_outcome(row)
    return "converged" if row.get("converged", True) is not False else "not converged"


def failure_reason(row):
    """Why a run failed, in a few words: where a covariance became singular, scikit-learn's
    ill-defined covariance, or the first line of the message."""
    error = str(row.get("singular.backend_error") if _present(
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
    """Divergences, most draws at the NUTS tree-depth cap, R-hat > 1.1: phrases, or []."""
    share = row.get("diagnostics.max_treedepth_share", np.nan)
    divergences = row.get("diagnostics.divergences", np.nan)
    rhat = row.get("diagnostics.max_rhat", np.nan)
    plural = "" if divergences == 1 else "s"
    return ([f"{int(divergences)} divergence{plural}"] if divergences > 0 else []) + (
        [f"{share:.0%} of draws at the tree-depth cap"] if share > 0.5 else []) + (
        [f"R-hat {rhat:.2f}"] if rhat > 1.1 else [])


def drifts(row):
    """Sampler trouble and some draw within COLLAPSE_NEAR of the data variance of a collapse."""
    smallest = row.get("diagnostics.min_eigenvalue_relative_any_draw", np.nan)
    return bool(sampler_trouble(row)) and smallest < COLLAPSE_NEAR


def local_optima(table):
    """Runs at a worse local optimum than the best seed of their method (same data, K):
    rows with columns data_setting, variant, K, seed, run_dir, gap (nats of total train
    log-likelihood) and the best seed."""
    lines = []
    ok = fitted(table)
    keys = same_fit_problem(ok)
    for (setting, variant, k, _), rows in ok.groupby([keys[c] for c in keys], sort=False):
        rows = rows.dropna(subset=["loglik"])
        if len(rows) < 2:
            continue
        best = rows.loc[rows["loglik"].idxmax()]
        for _, row in rows.iterrows():
            gap = best["loglik"] - row["loglik"]
            if gap > LOCAL_OPTIMUM_GAP:
                lines.append({"data setting": setting, "method": variant, "K": int(k),
                              "seed": int(row["seed"]), "run": row.get("run_dir", "-"),
                              "nats below the best seed": gap, "best seed": int(best["seed"])})
    return pd.DataFrame(lines, columns=["data setting", "method", "K", "seed", "run",
                                        "nats below the best seed", "best seed"])


# --- rankings ------------------------------------------------------------------------------


# The backend families in the order every table and figure lists methods (a variant's family is
# the longest of these names its label starts with, e.g. 'sklearn_vb n_init=5' -> sklearn_vb).
BACKEND_FAMILIES = ("em", "sklearn", "sklearn_vb", "pymc", "mclust")


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


def ranked_metrics(rows):
    """The RANKED columns that have a value for some fitted run of ``rows``."""
    ok = fitted(rows)
    return [c for c in RANKED if c in ok and pd.to_numeric(ok[c], errors="coerce").notna().any()]


def rankings(rows):
    """Per method (rows of one data setting, at its main K): the median over seeds of every
    ranked metric, its spread (largest minus smallest seed) and its rank (1 = best; values
    equal to 9 significant digits tie and share the better rank; methods without a value get
    none). DataFrame indexed by method, columns
    (metric, 'median' | 'spread' | 'rank')."""
    ok = fitted(rows)
    order = [v for v in method_order(rows) if v in set(ok["variant"])]
    frame = {}
    for column in ranked_metrics(rows):
        values = pd.to_numeric(ok[column], errors="coerce").groupby(ok["variant"])
        medians = values.median().reindex(order)
        ascending = METRIC[column].better == "lower"
        frame[(column, "median")] = medians
        frame[(column, "spread")] = (values.max() - values.min()).reindex(order)
        # equal to 9 significant digits is a tie (EM and scikit-learn reach one optimum)
        rounded = medians.map(lambda v: float(f"{v:.9g}"), na_action="ignore")
        frame[(column, "rank")] = rounded.rank(method="min", ascending=ascending)
    return pd.DataFrame(frame, index=pd.Index(order, name="method"))


def verdict(setting, ranking):
    """One sentence: the best method on each ranked criterion and by how much it leads the
    next (saying so when the lead is within either's spread over seeds: then the ranking is
    not to be trusted), and the cost of the fastest method against the slowest."""
    parts = []
    for column in [c for c in RANKED if (c, "rank") in ranking and c != "fit_seconds"]:
        values = ranking[(column, "median")].dropna()
        if values.empty:
            continue
        metric = METRIC[column]
        ordered = values.sort_values(ascending=metric.better == "lower")
        best, value = ordered.index[0], ordered.iloc[0]
        tied = ranking.index[ranking[(column, "rank")] == 1]
        if len(ordered) == 1:
            parts.append(f"{metric.label} {format_number(value)} ({best}, the only method)")
        elif len(tied) > 1:
            parts.append(f"{metric.label}: {', '.join(tied)} tie at {format_number(value)}")
        else:
            second = ordered.index[1]
            gap = abs(ordered.iloc[1] - value)
            spread = ranking.loc[[best, second], (column, "spread")].max()
            parts.append(f"{metric.label}: {best} best at {format_number(value)}, "
                         f"{format_number(gap)} ahead of {second}"
                         + (" (within the spread over seeds)" if gap <= spread else ""))
    if ("fit_seconds", "median") in ranking:
        seconds = ranking[("fit_seconds", "median")].dropna().sort_values()
        if len(seconds) > 1:
            parts.append(f"fastest {seconds.index[0]} ({format_number(seconds.iloc[0])} s), "
                         f"slowest {seconds.index[-1]} ({format_number(seconds.iloc[-1])} s, "
                         f"{format_number(seconds.iloc[-1] / seconds.iloc[0])}x)")
    return f"{setting}: " + "; ".join(parts) + "." if parts else f"{setting}: no fitted run."


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
    """The K a data setting is summarised at: its true K if known, else the most run."""
    truth = rows["true_components"].dropna() if "true_components" in rows else []
    if len(truth):
        return int(truth.iloc[0])
    return int(rows["n_components"].mode().iloc[0])


# --- model selection -----------------------------------------------------------------------


def criteria_present(rows):
    """The information criteria with a value in some fitted run."""
    ok = fitted(rows)
    return [c for c in CRITERIA if c in ok and ok[c].notna().any()]


def chosen(rows):
    """Runs a criterion may choose: fitted and not degenerate (a component on tied values,
    with fewer than D + 1 points, or at the reg_covar floor; gmmlab.model.metrics.degeneracy)."""
    ok = fitted(rows)
    if "degenerate" not in ok:
        return ok
    return ok[~ok["degenerate"].fillna(False).astype(bool)]


def model_table(rows):
    """The covariance models x K of one backend's runs on one data setting, in the shape of
    ``gmmlab.select``'s table: one row per mclust model name (for the data's dimension) and K,
    the run the cell keeps by select's rule (:func:`gmmlab.model.search.choose_fit`: the best
    train log-likelihood among the runs not degenerate), columns ``model, n_components,
    loglik, n_parameters, bic, icl, status`` ('ok', 'degenerate' when every run of the cell
    is, 'failed' when none fitted) and ``reason``."""
    lines = []
    n_features = int(rows["n_features"].max())  # a failed run may not record it
    models = rows.assign(model=[mclust_name(c, n_features) for c in rows["covariance_type"]])
    for (model, k), cell in models.groupby(["model", "n_components"], sort=False):
        finished = cell["status"].ne("failed") & cell["loglik"].notna()
        degenerate = cell.get("degenerate", pd.Series(False, index=cell.index))
        index, status = choose_fit(cell["loglik"].where(finished),
                                   degenerate.fillna(False).astype(bool) & finished)
        best = cell.iloc[0] if index is None else cell.iloc[index]
        reason = {"ok": None, "degenerate": best.get("degeneracy_reason"),
                  "failed": failure_reason(best)}[status]
        fitted_values = status != "failed"
        lines.append({"model": model, "n_components": int(k), "status": status,
                      "reason": reason} | {
                     column: best[column] if fitted_values else np.nan for column in
                     ("loglik", "bic", "icl")} | {"n_parameters": best.get("n_params", np.nan)})
    order = {model: i for i, model in enumerate(("E", "V") + MCLUST_MODELS)}
    return pd.DataFrame(lines).sort_values(["model", "n_components"], key=lambda c: c.map(
        order) if c.name == "model" else c).reset_index(drop=True)


def criteria_summary(rows):
    """Mean criteria per method and K over the runs a criterion may choose (:func:`chosen`),
    and the criteria present."""
    present = criteria_present(rows)
    return chosen(rows).groupby(["variant", "n_components"])[present].mean().reset_index(), \
        present


def chosen_k(summary, criteria):
    """The K each method's criterion picks (the smallest value)."""
    lines = []
    for variant, group in summary.groupby("variant", sort=False):
        line = {"method": variant}
        for criterion in criteria:
            values = group.dropna(subset=[criterion])
            if not values.empty:
                line[criterion_label(criterion)] = int(
                    values.loc[values[criterion].idxmin(), "n_components"])
        lines.append(line)
    return pd.DataFrame(lines)


def criterion_label(criterion):
    """'loo.looic' -> 'LOOIC', 'bic' -> 'BIC', 'icl_entropy' -> 'ICL (entropy)'."""
    return {"icl_entropy": "ICL (entropy)"}.get(criterion, criterion.split(".")[-1].upper())


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


def selection_accuracy(table):
    """Hit rate of every criterion for the true K, per data setting and method; None when no
    data setting has several K and a known true K."""
    if "true_components" not in table:
        return None
    replicate = [c for c in ("dataset_metadata.seed", "seed") if c in table]
    ok = chosen(table)  # as the criteria tables: a degenerate fit is never picked
    ok = ok[ok["true_components"].notna()]
    present = criteria_present(ok)
    lines = []
    for (setting, variant), rows in ok.groupby(["data_setting", "variant"], sort=False):
        if rows["n_components"].nunique() < 2:
            continue
        line = {"data setting": setting, "method": variant,
                "true K": int(rows["true_components"].iloc[0])}
        for criterion in present:
            picks = [group.loc[group[criterion].idxmin(), "n_components"]
                     for _, group in rows.dropna(subset=[criterion]).groupby(replicate)]
            hits = sum(int(k) == line["true K"] for k in picks)
            line[criterion_label(criterion)] = f"{hits}/{len(picks)}" if picks else "-"
        lines.append(line)
    return pd.DataFrame(lines) if lines else None


# --- numbers -------------------------------------------------------------------------------


def format_number(value, digits=4):
    """A number for a reader: '-' when missing, integers as integers, else ``digits``
    significant digits ('0.004383', '4659', '1.2e-11')."""
    if not _present(value):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    value = float(value)
    if value.is_integer() and abs(value) < 1e7:
        return str(int(value))
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def spread(values, seeds):
    """Values over seeds as a reader sees them: each seed's value (in seed order) when there
    are at most three, else 'median (min to max)'; '-' when none."""
    values = pd.to_numeric(pd.Series(list(values), index=list(seeds)), errors="coerce").dropna()
    if values.empty:
        return "-"
    values = values.sort_index()
    if len(values) <= 3:
        return " / ".join(format_number(v) for v in values)
    return (f"{format_number(values.median())} ({format_number(values.min())} to "
            f"{format_number(values.max())})")


def _present(value):
    """Not None and not NaN."""
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True
