"""Reports generated from a small real sweep: a summary whose rankings agree with the tables'
numbers, a poor start named as a worse local optimum, figures that exist and differ, and the
outcome rule and number format on hand-made rows."""

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from report_markdown import first_table, markdown_tables
from support import gmmlab, plugin_env

from gmmlab.report import analysis, columns

POOR = "poor_start:fit_em_from_start poor_seed=0"
TUTORIAL, BLOBS = "tutorial_1d test_size=0.25", "stretched_blobs test_size=0.25"  # settings


def sweep_output(folder, *overrides):
    """Run a sweep into folder/runs/NAME (the test plug-ins on the path); its stdout."""
    return gmmlab("-m", *overrides, cwd=folder, env=plugin_env()).stdout


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """tutorial_1d at K = 2, 3 by em, sklearn and pymc_quick (seeds 0, 1); stretched_blobs at
    K = 3 by em and sklearn, and by EM from a poor start for seed 0 (seeds 0, 1, 2); the
    report of all of them."""
    folder = tmp_path_factory.mktemp("report")
    split = "dataset.test_size=0.25"
    stdout = sweep_output(folder, "dataset=tutorial_1d", split, "backend=em,sklearn,pymc_quick",
                    "n_components=2,3", "seed=0,1", "hydra/launcher=parallel",
                    f"hydra.sweep.dir={folder / 'runs' / 'tutorial'}")
    sweep_output(folder, "dataset=stretched_blobs", split, "n_components=3", "backend=em,sklearn",
           "seed=0,1,2", f"hydra.sweep.dir={folder / 'runs' / 'blobs'}")
    sweep_output(folder, "dataset=stretched_blobs", split, "n_components=3", "backend=custom",
           "backend.target=poor_start:fit_em_from_start", "+backend.poor_seed=0", "seed=0,1,2",
           f"hydra.sweep.dir={folder / 'runs' / 'poor'}")
    done = gmmlab(str(folder / "runs"), "-o", str(folder / "out"), command="gmmlab-report",
                  cwd=folder)
    assert "report.html" in done.stdout
    return {"folder": folder, "out": folder / "out", "progress": stdout,
            "markdown": (folder / "out" / "report.md").read_text(),
            "html": (folder / "out" / "report.html").read_text()}


@pytest.mark.e2e
@pytest.mark.pymc
def test_summary_comes_first_and_its_rankings_agree_with_the_tables(sweep):
    markdown = sweep["markdown"]
    headings = re.findall(r"^## (.+)$", markdown, flags=re.M)
    assert headings[0] == "Summary" and headings[-1] == "Glossary"
    tables = markdown_tables(markdown)
    checked = 0
    for setting, k in ((TUTORIAL, 3), (BLOBS, 3)):
        summary = first_table(tables, f"{setting}, K = {k}")
        comparison = first_table(tables, f"Data setting: {setting}")
        comparison = comparison[comparison["K"] == str(k)].set_index("method")
        assert set(summary["method"]) == set(comparison.index)
        for column in [c for c in summary.columns[1:] if c != "difference ± 2 SE"]:
            metric = next(m for m in columns.COLUMNS if column == m.header)
            sign = 1 if metric.better == "lower" else -1
            cells = summary.set_index("method")[column]
            bold = {m for m, cell in cells.items() if cell.startswith("**")}
            parsed = cells.str.strip("*").str.extract(r"^(\S+) \((\d+)\)$").dropna()
            ranks = parsed[1].astype(int)
            medians = parsed[0].astype(float)
            # the summary's median is the median of the seeds' values in the table (PyMC's
            # BIC, at a posterior mean, is not ranked)
            for method, values in comparison[column].items():
                if method in medians:
                    seeds = [float(v) for v in values.split(" / ")]
                    assert medians[method] == pytest.approx(np.median(seeds), rel=2e-3,
                                                            abs=0.06)
            assert "pymc_quick" not in medians or column != "BIC ↓"
            # a better rank never has a worse value but among those tied with the best; rank 1
            # is bold and holds the best value
            for a in ranks.index:
                for b in ranks.index:
                    if ranks[a] < ranks[b] and ranks[a] > 1:
                        assert sign * medians[a] <= sign * medians[b]
            assert bold == set(ranks.index[ranks == 1]) and bold
            assert min(sign * medians) in {sign * medians[m] for m in bold}
            checked += 1
        sentence = re.search(rf"^- {re.escape(setting)} \(K = {k}\): .+\.$", markdown,
                             flags=re.M).group(0)
        winner = summary.set_index("method")["held-out log-lik/N ↑"]
        first = winner.index[winner.str.startswith("**")]
        assert (f"held-out log-lik/N: {first[0]} best at" in sentence if len(first) == 1 else
                f"held-out log-lik/N: {', '.join(first)} tie" in sentence)
        assert "fastest" in sentence
    assert checked == 8  # held-out, BIC, mean error and time on both settings
    across = first_table(tables, "Across data settings")
    assert set(across["method"]) >= {"em", "sklearn"}
    assert "summary-accuracy-vs-time.png" in markdown


