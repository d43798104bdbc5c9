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
import hashlib
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
from gmmlab.report import analysis, plots
from gmmlab.report.columns import (
    COLUMN,
    COLUMNS,
    GLOSSARY,
    RANKED,
    format_fixed,
    format_number,
    present,
)
from gmmlab.selection.evidence import kass_raftery
from gmmlab.study.job import IDATA_FILE, load_spec_dataset
from gmmlab.study.results import REQUIRED, readable_results, study_of

MAX_HISTORIES = 12
# The files a report wrote, listed in its folder: a new report replaces and removes only these.
MANIFEST = ".gmmlab-report.json"
PAGES = ("report.md", "report.html")
# A figure file's name: at most this many characters of its slug, then '-' and a hash.
NAME_LENGTH = 120
# Columns a results table must have for a report (a record's fields; provenance is nested).
REQUIRED_COLUMNS = tuple(column for column in REQUIRED if column != "provenance")
# Figure files (.png) by what they show: a rerun that changes one figure changes one file.
FIGURE_NAMES = {
    "accuracy against time": "summary-accuracy-vs-time",
    "criteria against K": "{setting}-criteria-vs-K",
    "fits": "{setting}-fits-K{k}",
    "EM log-likelihood": "{setting}-em-loglik-K{k}",
    "trace": "{setting}-{method}-trace-K{k}-seed{seed}",
    "relabelled trace": "{setting}-{method}-trace-K{k}-seed{seed}-relabelled",
    "smallest eigenvalues": "{setting}-min-eigenvalue",
    "BIC of the models": "{setting}-{method}-bic-models",
    "BIC by covariance model": "{setting}-{method}-bic-by-model",
    "LOO comparison": "{setting}-{method}-loo-seed{seed}",
}


def load_table(source):
    """(results table, folder of the run directories) from a sweep directory or a table.

    Raises ValueError naming the file when it does not parse as a table, has no rows, or lacks
    a column a record has (:data:`REQUIRED_COLUMNS`) or holds a non-integer K or seed."""
    source = check_source(source)
    table = readable_results(source) if source.is_dir() else read_table(source)
    check_table(table, source)
    for column, fallback in (("variant", "backend"), ("data_setting", "dataset")):
        if column not in table:
            table[column] = table[fallback]
    return analysis.with_icl_forms(table), source if source.is_dir() else source.parent


def check_source(source):
    """``source`` as a Path when it is a sweep directory or a .csv/.parquet file; else
    ValueError naming it."""
    source = Path(source)
    if not (source.is_dir() or source.suffix in (".parquet", ".csv") and source.is_file()):
        raise ValueError(f"{source} is neither a sweep directory nor a .csv/.parquet table.")
    return source


def default_output(source):
    """Where a report goes without -o: SOURCE/report for a sweep directory, the table's
    folder's report/ for a table."""
    source = Path(source)
    return source / "report" if source.is_dir() else source.parent / "report"


def read_table(path):
    """A results table from a .csv (UTF-8, with or without a byte-order mark) or .parquet
    file; ValueError naming the file when it does not parse."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, encoding="utf-8-sig")
    except OSError:
        raise
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}); expected a results "
                         "table written by gmmlab-collect.") from None
    except Exception as error:  # noqa: BLE001 - pandas' and pyarrow's parse errors
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path}: not a readable table ({detail}); expected a results table "
                         "written by gmmlab-collect.") from None


def check_table(table, source):
    """Raise ValueError naming ``source`` unless ``table`` has rows, every column of
    :data:`REQUIRED_COLUMNS`, and integer ``n_components`` and ``seed``."""
    missing = [column for column in REQUIRED_COLUMNS if column not in table]
    if missing:
        raise ValueError(f"{source}: no column {missing} (columns are "
                         f"{list(table.columns)[:12]}{' ...' if len(table.columns) > 12 else ''}"
                         f"); expected a results table written by gmmlab-collect.")
    if table.empty:
        raise ValueError(f"{source}: the table has no rows; expected one row per run.")
    for column in ("n_components", "seed"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{source}: column {column!r} holds {table[column].iloc[row]!r} "
                             f"in row {row + 1}; expected an integer.")
        table[column] = values.astype(int)


def slug(text):
    """A file-name part from a label: 'em_stop reg_covar=0.0' -> 'em_stop-reg_covar-0.0'."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-")


def figure_file(name, taken=None):
    """The file of figure ``name``: ``slug(name).png``. A slug longer than ``NAME_LENGTH``
    characters is cut there; a cut slug, or one a different name already has (``taken``:
    file -> name; 'a b' and 'a-b' share a slug), gets '-' and 10 hex digits of the sha256 of
    the name: at most 135 bytes (file systems allow 255), one file per figure."""
    file = slug(name) or "figure"
    if len(file) > NAME_LENGTH or (taken or {}).get(f"{file}.png", name) != name:
        file = f"{file[:NAME_LENGTH]}-{hashlib.sha256(str(name).encode()).hexdigest()[:10]}"
    return f"{file}.png"


