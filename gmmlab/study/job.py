"""One job of a study: load the data set, fit one backend, compute every metric, write
``result.json`` (atomically) and, for posterior draws, ``posterior.nc`` beside it.

Plain Python, no Hydra: the runner composes the configuration and calls :func:`run_job`.
"""

import datetime
import math
import platform
import subprocess
import traceback
from importlib import metadata
from pathlib import Path

from gmmlab import backends, console
from gmmlab.datasets import REGISTRY, fingerprint, load_dataset, loader
from gmmlab.model import metrics
from gmmlab.plugins import code_fingerprint
from gmmlab.study.record import RunRecord
from gmmlab.study.results import IDATA_FILE, NOT_IN_KEY, RESULT_FILE, write_json_atomic

# The packages whose versions a record keeps, and resume compares (the numerical stack).
PACKAGES = ("gmmlab", "numpy", "scipy", "scikit-learn", "pymc", "pytensor", "nutpie", "numba",
            "arviz", "hydra-core", "omegaconf", "pandas", "rpy2")


def run_job(spec, output_dir, overrides=(), problem=None, key=None) -> RunRecord:
    """Run one fit described by ``spec`` and write its record to ``output_dir/result.json``.

    spec: dict with ``dataset`` (name, options, test_size, split_seed, standardize),
    ``backend`` (name and options), ``n_components, covariance_type, seed, reg_covar`` and
    optionally ``alignment_cost``, ``save_idata``. Never raises for a failing fit or bad data:
    the record then has ``status: failed`` and the message. ``problem``: a configuration error
    found before the run (a bad backend target, a missing mandatory value), recorded as the
    failure; nothing is loaded or fitted then. Whatever the data set's or the backend's code
    raises, ``SystemExit`` and a KeyboardInterrupt of its own included, is the run's failure;
    only a real interrupt of this process (:func:`gmmlab.console.interrupt_received`) passes
    through, leaving no result. ``key``: the run's :func:`resume_key`, stored
    for the next resume. Returns the record (:class:`~gmmlab.study.record.RunRecord`).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    record: RunRecord = {
        "status": "failed", "message": "", "degenerate": False, "degeneracy_reason": None,
        # a user function (backend=custom, dataset=custom) is named by its target
        "backend": spec["backend"].get("target") or spec["backend"]["name"],
        "dataset": spec["dataset"].get("target") or spec["dataset"]["name"],
        "n_components": spec["n_components"], "covariance_type": spec["covariance_type"],
        "seed": spec["seed"], "reg_covar": spec["reg_covar"],
        "true_components": spec["dataset"].get("true_components"),
        "variant": spec.get("variant", spec["backend"]["name"]),
        "data_setting": spec.get("data_setting", spec["dataset"]["name"]),
    }
    try:
        if problem is not None:
            raise ValueError(problem)
        check_reg_covar(spec["reg_covar"])
        dataset = load_spec_dataset(spec["dataset"])
        options = {k: v for k, v in spec["backend"].items() if k != "name"}
        result = backends.fit(spec["backend"]["name"], dataset.X, spec["n_components"],
                              spec["covariance_type"], spec["seed"], spec["reg_covar"],
                              **options)
        record |= _describe(result, dataset, spec.get("alignment_cost", "means"),
                            spec["reg_covar"])
        if result.idata is not None and spec.get("save_idata", True):
            result.idata.to_netcdf(str(output_dir / IDATA_FILE))
            record["idata_file"] = IDATA_FILE
    except console.PLUGIN_ERRORS as error:  # recorded, so a sweep goes on
        console.pass_interrupt(error)
        record |= {"status": "failed", "message": console.plugin_failure_message(error),
                   "traceback": traceback.format_exc(limit=6)}
    record["provenance"] = provenance(spec, overrides, started)
    record["resume_key"] = key
    write_json_atomic(output_dir / RESULT_FILE, record)
    return record


def check_reg_covar(value):
    """reg_covar, the floor added to every covariance's diagonal: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value >= 0):
        raise ValueError(f"reg_covar={value!r}: expected a finite number >= 0 (the floor added "
                         "to every covariance's diagonal, e.g. 1e-6).")


def resume_key(spec):
    """What a run is made from, compared by resume (:func:`gmmlab.study.results.stale_reason`): the
    resolved configuration (but ``NOT_IN_KEY``), the data fingerprint (sha256 of the input file,
    or of the generated array), the code of a plug-in backend or data set (custom or from an
    entry point: :func:`gmmlab.plugins.code_fingerprint`; gmmlab's own are covered by its
    version) and the package versions, gmmlab's among them. Raises what loading the data would
    raise (a bad path)."""
    dataset = spec["dataset"]
    return {"config": {k: v for k, v in spec.items() if k not in NOT_IN_KEY},
            "data": fingerprint(dataset["name"], target=dataset.get("target"),
                                **(dataset.get("options") or {})),
            "code": plugin_code(spec),
            "versions": versions()}


