"""``gmmlab-report SWEEP_DIR_OR_TABLE [-o DIR]``: an HTML report and its Markdown twin, with
figures as PNG files beside them, from a collected results table.

Per data set: the comparison table (backend x K, mean and spread over seeds), information
criteria against K with the chosen K, fitted densities / component ellipses, EM convergence,
PyMC traces before and after relabelling with their diagnostics, and the singularity panel.
"""

import argparse
import html
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from gmmlab import plots
from gmmlab.job import IDATA_FILE, load_spec_dataset
from gmmlab.results import collect

METRICS = {
    "loglik_per_sample": "loglik/N", "test_loglik_per_sample": "test loglik/N", "bic": "BIC",
    "param_error.weights": "err weights", "param_error.means": "err means",
    "param_error.covariances": "err cov", "param_error_naive.means": "err means (naive)",
    "ari": "ARI", "fit_seconds": "seconds",
}
CRITERIA = ["bic", "aic", "icl", "loo.looic"]
MAX_PANELS, MAX_HISTORIES = 6, 12
# a draw's smallest covariance eigenvalue, relative to the data variance, this close to zero
# counts as near a collapse
COLLAPSE_NEAR = 1e-3


def load_table(source):
    """(results table, folder of the run directories) from a sweep directory or a table."""
    source = Path(source)
    if source.is_dir():
        return collect(source), source
    if source.suffix == ".parquet":
        return pd.read_parquet(source), source.parent
    if source.suffix == ".csv":
        return pd.read_csv(source), source.parent
    raise ValueError(f"{source} is neither a sweep directory nor a .csv/.parquet table.")


class Report:
    """Blocks (headings, paragraphs, tables, figures) rendered to HTML and Markdown alike."""

    def __init__(self, folder):
        self.folder, self.blocks, self.n_figures = Path(folder), [], 0

    def heading(self, text, level=2):
        self.blocks.append(("heading", level, text))

    def paragraph(self, text):
        self.blocks.append(("paragraph", text))

    def table(self, frame):
        self.blocks.append(("table", frame))

    def figure(self, fig, caption):
        import matplotlib.pyplot as plt

        self.n_figures += 1
        name = f"figure_{self.n_figures:02d}.png"
        fig.savefig(self.folder / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.blocks.append(("figure", name, caption))

    def markdown(self):
        parts = []
        for kind, *content in self.blocks:
            if kind == "heading":
                parts.append("#" * content[0] + " " + content[1])
            elif kind == "paragraph":
                parts.append(content[0])
            elif kind == "table":
                parts.append(content[0].to_markdown(index=False))
            else:
                parts.append(f"![{content[1]}]({content[0]})\n\n*{content[1]}*")
        return "\n\n".join(parts) + "\n"

    def html(self, title):
        parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                 "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
                 "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
                 "padding:2px 6px}img{max-width:100%}</style></head><body>"]
        for kind, *content in self.blocks:
            if kind == "heading":
                parts.append(f"<h{content[0]}>{html.escape(content[1])}</h{content[0]}>")
            elif kind == "paragraph":
                parts.append(f"<p>{html.escape(content[0])}</p>")
            elif kind == "table":
                parts.append(content[0].to_html(index=False, na_rep="-"))
            else:
                parts.append(f"<figure><img src='{content[0]}' alt='{html.escape(content[1])}'>"
                             f"<figcaption>{html.escape(content[1])}</figcaption></figure>")
        return "\n".join(parts) + "</body></html>\n"


def mean_spread(values):
    """'mean ± sd' over seeds (sd omitted for a single value), or '-'."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.6g}"
    return f"{values.mean():.6g} ± {values.std():.2g}"


def comparison_table(rows):
    """Variant (backend and options) x K: mean ± sd over seeds of every metric, status counts."""
    lines = []
    for (variant, k), group in rows.groupby(["variant", "n_components"]):
        line = {"variant": variant, "K": int(k), "runs": len(group),
                "status": ", ".join(f"{n} {s}" for s, n in group["status"].value_counts().items())}
        for column, label in METRICS.items():
            if column in group:
                line[label] = mean_spread(group.loc[group["status"] != "failed", column])
        lines.append(line)
    return pd.DataFrame(lines)


def criteria_summary(rows):
    """Mean criteria per variant and K over successful runs."""
    present = [c for c in CRITERIA if c in rows and rows[c].notna().any()]
    ok = rows[rows["status"] != "failed"]
    return ok.groupby(["variant", "n_components"])[present].mean().reset_index(), present


def chosen_k(summary, criteria):
    """The K each variant's criterion picks (the smallest value)."""
    lines = []
    for variant, group in summary.groupby("variant"):
        line = {"variant": variant}
        for criterion in criteria:
            values = group.dropna(subset=[criterion])
            if not values.empty:
                line[criterion.split(".")[0].upper()] = int(
                    values.loc[values[criterion].idxmin(), "n_components"])
        lines.append(line)
    return pd.DataFrame(lines)