class Report:
    """Blocks (headings, paragraphs, lists, tables, figures) rendered by the templates."""

    def __init__(self, folder, own=()):
        """folder: where figures go; own: the files an earlier report wrote there (its
        manifest), the only ones a figure may replace."""
        self.folder, self.blocks, self.own, self.names = Path(folder), [], set(own), {}

    def heading(self, text, level=2):
        self.blocks.append({"kind": "heading", "level": level, "text": text,
                            "anchor": slug(text).lower()})

    def paragraph(self, text):
        self.blocks.append({"kind": "paragraph", "text": text})

    def items(self, items, answer=False):
        """A bulleted list; ``answer``: the Summary's answer to the study's question (marked
        in the page, so that a test can find where it ends)."""
        self.blocks.append({"kind": "list", "items": list(items), "answer": answer})

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

        file = figure_file(name, self.names)
        try:
            if file in self.names:
                raise ValueError(f"two figures of one report are named {name!r}")
            refuse_foreign(self.folder / file, self.own)
            self.own.add(file)  # listed before it is written: an interrupted report's too
            write_manifest(self.folder, self.own)
            fig.savefig(self.folder / file, dpi=90, bbox_inches="tight",
                        metadata={"Software": None})
        finally:
            plt.close(fig)
        self.names[file] = name
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


def add_summary(report, table, study, base, loo):
    """The Summary: the study's question, its answer in a few lines, then the evidence."""
    report.heading("Summary")
    if study["question"]:
        report.paragraph(f"Question: {study['question']}")
    {"methods": add_methods_summary, "model_selection": add_selection_summary,
     "singularity": add_singularity_summary, "initialisation": add_initialisation_summary,
     "label_switching": add_label_switching_summary}[study["answer"]](report, table, base, loo)


def add_methods_summary(report, table, base, loo):
    """Per data setting at its main K: one sentence (the best method on each criterion, ties
    called by analysis.rankings' rule), then the ranking table (the best and those tied with
    it in bold; degenerate, collapsed and failed runs never ranked); the mean rank over data
    settings; accuracy against time at the main K; runs at a worse local optimum."""
    rankings, sentences, tables = {}, [], []
    for setting, rows in table.groupby("data_setting", sort=False):
        k = analysis.main_k(rows)
        at_k = rows[rows["n_components"] == k]
        ranking = analysis.rankings(at_k, analysis.pointwise_test_logliks(at_k, base))
        if ranking.empty:
            sentences.append(f"{setting} (K = {k}): no rankable run.")
            continue
        rankings[setting] = ranking
        sentences.append(analysis.verdict(f"{setting} (K = {k})", ranking))
        tables.append((setting, k, ranking))
    report.items(sentences, answer=True)
    report.paragraph("Per data setting at its true (or customary) K, each method's median over "
                     "seeds and its rank (1 = best or tied with it, in bold); held-out "
                     "log-lik/N is PyMC's posterior predictive, and PyMC's BIC (at a posterior "
                     "mean) is not ranked. Degenerate, collapsed and failed runs never rank.")
    for setting, k, ranking in tables:
        report.heading(f"{setting}, K = {k}", 3)
        frame = pd.DataFrame({"method": ranking.index})
        best = pd.DataFrame({"method": [False] * len(ranking)})
        for column in RANKED:
            if (column, "rank") not in ranking:
                continue
            header = COLUMN[column].header
            medians, ranks = ranking[(column, "median")], ranking[(column, "rank")]
            frame[header] = [f"{COLUMN[column].format(m)} ({format_number(r)})" if pd.notna(r)
                             else "-" for m, r in zip(medians, ranks, strict=True)]
            best[header] = (ranks == 1).to_numpy()
            if column == "test_loglik_per_sample" and ranking[(column, "interval")].notna().any():
                frame["difference ± 2 SE"] = [
                    "best" if d == 0 and w == 0 else f"{d:+.4f} ± {w:.4f}" if pd.notna(w)
                    else "-" for d, w in zip(ranking[(column, "diff")],
                                             ranking[(column, "interval")], strict=True)]
                best["difference ± 2 SE"] = False
        report.table(frame, best)
    if len(rankings) > 1:
        report.heading("Across data settings", 3)
        ranks = analysis.cross_setting_ranks(rankings)
        ranks = ranks.rename(columns={c: f"rank: {COLUMN[c].label}" for c in RANKED})
        report.paragraph("Mean rank over the data settings a method ran on (1 = best or tied "
                         "with it on every one).")
        order = analysis.method_order(table)
        report.table(ranks.set_index("method").reindex(
            [m for m in order if m in set(ranks["method"])]).reset_index())
    at_main_k = pd.concat([rows[rows["n_components"] == analysis.main_k(rows)].assign(
        data_setting=f"{setting}, K = {analysis.main_k(rows)}")
        for setting, rows in table.groupby("data_setting", sort=False)])
    at_main_k = analysis.rankable(at_main_k)
    accuracy = "test_loglik_per_sample" if at_main_k["test_loglik_per_sample"].notna().any() \
        else "loglik_per_sample"
    if at_main_k["fit_seconds"].notna().any():
        values = at_main_k.assign(**{accuracy: analysis.judged_values(at_main_k, accuracy)})
        report.figure(plots.plot_accuracy_vs_time(values, accuracy, COLUMN[accuracy].label,
                                                  analysis.method_order(table)),
                      FIGURE_NAMES["accuracy against time"],
                      f"{COLUMN[accuracy].label} (higher is better; PyMC: posterior "
                      "predictive) against fit time (log axis; lower is better), every rankable "
                      "run at the data setting's main K; each panel one data setting")
    add_local_optima(report, table)


