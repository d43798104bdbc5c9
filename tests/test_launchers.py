"""Hydra's own launcher test suites (``hydra.test_utils.launcher_common_tests``) run against
gmmlab's launchers, parametrised by launcher name as Hydra's plug-ins (joblib, submitit) test
themselves: ``gmmlab_slurm`` through a SLURM cluster (`bash tests/cluster/slurm.sh start` as
root, then SLURM_CONF as it prints; `.ci/run` does both) and ``gmmlab_ray`` through a local Ray
instance (the extra ``ray``). Skipped, saying so, without them.

The suites' applications are Hydra's test apps, not gmmlab's: gmmlab's launchers must behave
as any Hydra launcher there (sweep directories, job numbering, overrides, task names). Their
configs are registered by :func:`gmmlab.study.runner.register_configs`, which gmmlab's
command calls: here a fixture does, and the integration suite's subprocesses call it first.
"""

import sys

import pytest
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from support import needs_ray, needs_slurm

from gmmlab.study.runner import register_configs

# Every job of a suite starts a Ray instance or waits for SLURM (the Ray half took 430 s on
# this machine, shared): run by `make test-cluster` (tests/cluster/slurm.sh test), not by
# `make test`.
pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The launchers' settings for a test app's one-line jobs: SLURM's smallest request.
SETTINGS = {
    "gmmlab_slurm": ["hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1",
                     "hydra.launcher.mem_gb=1", "hydra.launcher.max_wait_min=10"],
    "gmmlab_ray": ["hydra.launcher.num_cpus=1"],
}
LAUNCHERS = [pytest.param("gmmlab_slurm", SETTINGS["gmmlab_slurm"], marks=needs_slurm),
             pytest.param("gmmlab_ray", SETTINGS["gmmlab_ray"], marks=needs_ray)]

# The integration suite's apps run as `python -c BOOT APP.py OVERRIDES...`: gmmlab's launcher
# configs registered, then the app as __main__.
BOOT = ("import runpy, sys; from gmmlab.study.runner import register_configs; "
        "register_configs(); sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module", autouse=True)
def gmmlab_launchers():
    """gmmlab's launcher configs in Hydra's ConfigStore, once: the suites'
    hydra_restore_singletons then keeps and restores the store with them around every test."""
    register_configs()


@pytest.mark.parametrize("launcher_name, overrides", LAUNCHERS)
class TestGmmlabLaunchers(LauncherTestSuite):
    pass


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [
    pytest.param({}, ["-m", "hydra/hydra_logging=disabled", "hydra/job_logging=disabled",
                      f"hydra/launcher={name}", *SETTINGS[name]], marks=marks, id=name)
    for name, marks in (("gmmlab_slurm", needs_slurm), ("gmmlab_ray", needs_ray))])
class TestGmmlabLaunchersIntegration(IntegrationTestSuite):
    def generate_custom_cmd(self):
        def boot(cmd, filename):
            return [sys.executable, "-c", BOOT, *cmd[1:]]

        return boot
