"""The committed reports (experiments/*/report/) answer their study's question, and the answer
is the one their detail tables imply: per study form (the ``study.answer`` of its YAML) the
Summary is read back and checked against the tables further down; over every report, no
degenerate, failed or unreliable fit is bold, ranked first or chosen."""

import re
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from report_markdown import committed_reports, first_table, markdown_tables

from gmmlab.report import analysis

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in (ROOT / "experiments").glob("*/report/report.md"))
COLLAPSED = ("failed", "degenerate", "collapsed", "posterior drifts")


def study(folder):
    return OmegaConf.load(folder.parent.parent / f"{folder.parent.name}.yaml").study


def read(folder):
    markdown = (folder / "report.md").read_text()
    summary = markdown.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    bullets = [line[2:] for line in summary.splitlines() if line.startswith("- ")]
    return markdown, markdown_tables(markdown), bullets


def outcomes_of(tables, setting, method, k=None):
    """The outcomes of a method's runs on a data setting (at K)."""
    table = first_table(tables, f"{setting}: outcome of every run")
    rows = table[table["method"] == method]
    return list(rows[rows["K"] == str(k)]["outcome"] if k is not None else rows["outcome"])


def sound(outcomes):
    return [o for o in outcomes if not o.startswith(COLLAPSED)]


def test_every_committed_report_has_a_study_question_and_an_answer():
    assert len(FOLDERS) == 8
    for folder in FOLDERS:
        markdown, _, bullets = read(folder)
        assert f"Question: {study(folder).question}" in markdown, folder
        assert bullets, folder


@pytest.mark.parametrize("folder", committed_reports())
def test_no_collapsed_failed_or_unreliable_fit_wins(folder):
    markdown, tables, bullets = read(folder)
    checked = 0
    for heading, table in tables:
        # ranking tables: a bold (first-ranked) method has sound runs at that K
        found = re.fullmatch(r"(.+), K = (\d+)", heading)
        if found:
            for _, row in table.iterrows():
                if any(str(cell).startswith("**") for cell in row.iloc[1:]):
                    assert sound(outcomes_of(tables, found.group(1), row["method"],
                                             found.group(2))), (heading, row["method"])
                    checked += 1
        # information criteria: the chosen cell has a sound run
        found = re.fullmatch(r"(.+): model chosen by each criterion", heading)
        if found:
            for _, row in table.iterrows():
                model, _, k = row["chosen"].rpartition(",")
                method = row["method"] + (f" covariance_type={analysis_model(model)}"
                                          if model else "")
                assert sound(outcomes_of(tables, found.group(1), method, k)), (heading, row)
                checked += 1
        # LOO: the chosen K is reliable and chosen by the two-dse rule among the reliable K
        found = re.fullmatch(r"(.+): LOO across K \((.+), seed (\d+)\)", heading)
        if found:
            reliable = table[table["reliable"] == "yes"]
            chosen = loo_rule(reliable)
            text = markdown.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]
            assert (f"K = {chosen}." in text) if chosen else "none is chosen" in text
            checked += 1
    summary = markdown.split("\n## Summary\n", 1)[1].split("\n## ", 1)[0]
    rates = re.search(r"\d+/\d+ \(\d+-\d+%\)", summary)  # success counts, Wilson intervals
    if study(folder).answer in ("singularity", "initialisation", "label_switching") or rates:
        assert "**" not in summary  # rates and collapses, no method crowned
        checked += 1
    assert checked, folder


def analysis_model(model):
    """The covariance_type a run folder names for an mclust model (1-D: E, V -> EII, VII)."""
    return {"E": "EII", "V": "VII"}.get(model, model)


def loo_rule(reliable):
    """The two-dse rule on the reliable rows of a LOO table (strings as shown)."""
    if reliable.empty:
        return None
    diff = reliable["elpd_diff"].astype(float)
    dse = reliable["dse"].astype(float)
    return str(min(int(k) for k in reliable["K"][-diff <= 2 * dse]))


def evidence_rule(table):
    """The K the evidence chooses from its table (strings as shown): the most probable K,
    unless the runner-up's ln B is within two of its standard errors (None: a tie)."""
    probability = table["posterior probability"].str.split(" ± ").str[0].astype(float)
    best = table["K"][probability.idxmax()]
    runner = probability.drop(probability.idxmax()).idxmax()
    log_factor, se = (float(v) for v in table.loc[runner, "ln B (best : K)"].split(" ± "))
    return None if log_factor <= analysis.EVIDENCE_TIE_SE * se else best