def add_local_optima(report, table):
    """Maximum-likelihood runs at a worse local optimum than the best fit of any such method
    on the same data, K and model (analysis.local_optima)."""
    optima = analysis.local_optima(table)
    report.heading("Runs at a worse local optimum", 3)
    if not analysis.judged_by_several(table):
        report.paragraph("Not judged: one maximum-likelihood fit per data, K and model (nothing "
                         "to compare with).")
    elif optima.empty:
        report.paragraph("None: every maximum-likelihood run ended within "
                         f"{analysis.LOCAL_OPTIMUM_GAP:g} nat of the best train log-likelihood "
                         "any such method reached on the same data, K and model.")
    else:
        report.paragraph(
            f"{len(optima)} maximum-likelihood runs ended more than "
            f"{analysis.LOCAL_OPTIMUM_GAP:g} nat of train log-likelihood below the best fit of "
            "any such method on the same data, K, covariance model and reg_covar (PyMC and "
            "variational fits are not judged so).")
        report.table(optima.assign(**{"nats below the best": optima[
            "nats below the best"].map(format_fixed)}))


def add_selection_summary(report, table, base, loo):
    """Model selection: on data with a truth, how often each criterion recovers the true K
    (with Wilson intervals); on real data, per data set what each criterion chooses by each
    method (methods agreeing grouped), the evidence and the LOO choice, mclust's BIC choice
    named as the reference answer."""
    accuracy = analysis.selection_accuracy(table)
    if accuracy is not None:
        criteria = [c for c in accuracy.columns if c not in ("data setting", "method", "true K")]
        report.items([f"{setting} (true K = {rows['true K'].iloc[0]}): " + "; ".join(
            f"{c} " + ", ".join(f"{r['method']} {r[c]}" for _, r in rows.iterrows()
                                if present(r[c]))
            for c in criteria if rows[c].map(present).any())
            for setting, rows in accuracy.groupby("data setting", sort=False)], answer=True)
        report.paragraph("How often each criterion's minimum over K falls on the true K (data "
                         "replicates x fitting seeds; 95% Wilson interval); degenerate, "
                         "collapsed and failed fits are never picked.")
        report.table(accuracy.rename(columns={c: f"{c}: true K found" for c in criteria}))
        return
    lines, answers = [], []
    for setting, rows in table.groupby("data_setting", sort=False):
        choices = analysis.ml_choices(selection_rows(rows))
        bullet = []
        for criterion, group in choices.groupby("criterion", sort=False):
            picks = []
            for chosen, agreeing in group.groupby("chosen", sort=False):
                first = agreeing.iloc[0]
                picks.append(f"{chosen} ({', '.join(agreeing['method'])}"
                             + (f"; runner-up {first['runner-up']}, {first['evidence']}"
                                if first["runner-up"] != "-" else "") + ")")
                lines.extend({"data set": setting, "criterion": criterion,
                              "method": r["method"], "chosen": r["chosen"],
                              "runner-up": r["runner-up"], "evidence": r["evidence"]}
                             for _, r in agreeing.iterrows())
            bullet.append(f"{criterion} chooses " + " / ".join(picks))
        for variant, seed, comparison, chosen, best in loo.get(setting, []):
            unreliable = [k for k in comparison.index if comparison.loc[k, "reliable"] != "yes"]
            evidence = "-"
            if chosen is not None and chosen != best:
                evidence = (f"elpd {comparison.loc[chosen, 'elpd_diff']:+.1f} ± "
                            f"{comparison.loc[chosen, 'dse']:.1f} from K = {best}")
            elif chosen is not None and len(comparison.dropna(subset=["dse"])) > 1:
                runner = comparison.dropna(subset=["dse"]).index[1]
                evidence = (f"K = {runner} at elpd {comparison.loc[runner, 'elpd_diff']:+.1f} "
                            f"± {comparison.loc[runner, 'dse']:.1f}")
            bullet.append(f"LOO ({variant}, seed {seed}) chooses "
                          + (f"K = {chosen} by the two-dse rule" if chosen else "no K (none "
                             "reliable)")
                          + (f" ({evidence})" if evidence != "-" else "")
                          + (f"; unreliable, never chosen: K = {', '.join(unreliable)}"
                             if unreliable else ""))
            lines.append({"data set": setting, "criterion": "LOO",
                          "method": f"{variant}, seed {seed}", "chosen": chosen or "-",
                          "runner-up": "-", "evidence": evidence})
        evidence_choices = analysis.evidence_choices(rows)
        for variant, seed, _, chosen, best, runner, posterior in evidence_choices:
            log_factor, error, _ = posterior.bayes_factor(best, runner)
            evidence = (f"ln B = {log_factor:.2f} ± {error:.2f} against K = {runner}: "
                        f"{kass_raftery(log_factor)}")
            probability = posterior.probabilities[posterior.n_components == best].item()
            bullet.append(f"the evidence ({variant}, seed {seed}) "
                          + (f"chooses K = {chosen} (posterior probability {probability:.2f}; "
                             f"{evidence})" if chosen else
                             f"chooses no K: K = {best} and K = {runner} tie within the Monte "
                             f"Carlo error ({evidence})"))
            lines.append({"data set": setting, "criterion": "evidence",
                          "method": f"{variant}, seed {seed}", "chosen": chosen or "-",
                          "runner-up": str(runner), "evidence": evidence})
        sparse = analysis.sparse_choices(rows)
        for _, r in sparse.iterrows():
            bullet.append(f"the sparse mixture ({r['method']}, seed {r['seed']}, K_max = "
                          f"{r['K_max']}) finds K+ = {r['K+']} non-empty components "
                          f"(posterior probability {r['probability']:.2f})")
            lines.append({"data set": setting, "criterion": "K+",
                          "method": f"{r['method']}, seed {r['seed']}", "chosen": str(r["K+"]),
                          "runner-up": "-", "evidence": f"probability {r['probability']:.2f}"})
        ks = {str(c).split(",")[-1] for c in choices["chosen"]} | {
            str(chosen) for _, _, _, chosen, _ in loo.get(setting, []) if chosen} | {
            str(choice[3]) for choice in evidence_choices if choice[3]} | {
            str(k) for k in sparse["K+"]}
        agree = "criteria agree on K = " + ks.pop() if len(ks) == 1 else (
            "criteria disagree: K = " + ", ".join(sorted(ks, key=int)))
        reference = choices[(choices["method"].str.startswith("mclust"))
                            & (choices["criterion"] == "BIC")]
        answers.append(f"{setting}: " + "; ".join(bullet) + f"; {agree}"
                       + (f"; reference answer (mclust's BIC choice): "
                          f"{reference['chosen'].iloc[0]}" if len(reference) else "") + ".")
    report.items(answers, answer=True)
    report.paragraph("Real data have no true K. Each criterion's choice among the fits it may "
                     "judge (information criteria: maximum-likelihood fits, one per cell by "
                     "select's rule; LOO: a posterior by the two-dse rule; the Bayesian "
                     "evidence: the most probable K under a uniform prior on K, no choice when "
                     "the runner-up is within 2 standard errors; K+: a sparse mixture's mode of "
                     "non-empty components); degenerate and failed fits and unreliable LOO are "
                     "never chosen. Evidence: the runner-up's criterion minus the chosen one's "
                     "(BIC on Kass & Raftery's scale), the elpd difference ± dse, or ln B ± se.")
    report.table(pd.DataFrame(lines, columns=["data set", "criterion", "method", "chosen",
                                              "runner-up", "evidence"]))