@pytest.mark.e2e
@pytest.mark.pymc
def test_poor_start_is_flagged_by_name(sweep):
    markdown = sweep["markdown"]
    outcomes = [t for h, t in markdown_tables(markdown)
                if h == f"{BLOBS}: outcome of every run"][0]
    poor = outcomes[outcomes["method"] == POOR].set_index("seed")["outcome"]
    assert poor["0"].startswith("local optimum (") and poor["1"] == poor["2"] == "converged"
    flagged = first_table(markdown_tables(markdown), "Runs at a worse local optimum")
    # the summary names exactly the runs the outcome column calls a local optimum, measured
    # from the best fit of any maximum-likelihood method on the same data and K
    poor_runs = pd.read_csv(sweep["folder"] / "runs" / "poor" / "results.csv")
    best = max(poor_runs["loglik"].max(), pd.read_csv(
        sweep["folder"] / "runs" / "blobs" / "results.csv")["loglik"].max())
    gap = best - poor_runs.loc[poor_runs["seed"] == 0, "loglik"].item()
    row = flagged[flagged["method"] == POOR]
    assert len(row) == 1 and float(row["nats below the best"].item()) == pytest.approx(
        gap, abs=0.06)
    # every run flagged (a seed of em or sklearn may be too) is one its outcome calls so
    for _, run in flagged.iterrows():
        table = first_table(markdown_tables(markdown),
                            f"{run['data setting']}: outcome of every run")
        mine = table[(table["method"] == run["method"]) & (table["seed"] == run["seed"])
                     & (table["K"] == run["K"])]
        assert mine["outcome"].str.startswith("local optimum (").all() and len(mine) == 1


@pytest.mark.e2e
@pytest.mark.pymc
def test_figures_exist_differ_and_are_named_by_content(sweep):
    out = sweep["out"]
    images = re.findall(r'<img src="([^"]+)"', sweep["html"])
    assert len(images) >= 8 and len(set(images)) == len(images)
    assert sorted(images) == sorted(p.name for p in out.glob("*.png"))
    digests = [hashlib.sha256((out / image).read_bytes()).hexdigest() for image in images]
    assert len(set(digests)) == len(digests)  # no byte-identical pair
    tutorial, blobs = "tutorial_1d-test_size-0.25", "stretched_blobs-test_size-0.25"
    assert {f"{tutorial}-fits-K3.png", f"{blobs}-fits-K3.png", f"{tutorial}-em-loglik-K3.png",
            f"{tutorial}-criteria-vs-K.png", f"{tutorial}-pymc_quick-trace-K3-seed0.png",
            f"{blobs}-min-eigenvalue.png"} <= set(images)
    assert not any(re.match(r"figure_\d+", image) for image in images)
    markdown = sweep["markdown"]
    assert markdown.count("![") == len(images)
    results = pd.concat(pd.read_csv(p) for p in (out.parent / "runs").glob("*/results.csv"))
    permuted = results.loc[(results["backend"] == "pymc") & (results["n_components"] == 3)
                           & (results["seed"] == 0), "diagnostics.draws_permuted"].item()
    relabelled = f"{tutorial}-pymc_quick-trace-K3-seed0-relabelled.png"
    assert (relabelled in images) == (permuted > 0)