def folders_answering(answer):
    return [p for p in committed_reports() if study(p.values[0]).answer == answer]


@pytest.mark.parametrize("folder", folders_answering("methods"))
def test_method_comparison_summary_names_the_bold_methods(folder):
    _, tables, bullets = read(folder)
    for heading, table in tables:
        found = re.fullmatch(r"(.+), K = (\d+)", heading)
        if not found:
            continue
        bullet = next(b for b in bullets if b.startswith(f"{found.group(1)} (K = "))
        for column, label in (("held-out log-lik/N ↑", "held-out log-lik/N"),
                              ("BIC ↓", "BIC"), ("mean error ↓", "mean error")):
            if column not in table or table[column].eq("-").all():
                continue
            bold = list(table.loc[table[column].str.startswith("**"), "method"])
            assert bold, (heading, column)
            if len(table[table[column] != "-"]) > 1:
                assert (f"{label}: {bold[0]} best at" in bullet if len(bold) == 1 else
                        f"{label}: {', '.join(bold)} tie" in bullet), (bullet, bold)
            # the summary's difference ± 2 SE calls the tie: the interval holds 0
            if column.startswith("held-out") and "difference ± 2 SE" in table:
                for _, row in table.iterrows():
                    if row["difference ± 2 SE"] not in ("-", "best"):
                        diff, se = (float(v) for v in row["difference ± 2 SE"].split(" ± "))
                        assert (abs(diff) <= se) == row[column].startswith("**"), row
        # medians: the median over the sound seeds of the detail table's values (in seed order
        # over the fitted runs)
        setting, k = found.groups()
        detail = first_table(tables, f"Data setting: {setting}")
        detail = detail[detail["K"] == k].set_index("method")
        runs = first_table(tables, f"{setting}: outcome of every run")
        for _, row in table.iterrows():
            if "mean error ↓" in table and row["mean error ↓"] != "-":
                mine = runs[(runs["method"] == row["method"]) & (runs["K"] == k)]
                mine = mine[~mine["outcome"].str.startswith("failed")].sort_values(
                    "seed", key=lambda c: c.astype(int))
                values = detail.loc[row["method"], "mean error ↓"].split(" / ")
                seeds = [float(v) for v, o in zip(values, mine["outcome"], strict=True)
                         if sound([o])]
                value = float(row["mean error ↓"].strip("*").split(" (")[0])
                assert value == pytest.approx(np.median(seeds), rel=2e-3)