def selection_rows(rows):
    """Rows of a model-selection study with ``variant`` naming the method without the
    covariance model (the family study's cells are one method's)."""
    return rows.assign(variant=rows["variant"].str.replace(
        r" ?covariance_type=\S+", "", regex=True).replace("", np.nan).fillna(rows["backend"]))


def add_singularity_summary(report, table, base, loo):
    """Per data setting: which methods collapse (failed, degenerate, stopped at a collapse, a
    posterior drifting into it) in how many runs, with the outcomes; which never do."""
    collapses = analysis.collapse_table(table)
    answers = []
    for setting, rows in collapses.groupby("data setting", sort=False):
        some = rows[rows["n_collapsed"] > 0]
        never = rows[rows["n_collapsed"] == 0]
        answers.append(f"{setting}: {len(some)} of {len(rows)} methods collapse in some run"
                       + (f"; never: {', '.join(never['method'])}" if len(never) else
                          "; every method collapses in some run") + ".")
    report.items(answers, answer=True)
    report.paragraph("Per method and data setting: runs that collapsed (failed, degenerate, "
                     "stopped at a collapse or a PyMC posterior drifting into it) of all, and "
                     "how each run ended (at which iteration where it stopped). No method is "
                     "ranked: a collapsed fit never wins.")
    report.table(collapses[["data setting", "method", "collapses", "outcomes"]])


