"""``gmmlab-report SWEEP_DIR_OR_TABLE [-o DIR]``: an HTML report and its Markdown twin, with
figures as PNG files beside them (named by what they show), from a results table.

The report opens with a summary (per data setting, each method's rank on every criterion, the
best marked, one sentence saying what won; a cross-data-set table; accuracy against time),
then per data setting the values of every seed, information criteria against K, fits over the
data with the truth, EM convergence, PyMC traces and diagnostics and the outcome of every run;
a glossary of columns at the end. What a run means (its outcome, a worse local optimum, the
rankings) comes from :mod:`gmmlab.report.analysis`; the layout is in ``gmmlab/report/templates``.
"""

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import jinja2
import matplotlib
import numpy as np
import pandas as pd

from gmmlab.console import run_command
from gmmlab.model import gaussian
from gmmlab.report import analysis, plots
from gmmlab.report.analysis import METRIC, METRICS, format_number
from gmmlab.study.job import IDATA_FILE, load_spec_dataset
from gmmlab.study.results import readable_results

MAX_HISTORIES = 12
# Figure files (.png) by what they show: a rerun that changes one figure changes one file.
FIGURE_NAMES = {
    "accuracy against time": "summary-accuracy-vs-time",
    "criteria against K": "{setting}-criteria-vs-K",
    "fits": "{setting}-fits-K{k}",
    "EM log-likelihood": "{setting}-em-loglik-K{k}",
    "trace": "{setting}-{method}-trace-K{k}-seed{seed}",
    "relabelled trace": "{setting}-{method}-trace-K{k}-seed{seed}-relabelled",
    "smallest eigenvalues": "{setting}-min-eigenvalue",
}
ARROW = {"higher": "↑", "lower": "↓"}
# Every column a report's tables can have, with its meaning (the glossary).
GLOSSARY = {
    "method": "the backend and the options that differ between runs (e.g. 'em_stop "
              "init_params=random reg_covar=0.0')",
    "data setting": "the data set and its options that differ between runs",
    "K": "number of mixture components fitted", "true K": "number of components of the truth",
    "seed": "the fitting seed", "runs": "number of runs (seeds)",
    "outcomes": "how many runs ended in each outcome (see 'outcome')",
    "outcome": "what the fit ended in, by one rule: failed (with the reason) / degenerate / "
               "collapsed (stopped at the iteration) / re-seeded / held at the reg_covar floor / "
               "near-empty component (weight x N below D + 1) / local optimum (train "
               f"log-likelihood more than {analysis.LOCAL_OPTIMUM_GAP:g} nat below the best seed "
               "of the method) / for PyMC what the posterior did / converged",
    **{f"{m.label} {ARROW[m.better]}": f"{m.meaning}; {m.better} is better" for m in METRICS},
    **{f"rank: {METRIC[c].label}": f"mean over data settings of the method's rank on "
       f"{METRIC[c].label} (1 = best)" for c in analysis.RANKED},
    "data settings": "number of data settings the method ran on",
    "nats below the best seed": "best seed's train log-likelihood minus this run's (total, "
                                "nats); the run ended at a worse local optimum",
    "best seed": "the seed of the same method with the highest train log-likelihood",
    "run": "the run's folder in the sweep directory",
    "BIC": "Bayesian information criterion, -2 log L + p log N (lower is better); in the "
           "'K chosen' table, the K it picks",
    "AIC": "-2 log L + 2p (lower is better)",
    "ICL": "integrated completed likelihood, BIC - 2 sum_n log max_k r_nk: the MAP labels' "
           "complete-data likelihood (Biernacki et al. 2000, mclust's icl; lower is better)",
    "ICL (entropy)": "BIC + 2 x entropy of the responsibilities (lower is better)",
    "LOOIC": "-2 x PSIS-LOO elpd of the PyMC posterior (lower is better)",
    "elpd": "PSIS-LOO expected log pointwise predictive density (higher is better)",
    "p": "PSIS-LOO effective number of parameters", "elpd_diff": "elpd minus the best K's (<= 0)",
    "se": "standard error of elpd", "dse": "standard error of elpd_diff",
    "weight": "stacking weight of the K (ArviZ compare)", "rank": "ArviZ compare's rank (0 = best)",
    "points with Pareto k > 0.7": "points where PSIS-LOO is unreliable (fewer is better)",
    "largest Pareto k": "largest PSIS Pareto k (below 0.7 is reliable)",
    "R-hat as sampled": "largest R-hat of weights and means before relabelling (1 is best)",
    "R-hat": "largest R-hat after relabelling (below 1.01 is good)",
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
    **{model: f"BIC of covariance model {model}, Sigma_k = {gaussian.model_formula(model)} "
              "(volume lambda, shape A, orientation D; _k varies between components)"
       for model in ("E", "V") + gaussian.MCLUST_MODELS},
}