@pytest.mark.e2e
@pytest.mark.pymc
def test_numbers_are_readable_and_columns_explained(sweep):
    markdown, page = sweep["markdown"], sweep["html"]
    assert "nan" not in markdown.lower().replace("nan-", "") and ">nan<" not in page
    tables = markdown_tables(markdown)
    for heading, table in tables:
        for column in ("runs", "K", "seed", "divergences", "draws permuted"):
            if column in table:
                assert table[column].str.fullmatch(r"-|\d+").all(), (heading, column)
        for cell in table.to_numpy().ravel():  # fixed notation, or 4 significant digits
            for number in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", cell):
                digits = re.sub(r"e.*|[-.]", "", number).lstrip("0")
                assert len(digits) <= 4 or re.fullmatch(r"-?\d+\.\d", number), (heading, cell)
            assert not re.search(r"\d\.\d+e\d", cell), (heading, cell)  # no 1.562e4
    glossary = first_table(tables, "Glossary")
    shown = {c for h, t in tables if h != "Glossary" for c in t.columns}
    assert shown == set(glossary["column"])
    for column in columns.COLUMNS:
        if column.header in shown:
            meaning = glossary.set_index("column").loc[column.header, "meaning"]
            assert meaning.endswith(f"{column.better} is better")


@pytest.mark.e2e
@pytest.mark.pymc
def test_loo_across_k_agrees_with_the_stored_loo(sweep):
    tables = markdown_tables(sweep["markdown"])
    loo = [t for h, t in tables if "LOO across K" in h]
    assert len(loo) == 2  # pymc_quick, seeds 0 and 1, each across K = 2, 3
    results = pd.read_csv(sweep["folder"] / "runs" / "tutorial" / "results.csv")
    for seed, table in enumerate(loo):
        diff = pd.to_numeric(table["elpd_diff"], errors="coerce")
        assert sorted(table["K"]) == ["2", "3"] and (diff.max() == 0 or diff.isna().all())
        assert ((table["reliable"] == "yes") == diff.notna()).all()
        for row in table.itertuples():
            stored = results.loc[(results["backend"] == "pymc") & (results["seed"] == seed)
                                 & (results["n_components"] == int(row.K)), "loo.elpd"]
            assert float(row.elpd) == pytest.approx(stored.item(), rel=1e-3)


@pytest.mark.e2e
@pytest.mark.pymc
def test_selection_accuracy_and_chosen_k(sweep):
    accuracy = first_table(markdown_tables(sweep["markdown"]),
                           "How often each criterion picks the true K")
    assert set(accuracy["method"]) == {"em", "sklearn"}  # PyMC is judged by LOO
    assert (accuracy["true K"] == "3").all()
    results = pd.read_csv(sweep["folder"] / "runs" / "tutorial" / "results.csv")
    em = results[results["backend"] == "em"]
    picks = [group.loc[group["bic"].idxmin(), "n_components"] for _, group in em.groupby("seed")]
    hits = sum(int(k) == 3 for k in picks)
    assert accuracy.set_index("method").loc["em", "BIC: true K found"].startswith(f"{hits}/2 (")


@pytest.mark.e2e
@pytest.mark.pymc
def test_sweep_prints_progress_one_line_per_run(sweep):
    lines = re.findall(r"^\[gmmlab\] run (\d+) of (\d+) done \(.+\), elapsed \d.*$",
                       sweep["progress"], flags=re.M)
    assert sorted(int(i) for i, _ in lines) == list(range(1, 13))
    assert {n for _, n in lines} == {"12"}
    assert sweep["progress"].count("sweep finished") == 1