def add_initialisation_summary(report, table, base, loo):
    """Per data setting: the success rate of each start method (reaching the best optimum any
    method found) with its Wilson interval, the highest and the lowest named."""
    rates = analysis.success_rates(table)
    answers = []
    for setting, rows in rates.groupby("data setting", sort=False):
        share = rows["successes"] / rows["runs"]
        best, worst = rows[share == share.max()], rows[share == share.min()]
        answers.append(f"{setting} (K = {rows['K'].iloc[0]}): reached the best optimum most "
                       f"often: {', '.join(best['method'])} "
                       f"({best['reached the best optimum'].iloc[0]}); least often: "
                       f"{', '.join(worst['method'])} "
                       f"({worst['reached the best optimum'].iloc[0]}).")
    report.items(answers, answer=True)
    report.paragraph("A run succeeds when it is not degenerate and ends within "
                     f"{analysis.LOCAL_OPTIMUM_GAP:g} nat of train log-likelihood of the best "
                     "optimum any maximum-likelihood method reached on the same data and K; "
                     "95% Wilson intervals; median time per run.")
    report.table(rates.drop(columns=["successes", "runs"]))
    add_local_optima(report, table)


def add_label_switching_summary(report, table, base, loo):
    """Per data setting and PyMC method: the error of the naive posterior mean of the means
    (draws as sampled) against the relabelled one, and R-hat before and after relabelling."""
    gains = analysis.relabelling_gains(table)
    if gains is None or gains.empty:
        report.paragraph("No PyMC run with a known truth: nothing to relabel against.")
        return
    answers = []
    for (setting, method), rows in gains.groupby(["data setting", "method"], sort=False):
        answers.append(
            f"{setting}, {method}: naive posterior mean of the means off by "
            f"{' / '.join(format_number(v) for v in rows['naive mean error'])} (RMSE, seeds "
            f"{' / '.join(map(str, rows['seed']))}) against "
            f"{' / '.join(format_number(v) for v in rows['relabelled mean error'])} "
            f"relabelled; R-hat {' / '.join(format_number(v) for v in rows['R-hat as sampled'])}"
            f" as sampled, {' / '.join(format_number(v) for v in rows['R-hat'])} relabelled.")
    report.items(answers, answer=True)
    report.paragraph("Every PyMC run: draws whose labels relabelling changed, R-hat of weights "
                     "and means before and after relabelling (good below "
                     f"{analysis.RHAT_MAX}), and the RMSE of the posterior mean of the means "
                     "against the truth, naive (draws as sampled) and relabelled.")
    report.table(gains)


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
            for column in COLUMNS:
                if column.name in rows and pd.to_numeric(
                        rows[column.name], errors="coerce").notna().any():
                    # held-out: PyMC's posterior predictive, as the Summary ranks it
                    values = (analysis.judged_values(ok, column.name) if column.name ==
                              "test_loglik_per_sample" else ok[column.name])
                    line[column.header] = analysis.spread(values, ok["seed"], column.name)
            lines.append(line)
    return pd.DataFrame(lines)