def plugin_code(spec):
    """{"backend": ..., "dataset": ...}: the code fingerprints of the job's plug-ins (those not
    built into gmmlab)."""
    backend, dataset = spec["backend"], spec["dataset"]
    code = {}
    if backend["name"] not in backends.BUILT_IN:
        code["backend"] = code_fingerprint(backends.resolve(backend["name"],
                                                            backend.get("target")))
    if dataset["name"] not in REGISTRY:
        code["dataset"] = code_fingerprint(loader(dataset["name"], dataset.get("target")))
    return code


def versions():
    """{package: installed version or None} for ``PACKAGES``."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def load_spec_dataset(dataset_spec):
    """The data set of a spec: its own options (a synthetic set's seed among them), so the data
    are the same whatever the backend and the fitting seed."""
    options = dict(dataset_spec.get("options") or {})
    return load_dataset(dataset_spec["name"], standardize=dataset_spec.get("standardize", False),
                        test_size=dataset_spec.get("test_size"),
                        split_seed=dataset_spec.get("split_seed", 0),
                        target=dataset_spec.get("target"), **options)


def _describe(result, dataset, alignment_cost, reg_covar):
    report = metrics.evaluate(result, dataset, alignment_cost, reg_covar)
    return report | {
        "status": result.status, "message": result.message,
        "n_samples": dataset.n_samples, "n_features": dataset.n_features,
        "n_test": None if dataset.X_test is None else len(dataset.X_test),
        "n_iter": result.n_iter, "converged": result.converged,
        "fit_seconds": result.fit_seconds, "loglik_history": result.loglik_history,
        "diagnostics": result.diagnostics,
        "params": None if result.weights is None else {
            "weights": result.weights, "means": result.means, "covariances": result.covariances},
        "truth": None if dataset.truth is None else {
            "weights": dataset.truth.weights, "means": dataset.truth.means,
            "covariances": dataset.truth.covariances},
        "dataset_provenance": dataset.provenance, "dataset_metadata": dataset.metadata,
    }


def provenance(spec, overrides, started):
    """Resolved configuration, overrides, package versions, git commit, host, start time."""
    return {"config": spec, "overrides": list(overrides), "versions": versions(),
            "python": platform.python_version(), "git_commit": _git_commit(),
            "host": platform.node(), "started": started.isoformat(timespec="seconds"),
            "wall_seconds": round(
                (datetime.datetime.now(datetime.UTC) - started).total_seconds(), 3)}


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def summary_table(record):
    """A short, readable summary of one record (the single-run printout)."""
    def number(value, digits=4):
        return "-" if value is None else f"{value:.{digits}g}"

    rows = [
        ("status", record["status"] + (f" ({record['message']})" if record["message"] else "")),
        ("data", f"{record['dataset']} N={record.get('n_samples', '-')} "
                 f"D={record.get('n_features', '-')}"),
        ("model", f"{record['backend']} K={record['n_components']} "
                  f"{record['covariance_type']} seed={record['seed']}"),
        ("loglik / sample", f"{number(record.get('loglik_per_sample'))} (train), "
                            f"{number(record.get('test_loglik_per_sample'))} (test)"),
        ("BIC / AIC / ICL", " / ".join(number(record.get(k), 6) for k in ("bic", "aic", "icl"))),
        ("degenerate", record.get("degeneracy_reason") if record.get("degenerate") else "no"),
        ("iterations", f"{record.get('n_iter')} (converged: {record.get('converged')}), "
                       f"{number(record.get('fit_seconds'), 3)} s"),
    ]
    if record.get("param_error"):
        error = record["param_error"]
        rows.append(("param error", f"weights {number(error['weights'])}, means "
                                    f"{number(error['means'])}, covariances "
                                    f"{number(error['covariances'])}"))
    if record.get("ari") is not None:
        rows.append(("ARI / NMI", f"{number(record['ari'])} / {number(record['nmi'])}"))
    diagnostics = record.get("diagnostics") or {}
    if "max_rhat" in diagnostics:
        rows.append(("posterior", f"R-hat {number(diagnostics['max_rhat'])} (before "
                                  f"relabelling {number(diagnostics['max_rhat_raw'])}), ESS "
                                  f"{number(diagnostics['min_ess_bulk'])}, divergences "
                                  f"{diagnostics.get('divergences', '-')}"))
    if "mclust_loglik" in diagnostics:
        rows.append(("mclust's own", f"loglik {diagnostics['mclust_loglik']:.7g}, BIC "
                                     f"{diagnostics['mclust_bic']:.7g} (its last E-step)"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