@pytest.mark.parametrize("row, expected", [
    ({"status": "failed", "singular.backend_error": "SingularCovarianceError: Covariance of "
      "component 1 became singular at initialisation: ..."},
     "failed: singular covariance at initialisation"),
    ({"status": "failed", "message": "SingularCovarianceError: Covariance of component 0 became "
      "singular at iteration 8: smallest eigenvalue 1e-16"},
     "failed: singular covariance at iteration 8"),
    ({"status": "failed", "singular.backend_error": "ValueError: ... ill-defined empirical "
      "covariance ..."}, "failed: ill-defined empirical covariance"),
    ({"status": "failed", "message": "FileNotFoundError: no such file data.csv\nmore"},
     "failed: FileNotFoundError: no such file data.csv"),
    ({"status": "ok", "degenerate": True, "degeneracy_reason": "component 2 on 1 point"},
     "degenerate: component 2 on 1 point"),
    ({"status": "singular", "singular.collapse.iteration": 7.0},
     "collapsed, stopped at iteration 7"),
    ({"status": "ok", "singular.n_resets": 3.0, "reg_covar": 0.0}, "re-seeded 3 time(s)"),
    ({"status": "ok", "reg_covar": 1e-3, "singular.min_eigenvalue": 1.2e-3, "backend": "em"},
     "held at the reg_covar floor"),
    ({"status": "ok", "reg_covar": 1e-6, "singular.min_weight_n": 0.3324, "n_features": 2,
      "backend": "sklearn_vb"}, "near-empty component (weight x N = 0.3324)"),
    ({"status": "ok", "reg_covar": 1e-6, "singular.min_weight_n": 44.2, "n_features": 2,
      "loglik": -2278.98, "backend": "sklearn"}, "local optimum (54.0 nats below the best fit)"),
    ({"status": "ok", "reg_covar": 1e-6, "loglik": -2225.5, "backend": "sklearn"}, "converged"),
    ({"status": "ok", "reg_covar": 0.0, "singular.min_eigenvalue": 0.2, "backend": "pymc"},
     "posterior kept away by its prior"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.min_eigenvalue_relative_any_draw": 1e-4,
      "diagnostics.max_treedepth_share": 0.02, "backend": "pymc"},
     "posterior kept away by its prior"),
    ({"status": "ok", "reg_covar": 0.0, "singular.min_eigenvalue_relative": 0.07,
      "diagnostics.min_eigenvalue_relative_any_draw": 5e-6, "diagnostics.divergences": 0,
      "diagnostics.max_treedepth_share": 1.0, "diagnostics.max_rhat": 1.95, "backend": "pymc"},
     "posterior drifts into the collapse (100% of draws at the tree-depth cap, R-hat 1.950)"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.min_eigenvalue_relative_any_draw": 3e-11,
      "diagnostics.divergences": 333, "diagnostics.max_treedepth_share": 0.25,
      "diagnostics.max_rhat": 1.004, "backend": "pymc"},
     "posterior drifts into the collapse (333 divergences)"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.min_eigenvalue_relative_any_draw": 0.1,
      "diagnostics.max_treedepth_share": 0.75, "backend": "pymc"},
     "posterior kept away by its prior; sampler struggling (75% of draws at the tree-depth "
     "cap)"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.min_eigenvalue_relative_any_draw": 0.1,
      "diagnostics.divergences": 1, "backend": "pymc"},
     "posterior kept away by its prior; sampler struggling (1 divergence)"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.divergences": 8, "backend": "pymc"},
     "sampler struggling (8 divergences)"),  # no eigenvalue of every draw: no verdict
    ({"status": "ok", "reg_covar": 1e-6, "singular.min_eigenvalue": 0.2, "backend": "sklearn"},
     "converged"),
])
def test_outcome_rule(row, expected):
    # the best seed of the local-optimum case is stretched_blobs' sklearn seed 1 (-2224.94)
    assert analysis.outcome(pd.Series(row), best_loglik=-2224.94) == expected


