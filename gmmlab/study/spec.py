"""A job's configuration as plain data, Hydra-free: the checks that it can run
(:func:`~gmmlab.study.spec.check_plugins`), its report labels
(:func:`~gmmlab.study.spec.describe_run`), and the resume rule a launcher asks before submitting
(:func:`~gmmlab.study.spec.finished_before`). Shared by the runner
(:mod:`gmmlab.study.runner`) and the launchers (``hydra_plugins.gmmlab``), which import this
module and never the runner.
"""

import re

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gmmlab import backends, datasets
from gmmlab.console import describe
from gmmlab.plugins import PluginError
from gmmlab.study import results
from gmmlab.study.job import resume_key


def check_plugins(cfg):
    """Raise PluginError when the configured backend or data set cannot be used (a bad target,
    options a backend function does not take); nothing is loaded or fitted."""
    options = {key: cfg.backend[key] for key in cfg.backend
               if not OmegaConf.is_missing(cfg.backend, key)}
    options = OmegaConf.to_container(OmegaConf.create(options), resolve=True)
    covariance_type = getattr(cfg.covariance_type, "name", cfg.covariance_type)
    backends.check(options.pop("name"), covariance_type, **options)
    target = None if OmegaConf.is_missing(cfg.dataset, "target") else cfg.dataset.get("target")
    datasets.loader(cfg.dataset.name, target)


def job_spec(cfg, overrides, choices):
    """(the job's resolved configuration as plain data with its report labels, the
    configuration error that keeps it from running or None)."""
    problem = None
    try:
        check_plugins(cfg)
    except PluginError as error:
        problem = str(error)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing and problem is None:
        problem = (f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no value; "
                   f"expected one on the command line, e.g. {missing[0]}=VALUE.")
    try:
        spec = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True,
                                      throw_on_missing=False)
    except OmegaConfBaseException as error:
        problem = problem or describe(error)
        spec = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    spec["variant"], spec["data_setting"] = describe_run(overrides, choices)
    return spec, problem


def finished_before(config, output_dir):
    """The resume rule for a launcher deciding what to submit: True when ``output_dir`` holds
    a finished result of this job's configuration, data and versions."""
    if not config.get("resume", False):  # not gmmlab's run config (another Hydra app)
        return False
    task = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    spec, problem = job_spec(task, list(config.hydra.overrides.task),
                             config.hydra.runtime.choices)
    if problem is not None:
        return False
    try:
        key = resume_key(spec)
    except Exception:  # noqa: BLE001 - the job will record why
        return False
    return results.stale_reason(output_dir, key) is None


def describe_run(overrides, choices):
    """Labels for reports: the method variant (backend config and its overridden options,
    reg_covar, covariance_type) and the data setting (data set and its overridden options,
    replicate seeds excluded), e.g. ('em_stop n_init=10', 'synthetic n_samples=100')."""
    method, data = [choices["backend"]], [choices["dataset"]]
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        value = re.sub(r"\\(.)", r"\1", value)  # Hydra escapes ':' ',' '=' in sweeps
        if key in ("backend.target", "dataset.target"):  # a user function names the method
            (method if key == "backend.target" else data)[0] = value
        elif key.startswith("backend.") or key in ("reg_covar", "covariance_type"):
            method.append(f"{key.removeprefix('backend.')}={value}")
        elif key.startswith("dataset.") and not key.endswith("seed"):
            data.append(f"{key.removeprefix('dataset.').removeprefix('options.')}={value}")
    return " ".join(method), " ".join(data)