def load_table(source):
    """(results table, folder of the run directories) from a sweep directory or a table."""
    source = Path(source)
    if source.is_dir():
        table = readable_results(source)
    elif source.suffix == ".parquet":
        table = pd.read_parquet(source)
    elif source.suffix == ".csv":
        table = pd.read_csv(source)
    else:
        raise ValueError(f"{source} is neither a sweep directory nor a .csv/.parquet table.")
    for column, fallback in (("variant", "backend"), ("data_setting", "dataset")):
        if column not in table:
            table[column] = table[fallback]
    return analysis.with_icl_forms(table), source if source.is_dir() else source.parent


def slug(text):
    """A file-name part from a label: 'em_stop reg_covar=0.0' -> 'em_stop-reg_covar-0.0'."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-")


class Report:
    """Blocks (headings, paragraphs, lists, tables, figures) rendered by the templates."""

    def __init__(self, folder):
        self.folder, self.blocks = Path(folder), []

    def heading(self, text, level=2):
        self.blocks.append({"kind": "heading", "level": level, "text": text,
                            "anchor": slug(text).lower()})

    def paragraph(self, text):
        self.blocks.append({"kind": "paragraph", "text": text})

    def items(self, items):
        self.blocks.append({"kind": "list", "items": list(items)})

    def table(self, frame, best=None):
        """frame: DataFrame (numbers formatted by analysis.format_number); best: a boolean
        frame of the same shape marking the cells shown as best."""
        rows = []
        for i, (_, values) in enumerate(frame.iterrows()):
            rows.append([{"text": format_number(value),
                          "best": bool(best is not None and best.iloc[i, j])}
                         for j, value in enumerate(values)])
        self.blocks.append({"kind": "table", "columns": [str(c) for c in frame.columns],
                            "rows": rows})

    def figure(self, fig, name, caption):
        """Save ``fig`` as ``name``.png (a name saying what it shows) and show it."""
        import matplotlib.pyplot as plt

        file = f"{slug(name)}.png"
        if any(block.get("name") == file for block in self.blocks):
            raise ValueError(f"two figures of one report are named {file}")
        fig.savefig(self.folder / file, dpi=90, bbox_inches="tight",
                    metadata={"Software": None})
        plt.close(fig)
        self.blocks.append({"kind": "figure", "name": file, "caption": caption})

    def render(self, title):
        """(HTML, Markdown) of the blocks."""
        loader = jinja2.PackageLoader("gmmlab.report", "templates")
        options = {"loader": loader, "trim_blocks": True, "lstrip_blocks": True,
                   "keep_trailing_newline": True, "undefined": jinja2.StrictUndefined}
        page = jinja2.Environment(autoescape=True, **options)
        text = jinja2.Environment(autoescape=False, **options)
        text.filters["md_cell"] = lambda cell: str(cell).replace("|", "\\|").replace("\n", " ")
        return (page.get_template("report.html.j2").render(title=title, blocks=self.blocks),
                text.get_template("report.md.j2").render(blocks=self.blocks))

    def columns_shown(self):
        return {column for block in self.blocks if block["kind"] == "table"
                for column in block["columns"]}


# --- summary -------------------------------------------------------------------------------


def add_summary(report, table):
    """Per data setting the ranking of the methods at its main K with one sentence; the mean
    rank over data settings; accuracy against time; runs at a worse local optimum."""
    report.heading("Summary")
    report.paragraph(
        "Per data setting, at its true K (or the K most run), each method's median over seeds "
        "and its rank (1 = best; the best in bold). " + "; ".join(
            f"{METRIC[c].label}: {METRIC[c].better} is better" for c in analysis.RANKED) + ".")
    rankings = {}
    for setting, rows in table.groupby("data_setting", sort=False):
        k = analysis.main_k(rows)
        ranking = analysis.rankings(rows[rows["n_components"] == k])
        if ranking.empty:
            report.paragraph(f"{setting} (K = {k}): no fitted run.")
            continue
        rankings[setting] = ranking
        report.heading(f"{setting}, K = {k}", 3)
        report.paragraph(analysis.verdict(setting, ranking))
        frame = pd.DataFrame({"method": ranking.index})
        best = pd.DataFrame({"method": [False] * len(ranking)})
        for column in analysis.RANKED:
            if (column, "rank") not in ranking:
                continue
            label = f"{METRIC[column].label} {ARROW[METRIC[column].better]}"
            medians, ranks = ranking[(column, "median")], ranking[(column, "rank")]
            frame[label] = [f"{format_number(m)} ({format_number(r)})" if pd.notna(r) else "-"
                            for m, r in zip(medians, ranks, strict=True)]
            best[label] = (ranks == 1).to_numpy()
        report.table(frame, best)
    if len(rankings) > 1:
        report.heading("Across data settings", 3)
        ranks = analysis.cross_setting_ranks(rankings)
        ranks = ranks.rename(columns={c: f"rank: {METRIC[c].label}" for c in analysis.RANKED})
        report.paragraph("Mean rank over the data settings a method ran on (1 = best on every "
                         "one).")
        order = analysis.method_order(table)
        report.table(ranks.set_index("method").reindex(
            [m for m in order if m in set(ranks["method"])]).reset_index())
    accuracy = "test_loglik_per_sample" if "test_loglik_per_sample" in table and table[
        "test_loglik_per_sample"].notna().any() else "loglik_per_sample"
    if "fit_seconds" in table and analysis.fitted(table)["fit_seconds"].notna().any():
        report.figure(plots.plot_accuracy_vs_time(analysis.fitted(table), accuracy,
                                                  METRIC[accuracy].label,
                                                  analysis.method_order(table)),
                      FIGURE_NAMES["accuracy against time"],
                      f"{METRIC[accuracy].label} (higher is better) against fit time (log "
                      "axis; lower is better), every run; each panel one data setting")
    optima = analysis.local_optima(table)
    report.heading("Runs at a worse local optimum", 3)
    if analysis.same_fit_problem(analysis.fitted(table)).value_counts().max() < 2:
        report.paragraph("Not judged: one fitted run per method, data and K (no other seed to "
                         "compare with).")
    elif optima.empty:
        report.paragraph("None: every run ended within "
                         f"{analysis.LOCAL_OPTIMUM_GAP:g} nat of the best train log-likelihood "
                         "of the other seeds of its method.")
    else:
        report.paragraph(
            "These runs ended more than "
            f"{analysis.LOCAL_OPTIMUM_GAP:g} nat of train log-likelihood below the best seed "
            "of the same method, data setting and K: " + "; ".join(
                f"{r['method']} seed {r['seed']} on {r['data setting']} (K = {r['K']}, "
                f"{format_number(r['nats below the best seed'])} nats below seed "
                f"{r['best seed']})" for _, r in optima.iterrows()) + ".")
        report.table(optima)


# --- per data setting ----------------------------------------------------------------------


def comparison_table(rows):
    """Method x K: runs, outcomes, and every metric as each seed's value (or median and
    range); columns named with their direction of better."""
    lines = []
    for variant in analysis.method_order(rows):
        for k, group in rows[rows["variant"] == variant].groupby("n_components"):
            group = group.sort_values("seed")
            # "local optimum (54 nats ...)" and the like counted together; failure reasons kept
            counts = group["outcome"].str.split(" (", regex=False).str[0].value_counts()
            line = {"method": variant, "K": int(k), "runs": len(group),
                    "outcomes": ", ".join(f"{n} {phrase}" for phrase, n in counts.items())}
            ok = analysis.fitted(group)
            for metric in METRICS:
                if metric.column in rows and pd.to_numeric(
                        rows[metric.column], errors="coerce").notna().any():
                    line[f"{metric.label} {ARROW[metric.better]}"] = analysis.spread(
                        ok[metric.column], ok["seed"])
            lines.append(line)
    return pd.DataFrame(lines)


def add_setting_section(report, name, rows, base):
    """Every table and figure of one data setting."""
    report.heading(f"Data setting: {name}")
    seeds = sorted(int(s) for s in rows["seed"].unique())
    replicates = sorted(int(s) for s in rows.get("dataset_metadata.seed", pd.Series(
        dtype=float)).dropna().unique())
    report.paragraph(
        f"{len(rows)} runs; seeds {', '.join(map(str, seeds))}"
        + (f"; data replicates (the data set's seed) {', '.join(map(str, replicates))}"
           if len(replicates) > 1 else "")
        + ". Cells give each run's value in seed order (separated by /), or with more than "
        "three runs the median and the range.")
    report.table(comparison_table(rows))
    if rows["n_components"].nunique() > 1:
        summary, present = analysis.criteria_summary(rows)
        if present:
            order = analysis.method_order(rows)
            report.figure(plots.plot_criteria_vs_k(summary, present, order),
                          FIGURE_NAMES["criteria against K"].format(setting=name),
                          f"{name}: information criteria against K (mean over seeds; lower is "
                          "better; * the K each picks)")
            report.paragraph("K chosen by each criterion:")
            chosen = analysis.chosen_k(summary, present).set_index("method")
            report.table(chosen.reindex([m for m in order if m in chosen.index]).reset_index())
        add_loo_comparison(report, name, rows, base)
    for backend, runs in rows.groupby("backend", sort=False):
        if runs["covariance_type"].nunique() > 1 and runs["n_components"].nunique() > 1:
            add_model_choice(report, name, backend, runs)
    k = analysis.main_k(rows)
    add_fit_figures(report, name, rows, base, k)
    pymc = rows[(rows["backend"] == "pymc") & (rows["status"] != "failed")]
    if not pymc.empty:
        add_pymc_section(report, name, rows, base, k)
    add_outcome_section(report, name, rows)


def add_model_choice(report, name, backend, rows):
    """The covariance model and K each criterion chooses over a backend's models x K, as
    ``gmmlab.select`` ranks them (degenerate cells never chosen), its top three and the BIC of
    every cell."""
    from gmmlab.selection import SelectionResult

    table = analysis.model_table(rows)
    result = SelectionResult(table, "bic", int(rows["n_samples"].iloc[0]),
                             int(rows["n_features"].iloc[0]), np.nan)
    models = table["model"].unique()
    report.heading(f"{name}: covariance model and K chosen ({backend})", 3)
    ks = sorted(table["n_components"].unique())
    set_aside = table[table["status"] != "ok"]
    sentences = []
    for criterion in ("bic", "icl"):
        top = result.best(3, criterion)
        if top.empty:
            continue
        first = top.iloc[0]
        sentences.append(
            f"{criterion.upper()} chooses {first['model']},{first['n_components']} "
            f"(BIC {first['bic']:.3f}, ICL {first['icl']:.3f}).")
    report.paragraph(
        f"Over {len(models)} covariance models x K = {ks[0]}..{ks[-1]} "
        f"({len(table)} cells, lower is better): " + " ".join(sentences)
        + (f" {len(set_aside)} {'cell is' if len(set_aside) == 1 else 'cells are'} set "
           "aside, never chosen: "
           + ", ".join(f"{r.model},{r.n_components}" for r in set_aside.itertuples())
           + " (the reasons are in the outcome table)." if len(set_aside) else
           " No cell is degenerate."))
    top = result.best(3, "bic")
    report.paragraph("The three lowest BIC (three decimals, as mclust prints them):")
    decimals = "{:.3f}".format
    report.table(pd.DataFrame({
        "model,K": top["model"] + "," + top["n_components"].astype(str),
        "BIC ↓": top["bic"].map(decimals),
        "BIC - best": (top["bic"] - top["bic"].iloc[0]).map(decimals),
        "ICL": top["icl"].map(decimals), "train log-likelihood": top["loglik"].map(decimals),
        "free parameters": top["n_parameters"]}))
    grid = result.marked_table("bic")
    report.paragraph("BIC of every cell (deg.: degenerate, fail: no fit; neither is chosen):")
    report.table(grid.rename_axis(None, axis=1).reset_index().rename(
        columns={"n_components": "K"}))


def add_fit_figures(report, name, rows, base, k):
    """Fits over the data with the truth (first seed of each method, in the methods' order) and
    EM's log-likelihood after every iteration."""
    first = analysis.fitted(rows[rows["n_components"] == k]).sort_values("seed")
    first = first.groupby("variant").head(1).set_index("variant")
    first = first.reindex([m for m in analysis.method_order(rows) if m in first.index])
    if first.empty:
        return
    record = _record(base, first["run_dir"].iloc[0])
    dataset = load_spec_dataset(record["provenance"]["config"]["dataset"])
    if dataset.n_features <= 2:
        fits = [(variant, *_params(row)) for variant, row in first.iterrows()]
        report.figure(plots.plot_fitted_densities(dataset, fits, name),
                      FIGURE_NAMES["fits"].format(setting=name, k=k),
                      f"{name}: fits at K = {k}, first seed of each method"
                      + ("; the truth in black" if dataset.truth is not None else ""))
    em = rows[(rows["backend"] == "em") & (rows["n_components"] == k)].sort_values(
        ["variant", "seed", *[c for c in ["dataset_metadata.seed"] if c in rows]]
    ).head(MAX_HISTORIES)
    replicate = "dataset_metadata.seed"  # a synthetic set's own seed, named where it varies
    named = replicate in em and em[replicate].nunique() > 1
    histories = [(f"{row['variant']}, seed {row['seed']}"
                  + (f", data seed {int(row[replicate])}" if named else ""),
                  json.loads(row["loglik_history"]))
                 for _, row in em.iterrows() if isinstance(row["loglik_history"], str)]
    if histories:
        report.figure(plots.plot_loglik_histories(histories),
                      FIGURE_NAMES["EM log-likelihood"].format(setting=name, k=k),
                      f"{name}: EM train log-likelihood after every iteration (K = {k}; "
                      "identical runs named in the legend)")


def _record(base, run_dir):
    return json.loads((Path(base) / run_dir / "result.json").read_text())


def _params(row):
    return [np.asarray(json.loads(row[f"params.{key}"]))
            for key in ("weights", "means", "covariances")]


def add_loo_comparison(report, name, rows, base):
    """PSIS-LOO of each PyMC method and seed across K (``arviz.compare``): elpd, its
    difference to the best K (elpd_diff, <= 0) and the standard error of that difference
    (dse), with the points whose Pareto k exceeds 0.7 (PSIS-LOO unreliable for them)."""
    import arviz as az

    pymc = rows[(rows["backend"] == "pymc") & (rows["status"] != "failed")]
    for (variant, seed), group in pymc.groupby(["variant", "seed"]):
        group = group.sort_values("n_components")
        paths = {str(row.n_components): Path(base) / row.run_dir / IDATA_FILE
                 for row in group.itertuples()}
        paths = {k: path for k, path in paths.items() if path.exists()}
        if len(paths) < 2:
            continue
        comparison = az.compare({k: az.from_netcdf(str(path)) for k, path in paths.items()},
                                round_to="none")  # ArviZ rounds otherwise
        # ArviZ 1.x: elpd_diff = elpd - the best elpd (<= 0), dse its standard error
        unresolved = comparison.index[-comparison["elpd_diff"] <= 2 * comparison["dse"]]
        pareto = group.set_index(group["n_components"].astype(str))["loo.pareto_k_above_0.7"]
        comparison["points with Pareto k > 0.7"] = pareto.reindex(comparison.index).astype(int)
        report.heading(f"{name}: LOO across K ({variant}, seed {seed})", 3)
        report.table(comparison.rename_axis("K").reset_index()[
            ["K", "rank", "elpd", "p", "elpd_diff", "se", "dse", "weight",
             "points with Pareto k > 0.7"]])
        warned = ", ".join(comparison.index[comparison["points with Pareto k > 0.7"] > 0])
        drifting = ", ".join(str(row["n_components"]) for _, row in group.iterrows()
                             if analysis.drifts(row))
        report.paragraph(
            f"Highest elpd (PSIS-LOO) at K = {comparison.index[0]}; the smallest K within two "
            f"standard errors of the difference (dse) of it: K = {min(unresolved, key=int)}."
            + (f" Pareto k above 0.7 for some points at K = {warned}: PSIS-LOO is unreliable "
               "there." if warned else "")
            + (f" At K = {drifting} the sampler struggled and some draw came within "
               f"1e{np.log10(analysis.COLLAPSE_NEAR):.0f} of the data variance of a collapse "
               "(\"drifts\" in the outcome table): a near-degenerate component on a few close "
               "or repeated values can raise elpd there without a better fit."
               if drifting else ""))


PYMC_COLUMNS = {"variant": "method", "n_components": "K", "seed": "seed",
                "diagnostics.max_rhat_raw": "R-hat as sampled", "diagnostics.max_rhat": "R-hat",
                "diagnostics.min_ess_bulk": "ESS bulk", "diagnostics.min_ess_tail": "ESS tail",
                "diagnostics.divergences": "divergences",
                "diagnostics.max_treedepth_share": "share at tree-depth cap",
                "diagnostics.draws_permuted": "draws permuted",
                "loo.pareto_k_max": "largest Pareto k",
                "loo.pareto_k_above_0.7": "points with Pareto k > 0.7"}


def add_pymc_section(report, name, rows, base, k):
    """Diagnostics of every PyMC run; the trace of the first seed at K as sampled, and after
    relabelling only when relabelling permuted some draws (else it is the same picture)."""
    import arviz as az

    pymc = rows[rows["backend"] == "pymc"].sort_values(["variant", "n_components", "seed"])
    present = {c: label for c, label in PYMC_COLUMNS.items()
               if c in pymc and pymc[c].notna().any()}
    report.heading(f"{name}: PyMC diagnostics", 3)
    report.table(pymc[list(present)].rename(columns=present))
    for variant, group in pymc[(pymc["n_components"] == k) & (pymc["status"] != "failed")
                               ].groupby("variant", sort=False):
        row = group.iloc[0]
        path = Path(base) / row["run_dir"] / IDATA_FILE
        if not path.exists():
            continue
        idata = az.from_netcdf(str(path))
        names = {"setting": name, "method": variant, "k": k, "seed": int(row["seed"])}
        report.figure(plots.plot_trace(idata["posterior"].to_dataset()),
                      FIGURE_NAMES["trace"].format(**names),
                      f"{name}: {variant} trace of weights and means as sampled (seed "
                      f"{int(row['seed'])})")
        permuted = row.get("diagnostics.draws_permuted", 0) > 0
        if permuted and "relabelled_posterior" not in idata.children:
            report.paragraph(f"{variant}: {int(row['diagnostics.draws_permuted'])} draws "
                             "permuted; this run predates the stored relabelled draws: rerun "
                             "it to see the relabelled trace.")
        elif permuted:
            report.figure(plots.plot_trace(idata["relabelled_posterior"].to_dataset()),
                          FIGURE_NAMES["relabelled trace"].format(**names),
                          f"{name}: {variant} trace after relabelling "
                          f"({int(row['diagnostics.draws_permuted'])} of "
                          f"{int(row['diagnostics.n_draws_total'])} draws permuted)")


OUTCOME_COLUMNS = {"variant": "method", "n_components": "K", "seed": "seed",
                   "outcome": "outcome",
                   "singular.min_eigenvalue_relative": "min eig / var",
                   "diagnostics.min_eigenvalue_relative_any_draw": "min eig / var, any draw",
                   "singular.min_weight_n": "min weight x N",
                   "singular.collapse.iteration": "collapse at", "singular.n_resets": "resets"}


def add_outcome_section(report, name, rows):
    """Per run: its outcome (analysis.outcome), smallest eigenvalue, smallest weight x N,
    collapse; the smallest eigenvalues drawn when some run did not simply converge."""
    order = {m: i for i, m in enumerate(analysis.method_order(rows))}
    rows = rows.sort_values(["variant", "n_components", "seed"],
                            key=lambda c: c.map(order) if c.name == "variant" else c)
    present = {c: label for c, label in OUTCOME_COLUMNS.items()
               if c in rows and rows[c].notna().any()}
    report.heading(f"{name}: outcome of every run", 3)
    report.table(rows[list(present)].rename(columns=present))
    plain = rows["outcome"].isin(["converged", "posterior kept away by its prior"])
    if "singular.min_eigenvalue_relative" in rows and not plain.all():
        report.figure(plots.plot_singularity(rows, analysis.method_order(rows)),
                      FIGURE_NAMES["smallest eigenvalues"].format(setting=name),
                      f"{name}: smallest covariance eigenvalue of every run")


def add_glossary(report):
    """The meaning of every column the report shows."""
    report.heading("Glossary")
    shown = report.columns_shown()
    report.table(pd.DataFrame([{"column": c, "meaning": m} for c, m in GLOSSARY.items()
                               if c in shown]))


def build_report(source, output_dir, title="gmmlab report", command=None):
    """Write report.html, report.md and the figures (named by what they show) into
    ``output_dir``; figures of an earlier report there are removed first.

    What ``gmmlab-report SOURCE -o OUTPUT_DIR --title TITLE`` does.

    Parameters
    ----------
    source : str or Path
        A sweep's folder, or its results.csv / results.parquet.
    output_dir : str or Path
        The report's folder (created when missing).
    title : str, default='gmmlab report'
        The report's heading.
    command : str or None, default=None
        The command written at the report's top ("Generated by: ..."); None writes
        ``gmmlab-report SOURCE``.

    Returns
    -------
    Path
        ``output_dir/report.html`` (report.md and the PNG figures beside it).

    Raises
    ------
    FileNotFoundError
        ``source`` holds no readable result.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gmmlab.report.builder import build_report
    >>> from gmmlab.study.job import run_job
    >>> sweep = Path(tempfile.mkdtemp())
    >>> for backend in ("em", "sklearn"):
    ...     spec = {"dataset": {"name": "tutorial_1d"}, "backend": {"name": backend},
    ...             "n_components": 3, "covariance_type": "full", "seed": 0,
    ...             "reg_covar": 1e-6}
    ...     _ = run_job(spec, sweep / backend)
    >>> page = build_report(sweep, sweep / "report", title="Two backends")
    >>> page.name, (sweep / "report" / "report.md").read_text().splitlines()[0]
    ('report.html', '# Two backends')
    """
    table, base = load_table(source)
    table["outcome"] = analysis.outcomes(table)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for old in output_dir.glob("*.png"):
        old.unlink()
    report = Report(output_dir)
    report.heading(title, 1)
    versions = {c.removeprefix("provenance.versions."): table[c].dropna().iloc[0]
                for c in table.columns if c.startswith("provenance.versions.")
                and table[c].notna().any()}
    report.paragraph(f"Generated by: {command or 'gmmlab-report ' + str(source)}")
    report.paragraph("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    counts = table["status"].value_counts().to_dict()
    report.paragraph(f"{len(table)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                     + "; methods: " + ", ".join(analysis.method_order(table)) + ".")
    add_summary(report, table)
    accuracy = analysis.selection_accuracy(table)
    if accuracy is not None:
        report.heading("How often each criterion picks the true K")
        report.paragraph("Per data setting and method: runs (replicates x fitting seeds) whose "
                         "criterion minimum over K falls on the true K, over all such runs; "
                         "degenerate fits are never picked.")
        report.table(accuracy)
    for name, rows in table.groupby("data_setting", sort=False):
        add_setting_section(report, name, rows, base)
    add_glossary(report)
    page, markdown = report.render(title)
    (output_dir / "report.md").write_text(markdown)
    (output_dir / "report.html").write_text(page)
    return output_dir / "report.html"


def main(argv=None):
    """Console entry point ``gmmlab-report`` (errors explained by gmmlab.console)."""
    matplotlib.use("Agg")  # the report's figures go to files; no screen is assumed
    run_command("gmmlab-report", report_command, argv)


def report_command(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a sweep directory, or its results.csv / .parquet")
    parser.add_argument("-o", "--output", help="report folder (default: SOURCE/report)")
    parser.add_argument("--title", default="gmmlab report")
    args = parser.parse_args(argv)
    output = args.output or str(Path(args.source) / "report")
    command = shlex.join(["gmmlab-report", *(sys.argv[1:] if argv is None else argv)])
    path = build_report(args.source, output, args.title, command)
    print(f"[gmmlab] report: {path} (and report.md beside it)")


if __name__ == "__main__":
    main()