@pytest.mark.parametrize("value, expected", [
    (1000.0, "1000"), (3, "3"), (np.int64(12), "12"), (0.00438292, "0.004383"),
    (4658.713, "4659"), (-6.077274, "-6.077"), (1.2e-11, "1.2e-11"), (-3.14159e-5, "-3.142e-5"),
    (np.nan, "-"), (None, "-"), (True, "yes"), ("em", "em"), (2.5e7, "2.5e7"),
    (15620.3, "15620"), (5.169e4 + 0.4, "51690"),
])
def test_format_number(value, expected):
    assert columns.format_number(value) == expected


def test_spread_shows_each_seed_or_median_and_range():
    assert analysis.spread([2.0, 1.5], [1, 0]) == "1.5 / 2"
    assert analysis.spread([1.0, np.nan], [0, 1]) == "1"
    assert analysis.spread([4.0, 1.0, 3.0, 2.0], [0, 1, 2, 3]) == "2.5 (1 to 4)"
    assert analysis.spread([], []) == "-"


def test_model_table_sets_degenerate_cells_aside():
    """Hand-made runs: the lowest BIC is degenerate, so the choice goes to the next; a cell
    with a sound and a degenerate seed keeps the sound one; 1-D names are E and V."""
    def run(covariance_type, k, loglik, bic, degenerate=False, seed=0, status="ok"):
        return {"covariance_type": covariance_type, "n_components": k, "n_features": 2,
                "loglik": loglik, "bic": bic, "icl": bic + 1, "n_params": 5 * k, "seed": seed,
                "status": status, "degenerate": degenerate, "message": "boom",
                "degeneracy_reason": "component 1 at the reg_covar floor" if degenerate
                else None}
    rows = pd.DataFrame([run("VVV", 1, -10, 30), run("VVV", 2, -5, 25, degenerate=True),
                         run("EEE", 2, -6, 27), run("EEE", 2, -4, 20, degenerate=True, seed=1),
                         run("tied", 3, np.nan, np.nan, status="failed")])
    table = analysis.model_table(rows)
    assert list(table["model"]) == ["EEE", "EEE", "VVV", "VVV"]
    cells = table.set_index(["model", "n_components"])
    assert cells.loc[("VVV", 2), "status"] == "degenerate"
    assert cells.loc[("EEE", 2), "bic"] == 27 and cells.loc[("EEE", 2), "status"] == "ok"
    assert cells.loc[("EEE", 3), "status"] == "failed"
    from gmmlab.selection import SelectionResult
    best = SelectionResult(table, "bic", 100, 2, 0.0).best(3)
    assert list(zip(best["model"], best["n_components"], strict=True)) == [("EEE", 2), ("VVV", 1)]
    choices = analysis.ml_choices(rows.assign(variant="em", backend="em")).set_index(
        "criterion")
    assert choices.loc["BIC", "chosen"] == "EEE,2" and choices.loc["BIC", "runner-up"] == "VVV,1"
    assert choices.loc["BIC", "evidence"] == "3.0: positive"
    one_d = analysis.model_table(rows.assign(n_features=1).iloc[:3])
    assert set(one_d["model"]) == {"E", "V"}


@pytest.mark.e2e
def test_family_report_chooses_as_select_does(tmp_path):
    """A sweep of em_select over four covariance models x K = 1..3 on Old Faithful: the
    report's choice, BIC and top three are gmmlab.select's on the same cells, and mclust's
    choice (EEE, K = 3, BIC 2314.316 at its last E-step, ours converged further)."""
    from gmmlab.datasets import load_dataset
    from gmmlab.selection import select

    models = ["EII", "VVI", "EEE", "VVV"]
    sweep_output(tmp_path, "experiment=model_selection_family", "dataset=faithful",
           f"covariance_type={','.join(models)}", "n_components=1,2,3",
           f"hydra.sweep.dir={tmp_path / 'runs'}")
    gmmlab(str(tmp_path / "runs"), "-o", str(tmp_path / "out"), command="gmmlab-report",
           cwd=tmp_path)
    markdown = (tmp_path / "out" / "report.md").read_text()
    heading = "faithful: covariance model and K chosen (em_select)"
    assert heading in markdown
    section = markdown.split(heading)[1]
    top = first_table(markdown_tables(markdown), heading)
    selected = select(load_dataset("faithful").X, [1, 2, 3], models=models, n_jobs=1)
    expected = selected.best(3)
    assert list(top["model,K"]) == [f"{m},{k}" for m, k in zip(
        expected["model"], expected["n_components"], strict=True)]
    assert top["model,K"].iloc[0] == "EEE,3"
    bic = float(top["BIC ↓"].iloc[0])
    assert bic == pytest.approx(expected["bic"].iloc[0], abs=0.05)  # one decimal
    assert 2314.25 < bic < 2314.35
    assert "BIC chooses EEE,3 (BIC 2314.3," in section


