"""The gmmlab command end to end, in subprocesses: runs, sweeps, failures, resume, launchers."""

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from support import gmmlab, results, study_names

PYMC_TINY = ["backend.chains=2", "backend.tune=60", "backend.draws=60"]


@pytest.mark.e2e
@pytest.mark.parametrize("backend, extra", [
    ("em", []), ("sklearn", []), ("sklearn_vb", []), ("pymc", PYMC_TINY),
])
def test_single_run_per_backend_writes_a_complete_result(tmp_path, backend, extra):
    done = gmmlab("dataset=tutorial_1d", f"backend={backend}", "n_components=3", "seed=1",
                  "dataset.test_size=0.2", f"hydra.run.dir={tmp_path}/run", *extra, cwd=tmp_path)
    assert "loglik / sample" in done.stdout and "BIC / AIC / ICL" in done.stdout
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    for key in ("status", "backend", "dataset", "n_components", "covariance_type", "seed",
                "loglik", "loglik_per_sample", "test_loglik_per_sample", "bic", "aic", "icl",
                "icl_entropy", "degenerate", "degeneracy_reason",
                "n_params", "n_iter", "converged", "fit_seconds", "param_error", "permutation",
                "ari", "singular", "diagnostics", "params", "provenance"):
        assert key in record, key
    assert record["status"] == "ok" and record["backend"] == backend
    assert record["n_components"] == 3 and record["n_params"] == 8
    assert set(record["param_error"]) == {"weights", "means", "covariances"}
    provenance = record["provenance"]
    assert provenance["overrides"][:2] == ["dataset=tutorial_1d", f"backend={backend}"]
    assert provenance["versions"]["numpy"] and provenance["host"] and provenance["started"]
    assert provenance["config"]["dataset"]["name"] == "tutorial_1d"
    if backend == "pymc":
        assert (tmp_path / "run" / "posterior.nc").stat().st_size > 0
        assert {"max_rhat", "max_rhat_raw", "min_ess_bulk", "divergences"} <= set(
            record["diagnostics"])
        # 2 x 60 draws: the largest Pareto k passes 0.7 in about half the seeds (measured on
        # tutorial_1d K = 3, seeds 0-5, either density), so only its bookkeeping is checked
        loo = record["loo"]
        assert loo["elpd"] < 0 and loo["pareto_k_max"] > 0
        assert (loo["pareto_k_above_0.7"] > 0) == (loo["pareto_k_max"] > 0.7)
        assert "waic" not in record
    assert not list(tmp_path.rglob(".result.json*"))  # the temporary file was renamed