@pytest.mark.parametrize("folder", folders_answering("model_selection"))
def test_model_selection_summary_is_what_the_tables_choose(folder):
    _, tables, bullets = read(folder)
    summary = first_table(tables, "Summary")
    checked = 0
    if "true K" in summary:  # synthetic: rates with their Wilson intervals
        for _, row in summary.iterrows():
            for column in [c for c in summary.columns if c.endswith("true K found")
                           and row[c] != "-"]:
                hits, n, low, high = map(int, re.fullmatch(
                    r"(\d+)/(\d+) \((\d+)-(\d+)%\)", row[column]).groups())
                lower, upper = analysis.wilson_interval(hits, n)
                assert (low, high) == (round(100 * lower), round(100 * upper))
                bullet = next(b for b in bullets if b.startswith(row["data setting"] + " ("))
                assert f"{row['method']} {row[column]}" in bullet
                checked += 1
        assert checked
        return
    for _, row in summary.iterrows():
        bullet = next(b for b in bullets if b.startswith(row["data set"] + ":"))
        if row["criterion"] == "LOO":
            variant, seed = row["method"].rsplit(", seed ", 1)
            loo = first_table(tables, f"{row['data set']}: LOO across K ({variant}, seed {seed})")
            assert row["chosen"] == (loo_rule(loo[loo["reliable"] == "yes"]) or "-")
            assert f"LOO ({variant}, seed {seed}) chooses K = {row['chosen']}" in bullet
        elif row["criterion"] == "evidence":
            variant, seed = row["method"].rsplit(", seed ", 1)
            table = first_table(tables, f"{row['data set']}: evidence across K ({variant}, "
                                        f"seed {seed})")
            assert row["chosen"] == (evidence_rule(table) or "-")
            assert (f"the evidence ({variant}, seed {seed}) chooses K = {row['chosen']} "
                    if row["chosen"] != "-" else f"the evidence ({variant}, seed {seed}) "
                    "chooses no K") in bullet
        elif row["criterion"] == "K+":
            variant, seed = row["method"].rsplit(", seed ", 1)
            sparse = first_table(tables, f"{row['data set']}: sparse finite mixture")
            match = sparse[(sparse["method"] == variant) & (sparse["seed"] == seed)]
            assert match["K+"].item() == row["chosen"]
            assert f"finds K+ = {row['chosen']} non-empty" in bullet
        else:
            detail = first_table(tables, f"{row['data set']}: model chosen by each criterion")
            match = detail[(detail["method"] == row["method"])
                           & (detail["criterion"] == row["criterion"])]
            assert match["chosen"].item() == row["chosen"]
            assert f"{row['criterion']} chooses" in bullet and f"{row['chosen']} (" in bullet
        checked += 1
    assert checked
    if folder.parent.name == "model_selection_family":
        bic = summary[summary["criterion"] == "BIC"].set_index("data set")["chosen"]
        assert bic["faithful"] == "EEE,3" and bic["iris"] == "VEV,2"
        for data_set, chosen in bic.items():
            top = first_table(tables, f"{data_set}: covariance model and K chosen (em_select)")
            assert top["model,K"].iloc[0] == chosen


@pytest.mark.parametrize("folder", folders_answering("singularity"))
def test_singularity_summary_counts_the_collapses_of_the_outcome_tables(folder):
    _, tables, bullets = read(folder)
    summary = first_table(tables, "Summary")
    for _, row in summary.iterrows():
        outcomes = outcomes_of(tables, row["data setting"], row["method"])
        collapsed = len(outcomes) - len(sound(outcomes))
        assert row["collapses"] == f"{collapsed}/{len(outcomes)}", row
    for setting, rows in summary.groupby("data setting"):
        some = (rows["collapses"].str.split("/").str[0] != "0").sum()
        assert any(b.startswith(f"{setting}: {some} of {len(rows)} methods collapse")
                   for b in bullets)


@pytest.mark.parametrize("folder", folders_answering("initialisation"))
def test_initialisation_rates_count_the_runs_at_the_best_optimum(folder):
    _, tables, bullets = read(folder)
    summary = first_table(tables, "Summary")
    for _, row in summary.iterrows():
        outcomes = sound(outcomes_of(tables, row["data setting"], row["method"], row["K"]))
        hits = sum(not o.startswith("local optimum") for o in outcomes)
        runs = len(outcomes_of(tables, row["data setting"], row["method"], row["K"]))
        assert row["reached the best optimum"].startswith(f"{hits}/{runs} ("), row
    best = summary.loc[summary["reached the best optimum"].str.split("/").str[0].astype(
        int).idxmax()]
    assert any(best["method"] in b and "most often" in b for b in bullets)


@pytest.mark.parametrize("folder", folders_answering("label_switching"))
def test_relabelling_gain_is_the_diagnostics_and_errors_of_the_runs(folder):
    _, tables, bullets = read(folder)
    summary = first_table(tables, "Summary")
    for _, row in summary.iterrows():
        diagnostics = first_table(tables, f"{row['data setting']}: posterior diagnostics")
        run = diagnostics[(diagnostics["method"] == row["method"])
                          & (diagnostics["seed"] == row["seed"])
                          & (diagnostics["K"] == row["K"])]
        assert run["R-hat"].item() == row["R-hat"]
        assert run["R-hat as sampled"].item() == row["R-hat as sampled"]
        detail = first_table(tables, f"Data setting: {row['data setting']}")
        errors = detail[(detail["method"] == row["method"]) & (detail["K"] == row["K"])][
            "mean error ↓"].item().split(" / ")
        assert row["relabelled mean error"] in errors
        assert float(row["naive mean error"]) >= 0
        assert any(b.startswith(f"{row['data setting']}, {row['method']}: naive") and
                   row["naive mean error"] in b for b in bullets)
