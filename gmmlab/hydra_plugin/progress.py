"""Sweep progress: ``[gmmlab] run 3 of 32 done (backend=em,dataset=faithful,seed=0), elapsed
12 s, about 1 min 48 s left`` as each run finishes, one line per run.

Hydra calls ``on_job_end`` where the job ran: in the sweep's own process with the basic
launcher, in a worker process with joblib (or on a node with SLURM), so no count can live in
memory. The sweep's start and size go to a file in the sweep directory at the start; every
finished job appends its name there under a file lock and prints its line from the number of
names, in one write, so lines of parallel workers do not interleave.
"""

import fcntl
import json
import os
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

PROGRESS_FILE = ".progress.jsonl"  # line 1: {"started", "n_runs"}; then one finished run a line


class SweepProgress(Callback):
    """Prints ``run i of n, elapsed, estimated time left`` as the runs of a sweep finish."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        start = {"started": time.time(), "n_runs": count_runs(config)}
        (sweep_dir / PROGRESS_FILE).write_text(json.dumps(start) + "\n")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        path = Path(config.hydra.sweep.dir) / PROGRESS_FILE
        if not path.exists():  # a launcher that skipped on_multirun_start
            return
        name = config.hydra.job.override_dirname or config.hydra.job.num
        line = record_finished(path, str(name), time.time())
        os.write(1, line.encode())


def count_runs(config):
    """The number of jobs the sweep expands to: for Hydra's basic sweeper the product of the
    sizes of its swept overrides (command line and ``hydra.sweeper.params``); for a sweeper
    that chooses its jobs (Optuna, Nevergrad), its ``n_trials`` or ``budget`` when set, else
    None (unknown)."""
    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        for key in ("n_trials", "budget"):
            if isinstance(sweeper.get(key), int):
                return sweeper[key]
        return None
    params = config.hydra.sweeper.get("params") or {}
    # the command line overrides the study's params for the same key
    overrides = [*(f"{k}={v}" for k, v in params.items()), *config.hydra.overrides.task]
    by_key = {o.key_or_group: o for o in OverridesParser.create().parse_overrides(overrides)}
    n_runs = 1
    for override in by_key.values():
        if override.is_sweep_override():
            n_runs *= len(list(override.sweep_string_iterator()))
    return n_runs


def record_finished(path, name, now):
    """Append ``name`` to the progress file under an exclusive lock; the line to print."""
    with open(path, "r+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            lines = file.read().splitlines()
            file.write(json.dumps(name) + "\n")
            file.flush()
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
    start = json.loads(lines[0])
    done, n_runs = len(lines), start["n_runs"]
    elapsed = now - start["started"]
    if n_runs is None:  # a sweeper that decides as it goes
        return f"[gmmlab] run {done} done ({name}), elapsed {duration(elapsed)}\n"
    left = elapsed / done * max(n_runs - done, 0)
    remaining = f"about {duration(left)} left" if done < n_runs else "sweep finished"
    return f"[gmmlab] run {done} of {n_runs} done ({name}), elapsed {duration(elapsed)}, " \
        f"{remaining}\n"


def duration(seconds):
    """'4 s', '2 min 05 s', '1 h 03 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
