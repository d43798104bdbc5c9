"""Hydra's own sweepers drive gmmlab as any Hydra app: each job returns its ``objective``
column (BIC by default; +inf for a failed run when the sweeper minimises), progress counts the
sweeper's trials, and a sweep whose every run failed exits non-zero. Tested with the Optuna
sweeper (the optional extra ``optuna``)."""

import importlib.util
import os

import pandas as pd
import pytest
import yaml
from support import PLUGINS, gmmlab

pytestmark = pytest.mark.e2e

needs_optuna = pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
    reason="needs the optional extra optuna (hydra-optuna-sweeper)")


@needs_optuna
def test_optuna_minimises_bic_over_k_on_old_faithful_and_finds_the_grids_minimum(tmp_path):
    sweep = tmp_path / "s"
    gmmlab("-m", "dataset=faithful", "n_components=1,2,3,4,5", f"hydra.sweep.dir={sweep}",
           cwd=tmp_path)
    grid = pd.read_csv(sweep / "results.csv").set_index("n_components")["bic"]
    # into the same folder: a cell the grid fitted is found again (resume), not refitted
    done = gmmlab("-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=8",
                  "hydra.sweeper.sampler.seed=0", "dataset=faithful",
                  "n_components=choice(1,2,3,4,5)", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    found = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert found["best_params"]["n_components"] == grid.idxmin() == 2
    assert found["best_value"] == pytest.approx(grid.min(), rel=1e-12)
    assert "run 8 of 8 done" in done.stdout and "run 9 of" not in done.stdout
    assert "[gmmlab] result:" not in done.stdout  # every trial was a cell of the grid


@needs_optuna
def test_a_sweep_whose_every_run_failed_exits_non_zero_under_optuna(tmp_path):
    done = gmmlab("-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                  "backend=custom", "backend.target=bad_backends:nan_weights",
                  "n_components=choice(1,2)", f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path,
                  check=False, env=plugin_path())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gmmlab: every run of the sweep failed (" in done.stderr
    assert "Traceback" not in done.stderr and "No trials are completed yet" not in done.stderr
    best = yaml.safe_load((tmp_path / "s" / "optimization_results.yaml").read_text())
    assert best["best_value"] == float("inf")  # a failed run is the worst value


def plugin_path():
    """The environment with tests/plugins first on the path."""
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(PLUGINS), *inherited])}
