"""The Ray launcher behind ``hydra/launcher=ray_cluster``: every job a Ray task, on a local Ray
instance or an existing cluster (``address``). Needs the extra ``ray``.

gmmlab has its own instead of hydra-ray-launcher, whose every release pins cloudpickle below 3
(joblib 1.6 needs 3) and pulls in boto3 for its AWS part; the work here is Ray's ``remote`` and
``get`` around the job function of Hydra's joblib launcher.
"""

import dataclasses
import os
import sys
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra_plugins.hydra_joblib_launcher._core import execute_job


@dataclasses.dataclass
class RayLauncherConf:
    """Where to run (``address``: None starts a local instance, or joins RAY_ADDRESS), the
    CPUs of a local instance (None: all) and the CPUs each job reserves."""

    _target_: str = "hydra_plugins.gmmlab.ray_launcher.RayLauncher"
    address: str | None = None
    num_cpus: int | None = None
    cpus_per_job: float = 1.0


class RayLauncher(Launcher):
    def __init__(self, address=None, num_cpus=None, cpus_per_job=1.0):
        self.address, self.num_cpus, self.cpus_per_job = address, num_cpus, cpus_per_job
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config):
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides, initial_job_idx):
        try:
            import ray
        except ImportError:
            sys.exit("gmmlab: hydra/launcher=ray_cluster needs Ray: pip install 'gmmlab[ray]' "
                     "(in a checkout: make test EXTRAS=dev,ray).")
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # each job's summary, not "repeated 3x"
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False)
        run = ray.remote(num_cpus=self.cpus_per_job)(execute_job)
        state = Singleton.get_state()
        jobs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            print(f"[gmmlab] Ray job #{idx}: {' '.join(filter_overrides(overrides))}")
            jobs.append(run.remote(idx, overrides, self.hydra_context, self.config,
                                   self.task_function, state))
        return ray.get(jobs)
