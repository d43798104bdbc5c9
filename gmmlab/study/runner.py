"""The ``gmmlab`` command: a Hydra app that composes the configuration and runs one job.

    gmmlab dataset=faithful backend=pymc n_components=3 seed=1
    gmmlab -m dataset=faithful,galaxies backend=em,sklearn n_components=1,2,3 seed=0,1
    gmmlab -m experiment=method_comparison

Config groups live in ``conf/`` (``dataset/``, ``backend/``, ``hydra/launcher/``), named studies
in ``experiments/`` (group ``experiment``). Typed schemas (below, in Hydra's ConfigStore) turn a
typo or a bad value into an error before anything runs. This module and gmmlab's launchers
(``hydra_plugins.gmmlab``) are the only ones that import Hydra; the work itself is
:func:`gmmlab.study.job.run_job`.
"""

import dataclasses
import inspect
import logging
import math
import os
import signal
import sys
import threading
import time
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra_plugins.gmmlab.ray_launcher import RayLauncher, RayLauncherConf
from hydra_plugins.gmmlab.slurm_launcher import SlurmLauncher, SlurmLauncherConf
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gmmlab import backends, console, datasets, plugins
from gmmlab.console import describe, run_command
from gmmlab.model import gaussian
from gmmlab.study import results
from gmmlab.study.job import resume_key, run_job, summary_table
from gmmlab.study.spec import check_plugins, job_spec

# conf/config.yaml names a sweep's run folders ${gmmlab_run_folder:...}: see
# gmmlab.study.results.run_folder_name (short, safe, a hash of the overrides).
OmegaConf.register_new_resolver("gmmlab_run_folder", results.run_folder_name, replace=True)
# The process of the gmmlab command, so its joblib workers can end with it.
SWEEP_PID = "GMMLAB_SWEEP_PID"

# scikit-learn's four names and mclust's fourteen (each backend says which it fits).
CovarianceType = Enum("CovarianceType", {name: name for name in
                                         gaussian.ALL_COVARIANCE_TYPES})


@dataclasses.dataclass
class DatasetSchema:
    """A data set: registry name, loader options, held-out split, standardisation."""

    name: str = MISSING
    target: str | None = None  # for dataset=custom: module:function
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    true_components: int | None = None  # the true or customary K, for studies to use
    test_size: float | None = None
    split_seed: int = 0
    standardize: bool = False


@dataclasses.dataclass
class RunSchema:
    dataset: Any = MISSING
    backend: Any = MISSING
    n_components: int = 2
    covariance_type: CovarianceType = CovarianceType.full
    seed: int = 0
    reg_covar: float = 1e-6
    alignment_cost: str = "means"
    save_idata: bool = True
    resume: bool = True
    objective: str = "bic"