def add_setting_section(report, name, rows, base, loo):
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
    selection = selection_rows(rows)
    # several data replicates are several data sets: their choices are counted in the Summary
    if rows["n_components"].nunique() > 1 and len(replicates) <= 1:
        choices = analysis.ml_choices(selection)
        if not choices.empty:
            if rows["covariance_type"].nunique() == 1:
                add_criteria_figure(report, name, selection)
            report.heading(f"{name}: model chosen by each criterion", 3)
            report.paragraph("Per maximum-likelihood method (one fit per cell by select's rule: "
                             "the best train log-likelihood among the fits not degenerate), the "
                             "choice of each criterion among the cells not degenerate, the "
                             "runner-up and the evidence; PyMC is judged by LOO below.")
            report.table(choices.drop(columns=["value", "difference"]))
        for variant, seed, comparison, chosen, best in loo.get(name, []):
            add_loo_comparison(report, name, variant, seed, comparison, chosen, best)
        for variant, seed, comparison, chosen, best, runner, _ in analysis.evidence_choices(
                rows):
            add_evidence_table(report, name, variant, seed, comparison, chosen, best, runner)
        add_sparse_table(report, name, rows)
    for backend, runs in rows.groupby("backend", sort=False):
        if runs["covariance_type"].nunique() > 1 and runs["n_components"].nunique() > 1:
            add_model_choice(report, name, backend, runs)
    k = analysis.main_k(rows)
    add_fit_figures(report, name, rows, base, k)
    if not analysis.posterior_runs(rows).empty:
        add_posterior_section(report, name, rows, base, k)
    add_outcome_section(report, name, rows)


def add_criteria_figure(report, name, rows):
    """Information criteria against K per maximum-likelihood method (one fit per cell by
    select's rule, degenerate cells left out), the choice starred."""
    lines = []
    for variant in analysis.method_order(rows):
        if analysis.is_bayesian(variant):
            continue
        cells = analysis.model_table(rows[rows["variant"] == variant])
        lines.append(cells[cells["status"] == "ok"].assign(variant=variant))
    summary = pd.concat(lines)
    present = [c for c in analysis.criteria_present(rows) if c in summary]
    report.figure(plots.plot_criteria_vs_k(summary, present, analysis.method_order(rows)),
                  FIGURE_NAMES["criteria against K"].format(setting=name),
                  f"{name}: information criteria against K, maximum-likelihood fits (lower is "
                  "better; * the K each chooses; degenerate cells left out)")


def add_model_choice(report, name, backend, rows):
    """The covariance model and K each criterion chooses over a backend's models x K, as
    ``gmmlab.select`` ranks them (degenerate cells never chosen): mclust's BIC plot made
    readable, the best BIC per covariance model, the three lowest BIC and the BIC of every
    cell."""
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
            f"(BIC {format_fixed(first['bic'])}, ICL {format_fixed(first['icl'])}).")
    report.paragraph(
        f"Over {len(models)} covariance models x K = {ks[0]}..{ks[-1]} "
        f"({len(table)} cells, lower is better): " + " ".join(sentences)
        + (f" {len(set_aside)} {'cell is' if len(set_aside) == 1 else 'cells are'} set "
           "aside, never chosen: "
           + ", ".join(f"{r.model},{r.n_components}" for r in set_aside.itertuples())
           + " (the reasons are in the outcome table)." if len(set_aside) else
           " No cell is degenerate."))
    ok = table[table["status"] == "ok"]
    chosen = result.best(1, "bic")
    if not chosen.empty and len(models) > 1:
        names = {"setting": name, "method": backend}
        report.figure(plots.plot_bic_models(ok, chosen.iloc[0]),
                      FIGURE_NAMES["BIC of the models"].format(**names),
                      f"{name}: BIC against K per covariance model (mclust's letter codes; "
                      "lower is better), the competitive region only, the choice circled")
        report.figure(plots.plot_bic_by_model(ok, chosen.iloc[0]),
                      FIGURE_NAMES["BIC by covariance model"].format(**names),
                      f"{name}: the lowest BIC of each covariance model over K (its K on the "
                      "bar), the chosen model marked")
    top = result.best(3, "bic")
    report.paragraph("The three lowest BIC:")
    report.table(pd.DataFrame({
        "model,K": top["model"] + "," + top["n_components"].astype(str),
        "BIC ↓": top["bic"].map(format_fixed),
        "BIC - best": (top["bic"] - top["bic"].iloc[0]).map(format_fixed),
        "ICL": top["icl"].map(format_fixed), "train log-likelihood": top["loglik"].map(
            format_fixed), "free parameters": top["n_parameters"]}))
    grid = result.marked_table("bic", decimals=1)  # one decimal, as every BIC in a report
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


