"""Model selection: the degeneracy rule, ICL with MAP labels, the hc start and gmmlab.select,
against constructed cases and R's mclust (icl(), hclass(hc()), qclass, mclustBIC)."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from support import load_script, r_call

import gmmlab
from gmmlab.datasets import load_dataset
from gmmlab.model import hc, metrics, search
from gmmlab.selection import cli
from gmmlab.selection.select import COLUMNS, SelectionResult


@pytest.fixture(scope="module")
def faithful_selection(faithful):
    """Every model at K = 1..4 on Old Faithful: mclust's choice (K = 3) is inside, and the
    cells above it, which cost the most, are left out."""
    return gmmlab.select(faithful, range(1, 5), n_jobs=1)


# ------------------------------------------------------------------ degeneracy


def test_resolution_is_the_smallest_gap_between_distinct_values(faithful):
    resolution = metrics.data_resolution(faithful)
    assert resolution[1] == 1.0  # waiting times in whole minutes
    assert resolution[0] == pytest.approx(0.001, abs=1e-12)  # eruptions to 3 decimals
    assert metrics.data_resolution(np.array([[1.0], [1.0]]))[0] == 0.0


def test_each_degeneracy_rule_and_a_sound_fit():
    rng = np.random.RandomState(0)
    X = np.round(rng.normal(size=(200, 2)), 1)  # resolution 0.1: rounding variance 1/1200
    covariances = np.stack([np.eye(2), np.eye(2)])
    assert metrics.degeneracy(X, [0.5, 0.5], covariances, 1e-6) is None
    few = metrics.degeneracy(X, [0.99, 0.01], covariances, 1e-6)
    assert "weight x N = 2 points, fewer than D + 1 = 3" in few
    narrow = covariances.copy()
    narrow[1] = np.diag([1.0, 0.5 / 1200])  # below the rounding variance along feature 1
    assert "below the data's rounding variance 0.000833" in metrics.degeneracy(
        X, [0.5, 0.5], narrow, 0.0)
    assert metrics.degeneracy(X, [0.5, 0.5], narrow * [[1], [2.1]], 0.0) is None
    floor = np.stack([np.eye(2), np.diag([1.0, 1.5e-3])])
    assert metrics.degeneracy(X, [0.5, 0.5], floor, 0.0) is None
    assert "reg_covar floor" in metrics.degeneracy(X, [0.5, 0.5], floor, 1e-3)


def test_job_records_carry_the_degeneracy_fields(tmp_path):
    from gmmlab.study.job import run_job

    spec = {"dataset": {"name": "few_distinct"}, "backend": {"name": "em", "n_init": 1},
            "n_components": 2, "covariance_type": "full", "seed": 0, "reg_covar": 1e-6}
    record = run_job(spec, tmp_path / "few")
    assert record["degenerate"] is True and "reg_covar floor" in record["degeneracy_reason"]
    spec |= {"dataset": {"name": "faithful"}}
    record = run_job(spec, tmp_path / "faithful")
    assert record["degenerate"] is False and record["degeneracy_reason"] is None
    failed = run_job(spec | {"dataset": {"name": "no_such_set"}}, tmp_path / "bad")
    assert failed["status"] == "failed" and failed["degenerate"] is False


# ------------------------------------------------------------------ ICL


@pytest.mark.mclust
def test_icl_equals_mclusts_icl_with_map_labels(faithful):
    """mclust's icl() on an object holding the E-step of given parameters, against ours on the
    same parameters (opposite sign)."""
    code = """function(x) {
      fit <- Mclust(x, G = 3, modelNames = "EEE", verbose = FALSE)
      e <- estep(data = x, modelName = "EEE", parameters = fit$parameters)
      object <- list(n = nrow(x), z = e$z, bic = bic("EEE", e$loglik, nrow(x), ncol(x), 3))
      list(icl = mclust:::icl.Mclust(object), pro = fit$parameters$pro,
           mean = t(fit$parameters$mean), sigma = fit$parameters$variance$sigma)
    }"""
    out = r_call(code, faithful)
    icl_r, weights, means = out["icl"][0], np.asarray(out["pro"]), np.asarray(out["mean"])
    covariances = np.moveaxis(np.asarray(out["sigma"]), 2, 0)
    criteria = metrics.information_criteria(faithful, weights, means, covariances, "tied")
    assert criteria["icl"] == pytest.approx(-icl_r, abs=1e-6)
    assert criteria["bic"] < criteria["icl"] < criteria["icl_entropy"]


# ------------------------------------------------------------------ hc start


@pytest.mark.mclust
@pytest.mark.parametrize("name, levels", [("faithful", range(1, 10)), ("iris", range(1, 10)),
                                          ("stretched_blobs", range(1, 10)),
                                          ("tutorial_2d", range(28, 41))])
def test_hc_partitions_equal_mclusts(name, levels):
    """hclass(hc(X)) (VVV on scaled-SVD variables, mclust's default) against ours, up to
    relabelling. On tutorial_2d mclust's Fortran merges, going from 28 groups to 27, a pair
    costing -0.192 by its own criterion while pairs costing -0.240 and -0.204 exist, so only
    levels down to 28 can agree there."""
    X = load_dataset(name).X
    levels = list(levels)
    theirs = np.asarray(r_call(
        "function(x, G) hclass(hc(x, modelName = 'VVV', use = 'SVD'), G)", X,
        np.array(levels, dtype=float)))
    ours = hc.agglomerate(hc.scaled_svd(X), levels)
    for column, G in enumerate(levels):
        assert adjusted_rand_score(theirs[:, column], ours[G]) == 1.0, G


@pytest.mark.mclust
@pytest.mark.parametrize("name", ["galaxies", "galaxies_mass", "acidity", "enzyme",
                                  "faithful_eruptions", "faithful_140"])
def test_one_dimensional_hc_start_is_mclusts_quantile_classes(name):
    x = load_dataset(name).X[:, 0]
    for G in range(1, 7):
        theirs = np.asarray(r_call("function(x, k) mclust:::qclass(x, k)", x, G))
        np.testing.assert_array_equal(hc.partition(x[:, None], G), theirs - 1)


def test_hc_start_in_em_is_deterministic_and_reaches_mclusts_faithful_fit(faithful):
    """Two fits from the hc start, each agglomerating afresh (the kept tree dropped), with
    different random_state (which the hc start does not use): bit-identical parameters."""
    fits = []
    for seed in (0, 1):
        hc._agglomeration_of.cache_clear()
        fits.append(gmmlab.EMGaussianMixture(3, covariance_type="tied", init_params="hc",
                                             tol=1e-8, max_iter=1000,
                                             random_state=seed).fit(faithful))
    for name in ("weights_", "means_", "covariances_", "log_likelihood_history_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name), name)
    # mclust's published Old Faithful EEE,3 (hc start): log-likelihood -1126.316
    assert fits[0].score(faithful) * len(faithful) == pytest.approx(-1126.316, abs=1e-3)
    with pytest.raises(ValueError, match="5 samples cannot make 6 groups"):
        hc.partition(faithful[:5], 6)


# ------------------------------------------------------------------ select


def test_select_table_has_every_cell_and_chooses_mclusts_fit(faithful_selection):
    table = faithful_selection.table
    assert list(table.columns) == COLUMNS
    assert len(table) == len(search.available_models(2)) * 4
    assert set(table["status"]) <= {"ok", "degenerate", "failed"}
    best = faithful_selection.best(3)
    # mclust's choice on Old Faithful: EEE (tied), K = 3, BIC 2314.316 (its last E-step)
    assert (best.loc[0, "model"], best.loc[0, "n_components"]) == ("EEE", 3)
    assert best.loc[0, "bic"] == pytest.approx(2314.3, abs=0.05)
    summary = faithful_selection.summary()
    assert "Top 3 by BIC" in summary and "BIC per model and K" in summary


def cell(model, k, status, bic, icl):
    """One row of a select table (columns COLUMNS)."""
    row = dict.fromkeys(COLUMNS)
    return row | {"model": model, "n_components": k, "status": status, "bic": bic, "icl": icl,
                  "loglik": -bic / 2, "n_parameters": 5 * k,
                  "reason": None if status == "ok" else f"{status} on purpose"}


def test_a_degenerate_cell_with_the_lowest_bic_is_never_chosen():
    """A table whose lowest BIC and lowest ICL are a degenerate cell (EII,2), beside a failed
    one: the choice, the criterion grid and the printout all pass it over for the best ok
    cell (VVV,2); and choose_fit, the one rule for the fit a cell keeps, passes over a
    degenerate fit of higher likelihood the same way."""
    table = pd.DataFrame([cell("EII", 1, "ok", 110.0, 112.0),
                          cell("EII", 2, "degenerate", 50.0, 51.0),
                          cell("VVV", 1, "failed", np.nan, np.nan),
                          cell("VVV", 2, "ok", 100.0, 120.0)], columns=COLUMNS)
    result = SelectionResult(table, "bic", 272, 2, 0.0)
    for criterion, expected in (("bic", [("VVV", 2), ("EII", 1)]),
                                ("icl", [("EII", 1), ("VVV", 2)])):
        best = result.best(3, criterion)
        assert list(zip(best["model"], best["n_components"], strict=True)) == expected
    grid = result.criterion_table()
    assert np.isnan(grid.loc[2, "EII"]) and np.isnan(grid.loc[1, "VVV"])
    assert grid.stack().idxmin() == (2, "VVV")
    assert result.marked_table().loc[2, "EII"] == "deg."
    assert result.marked_table().loc[1, "VVV"] == "fail"
    top = result.summary().split("Top 2 by BIC:")[1].split("Top")[0]
    assert "VVV,2" in top and "EII,2" not in top

    assert search.choose_fit([-60.0, -40.0, np.nan], [False, True, False]) == (0, "ok")
    assert search.choose_fit([np.nan, -40.0, -45.0], [False, True, True]) == (1, "degenerate")
    assert search.choose_fit([np.nan, np.nan], [False, True]) == (None, "degenerate")
    assert search.choose_fit([np.nan, np.nan], [False, False]) == (None, "failed")


def test_a_fit_on_tied_waiting_times_is_degenerate_and_set_aside(faithful):
    """The issue's trap: diag (VVI) K = 5 with one component on the 14 eruptions whose waiting
    time is exactly 83 minutes, its waiting variance at the reg_covar floor. Among 20 k-means
    starts some end there; the cell keeps the best of the others."""
    settings = search.SearchSettings(starts=("kmeans",), n_init=20, short_tol=None)
    candidates = search.fit_starts(faithful, "VVI", 5, settings.runs(0))
    trapped = [c for c in candidates if c["degenerate"]]
    assert trapped and all("reg_covar floor" in c["reason"] for c in trapped)
    spike = trapped[0]["estimator"]
    k = int(np.argmin(spike.covariances_[:, 1]))
    assert spike.means_[k, 1] == pytest.approx(83.0)
    assert spike.weights_[k] * len(faithful) == pytest.approx(14, abs=0.1)
    sound = max(c["loglik"] for c in candidates if not c["degenerate"])
    assert max(c["loglik"] for c in trapped) > sound  # the trap has the higher likelihood
    cell = search.fit_cell(faithful, "VVI", 5, settings, seed=0)
    assert cell["status"] == "ok" and cell["loglik"] == pytest.approx(sound)
    assert cell["degenerate_starts"] == len(trapped)




@pytest.mark.mclust
def test_select_bic_against_mclustbic():
    """mclustBIC (its hc start, tight tolerance) on iris, where our hc partitions equal
    mclust's at every level (test above): every cell ok in both has our BIC equal to mclust's
    or lower (a higher likelihood from the other starts), up to 0.01; K = 1 (closed form)
    equal."""
    X = load_dataset("iris").X
    names = search.available_models(4)
    result = gmmlab.select(X, range(1, 6), n_jobs=1)
    theirs = -np.asarray(r_call(
        "function(x, m) { b <- mclustBIC(x, G = 1:5, modelNames = m, "
        "control = emControl(tol = c(1e-10, 1e-10))); unclass(b)[, m, drop = FALSE] }",
        X, np.array(names)))
    table = result.table.set_index(["model", "n_components"])
    compared = 0
    for column, model in enumerate(names):
        for k in range(1, 6):
            cell = table.loc[(model, k)]
            if cell["status"] != "ok" or not np.isfinite(theirs[k - 1, column]):
                continue
            compared += 1
            assert cell["bic"] <= theirs[k - 1, column] + 0.01, (model, k)
            if k == 1:
                assert cell["bic"] == pytest.approx(theirs[0, column], abs=1e-6)
    assert compared >= 16


def test_select_rejects_bad_arguments(faithful):
    with pytest.raises(ValueError, match="criterion must be one of"):
        gmmlab.select(faithful, [1], criterion="bicc")
    with pytest.raises(ValueError, match="not fitted by the EM estimator"):
        gmmlab.select(faithful, [1], models=["XYZ"])
    with pytest.raises(ValueError, match="n_components must be between 1"):
        gmmlab.select(faithful, [0, 1])
    with pytest.raises(ValueError, match=r"n_components holds 1.7; expected whole numbers"):
        gmmlab.select(faithful, [1.7, 2])
    with pytest.raises(ValueError, match=r"models=\[\] selects no model; expected 'all' or"):
        gmmlab.select(faithful, 2, models=[])
    with pytest.raises(ValueError, match="The 'reg_covar' parameter of EMGaussianMixture must "
                                         r"be a float in the range \[0.0, inf\)\. Got nan"):
        gmmlab.select(faithful, 2, reg_covar=float("nan"))
    with pytest.raises(ValueError, match="random_state must be None or an integer >= 0"):
        gmmlab.select(faithful, 2, random_state=-1)


def test_select_takes_an_int_k_and_data_of_any_magnitude(faithful):
    """K = 3 alone; Old Faithful times 1e200 and 1e-200 choose as it does, the criteria shifted
    by exactly 2 N D log(scale) (log L(X s) = log L(X) - N D log s)."""
    models = ["EEE", "VVV"]
    plain = gmmlab.select(faithful, [2, 3], models)
    assert sorted(gmmlab.select(faithful, 3, models).table["n_components"]) == [3, 3]
    for factor in (1e200, 1e-200):
        # the default floor 1e-6 dwarfs the variance of data near 1e-200: no floor there
        scaled = gmmlab.select(faithful * factor, [2, 3], models,
                               reg_covar=0.0 if factor < 1 else 1e-6)
        shift = 2 * faithful.size * np.log(factor)
        assert scaled.best(1)[["model", "n_components"]].equals(
            plain.best(1)[["model", "n_components"]])
        assert scaled.best(1)["bic"][0] == pytest.approx(plain.best(1)["bic"][0] + shift,
                                                         rel=1e-9)


@pytest.mark.e2e
def test_command_prints_the_summary_and_fails_cleanly(tmp_path, capsys):
    cli.main(["faithful_eruptions", "-k", "1-3", "--n-init", "2",
                    "-o", str(tmp_path / "table.csv")])
    out = capsys.readouterr().out
    assert "Top 3 by BIC" in out and (tmp_path / "table.csv").exists()
    done = subprocess.run([sys.executable, "-c", "import sys; "
                           "from gmmlab.selection.cli import main; "
                           "sys.exit(main())", "no_such_data"], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "neither a data set" in done.stderr


def test_command_adds_the_evidence_posterior_over_k_and_sparse_k_plus(capsys):
    """--evidence prints posterior_over_k's table for the K asked (the same numbers as the
    function with the same seed) and a sparse mixture's K+ over the largest K; galaxies'
    velocities: K = 1 is very strongly beaten (ln B > 10)."""
    from gmmlab import posterior_over_k
    from gmmlab.datasets import load_dataset

    cli.main(["galaxies", "-k", "1-2", "--models", "V", "--n-init", "1", "--evidence",
              "--seed", "2"])
    out = capsys.readouterr().out
    expected = posterior_over_k(load_dataset("galaxies").X, [1, 2], random_state=2)
    assert expected.summary() in out
    assert expected.best != 1 and expected.bayes_factor(expected.best, 1)[0] > 10
    found = re.search(r"K_max = 2, [\d.]+ s\): K\+ = (\d) non-empty components", out)
    assert found and found.group(1) == "2"


def test_em_select_backend_gives_selects_cell_in_a_job_record(tmp_path, faithful):
    from gmmlab.study.job import run_job

    cell = search.fit_cell(faithful, "EEE", 3, seed=0)
    spec = {"dataset": {"name": "faithful"}, "backend": {"name": "em_select"},
            "n_components": 3, "covariance_type": "tied", "seed": 0, "reg_covar": 1e-6}
    record = run_job(spec, tmp_path)
    assert record["status"] == "ok" and record["degenerate"] is False
    assert record["loglik"] == pytest.approx(cell["loglik"], abs=1e-9)
    assert record["bic"] == pytest.approx(cell["bic"], abs=1e-9)
    assert record["diagnostics"]["starts"] == 21


def test_hc_on_large_data_agglomerates_a_subset_and_places_the_rest():
    """Above MAX_SAMPLES the agglomeration runs on a fixed random subset; the other samples
    join the nearest group: three far-apart blobs are recovered whole."""
    rng = np.random.RandomState(0)
    truth = np.repeat([0, 1, 2], 200)
    X = rng.normal(size=(600, 2)) + np.array([[0, 0], [12, 0], [0, 12]])[truth]
    tree = hc.Agglomeration(X, max_samples=150)
    assert len(tree.subset) == 150 and len(np.unique(tree.subset)) == 150
    labels = tree.partition(3)
    assert adjusted_rand_score(truth, labels) == 1.0
    np.testing.assert_array_equal(hc.Agglomeration(X, max_samples=150).partition(3), labels)
    # the cached tree of the same data is the same object, and cuts alike
    assert hc.agglomeration(X) is hc.agglomeration(X.copy())


def test_start_coverage_counts_cells_within_the_tolerance_of_the_best_known(tmp_path, capsys):
    start_coverage = load_script("experiments/model_selection/start_coverage.py")

    default = start_coverage.label(start_coverage.DEFAULT)
    table = pd.DataFrame({"data": ["a", "a", "a", "b"], "model": ["E", "E", "V", "V"],
                          "n_components": [1, 2, 1, 1],
                          "best_known": [-10.0, -9.0, -8.0, np.nan],
                          default: [-10.0, -9.0011, -7.9995, -5.0],
                          "hc + kmeans x 5": [-10.0, -9.0009, np.nan, -5.0]})
    known, reached = start_coverage.coverage(table)
    assert len(known) == 3  # the cell without a sound fit known is left out
    assert reached[default].tolist() == [True, False, True]
    assert reached["hc + kmeans x 5"].tolist() == [True, True, False]
    table.to_csv(tmp_path / "table.csv", index=False)
    assert start_coverage.main(["--from-table", str(tmp_path / "table.csv"),
                                "-o", str(tmp_path / "coverage.md")]) == 0
    text = (tmp_path / "coverage.md").read_text()
    assert f"| {default} (select's default) | 2 / 3 | 66.7% |" in text
    misses = text.split("Cells the default misses")[1]
    assert misses.count("\n| a ") == 1 and "-9.001" in misses


def test_a_cell_says_when_a_higher_optimum_was_set_aside_as_degenerate():
    """The kept fit's reason names the highest degenerate fit above it (thyroid EEI,4 in
    issue 27: the hc start's -2867.5 set aside for -2945.3); none above: the kept fit's own."""
    sound = dict(loglik=-2945.3, degenerate=False, start="k-means++", reason=None)
    above = dict(loglik=-2867.5, degenerate=True, start="hc",
                 reason="component 2 has 4.9 points (fewer than D + 1 = 6)")
    below = dict(loglik=-3000.0, degenerate=True, start="random_from_data", reason="tied")
    collapsed = dict(loglik=np.nan, degenerate=True, start="hc", reason="singular")
    reason = search.kept_reason([below, sound, above, collapsed], 1)
    assert reason == ("a higher optimum, log-likelihood -2867.50 against the kept -2945.30 "
                      "(from the hc start), set aside as degenerate: component 2 has 4.9 "
                      "points (fewer than D + 1 = 6)")
    assert search.kept_reason([below, sound, collapsed], 1) is None
    assert search.kept_reason([above], 0) == above["reason"]