def backend_schema(name):
    """A dataclass whose fields are the options of backend ``name``'s fit function (its
    parameters but the data, K, covariance type, seed and reg_covar), with their defaults (or
    mandatory): the schema cannot drift from the code."""
    parameters = inspect.signature(backends.resolve(name)).parameters.values()
    fields = [("name", str, dataclasses.field(default=name))]
    for parameter in parameters:
        if (parameter.name not in backends.STANDARD_ARGUMENTS and parameter.kind in (
                inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)):
            default = MISSING if parameter.default is inspect.Parameter.empty else (
                parameter.default)
            kind = Any if default is None or default is MISSING else type(default)
            fields.append((parameter.name, kind, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(f"{name.title()}BackendSchema", fields)


def package_or_checkout(folder):
    """``gmmlab/<folder>`` when installed from a wheel, else the checkout's top-level one."""
    packaged = resources.files("gmmlab") / folder
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / folder


def register_configs():
    """Schemas, gmmlab's launchers, installed packages' backends and data sets (entry points),
    and the named studies of experiments/ into Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunSchema)
    store.store(group="dataset", name="dataset_schema", node=DatasetSchema)
    for launcher, schema, name in ((SlurmLauncher, SlurmLauncherConf, "gmmlab_slurm"),
                                   (RayLauncher, RayLauncherConf, "gmmlab_ray")):
        Plugins.instance().register(launcher)  # see hydra_plugins.gmmlab
        store.store(group="hydra/launcher", name=name, node=schema, provider="gmmlab")
    for name in backends.BUILT_IN:
        store.store(group="backend", name=f"{name}_schema", node=backend_schema(name))
    for name in installed(backends.ENTRY_POINT_GROUP, [*backends.BUILT_IN, backends.CUSTOM]):
        try:
            store.store(group="backend", name=name, node=backend_schema(name))
        except plugins.PluginError as error:
            print(f"[gmmlab] warning: installed backend {name!r} left out: {error}",
                  file=sys.stderr)
    for name in installed(datasets.ENTRY_POINT_GROUP, [*datasets.REGISTRY, datasets.CUSTOM]):
        store.store(group="dataset", name=name, node=DatasetSchema(name=name))
    for path in sorted(package_or_checkout("experiments").glob("*.yaml")):
        node = OmegaConf.load(path)
        node.pop("study", None)  # the question the study asks, for its report: not a setting
        store.store(group="experiment", name=path.stem, node=node, package="_global_")


def installed(group, own):
    """Names installed packages register under an entry-point group, but gmmlab's ``own``
    (left out with a warning: the built-in one is used)."""
    for name in plugins.registered(group):
        if name in own:
            print(f"[gmmlab] warning: an installed package registers {name!r} in {group}, a "
                  "name gmmlab has itself; gmmlab's is used.", file=sys.stderr)
        else:
            yield name


class CheckTargets(Callback):
    """A bad backend or data-set target stops a sweep before any job runs. Where the backend,
    the data set or the covariance type is itself swept, the sweep's base configuration is not
    a job: then every job checks its own and records the failure."""

    def on_multirun_start(self, config, **kwargs):
        if any(key.split(".")[0] in ("backend", "dataset", "covariance_type")
               for key in swept_keys(config)):
            return
        try:
            check_plugins(config)
        except plugins.PluginError as error:
            sys.exit(f"gmmlab: {error}")


def swept_keys(config):
    """The keys a multirun sweeps, from the command line and ``hydra.sweeper.params``."""
    params = config.hydra.sweeper.get("params") or {}
    overrides = [*config.hydra.overrides.task, *(f"{k}={v}" for k, v in params.items())]
    parsed = OverridesParser.create().parse_overrides(overrides)
    return {override.key_or_group for override in parsed if override.is_sweep_override()}


class CollectResults(Callback):
    """At the end of a multirun, gather the sweep's result.json files into
    results.csv/.parquet.

    Hydra skips this when a job raised; jobs here record failures instead of raising, and
    ``gmmlab-collect`` does the same by hand. Hydra turns a callback's exception into a
    warning, so a failed collect ends the command here with exit status 1, naming the file and
    the cause; so does a sweep whose every run failed (after collecting them).
    """

    def on_multirun_end(self, config, **kwargs):
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            table = results.collect(sweep_dir)
        except (OSError, ValueError, ImportError) as error:
            stale = sweep_dir / "results.csv"
            left = (f" {stale} is left as it was, from an earlier collect: stale."
                    if stale.exists() else "")
            raise SystemExit(f"gmmlab: the sweep's runs are done, but collecting them failed: "
                             f"{describe(error)}{left} Run gmmlab-collect {sweep_dir} once the "
                             "cause is fixed.") from None
        print(f"[gmmlab] collected {len(table)} runs ({results.counts(table)}) into "
              f"{sweep_dir / 'results.csv'}")
        if (table["status"] == "failed").all():
            raise SystemExit(f"gmmlab: every run of the sweep failed ({len(table)} runs); the "
                             f"messages are in the column 'message' of {sweep_dir / 'results.csv'}"
                             ".")


def objective_value(record, objective, direction=None):
    """What a sweep's job returns to Hydra's sweeper: the record's ``objective`` column (e.g.
    'bic', 'loglik_per_sample', 'diagnostics.max_rhat') as a float. A failed run, or a run
    without a finite value, gives the worst value for the sweeper's ``direction`` (+inf when
    it minimises, -inf when it maximises, so an optimiser moves away) or NaN when there is no
    direction. Raises ConfigError for a column no record has."""
    direction = str(direction or "").lower()
    worst = math.inf if "min" in direction else -math.inf if "max" in direction else math.nan
    if record["status"] == "failed":
        return worst
    value = record
    for part in objective.split("."):
        if not isinstance(value, dict) or part not in value:
            columns = sorted(k for k, v in record.items() if isinstance(v, int | float | None))
            raise ConfigError(f"objective={objective!r}: the record has no such column; "
                              f"expected one of {columns}.")
        value = value[part]
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return worst


class ConfigError(ValueError):
    """A configuration a single run cannot start from (a bad target, a missing value)."""


def run(cfg):
    """The Hydra task: one job, under its folder's lock, skipped when its result is done for
    the same configuration, data and versions (resume), else run and recorded.

    A configuration error stops a single run (exit 1, the message) and is the failed record of
    its job in a sweep, which goes on. Returns the record's ``objective`` column, what Hydra's
    sweepers (Optuna, Nevergrad, Ax) optimise: see :func:`objective_value`.
    """
    # Hydra sets the root logger to INFO: PyTensor's and rpy2's set-up notes (compiler flags,
    # R's library path) would reach the user as log lines; their warnings still do.
    for library in ("pytensor", "rpy2"):
        logging.getLogger(library).setLevel(logging.WARNING)
    console.watch_interrupts()
    hydra_config = HydraConfig.get()
    single = hydra_config.mode == RunMode.RUN
    output_dir = Path(hydra_config.runtime.output_dir)
    if not single:
        end_with_sweep()
        results.register_run(hydra_config.sweep.dir, output_dir)
    overrides = list(hydra_config.overrides.task)
    spec, problem = job_spec(cfg, overrides, hydra_config.runtime.choices)
    if problem is not None and single:
        raise ConfigError(problem)
    key = None
    if problem is None:
        try:
            key = resume_key(spec)
        except console.PLUGIN_ERRORS as error:  # the data cannot be made: recorded below
            console.pass_interrupt(error)
            problem = (describe(error) if isinstance(error, Exception)
                       else console.plugin_failure_message(error))
    with results.run_lock(output_dir):
        reason = "the configuration has an error" if key is None else results.stale_reason(
            output_dir, key)
        if reason is None and cfg.resume:
            print(f"[gmmlab] skipped (already done): {output_dir}")
            return objective_value(results.read_result(output_dir), cfg.objective,
                                   hydra_config.sweeper.get("direction"))
        if reason not in (None, "no result yet") and key is not None and cfg.resume:
            print(f"[gmmlab] rerun, {reason}: {output_dir}")
        record = run_job(spec, output_dir, overrides, problem, key)
    print(summary_table(record))
    print(f"[gmmlab] result: {output_dir / results.RESULT_FILE}")
    if record["status"] == "failed" and single:
        sys.exit(f"gmmlab: the run failed: {record['message']}")
    return objective_value(record, cfg.objective, hydra_config.sweeper.get("direction"))


def end_with_sweep():
    """In a worker process the gmmlab command started (joblib, submitit's local executor),
    watch the parent: when it dies (killed), end this worker at once instead of fitting on
    for nobody. The run in progress leaves no result (results are written whole or not at
    all) and resumes."""
    sweep = os.environ.get(SWEEP_PID)
    parent = os.getppid()
    if sweep is None or parent != int(sweep) or getattr(end_with_sweep, "watching", False):
        return
    end_with_sweep.watching = True

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="gmmlab-end-with-sweep", daemon=True).start()


def main():
    """Console entry point ``gmmlab``."""
    os.environ[SWEEP_PID] = str(os.getpid())
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's errors reach run_command, which explains
    register_configs()
    app = hydra.main(version_base="1.3", config_path=str(package_or_checkout("conf")),
                     config_name="config")(run)
    run_command("gmmlab", app, known=(HydraException, OmegaConfBaseException))


if __name__ == "__main__":
    main()