@pytest.mark.e2e
def test_joblib_sweep_of_twelve_jobs_is_collected_into_one_table(tmp_path):
    sweep = tmp_path / "sweep"
    done = gmmlab("-m", "dataset=tutorial_1d,faithful", "backend=em,sklearn,sklearn_vb",
                  "n_components=2,3", "seed=0", "hydra/launcher=parallel",
                  "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert "collected 12 runs" in done.stdout
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 12 and (table["status"] == "ok").all()
    assert set(table["backend"]) == {"em", "sklearn", "sklearn_vb"}
    assert {"param_error.means", "singular.min_eigenvalue", "bic"} <= set(table.columns)
    assert len(pd.read_parquet(sweep / "results.parquet")) == 12
    # The same sweep with Hydra's basic launcher gives identical numbers.
    basic = tmp_path / "basic"
    gmmlab("-m", "dataset=tutorial_1d,faithful", "backend=em,sklearn,sklearn_vb",
           "n_components=2,3", "seed=0", f"hydra.sweep.dir={basic}", cwd=tmp_path)
    again = pd.read_csv(basic / "results.csv").set_index("run_dir").sort_index()
    first = table.set_index("run_dir").sort_index()
    for column in ("loglik", "bic", "params.weights", "params.means", "params.covariances"):
        assert (first[column] == again[column]).all(), column


@pytest.mark.e2e
def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("a,b\n" + "\n".join(f"{i % 7},{(i * 3) % 11}" for i in range(40)) + "\n")
    bad.write_text("a,b\n1,2\n3,oops\n4,5\n")
    sweep = tmp_path / "sweep"
    gmmlab("-m", "dataset=csv", f"dataset.options.path={good},{bad}", "backend=em,sklearn",
           f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 4
    failed = table[table["status"] == "failed"]
    assert len(failed) == 2 and (table["status"] == "ok").sum() == 2
    assert failed["message"].str.contains("column 'b' is not numeric: data row 2").all()


@pytest.mark.e2e
def test_a_failing_single_run_exits_non_zero_and_records_why(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a\n1\n1\n1\n")
    done = gmmlab("dataset=csv", f"dataset.options.path={bad}", f"hydra.run.dir={tmp_path}/r",
                  cwd=tmp_path, check=False)
    assert done.returncode != 0
    record = json.loads((tmp_path / "r" / "result.json").read_text())
    assert record["status"] == "failed" and "column 'a' is constant" in record["message"]


@pytest.mark.e2e
def test_resume_reruns_exactly_the_missing_results(tmp_path):
    sweep = tmp_path / "sweep"
    args = ("-m", "dataset=tutorial_1d", "backend=em,sklearn", "n_components=1,2,3",
            f"hydra.sweep.dir={sweep}")
    gmmlab(*args, cwd=tmp_path)
    paths = results(sweep)
    assert len(paths) == 6
    kept = {p: json.loads(p.read_text())["provenance"]["started"] for p in paths[::2]}
    for path in paths[1::2]:
        path.unlink()
    done = gmmlab(*args, cwd=tmp_path)
    assert done.stdout.count("skipped (already done)") == 3
    assert done.stdout.count("[gmmlab] result:") == 3
    assert len(results(sweep)) == 6
    for path, started in kept.items():
        assert json.loads(path.read_text())["provenance"]["started"] == started


@pytest.mark.e2e
def test_submitit_local_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    gmmlab("-m", "dataset=faithful", "backend=em,sklearn", "hydra/launcher=local",
           f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 2 and (table["status"] == "ok").all()
    assert table["loglik"].round(3).tolist() == [-1130.264] * 2


@pytest.mark.e2e
@pytest.mark.pymc
def test_repeated_runs_are_identical_including_pymc_draws(tmp_path):
    for backend, extra in (("sklearn_vb", []), ("pymc", PYMC_TINY)):
        records = []
        for run in ("a", "b"):
            gmmlab("dataset=tutorial_1d", f"backend={backend}", "n_components=2", "seed=3",
                   f"hydra.run.dir={tmp_path}/{backend}{run}", *extra, cwd=tmp_path)
            records.append(json.loads((tmp_path / f"{backend}{run}" / "result.json").read_text()))
        assert records[0]["params"] == records[1]["params"], backend
        assert records[0]["loglik"] == records[1]["loglik"]


@pytest.mark.e2e
def test_experiments_are_selectable_and_the_searchpath_shows_conf(tmp_path):
    done = gmmlab("experiment=method_comparison", "--cfg", "hydra", cwd=tmp_path)
    assert "experiments/method_comparison/runs" in done.stdout
    assert "dataset: tutorial_1d,tutorial_2d,stretched_blobs,faithful" in done.stdout
    info = gmmlab("--info", "searchpath", cwd=tmp_path)
    assert str(Path(__file__).resolve().parents[1] / "conf") in info.stdout


@pytest.mark.e2e
def test_the_wheel_ships_conf_and_experiments_and_runs_outside_a_checkout(tmp_path):
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "wheel"), str(root)], check=True, timeout=600)
    wheel = next((tmp_path / "wheel").glob("gmmlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"gmmlab/conf/config.yaml", "gmmlab/conf/dataset/faithful.yaml",
            "gmmlab/experiments/method_comparison.yaml", "gmmlab/data/faithful.csv"} <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = os.environ | {"PYTHONPATH": str(site)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "from gmmlab.study.runner import main; main()"
    info = subprocess.run([sys.executable, "-c", code, "--info", "searchpath"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, check=True)
    assert str(site / "gmmlab" / "conf") in info.stdout
    subprocess.run([sys.executable, "-c", code, "dataset=galaxies", "n_components=3",
                    f"hydra.run.dir={elsewhere}/r"], cwd=elsewhere, env=env, check=True,
                   capture_output=True)
    assert json.loads((elsewhere / "r" / "result.json").read_text())["status"] == "ok"


def sweep_variations(params):
    """Every value of every sweep dimension, the other dimensions at their first value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    values = {o.get_key_element(): list(o.sweep_string_iterator()) if o.is_sweep_override()
              else [o.value()] for o in parsed}
    first = {key: options[0] for key, options in values.items()}
    for key, options in values.items():
        for value in options:
            yield [f"{k}={v}" for k, v in (first | {key: value}).items()]


@pytest.mark.parametrize("experiment", study_names())
def test_every_job_of_every_study_composes_against_the_schemas(experiment):
    """A study whose sweep sets an option its backend lacks (or a value of the wrong type)
    would fail job by job; composing every sweep value up front catches it in seconds."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gmmlab.study.runner import package_or_checkout, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(package_or_checkout("conf")), version_base="1.3"):
        study = compose("config", overrides=[f"experiment={experiment}"],
                        return_hydra_config=True)
        params = dict(study.hydra.sweeper.params or {})
        jobs = list(sweep_variations(params)) if params else [[]]
        for overrides in jobs:
            job = compose("config", overrides=[f"experiment={experiment}", *overrides])
            assert job.backend.name and job.dataset.name, overrides


@pytest.mark.parametrize("experiment, option", [
    ("model_selection_pymc", "backend.covariance_prior=inverse_wishart"),
    ("model_selection_pymc", "backend.draws=150"),
    ("model_selection_mclust", "backend.start=random"),
])
def test_a_single_backend_study_takes_that_backends_options(experiment, option):
    """The documented variants (`gmmlab -m experiment=model_selection_pymc
    backend.covariance_prior=inverse_wishart`) compose: the study's backend is its default,
    not only a sweep value, so its options exist before the sweep applies."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gmmlab.study.runner import package_or_checkout, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(package_or_checkout("conf")), version_base="1.3"):
        study = compose("config", overrides=[f"experiment={experiment}", option])
    key, value = option.split("=")
    assert str(study.backend[key.removeprefix("backend.")]) == value


def test_run_folder_names_are_short_flat_and_keep_old_folders(tmp_path):
    from gmmlab.study.results import run_folder_name

    overrides = ",".join(f"backend.option_{i}=/a/long/path/value/{i}" for i in range(20))
    name = run_folder_name(overrides)
    assert len(name) == 80 + 11 and "/" not in name and name.startswith("backend.option_0=_a_")
    assert run_folder_name(overrides) == name != run_folder_name(overrides + "x")
    assert run_folder_name("backend=em,seed=0", tmp_path) == "backend=em,seed=0-" + (
        hashlib.sha256(b"backend=em,seed=0").hexdigest()[:10])
    (tmp_path / "backend=em,seed=0").mkdir()
    (tmp_path / "backend=em,seed=0" / "result.json").write_text("{}")
    assert run_folder_name("backend=em,seed=0", tmp_path) == "backend=em,seed=0"  # old sweep


def test_stale_reason_names_what_changed(tmp_path):
    from gmmlab.study.results import stale_reason, write_json_atomic

    key = {"config": {"seed": 0, "backend": {"name": "em", "n_init": 1}}, "data": "abc",
           "versions": {"numpy": "2.1.0", "gmmlab": "0.1.0"}}
    record = {"status": "ok", "message": "", "backend": "em", "dataset": "d", "seed": 0,
              "n_components": 2, "provenance": {}, "resume_key": key}
    assert stale_reason(tmp_path, key) == "no result yet"
    write_json_atomic(tmp_path / "result.json", record)
    assert stale_reason(tmp_path, key) is None
    assert stale_reason(tmp_path, key | {"data": "abd"}) == "data changed since the last run"
    assert stale_reason(tmp_path, key | {"config": {"seed": 0, "backend": {
        "name": "em", "n_init": 5}}}) == ("configuration changed since the last run "
                                          "(backend.n_init: 1 -> 5)")
    assert stale_reason(tmp_path, key | {"versions": {"numpy": "2.2.0", "gmmlab": "0.1.0"}}) == (
        "package versions changed since the last run (numpy 2.1.0 -> 2.2.0)")
    write_json_atomic(tmp_path / "result.json", record | {"status": "failed"})
    assert stale_reason(tmp_path, key) == "the last run failed"
