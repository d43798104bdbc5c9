"""Reports generated from a small real sweep: tables with the right rows, figures that exist."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    subprocess.run([str(BIN / "gmmlab"), "-m", "dataset=tutorial_1d",
                    "backend=em,sklearn,pymc_quick", "n_components=2,3", "seed=0,1",
                    "hydra/launcher=parallel", f"hydra.sweep.dir={folder / 'runs'}"],
                   cwd=folder, check=True, capture_output=True, timeout=900)
    return folder


def test_report_references_existing_figures_and_has_the_right_tables(sweep):
    done = subprocess.run([str(BIN / "gmmlab-report"), str(sweep / "runs"), "-o",
                           str(sweep / "out")], capture_output=True, text=True, check=True)
    assert "report.html" in done.stdout
    page = (sweep / "out" / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) >= 5
    for image in images:
        assert (sweep / "out" / image).stat().st_size > 1000
    tables = pd.read_html(sweep / "out" / "report.html")
    accuracy, comparison, chosen = tables[:3]
    assert len(accuracy) == 3 and (accuracy["true K"] == 3).all()
    assert accuracy.loc[accuracy["variant"] == "em", "BIC"].item() == "2/2"
    assert len(comparison) == 6  # 3 backends x 2 values of K
    assert set(comparison["variant"]) == {"em", "sklearn", "pymc_quick"}
    assert (comparison["runs"] == 2).all()
    assert len(chosen) == 3 and chosen.loc[chosen["variant"] == "em", "BIC"].item() == 3
    singular = [t for t in tables if "min eig / var" in t.columns][0]
    assert len(singular) == 12
    loo = [t for t in tables if "elpd_diff" in t.columns]
    assert len(loo) == 2  # pymc_quick, seeds 0 and 1, each across K = 2, 3
    results = pd.read_csv(sweep / "runs" / "results.csv")
    for seed, table in enumerate(loo):
        assert sorted(table["K"]) == [2, 3] and table["elpd_diff"].max() == 0
        for row in table.itertuples():  # az.compare agrees with the LOO stored by each run
            stored = results.loc[(results["backend"] == "pymc") & (results["seed"] == seed)
                                 & (results["n_components"] == row.K), "loo.elpd"]
            assert row.elpd == pytest.approx(stored.item(), abs=1e-3)
    markdown = (sweep / "out" / "report.md").read_text()
    drifting = singular["outcome"].str.startswith("posterior drifts").any()
    assert ("came within 1e-3 of the data variance of a collapse" in markdown) == drifting
    assert markdown.count("![") == len(images)
    assert "Versions: gmmlab" in markdown and "gmmlab-report" in markdown


@pytest.mark.parametrize("row, expected", [
    ({"status": "failed", "singular.backend_error": "SingularCovarianceError: Covariance of "
      "component 1 became singular at initialisation: ..."}, "error at initialisation"),
    ({"status": "failed", "message": "SingularCovarianceError: Covariance of component 0 became "
      "singular at iteration 8: smallest eigenvalue 1e-16"}, "error at iteration 8"),
    ({"status": "failed", "singular.backend_error": "ValueError: ... ill-defined empirical "
      "covariance ..."}, "error: ill-defined covariance"),
    ({"status": "singular", "singular.collapse.iteration": 7.0},
     "collapsed, stopped at iteration 7"),
    ({"status": "ok", "singular.n_resets": 3.0, "reg_covar": 0.0}, "re-seeded 3 time(s)"),
    ({"status": "ok", "reg_covar": 1e-3, "singular.min_eigenvalue": 1.2e-3, "backend": "em"},
     "held at the reg_covar floor"),
    ({"status": "ok", "reg_covar": 0.0, "singular.min_eigenvalue": 0.2, "backend": "pymc"},
     "posterior kept away by its prior"),
    ({"status": "ok", "reg_covar": 0.0, "diagnostics.min_eigenvalue_relative_any_draw": 1e-4,
      "diagnostics.max_treedepth_share": 0.02, "backend": "pymc"},
     "posterior kept away by its prior"),
    ({"status": "ok", "reg_covar": 0.0, "singular.min_eigenvalue_relative": 0.07,
      "diagnostics.min_eigenvalue_relative_any_draw": 5e-6, "diagnostics.divergences": 0,
      "diagnostics.max_treedepth_share": 1.0, "diagnostics.max_rhat": 1.95, "backend": "pymc"},
     "posterior drifts into the collapse (100% of draws at the tree-depth cap, R-hat 1.95)"),
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
def test_singularity_outcome_phrases(row, expected):
    from gmmlab.reports import outcome

    assert outcome(pd.Series(row)) == expected