def selection_accuracy(table):
    """Hit rate of every criterion for the true K, per data setting and variant; None when no
    data setting has several K and a known true K."""
    if "true_components" not in table:
        return None
    replicate = [c for c in ("dataset_metadata.seed", "seed") if c in table]
    ok = table[(table["status"] != "failed") & table["true_components"].notna()]
    present = [c for c in CRITERIA if c in ok and ok[c].notna().any()]
    lines = []
    for (setting, variant), rows in ok.groupby(["data_setting", "variant"]):
        if rows["n_components"].nunique() < 2:
            continue
        line = {"data setting": setting, "variant": variant, "true K": int(
            rows["true_components"].iloc[0])}
        for criterion in present:
            picks = [group.loc[group[criterion].idxmin(), "n_components"]
                     for _, group in rows.dropna(subset=[criterion]).groupby(replicate)]
            hits = sum(int(k) == line["true K"] for k in picks)
            line[criterion.split(".")[0].upper()] = f"{hits}/{len(picks)}" if picks else "-"
        lines.append(line)
    return pd.DataFrame(lines) if lines else None


def _record(base, run_dir):
    return json.loads((Path(base) / run_dir / "result.json").read_text())


def _main_k(rows):
    """The K shown in the per-fit figures: the data set's true K if known, else the most run."""
    truth = rows["true_components"].dropna() if "true_components" in rows else []
    if len(truth):
        return int(truth.iloc[0])
    return int(rows["n_components"].mode().iloc[0])


def _params(record):
    params = record["params"]
    return [np.asarray(params[key]) for key in ("weights", "means", "covariances")]


def add_dataset_section(report, name, rows, base):
    """Every table and figure of one data set."""
    report.heading(f"Data set: {name}")
    report.paragraph(f"{len(rows)} runs; seeds {sorted(rows['seed'].unique().tolist())}.")
    report.table(comparison_table(rows))
    if rows["n_components"].nunique() > 1:
        summary, present = criteria_summary(rows)
        if present:
            report.figure(plots.plot_criteria_vs_k(summary, present),
                          f"{name}: information criteria against K (mean over seeds)")
            report.paragraph("K chosen by each criterion:")
            report.table(chosen_k(summary, present))
        add_loo_comparison(report, name, rows, base)
    k = _main_k(rows)
    first = rows[(rows["n_components"] == k) & (rows["status"] != "failed")]
    first = first.sort_values("seed").groupby("variant").head(1).head(MAX_PANELS)
    if first.empty:
        add_singularity_section(report, name, rows)
        return
    records = {row.variant: _record(base, row.run_dir) for row in first.itertuples()}
    dataset = load_spec_dataset(next(iter(records.values()))["provenance"]["config"]["dataset"])
    if dataset.n_features <= 2:
        fits = [(variant, *_params(record)) for variant, record in records.items()]
        report.figure(plots.plot_fitted_densities(dataset, fits),
                      f"{name}: fits at K = {k} (first seed of each variant)")
    em = rows[(rows["backend"] == "em") & (rows["n_components"] == k)].head(MAX_HISTORIES)
    histories = [(f"{row.variant}, seed {row.seed}", json.loads(row.loglik_history))
                 for row in em.itertuples() if isinstance(row.loglik_history, str)]
    if histories:
        report.figure(plots.plot_loglik_histories(histories),
                      f"{name}: EM log-likelihood after every iteration (K = {k})")
    pymc = [record for record in records.values() if record["backend"] == "pymc"]
    if pymc:
        add_pymc_section(report, name, rows, base, pymc[0], dataset, k)
    add_singularity_section(report, name, rows)


