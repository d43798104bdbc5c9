"""Sweeps through cluster engines: a real one-node SLURM cluster and a local Ray instance.

The SLURM tests need a running cluster (`bash tests/cluster/slurm.sh start` as root, then
SLURM_CONF as it prints; `.ci/run` does both); the Ray tests need the extra `ray`. Each is
skipped, saying so, otherwise. Every launcher must give the basic launcher's numbers.
"""

import os
import subprocess
import time

import pandas as pd
import pytest
from support import (
    SLOW,
    gmmlab,
    needs_ray,
    needs_slurm,
    processes_in,
    results,
    start,
    wait_for,
)

from gmmlab.study.results import read_result

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

# Two data sets x two backends, K = 3, no covariance floor: Old Faithful fits, the three
# repeated points of few_distinct collapse (em: singular error; sklearn: ill-defined).
SWEEP = ["dataset=faithful,few_distinct", "backend=em,sklearn", "n_components=3",
         "reg_covar=0"]
COMPARED = ["status", "loglik", "bic", "n_iter"]


def sweep_table(tmp_path, name, *extra):
    sweep = tmp_path / name
    gmmlab("-m", *SWEEP, *extra, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    table = pd.read_csv(sweep / "results.csv")
    return table.set_index(["dataset", "backend"]).sort_index()[COMPARED]


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """The sweep through Hydra's basic launcher, the reference."""
    return sweep_table(tmp_path_factory.mktemp("basic"), "basic", "hydra/launcher=basic")


@pytest.mark.parametrize("launcher", [
    "parallel", "local",
    pytest.param("slurm", marks=needs_slurm),
    pytest.param("ray_cluster", marks=needs_ray),
])
def test_every_launcher_gives_the_basic_launchers_numbers(tmp_path, basic, launcher):
    extra = ["hydra.launcher.num_cpus=2"] if launcher == "ray_cluster" else []
    table = sweep_table(tmp_path, launcher, f"hydra/launcher={launcher}", *extra)
    assert list(table["status"]) == ["ok", "ok", "failed", "failed"]
    pd.testing.assert_frame_equal(table, basic)


@needs_slurm
def test_slurm_resume_submits_exactly_the_missing_runs(tmp_path):
    arguments = ["-m", "dataset=faithful", "backend=em,sklearn", "n_components=2,3",
                 "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}/sweep"]
    gmmlab(*arguments, cwd=tmp_path)
    submitted = tmp_path / "sweep" / ".submitit"

    def jobs():  # submitit's folder per SLURM job (and per array task)
        return {name for name in os.listdir(submitted) if not name.startswith(".")}

    first = jobs()
    assert len(results(tmp_path / "sweep")) == 4
    again = gmmlab(*arguments, cwd=tmp_path)
    assert "[gmmlab] 4 of 4 runs already done: not submitted" in again.stdout
    assert jobs() == first  # no job submitted
    missing, = (tmp_path / "sweep").glob("backend=sklearn,dataset=faithful,n_components=3-*")
    (missing / "result.json").unlink()
    third = gmmlab(*arguments, cwd=tmp_path)
    assert "[gmmlab] 3 of 4 runs already done: not submitted" in third.stdout
    assert len(jobs() - first) == 1  # one job, of the missing run:
    assert (third.stdout + third.stderr).count("\t#") == 1
    assert (missing / "result.json").exists()
    assert len(pd.read_csv(tmp_path / "sweep" / "results.csv")) == 4


@needs_slurm
@pytest.mark.parametrize("request_, message", [
    ("hydra.launcher.cpus_per_task=999", "asks for 999 CPUs, but no node of partition"),
    ("hydra.launcher.mem_gb=100000", "mem_gb=100000 asks for 102400000 MB, but no node"),
    ("hydra.launcher.partition=nowhere", "partition 'nowhere' does not exist"),
])
def test_a_request_no_node_can_satisfy_fails_at_once_naming_the_resource(tmp_path, request_,
                                                                          message):
    started = time.monotonic()
    done = gmmlab("-m", "dataset=faithful", "n_components=2,3", "hydra/launcher=slurm",
                  request_, f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, check=False)
    assert time.monotonic() - started < 60
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sweep" / ".submitit").exists()  # nothing submitted


@needs_slurm
def test_slurm_stops_waiting_after_max_wait_min_and_cancels(tmp_path):
    """A job that holds every CPU keeps the sweep's job pending; after max_wait_min = 0.1
    (6 s) the sweep cancels it and says so."""
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    blocker = subprocess.run(["sbatch", "--parsable", f"--cpus-per-task={cpus}",
                              "--output=/dev/null", "--wrap=sleep 120"],
                             capture_output=True, text=True, check=True).stdout.strip()
    try:
        started = time.monotonic()
        done = gmmlab("-m", "dataset=faithful", "hydra/launcher=slurm",
                      "hydra.launcher.max_wait_min=0.1", f"hydra.sweep.dir={tmp_path}/sweep",
                      cwd=tmp_path, check=False)
        assert time.monotonic() - started < 60
    finally:
        subprocess.run(["scancel", blocker], check=True)
    assert done.returncode == 1
    assert "had not finished after max_wait_min=0.1 minutes and were cancelled" in done.stderr
    queue = subprocess.run(["squeue", "--noheader", "--format=%j"], capture_output=True,
                           text=True).stdout
    assert "gmmlab-sweep" not in queue


@pytest.mark.parametrize("launcher", [
    pytest.param("slurm", marks=needs_slurm),
    pytest.param("ray_cluster", marks=needs_ray),
])
def test_sigkill_of_a_cluster_sweep_then_resume_reruns_exactly_the_missing_runs(tmp_path,
                                                                              launcher):
    """The sweep's process killed while its jobs run (its SLURM jobs cancelled with it, as when
    a login session dies with the cluster's jobs): the results written are whole, and the same
    command fits exactly the runs without one."""
    sweep = tmp_path / "s"
    args = ["-m", *SLOW, "seed=0,1,2,3", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={sweep}"]
    if launcher == "ray_cluster":
        args.append("hydra.launcher.num_cpus=1")
    process = start(args, tmp_path)
    wait_for(lambda: len(results(sweep)) >= 1 or process.poll() is not None, timeout=300,
             what="a first result")
    process.kill()
    process.wait()
    if launcher == "slurm":
        subprocess.run(["scancel", f"--name=gmmlab-sweep-{process.pid}"], check=True)
        wait_for(lambda: f"gmmlab-sweep-{process.pid}" not in subprocess.run(
            ["squeue", "--noheader", "--format=%j"], capture_output=True, text=True).stdout,
            what="the sweep's SLURM jobs to leave the queue")
    # Ray's workers and a SLURM job's processes work in the sweep's folder: once none is
    # left, no result can appear any more
    wait_for(lambda: not processes_in(tmp_path), timeout=120, what="no process in the sweep")
    kept = {path: read_result(path.parent)["provenance"]["started"] for path in results(sweep)}
    assert 1 <= len(kept) < 4
    gmmlab(*args, cwd=tmp_path)
    paths = results(sweep)
    assert len(paths) == 4
    for path in paths:
        record = read_result(path.parent)
        assert record["status"] == "ok"
        if path in kept:
            assert record["provenance"]["started"] == kept[path]  # not fitted again
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 4 and set(table["seed"]) == {0, 1, 2, 3}


@pytest.mark.parametrize("limit, expected", [
    ("infinite", None), ("UNLIMITED", None), ("30", 30), ("30:15", 30.25),
    ("2:00:00", 120), ("1-00:00:00", 1440), ("2-12", 3600), ("1-1:30", 1530),
])
def test_slurm_time_limits_in_minutes(limit, expected):
    """sinfo's %l formats (minutes, minutes:seconds, hours:minutes:seconds,
    days-hours[:minutes[:seconds]]), as the sbatch manual gives them."""
    from gmmlab.study.cluster import minutes

    assert minutes(limit) == expected