def add_loo_comparison(report, name, variant, seed, comparison, chosen, best):
    """PSIS-LOO of one PyMC method and seed across K (analysis.loo_across_k): ArviZ compare's
    table over the reliable K, the unreliable ones flagged, the two-dse choice and the elpd
    +- se plot."""
    report.heading(f"{name}: LOO across K ({variant}, seed {seed})", 3)
    report.table(comparison.rename_axis("K").reset_index()[
        ["K", "rank", "elpd", "p", "elpd_diff", "se", "dse", "weight", "reliable",
         "points with Pareto k > 0.7"]])
    unreliable = [k for k in comparison.index if comparison.loc[k, "reliable"] != "yes"]
    report.paragraph(
        (f"Highest elpd (PSIS-LOO) among the reliable K at K = {best}; chosen by the two-dse "
         f"rule (the smallest K within two standard errors of the difference of it): K = "
         f"{chosen}." if chosen else "No K has a reliable PSIS-LOO: none is chosen.")
        + (f" Unreliable, never chosen (p_loo > N/5 or Pareto k > {analysis.PARETO_K_MAX}): "
           f"K = {', '.join(unreliable)}." if unreliable else ""))
    report.figure(plots.plot_loo_compare(comparison, chosen),
                  FIGURE_NAMES["LOO comparison"].format(setting=name, method=variant,
                                                        seed=seed),
                  f"{name}: {variant} (seed {seed}) elpd ± se per K (filled), the difference "
                  "to the best ± dse (grey); hollow: unreliable PSIS-LOO; the chosen K marked")


POSTERIOR_COLUMNS = {"variant": "method", "n_components": "K", "seed": "seed",
                "diagnostics.max_rhat_raw": "R-hat as sampled", "diagnostics.max_rhat": "R-hat",
                "diagnostics.min_ess_bulk": "ESS bulk", "diagnostics.min_ess_tail": "ESS tail",
                "diagnostics.divergences": "divergences",
                "diagnostics.max_treedepth_share": "share at tree-depth cap",
                "diagnostics.draws_permuted": "draws permuted",
                "loo.pareto_k_max": "largest Pareto k",
                "loo.pareto_k_above_0.7": "points with Pareto k > 0.7",
                "diagnostics.log_evidence": "log evidence",
                "diagnostics.log_evidence_se": "evidence se",
                "diagnostics.nonempty_components_mode": "K+"}


def add_evidence_table(report, name, variant, seed, comparison, chosen, best, runner):
    """The evidence of one Bayesian method and seed across K (analysis.evidence_across_k): log
    evidence +- se, the posterior over K and the Bayes factors, and the choice."""
    report.heading(f"{name}: evidence across K ({variant}, seed {seed})", 3)
    report.table(comparison)
    report.paragraph(
        (f"Most probable under a uniform prior on K: K = {best}; chosen: K = {chosen}."
         if chosen else f"Most probable: K = {best}, but K = {runner} is within "
         f"{analysis.EVIDENCE_TIE_SE:g} standard errors of it: no K is chosen.")
        + " log evidence: bridge sampling from the Gibbs draws (4 chains) under the conjugate "
        "prior; its se is the Monte Carlo error.")


def add_sparse_table(report, name, rows):
    """The K+ posterior of every sparse finite mixture run of ``rows``."""
    sparse = analysis.sparse_choices(rows)
    if sparse.empty:
        return
    report.heading(f"{name}: sparse finite mixture", 3)
    report.paragraph(f"Dirichlet(alpha <= {analysis.SPARSE_ALPHA:g}) weights over K_max "
                     "components: superfluous components empty, and the mode of K+ (the number "
                     "of non-empty components, allocations drawn at every posterior draw) "
                     "estimates the number of clusters (Malsiner-Walli et al. 2016).")
    report.table(sparse)


def add_posterior_section(report, name, rows, base, k):
    """Diagnostics of every Bayesian run (PyMC, Gibbs); the trace of the first seed at K as
    sampled, and after relabelling only when relabelling permuted some draws (else it is the
    same picture)."""
    import arviz as az

    pymc = analysis.posterior_runs(rows).sort_values(["variant", "n_components", "seed"])
    present = {c: label for c, label in POSTERIOR_COLUMNS.items()
               if c in pymc and pymc[c].notna().any()}
    report.heading(f"{name}: posterior diagnostics", 3)
    report.paragraph(f"R-hat is good below {analysis.RHAT_MAX} (Vehtari et al. 2021); runs above "
                     "it are named in the outcome table.")
    report.table(pymc[list(present)].rename(columns=present))
    for variant, group in pymc[pymc["n_components"] == k].groupby("variant", sort=False):
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


def report_files(output_dir):
    """The files an earlier report wrote in ``output_dir``: those its manifest lists; for a
    report from before manifests (report.md says 'Generated by: gmmlab-report'), its two pages
    and the figures report.md shows. Other files are never replaced or removed."""
    output_dir = Path(output_dir)
    manifest = output_dir / MANIFEST
    if manifest.is_file():
        try:
            return set(json.loads(manifest.read_text())["files"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{manifest}: not a report manifest (a JSON object with 'files'); "
                             "expected the one gmmlab-report wrote, or no file.") from None
    markdown = output_dir / "report.md"
    if markdown.is_file():
        text = markdown.read_text(errors="replace")
        if re.search(r"^Generated by: gmmlab-report", text, flags=re.M):
            return {*PAGES, *(name for name in re.findall(r"!\[[^\]]*\]\(([^)/]+\.png)\)", text))}
    return set()


def write_manifest(output_dir, files):
    """List ``files`` as the report's own in ``output_dir/.gmmlab-report.json`` (atomically)."""
    temporary = Path(output_dir) / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps({"files": sorted(files)}, indent=1) + "\n")
    temporary.replace(Path(output_dir) / MANIFEST)