def evidence_rows(log_evidence, se, variant="gibbs", seed=0, **extra):
    return pd.DataFrame([{"variant": variant, "backend": "gibbs", "status": "ok", "seed": seed,
                          "n_components": k, "diagnostics.log_evidence": value,
                          "diagnostics.log_evidence_se": error} | extra
                         for k, (value, error) in enumerate(zip(log_evidence, se,
                                                                strict=True), start=1)])


def test_the_evidence_chooses_the_most_probable_k_and_calls_a_tie_a_tie():
    """p(K | X) = e^(log Z_K) / sum e^(log Z_j) under a uniform prior; K = 3 ahead of K = 2 by
    ln B = 5 is chosen ('very strong': 2 ln B = 10); ahead by 0.1 with se 0.05 each (the
    difference's se 0.0707, twice it 0.141) it is a tie and nothing is chosen."""
    (_, _, table, chosen, best, runner, _), = analysis.evidence_choices(
        evidence_rows([-100.0, -90.0, -85.0], [0.01, 0.05, 0.05]))
    expected = np.exp(np.array([-100.0, -90.0, -85.0]) + 85.0)
    expected /= expected.sum()
    assert (chosen, best, runner) == (3, 3, 2)
    assert [float(p.split(" ± ")[0]) for p in table["posterior probability"]] == pytest.approx(
        expected, abs=1e-3)
    assert table.set_index("K").loc["2", "ln B (best : K)"] == "5.00 ± 0.07"
    assert table.set_index("K").loc["2", "reading"] == "evidence for K = 3: very strong"
    (_, _, _, chosen, best, runner, _), = analysis.evidence_choices(
        evidence_rows([-100.0, -90.0, -89.9], [0.01, 0.05, 0.05]))
    assert (chosen, best, runner) == (None, 3, 2)


def test_synthetic_recovery_counts_the_evidence_and_sparse_mixtures():
    """Per replicate the evidence's choice, and per sparse run (alpha <= 0.1) its K+ mode,
    against the true K; a fit with alpha = 1 is no sparse mixture."""
    truth = {"true_components": 2, "data_setting": "synthetic", "param_error.means": 0.1}
    runs = pd.concat([
        evidence_rows([-50.0, -40.0, -41.0], [0.02] * 3, **truth, **{"dataset_metadata.seed": 0}),
        evidence_rows([-50.0, -40.0, -30.0], [0.02] * 3, **truth, **{"dataset_metadata.seed": 1}),
        pd.DataFrame([truth | {"variant": f"gibbs alpha={a}", "backend": "gibbs", "status": "ok",
                               "seed": 0, "dataset_metadata.seed": s, "n_components": 6,
                               "diagnostics.alpha": a, "diagnostics.nonempty_components_mode":
                               mode} for s, (a, mode) in enumerate(
            [(0.01, 2), (0.01, 2), (0.01, 3), (1.0, 6)])])], ignore_index=True)
    lines = {line["method"]: line for line in analysis.bayesian_selection_accuracy(
        runs, ["dataset_metadata.seed", "seed"])}
    assert lines["gibbs"]["evidence"] == analysis.rate(1, 2)
    assert lines["gibbs alpha=0.01"]["K+"] == analysis.rate(2, 3)
    assert "gibbs alpha=1.0" not in lines
