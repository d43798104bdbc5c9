"""The SLURM launcher behind ``hydra/launcher=slurm``: submitit's, with resume before
submission, a request check and a limit on waiting. The cluster logic is
:mod:`gmmlab.study.cluster`.
"""

import dataclasses
import os
import sys
from pathlib import Path

from hydra_plugins.hydra_submitit_launcher import config as submitit_config
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import open_dict
from submitit.core.utils import UncompletedJobError

from gmmlab.study import cluster
from gmmlab.study.spec import finished_before


@dataclasses.dataclass
class SlurmLauncherConf(submitit_config.SlurmQueueConf):
    """submitit's SLURM settings, plus how long a sweep waits for its jobs."""

    _target_: str = "hydra_plugins.gmmlab.slurm_launcher.SlurmLauncher"
    max_wait_min: float = 24 * 60


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """submitit's SLURM launcher that submits only the runs not done yet (the resume rule,
    :func:`gmmlab.study.spec.finished_before`), refuses before submitting a request no node of the
    partition can run, and stops waiting after ``max_wait_min`` minutes, cancelling the
    sweep's jobs."""

    def __init__(self, max_wait_min, **params):
        super().__init__(**params)
        self.max_wait_min = max_wait_min

    def launch(self, job_overrides, initial_job_idx):
        todo = [overrides for idx, overrides in enumerate(job_overrides, initial_job_idx)
                if not self._done(overrides, idx)]
        if len(todo) < len(job_overrides):
            print(f"[gmmlab] {len(job_overrides) - len(todo)} of {len(job_overrides)} runs "
                  "already done: not submitted")
        if not todo:
            return []
        try:
            cluster.check_request(
                partition=self.params.get("partition"),
                cpus_per_task=self.params.get("cpus_per_task") or 1,
                tasks_per_node=self.params.get("tasks_per_node") or 1,
                mem_gb=self.params.get("mem_gb"), timeout_min=self.params.get("timeout_min"))
        except cluster.ClusterError as error:
            sys.exit(f"gmmlab: {error}")
        cluster.explain_missing_accounting()
        self.params["name"] = f"gmmlab-sweep-{os.getpid()}"  # names this sweep's jobs
        with cluster.waiting_limit(self.params["name"], self.max_wait_min) as waiting:
            try:
                return super().launch(todo, initial_job_idx)
            except (Exception, KeyboardInterrupt) as error:
                if waiting["cancelled"]:
                    sys.exit(f"gmmlab: the sweep's jobs had not finished after max_wait_min="
                             f"{self.max_wait_min:g} minutes and were cancelled (squeue shows "
                             "why jobs wait); finished runs are kept and resume.")
                if isinstance(error, UncompletedJobError):
                    sys.exit(f"gmmlab: a SLURM job ended without a result (cancelled or "
                             f"killed?): {str(error).splitlines()[0]}. Finished runs are kept; "
                             "the same command resumes the rest.")
                raise

    def _done(self, overrides, idx):
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.num = idx  # as submitit sets it: a sweep.subdir may name it
        output_dir = Path(config.hydra.sweep.dir) / config.hydra.sweep.subdir
        return finished_before(config, output_dir)