def refuse_foreign(path, own):
    """Raise FileExistsError when ``path`` exists and is not one of the report's ``own``
    files: gmmlab never overwrites a file it did not write."""
    if path.exists() and path.name not in own:
        raise FileExistsError(
            f"{path}: a file gmmlab-report did not write is in the way (not listed in "
            f"{path.parent / MANIFEST}); expected a report folder holding only gmmlab's files: "
            "choose another -o folder or move the file.")


def prepare_output(output_dir):
    """Make ``output_dir`` (checked before any work) and return the files an earlier report
    wrote there; raise when a page the report writes would replace a foreign file."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    own = report_files(output_dir)
    for page in PAGES:
        refuse_foreign(output_dir / page, own)
    return own


def build_report(source, output_dir, title="gmmlab report", command=None):
    """Write report.html, report.md and the figures (named by what they show) into
    ``output_dir``, and the manifest of these files (``.gmmlab-report.json``). Files an
    earlier report wrote there (its manifest) and this one does not are removed; any other
    file is left alone, and a foreign file in the way of one to write stops the report.

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
    ValueError
        The results table lacks a required column, has no row, or cannot be read (the file
        named).
    FileExistsError
        A file gmmlab-report did not write is in the way of one it writes.

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
    check_source(source)  # before the output folder is made
    output_dir = Path(output_dir)
    own = prepare_output(output_dir)
    table, base = load_table(source)
    table["outcome"] = analysis.outcomes(table)
    report = Report(output_dir, own)
    report.heading(title, 1)
    versions = {c.removeprefix("provenance.versions."): table[c].dropna().iloc[0]
                for c in table.columns if c.startswith("provenance.versions.")
                and table[c].notna().any()}
    report.paragraph(f"Generated by: {command or 'gmmlab-report ' + str(source)}")
    loo = {name: analysis.loo_choices(rows, base)
           for name, rows in table.groupby("data_setting", sort=False)}
    study = study_of(source)
    add_summary(report, table, study, base, loo)
    accuracy = analysis.selection_accuracy(table)
    if accuracy is not None and study["answer"] != "model_selection":
        report.heading("How often each criterion picks the true K")
        report.paragraph("Per data setting and maximum-likelihood method: fits (replicates x "
                         "seeds) whose criterion minimum over K falls on the true K, of all, "
                         "with a 95% Wilson interval; degenerate, collapsed and failed fits are "
                         "never picked.")
        report.table(accuracy.rename(columns={c: f"{c}: true K found" for c in accuracy.columns
                                              if c not in ("data setting", "method", "true K")}))
    report.heading("Runs")
    report.paragraph("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    counts = table["status"].value_counts().to_dict()
    report.paragraph(f"{len(table)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                     + "; methods: " + ", ".join(analysis.method_order(table)) + ".")
    for name, rows in table.groupby("data_setting", sort=False):
        add_setting_section(report, name, rows, base, loo)
    add_glossary(report)
    page, markdown = report.render(title)
    (output_dir / "report.md").write_text(markdown)
    (output_dir / "report.html").write_text(page)
    written = {*PAGES, *report.names}
    write_manifest(output_dir, written)
    for old in own - written:
        (output_dir / old).unlink(missing_ok=True)
    return output_dir / "report.html"


def main(argv=None):
    """Console entry point ``gmmlab-report`` (errors explained by gmmlab.console)."""
    matplotlib.use("Agg")  # the report's figures go to files; no screen is assumed
    run_command("gmmlab-report", report_command, argv,
                interrupted="interrupted (Ctrl-C); report.md and report.html are as they were; "
                            f"the figures drawn so far are listed in the folder's {MANIFEST} "
                            "and replaced by the next report.")


def report_command(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a sweep directory, or its results.csv / .parquet")
    parser.add_argument("-o", "--output", help="report folder (default: SOURCE/report, or for "
                                               "a table report/ beside it)")
    parser.add_argument("--title", default="gmmlab report")
    args = parser.parse_args(argv)
    output = args.output or str(default_output(args.source))
    command = shlex.join(["gmmlab-report", *(sys.argv[1:] if argv is None else argv)])
    path = build_report(args.source, output, args.title, command)
    print(f"[gmmlab] report: {path} (and report.md beside it)")


if __name__ == "__main__":
    main()