def add_loo_comparison(report, name, rows, base):
    """PSIS-LOO of each PyMC variant and seed across K (``arviz.compare``): elpd, its
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
             "points with Pareto k > 0.7"]
        ].round(3))
        warned = ", ".join(comparison.index[comparison["points with Pareto k > 0.7"] > 0])
        drifting = ", ".join(str(row["n_components"]) for _, row in group.iterrows()
                             if _drifts(row))
        report.paragraph(
            f"Highest elpd (PSIS-LOO) at K = {comparison.index[0]}; the smallest K within two "
            f"standard errors of the difference (dse) of it: K = {min(unresolved, key=int)}."
            + (f" Pareto k above 0.7 for some points at K = {warned}: PSIS-LOO is unreliable "
               "there." if warned else "")
            + (f" At K = {drifting} the sampler struggled and some draw came within "
               f"1e{np.log10(COLLAPSE_NEAR):.0f} of the data variance of a collapse (\"drifts\" "
               "in the singularity table): a near-degenerate component on a few close or "
               "repeated values can raise elpd there without a better fit."
               if drifting else ""))


def add_pymc_section(report, name, rows, base, record, dataset, k):
    """Diagnostics table of every PyMC run (sampler, R-hat, ESS, PSIS-LOO's Pareto k); traces as
    sampled, and after relabelling when draws were permuted."""
    import arviz as az

    from gmmlab.backends.bayes import summarise_posterior

    pymc = rows[rows["backend"] == "pymc"]
    columns = [c for c in pymc.columns if c.startswith("diagnostics.")] + [
        c for c in ("loo.pareto_k_max", "loo.pareto_k_above_0.7") if c in pymc]
    labels = {"loo.pareto_k_max": "largest Pareto k",
              "loo.pareto_k_above_0.7": "points with Pareto k > 0.7"}
    table = pymc[["variant", "n_components", "seed", "status", *columns]].dropna(
        axis=1, how="all").rename(columns=lambda c: labels.get(c, c.removeprefix("diagnostics.")))
    report.heading(f"{name}: PyMC diagnostics", 3)
    report.table(table.round(4))
    path = Path(base) / rows.loc[(rows["backend"] == "pymc") & (rows["n_components"] == k)
                                 ].sort_values("seed")["run_dir"].iloc[0] / IDATA_FILE
    if not path.exists():
        return
    idata = az.from_netcdf(str(path))
    summary = summarise_posterior(idata, dataset.X, record["diagnostics"].get("relabel", "pivot"))
    posterior = idata["posterior"]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    traces = [("as sampled", idata)]
    if summary["diagnostics"]["draws_permuted"]:  # else the relabelled trace is the same
        traces.append(("after relabelling", az.from_dict({"posterior": {
            key: summary["draws"][key].reshape((chains, draws) + summary["draws"][key].shape[1:])
            for key in ("weights", "means")}})))
    for label, data in traces:
        plot = az.plot_trace_dist(data, var_names=["weights", "means"], compact=True)
        report.figure(plot.viz["figure"].item(),
                      f"{name}: PyMC trace of weights and means, {label}")


def add_singularity_section(report, name, rows):
    """Per run: outcome, smallest eigenvalue, smallest weight x N, collapse, backend error."""
    columns = {"variant": "variant", "n_components": "K", "seed": "seed", "status": "status",
               "singular.min_eigenvalue_relative": "min eig / var",
               "diagnostics.min_eigenvalue_relative_any_draw": "min eig / var, any draw",
               "singular.min_weight_n": "min weight x N",
               "singular.collapse.iteration": "collapse at", "singular.n_resets": "resets",
               "singular.backend_error": "backend error"}
    present = {c: label for c, label in columns.items() if c in rows}
    table = rows[list(present)].rename(columns=present)
    table.insert(4, "outcome", [outcome(row) for _, row in rows.iterrows()])
    if "backend error" in table:
        table["backend error"] = table["backend error"].fillna("").str.slice(0, 80)
    report.heading(f"{name}: singularity", 3)
    report.table(table)
    if "singular.min_eigenvalue_relative" in rows:
        report.figure(plots.plot_singularity(rows), f"{name}: smallest covariance eigenvalue")


def outcome(row):
    """One phrase for what a fit did at a collapse: error raised (where), stopped, re-seeded,
    held at the reg_covar floor, kept away by the prior (or drifting into the collapse), or
    converged normally."""
    error = str(row.get("singular.backend_error") or row.get("message") or "")
    if row["status"] == "failed":
        if "at initialisation" in error:
            return "error at initialisation"
        if "iteration" in error:
            return "error at iteration " + error.split("iteration ")[1].split(":")[0]
        return "error: ill-defined covariance" if "ill-defined" in error else "failed"
    if row["status"] == "singular":
        return f"collapsed, stopped at iteration {int(row['singular.collapse.iteration'])}"
    resets = row.get("singular.n_resets")
    if resets is not None and resets == resets and resets > 0:
        return f"re-seeded {int(resets)} time(s)"
    if 0 < row["reg_covar"] and row.get("singular.min_eigenvalue", np.nan) <= 2 * row["reg_covar"]:
        return "held at the reg_covar floor"
    if row["backend"] == "pymc":
        return _posterior_outcome(row)
    return "converged"


def _posterior_outcome(row):
    """Sampler trouble together with a draw whose smallest covariance eigenvalue is below
    COLLAPSE_NEAR of the mean data variance: the posterior drifts into the collapse (it is
    improper), not kept away from it. Trouble with no draw that close is named beside 'kept
    away' (a cause other than the collapse, e.g. a multimodal posterior); runs without that
    eigenvalue get no verdict."""
    trouble = ", ".join(_sampler_trouble(row))
    if not trouble:
        return "posterior kept away by its prior"
    if _drifts(row):
        return f"posterior drifts into the collapse ({trouble})"
    smallest = row.get("diagnostics.min_eigenvalue_relative_any_draw", np.nan)
    verdict = "posterior kept away by its prior; " if smallest >= COLLAPSE_NEAR else ""
    return f"{verdict}sampler struggling ({trouble})"


def _sampler_trouble(row):
    """Divergences, most draws at the NUTS tree-depth cap, R-hat > 1.1: phrases, or []."""
    share = row.get("diagnostics.max_treedepth_share", np.nan)
    divergences = row.get("diagnostics.divergences", np.nan)
    rhat = row.get("diagnostics.max_rhat", np.nan)
    plural = "" if divergences == 1 else "s"
    return ([f"{int(divergences)} divergence{plural}"] if divergences > 0 else []) + (
        [f"{share:.0%} of draws at the tree-depth cap"] if share > 0.5 else []) + (
        [f"R-hat {rhat:.2f}"] if rhat > 1.1 else [])


def _drifts(row):
    """Sampler trouble and some draw within COLLAPSE_NEAR of the data variance of a collapse."""
    smallest = row.get("diagnostics.min_eigenvalue_relative_any_draw", np.nan)
    return bool(_sampler_trouble(row)) and smallest < COLLAPSE_NEAR


def build_report(source, output_dir, title="gmmlab report", command=None):
    """Write report.html and report.md (and figure_NN.png) into ``output_dir``."""
    table, base = load_table(source)
    for column, fallback in (("variant", "backend"), ("data_setting", "dataset")):
        if column not in table:
            table[column] = table[fallback]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for old in output_dir.glob("figure_*.png"):
        old.unlink()
    report = Report(output_dir)
    report.heading(title, 1)
    versions = {c.removeprefix("provenance.versions."): table[c].dropna().iloc[0]
                for c in table.columns if c.startswith("provenance.versions.")
                and table[c].notna().any()}
    report.paragraph(f"Generated by: {command or 'gmmlab-report ' + str(source)}")
    report.paragraph("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    counts = table["status"].value_counts().to_dict()
    report.paragraph(f"{len(table)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    accuracy = selection_accuracy(table)
    if accuracy is not None:
        report.heading("How often each criterion picks the true K")
        report.paragraph("Per data setting and variant: runs (replicates x fitting seeds) whose "
                         "criterion minimum falls on the true K, over all such runs.")
        report.table(accuracy)
    for name, rows in table.groupby("data_setting", sort=False):
        add_dataset_section(report, name, rows, base)
    (output_dir / "report.md").write_text(report.markdown())
    (output_dir / "report.html").write_text(report.html(title))
    return output_dir / "report.html"


def main(argv=None):
    """Console entry point ``gmmlab-report`` (errors explained by gmmlab.console)."""
    from gmmlab.console import run_command

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
