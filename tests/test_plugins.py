"""User backends and data sets defined outside the package (tests/plugins/toy_methods.py), named
on the command line or registered by an installed package's entry points."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.cluster import KMeans
from support import PLUGINS, gmmlab, plugin_env, results

from gmmlab.datasets import load_dataset

pytestmark = pytest.mark.e2e

sys.path.insert(0, str(PLUGINS))  # this process loads the toy data set too
TARGET = "toy_methods:fit_cluster_moments"


def mixture_loglik(X, weights, means, covariances):
    density = sum(w * stats.multivariate_normal(m, c).pdf(X)
                  for w, m, c in zip(weights, means, covariances, strict=True))
    return float(np.log(density).sum())


def cluster_moments(X, n_components, seed, shrinkage):
    """The toy method, recomputed here: k-means shares, means and shrunk covariances."""
    labels = KMeans(n_components, n_init=10, random_state=seed).fit_predict(X)
    parts = [X[labels == k] for k in range(n_components)]
    covariances = [np.cov(p.T, bias=True) for p in parts]
    covariances = [(1 - shrinkage) * c + shrinkage * np.diag(np.diag(c)) for c in covariances]
    return [len(p) / len(X) for p in parts], [p.mean(axis=0) for p in parts], covariances


def test_a_backend_from_outside_the_package_runs_in_a_sweep_collect_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    gmmlab("-m", "dataset=faithful", "backend=custom", f"backend.target={TARGET}",
           "n_components=2,3", "+backend.shrinkage=0,0.5", f"hydra.sweep.dir={sweep}",
           cwd=tmp_path, env=plugin_env())
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert set(table["variant"]) == {f"{TARGET} shrinkage=0", f"{TARGET} shrinkage=0.5"}
    assert set(table["backend"]) == {TARGET}
    X = load_dataset("faithful").X
    for path in results(sweep):
        record = json.loads(path.read_text())
        shrinkage = record["provenance"]["config"]["backend"]["shrinkage"]
        expected = mixture_loglik(X, *cluster_moments(X, record["n_components"], 0, shrinkage))
        assert record["loglik"] == pytest.approx(expected, rel=1e-10)
        assert record["n_params"] == {2: 11, 3: 17}[record["n_components"]]
        assert sum(record["diagnostics"]["cluster_sizes"]) == 272
    gmmlab(str(sweep), "-o", str(tmp_path / "report"), command="gmmlab-report", cwd=tmp_path)
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"{TARGET} shrinkage=0.5" in report


def test_a_failing_user_backend_is_recorded_and_finished_runs_resume(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ("-m", "dataset=faithful", "backend=custom",
                 "backend.target=toy_methods:fit_up_to_two", "n_components=2,3",
                 f"hydra.sweep.dir={sweep}")
    gmmlab(*arguments, cwd=tmp_path, env=plugin_env())
    table = pd.read_csv(sweep / "results.csv").set_index("n_components")
    assert table.loc[2, "status"] == "ok" and table.loc[3, "status"] == "failed"
    assert table.loc[3, "message"] == "ValueError: fit_up_to_two cannot fit 3 components"
    again = gmmlab(*arguments, cwd=tmp_path, env=plugin_env())
    assert again.stdout.count("skipped (already done)") == 1


def test_swept_targets_are_checked_job_by_job(tmp_path):
    """With the target itself swept, the sweep's base configuration has none: each job
    checks its own, and a bad one is a failed record, not the end of the sweep."""
    sweep = tmp_path / "sweep"
    gmmlab("-m", "backend=custom", f"backend.target={TARGET},no_such_module:fit",
           "n_components=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path, env=plugin_env())
    table = pd.read_csv(sweep / "results.csv").set_index("backend")
    assert table.loc[TARGET, "status"] == "ok"
    assert table.loc["no_such_module:fit", "status"] == "failed"
    assert "cannot import module 'no_such_module'" in table.loc["no_such_module:fit", "message"]


def test_a_user_data_set_function_feeds_every_backend(tmp_path):
    done = gmmlab("dataset=custom", "dataset.target=toy_methods:two_blobs",
                  "+dataset.options.n_samples=300", "backend=em", "n_components=2",
                  f"hydra.run.dir={tmp_path}/r", cwd=tmp_path, env=plugin_env())
    record = json.loads((tmp_path / "r" / "result.json").read_text())
    assert record["status"] == "ok" and record["n_samples"] == 300
    assert record["data_setting"] == "toy_methods:two_blobs n_samples=300"
    assert sorted(np.round(np.array(record["params"]["means"])[:, 0])) == [0, 6]
    assert record["dataset"] == "toy_methods:two_blobs"
    assert "toy_methods:two_blobs N=300 D=2" in done.stdout


def test_an_installed_package_adds_a_backend_and_a_data_set_by_entry_point(tmp_path):
    """A distribution's metadata on the path (as pip would install it) registers
    ``cluster_moments`` and ``two_blobs``; the backend's options are checked like built-in
    ones; a plugin named like a built-in backend is left out, with a warning."""
    info = tmp_path / "site" / "toy_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[gmmlab.backends]\ncluster_moments = {TARGET}\nem = {TARGET}\n\n"
        "[gmmlab.datasets]\ntwo_blobs = toy_methods:two_blobs\n")
    env = plugin_env(tmp_path / "site")
    gmmlab("dataset=two_blobs", "backend=cluster_moments", "backend.shrinkage=0.5",
           f"hydra.run.dir={tmp_path}/r", cwd=tmp_path, env=env)
    record = json.loads((tmp_path / "r" / "result.json").read_text())
    assert record["status"] == "ok" and record["backend"] == "cluster_moments"
    X = load_dataset("custom", target="toy_methods:two_blobs").X
    assert record["loglik"] == pytest.approx(
        mixture_loglik(X, *cluster_moments(X, 2, 0, 0.5)), rel=1e-10)
    own = gmmlab("backend=em", f"hydra.run.dir={tmp_path}/em", cwd=tmp_path, env=env)
    assert "registers 'em' in gmmlab.backends, a name gmmlab has itself" in own.stderr
    assert json.loads((tmp_path / "em" / "result.json").read_text())["n_iter"] > 0  # EM's
    done = gmmlab("backend=cluster_moments", "backend.shrinkage_=1",
                  f"hydra.run.dir={tmp_path}/bad", cwd=tmp_path, env=env, check=False)
    assert done.returncode == 1
    assert "Key 'shrinkage_' not in 'Cluster_MomentsBackendSchema'" in done.stderr


@pytest.mark.parametrize("overrides, message", [
    (["backend.target=no_such_module:fit"],
     "backend target 'no_such_module:fit': cannot import module 'no_such_module'"),
    (["backend.target=toy_methods:fit_nothing"],
     "backend target 'toy_methods:fit_nothing': module 'toy_methods' has no function "
     "'fit_nothing'"),
    (["backend.target=toy_methods:fit_without_data"],
     "fit_without_data() must take the parameters X and n_components; it lacks X"),
    (["backend.target=toy_methods"], "is not of the form module:function"),
    ([f"backend.target={TARGET}", "+backend.alpha=1"],
     "got an unexpected keyword argument 'alpha'; its options are ['shrinkage']"),
    ([f"backend.target={TARGET}", "covariance_type=diag"],
     "fit_cluster_moments() has no covariance_type parameter, so it fits full covariances"),
    ([], "backend 'custom' needs a target: backend.target=module:function"),
])
@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_bad_target_fails_before_anything_runs_naming_it(tmp_path, overrides, message, mode):
    where = (["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path}/out"] if mode == "sweep"
             else [f"hydra.run.dir={tmp_path}/out"])
    done = gmmlab(*where, "backend=custom", *overrides, cwd=tmp_path, env=plugin_env(),
                  check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not results(tmp_path)


def test_a_bad_data_set_target_fails_before_anything_runs(tmp_path):
    done = gmmlab("dataset=custom", "dataset.target=toy_methods:no_data",
                  f"hydra.run.dir={tmp_path}/out", cwd=tmp_path, env=plugin_env(), check=False)
    assert done.returncode == 1
    assert ("data set target 'toy_methods:no_data': module 'toy_methods' has no function "
            "'no_data'") in done.stderr
    assert not results(tmp_path)
