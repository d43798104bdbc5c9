"""Sweeps on a SLURM cluster: a request no node can ever run is refused before submitting, the
wait for the jobs has a limit, and a cluster without accounting is explained once.

Hydra-free: the SLURM launcher (``hydra_plugins.gmmlab.slurm_launcher``) calls these.
"""

import _thread
import getpass
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob


class ClusterError(RuntimeError):
    """A sweep the cluster cannot run as asked: the message names the resource."""


@dataclass(frozen=True)
class Partition:
    """What a SLURM partition can ever provide to one job: its largest node's CPUs and memory,
    and its time limit (None: unlimited)."""

    name: str
    max_cpus: int
    max_memory_mb: int
    time_limit_min: float | None


def partitions():
    """The cluster's partitions by name (``sinfo``), and the default one's name."""
    if shutil.which("sinfo") is None:
        raise ClusterError("sinfo not found: hydra/launcher=slurm needs SLURM's client commands "
                           "on this machine (a login node of the cluster).")
    done = subprocess.run(["sinfo", "--noheader", "--format=%P|%c|%m|%l"], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise ClusterError(f"sinfo failed (is the SLURM controller up?): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    found, default = {}, None
    for line in done.stdout.split("\n"):
        if not line.strip():
            continue
        name, cpus, memory, limit = line.split("|")
        if name.endswith("*"):
            name = default = name[:-1]
        known = found.get(name)
        found[name] = Partition(name, max(int(cpus.rstrip("+")), known.max_cpus if known else 0),
                                max(int(memory.rstrip("+")), known.max_memory_mb if known else 0),
                                minutes(limit))
    return found, default


def minutes(limit):
    """A SLURM time limit ('infinite', 'UNLIMITED', 'MM', 'MM:SS', 'HH:MM:SS', 'D-HH[:MM[:SS]]')
    in minutes; None when unlimited."""
    if limit.lower() in ("infinite", "unlimited", "n/a"):
        return None
    days, _, clock = limit.rpartition("-")
    fields = [float(p) for p in clock.split(":")]
    if days:
        hours, mins, secs = (fields + [0.0, 0.0])[:3]
    elif len(fields) == 3:
        hours, mins, secs = fields
    else:
        hours, (mins, secs) = 0.0, (fields + [0.0])[:2]
    return float(days or 0) * 1440 + hours * 60 + mins + secs / 60


def check_request(*, partition=None, cpus_per_task=1, tasks_per_node=1, mem_gb=None,
                  timeout_min=None):
    """Raise ClusterError, naming the resource, when no node of the partition (default: the
    cluster's default partition) can ever run one job of this size; such a job would wait
    forever as PENDING."""
    found, default = partitions()
    name = partition or default
    if name not in found:
        raise ClusterError(f"partition {name!r} does not exist; the cluster has "
                           f"{sorted(found)} (set hydra.launcher.partition).")
    limits = found[name]
    cpus = cpus_per_task * tasks_per_node
    if cpus > limits.max_cpus:
        raise ClusterError(f"cpus_per_task={cpus_per_task} x tasks_per_node={tasks_per_node} "
                           f"asks for {cpus} CPUs, but no node of partition {name!r} has more "
                           f"than {limits.max_cpus}: the jobs would wait forever. Lower "
                           f"hydra.launcher.cpus_per_task.")
    if mem_gb is not None and mem_gb * 1024 > limits.max_memory_mb:
        raise ClusterError(f"mem_gb={mem_gb} asks for {round(mem_gb * 1024)} MB, but no node of "
                           f"partition {name!r} has more than {limits.max_memory_mb} MB: the "
                           f"jobs would wait forever. Lower hydra.launcher.mem_gb.")
    if (timeout_min is not None and limits.time_limit_min is not None
            and timeout_min > limits.time_limit_min):
        raise ClusterError(f"timeout_min={timeout_min} is above partition {name!r}'s time limit "
                           f"of {limits.time_limit_min:g} minutes: the jobs would wait forever. "
                           f"Lower hydra.launcher.timeout_min.")
    return limits


@contextmanager
def waiting_limit(job_name, max_wait_min):
    """Cancel the jobs named ``job_name`` (``scancel --name``) if the block has not ended after
    ``max_wait_min`` minutes, and interrupt the block (KeyboardInterrupt); yields a dict whose
    ``cancelled`` turns True then."""
    state = {"cancelled": False}

    def cancel():
        state["cancelled"] = True
        subprocess.run(["scancel", f"--name={job_name}"], capture_output=True, timeout=60)
        _thread.interrupt_main()  # the main thread waits in submitit: stop it there

    timer = threading.Timer(max_wait_min * 60, cancel)
    timer.daemon = True
    timer.start()
    try:
        yield state
    finally:
        timer.cancel()


class QuietAccountingWatcher(SlurmInfoWatcher):
    """submitit's job-state watcher for a cluster without accounting as well: there ``sacct``
    fails at every poll, submitit printed its error and a warning each time and never learnt
    that a job had left the queue without a result (cancelled, killed), so it waited forever.
    Here the missing accounting is explained once and ``squeue`` answers instead: a job no
    longer queued is over (submitit then reads its result, or says it left none)."""

    explained = False

    def update(self):
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            self._info_dict.update(self.read_info(done.stdout))
        else:
            if not QuietAccountingWatcher.explained:
                QuietAccountingWatcher.explained = True
                print(f"[gmmlab] this cluster has no job accounting (sacct: "
                      f"{done.stderr.strip()}); job states come from squeue instead.")
            self._info_dict.update(self.read_info(self._queue_states()))
        self._last_status_check = time.time()

    def _queue_states(self):
        """sacct's table (JobID|State|NodeList) from squeue: queued jobs with their state,
        watched jobs no longer queued as COMPLETED."""
        queued = subprocess.run(["squeue", "--noheader", "--array", "--format=%i|%T|%N",
                                 f"--user={getpass.getuser()}"], capture_output=True, text=True)
        rows = {line.split("|")[0]: line for line in queued.stdout.split("\n") if line}
        gone = sorted(self._registered - self._finished - set(rows))
        return "\n".join(["JobID|State|NodeList", *rows.values(),
                          *(f"{job}|COMPLETED|" for job in gone)])


def explain_missing_accounting():
    """Have submitit's SLURM jobs use :class:`QuietAccountingWatcher`."""
    if not isinstance(SlurmJob.watcher, QuietAccountingWatcher):
        SlurmJob.watcher = QuietAccountingWatcher(delay_s=600)
