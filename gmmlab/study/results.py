"""The result store: run folders and their names, ``result.json`` written atomically under a
lock, read back with checks, the resume rule, and ``gmmlab-collect SWEEP_DIR``.

A sweep directory holds one run folder per job, named by :func:`run_folder_name` (a readable
prefix of the overrides and a hash of all of them). A run folder holds ``result.json`` (the
record: status, metrics, parameters, provenance with the resolved configuration and the full
override list, the data fingerprint) and for posterior draws ``posterior.nc``.

Collect: one row per run; nested fields flattened to dotted columns (``param_error.means``,
``diagnostics.max_rhat``); list-valued fields (parameters, permutations, histories) kept as
JSON text. Written as ``results.csv`` and ``results.parquet`` in the directory. A result file
that does not parse or lacks the record's fields is reported by path, counted as unreadable,
and left out (resume reruns its run).
"""

import argparse
import fcntl
import hashlib
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from gmmlab.study.record import RunRecord

RESULT_FILE = "result.json"
IDATA_FILE = "posterior.nc"
LOCK_FILE = ".lock"
# The sweep's own run folders, one a line (relative to the sweep directory), written as its jobs
# start: collect reads only these (see register_run).
RUNS_FILE = ".gmmlab-runs"
# Fields every record has (gmmlab.study.job writes them first); a file without them is incomplete.
REQUIRED = ("status", "message", "backend", "dataset", "n_components", "seed", "provenance")
# Statuses of a finished run (resume keeps them); 'failed' runs again.
FINISHED = ("ok", "singular")
# Configuration keys that do not change a run's numbers (the resume rule ignores them).
NOT_IN_KEY = ("resume", "variant", "data_setting", "objective")
# Large or nested fields left out of the table (they stay in each result.json).
DROPPED = ("traceback", "truth", "provenance.config", "dataset_provenance", "resume_key")
# Run folder names: at most this many characters of readable prefix, then '-' and a hash.
PREFIX_LENGTH = 80


class UnreadableResult(ValueError):
    """A result file that does not parse as a record: the message names the file."""

    def __init__(self, path, reason):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


# ------------------------------------------------------------------ run folders


def run_folder_name(override_dirname, sweep_dir=None):
    """The run folder of a sweep job: a readable prefix of ``override_dirname`` (Hydra's
    ``key=value,key=value`` of the job's overrides) with every character but letters, digits
    and ``._=,+-`` replaced by '_' (a path value never nests folders), cut to 80 characters,
    then '-' and 10 hex digits of the sha256 of the whole override string, e.g.
    ``backend=em,seed=0-0f3a...``.

    A sweep started before these names (folders named ``override_dirname`` itself) keeps its
    folder: when ``sweep_dir/override_dirname`` exists and is a single safe name, it is used.
    """
    if sweep_dir is not None and _safe(override_dirname):
        legacy = Path(sweep_dir) / override_dirname
        if (legacy / RESULT_FILE).is_file():
            return override_dirname
    prefix = re.sub(r"[^A-Za-z0-9._=,+-]", "_", override_dirname)[:PREFIX_LENGTH] or "run"
    digest = hashlib.sha256(override_dirname.encode()).hexdigest()[:10]
    return f"{prefix}-{digest}"


def _safe(name):
    return bool(name) and "/" not in name and name not in (".", "..") and len(
        name.encode()) <= 255


@contextmanager
def run_lock(run_dir):
    """Hold an exclusive lock on ``run_dir`` (``fcntl.flock`` on its ``.lock``), waiting for
    another process that holds it: two sweeps into one folder never run the same job at once,
    and the second finds the first's result when it gets the lock."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            for leftover in run_dir.glob(f".{RESULT_FILE}.*.tmp"):  # from a killed writer
                leftover.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def register_run(sweep_dir, run_dir):
    """Add ``run_dir`` to the sweep's manifest (``sweep_dir/.gmmlab-runs``, under a file lock),
    once: collect reads the runs listed there and names every other result.json it finds."""
    sweep_dir, run_dir = Path(sweep_dir), Path(run_dir)
    try:
        name = str(run_dir.resolve().relative_to(sweep_dir.resolve()))
    except ValueError:  # a run folder outside the sweep: nothing to list
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / RUNS_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            if name not in handle.read().splitlines():
                handle.write(name + "\n")
                handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def registered_runs(sweep_dir):
    """The run folders the sweep's manifest lists (relative names), or None for a sweep
    without one (made before manifests, or by hand): then every result.json below counts."""
    path = Path(sweep_dir) / RUNS_FILE
    if not path.is_file():
        return None
    return set(path.read_text().splitlines())


# ------------------------------------------------------------------ writing and reading


def plain(value):
    """numpy values to JSON; non-finite floats to null."""
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json_atomic(path, record):
    """Write JSON to a temporary file beside ``path``, flush it to disk, then rename it into
    place: a reader (or a resumed sweep after a kill) sees the old file or the whole new one."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(temporary, "w") as handle:
        handle.write(json.dumps(plain(record), indent=1, allow_nan=False))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_result(run_dir) -> RunRecord:
    """The record in ``run_dir/result.json``.

    Parameters
    ----------
    run_dir : str or Path
        A run's folder.

    Returns
    -------
    RunRecord
        The record: ``status``, the metrics, the parameters and the provenance.

    Raises
    ------
    FileNotFoundError
        There is no result file.
    UnreadableResult
        The file does not parse or lacks a record's fields.

    Examples
    --------
    >>> import tempfile
    >>> from gmmlab.study.job import run_job
    >>> from gmmlab.study.results import read_result
    >>> spec = {"dataset": {"name": "faithful"}, "backend": {"name": "em"},
    ...         "n_components": 2, "covariance_type": "full", "seed": 0, "reg_covar": 1e-6}
    >>> run = tempfile.mkdtemp()
    >>> _ = run_job(spec, run)
    >>> record = read_result(run)
    >>> record["status"], round(record["bic"], 2)
    ('ok', 2322.19)
    """
    path = Path(run_dir) / RESULT_FILE
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise UnreadableResult(path, "not UTF-8 text") from None
    try:
        record = json.loads(text)
    except ValueError as error:
        raise UnreadableResult(path, f"not valid JSON ({error}); truncated?") from None
    if not isinstance(record, dict):
        raise UnreadableResult(path, f"holds a JSON {type(record).__name__}, not a record")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise UnreadableResult(path, f"incomplete record, no {', '.join(missing)}")
    return record


# ------------------------------------------------------------------ resume


def stale_reason(run_dir, resume_key):
    """None when ``run_dir`` holds a finished result (status ok or singular) made from the same
    ``resume_key`` (see :func:`gmmlab.study.job.resume_key`), else why the run must run again:
    "no result yet", "data changed since the last run", ...

    A result written before data fingerprints were recorded is compared on its configuration
    and versions only.
    """
    try:
        record = read_result(run_dir)
    except FileNotFoundError:
        return "no result yet"
    except UnreadableResult as error:
        return f"its result file is unreadable ({error.reason})"
    if record["status"] not in FINISHED:
        return f"the last run {record['status']}"
    old = record.get("resume_key") or {
        "config": {key: value for key, value in (record["provenance"].get("config") or {}).items()
                   if key not in NOT_IN_KEY},
        "versions": record["provenance"].get("versions") or {}}
    changed = differences(old.get("config"), resume_key["config"])
    if changed:
        return f"configuration changed since the last run ({'; '.join(changed[:3])})"
    if "data" in old and old["data"] != resume_key["data"]:
        return "data changed since the last run"
    old_code, code = old.get("code", {}), resume_key.get("code", {})
    for plugin in sorted(set(old_code) | set(code)):
        if old_code.get(plugin) != code.get(plugin):
            name = (code.get(plugin) or old_code[plugin])["function"]
            return (f"the code of {plugin} {name} changed since the last run" if plugin in
                    old_code else f"the code of {plugin} {name} was not recorded by the last "
                    "run")
    versions = [f"{name} {old['versions'][name]} -> {version}"
                for name, version in resume_key["versions"].items()
                if name in old["versions"] and old["versions"][name] != version]
    if versions:
        return f"package versions changed since the last run ({', '.join(versions)})"
    return None


def differences(old, new, prefix=""):
    """Dotted keys whose values differ between two nested configurations, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in sorted(set(old) | set(new), key=str)
                for change in differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
    return []


# ------------------------------------------------------------------ collect


def load_results(sweep_dir):
    """Every readable result.json of the sweep's runs, one row per run.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep's folder (run folders with result.json below it, at any depth).

    Returns
    -------
    table : pandas.DataFrame
        One row per readable run, nested fields flattened (``param_error.means``), with its
        ``run_dir`` relative to ``sweep_dir``.
    unreadable : list of UnreadableResult
        The result files left out, each naming its path and what is wrong.
    foreign : list of Path
        The result.json files below ``sweep_dir`` that are not the sweep's own: not in its
        manifest :data:`RUNS_FILE` (e.g. a copied run folder); never read.

    Raises
    ------
    NotADirectoryError
        ``sweep_dir`` is not a directory.
    FileNotFoundError
        No readable result.json below it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gmmlab.study.job import run_job
    >>> from gmmlab.study.results import load_results
    >>> sweep = Path(tempfile.mkdtemp())
    >>> for backend in ("em", "sklearn"):
    ...     spec = {"dataset": {"name": "faithful"}, "backend": {"name": backend},
    ...             "n_components": 2, "covariance_type": "full", "seed": 0,
    ...             "reg_covar": 1e-6}
    ...     _ = run_job(spec, sweep / backend)
    >>> table, unreadable, foreign = load_results(sweep)
    >>> sorted(table["backend"]), unreadable, foreign
    (['em', 'sklearn'], [], [])
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise NotADirectoryError(f"{sweep_dir} is not a directory of runs.")
    own = registered_runs(sweep_dir)
    records, unreadable, foreign = [], [], []
    for path in sorted(sweep_dir.rglob(RESULT_FILE)):
        if own is not None and str(path.parent.relative_to(sweep_dir)) not in own:
            foreign.append(path)
            continue
        try:
            record = read_result(path.parent)
        except (UnreadableResult, OSError) as error:
            unreadable.append(error if isinstance(error, UnreadableResult)
                              else UnreadableResult(path, error.strerror or str(error)))
            continue
        record["run_dir"] = str(path.parent.relative_to(sweep_dir))
        records.append(record)
    if not records:
        raise FileNotFoundError(f"no readable {RESULT_FILE} below {sweep_dir}"
                                + (f" ({len(unreadable)} unreadable: {unreadable[0]})"
                                   if unreadable else "."))
    table = pd.json_normalize(records, max_level=2)
    table = table.drop(columns=[c for c in table.columns if c.startswith(DROPPED)])
    for column in table.columns:
        if table[column].map(lambda v: isinstance(v, list | dict)).any():
            table[column] = table[column].map(
                lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return table, unreadable, foreign


def readable_results(sweep_dir):
    """:func:`load_results`'s table, the unreadable result files named on stderr and counted
    in ``table.attrs["unreadable"]``, the result files of no run of the sweep named on
    stderr."""
    table, unreadable, foreign = load_results(sweep_dir)
    for path in foreign:
        print(f"[gmmlab] not a run of this sweep (not listed in {Path(sweep_dir) / RUNS_FILE}),"
              f" ignored: {path}", file=sys.stderr)
    for error in unreadable:
        print(f"[gmmlab] unreadable, left out (resume reruns it): {error}", file=sys.stderr)
    table.attrs["unreadable"] = len(unreadable)
    return table


def collect(sweep_dir):
    """Write results.csv and results.parquet in ``sweep_dir``; return the table.

    What ``gmmlab-collect SWEEP_DIR`` and the end of every sweep do. Unreadable result files
    are named on stderr, left out and counted in ``table.attrs["unreadable"]``.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep's folder.

    Returns
    -------
    pandas.DataFrame
        The table written (:func:`load_results`).

    Raises
    ------
    NotADirectoryError, FileNotFoundError
        As :func:`load_results`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gmmlab.study.job import run_job
    >>> from gmmlab.study.results import collect
    >>> sweep = Path(tempfile.mkdtemp())
    >>> for seed in (0, 1):
    ...     spec = {"dataset": {"name": "tutorial_1d"}, "backend": {"name": "em"},
    ...             "n_components": 3, "covariance_type": "full", "seed": seed,
    ...             "reg_covar": 1e-6}
    ...     _ = run_job(spec, sweep / f"seed={seed}")
    >>> table = collect(sweep)
    >>> len(table), sorted(p.name for p in sweep.glob("results.*"))
    (2, ['results.csv', 'results.parquet'])
    """
    table = readable_results(sweep_dir)
    write_table(table, Path(sweep_dir))
    return table


def write_table(table, folder):
    """results.csv and results.parquet in ``folder``, each written whole or not at all: on a
    failure the temporary file is removed and the error names the file and the cause."""
    for name, write in (("results.csv", table.to_csv), ("results.parquet", table.to_parquet)):
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        try:
            write(temporary, index=False)
            os.replace(temporary, folder / name)
        except OSError as error:
            if error.filename is not None and Path(error.filename) == temporary:
                error.filename = str(folder / name)
            raise
        except Exception as error:  # noqa: BLE001 - pyarrow's and pandas' own errors
            raise ValueError(f"{folder / name}: cannot write the table ({type(error).__name__}:"
                             f" {error}).") from error
        finally:
            temporary.unlink(missing_ok=True)


def counts(table):
    """'12 ok, 2 failed, 1 unreadable': the runs of a collected table by status."""
    found = {**table["status"].value_counts().to_dict()}
    if table.attrs.get("unreadable"):
        found["unreadable"] = table.attrs["unreadable"]
    return ", ".join(f"{n} {status}" for status, n in found.items())


def study_of(source):
    """The question a sweep's study asks, from the ``study`` block of its YAML
    (``experiments/NAME.yaml`` beside the ``experiments/NAME/runs`` folder, or the folder of a
    results table there): dict with ``question`` and ``answer`` (the form of its report's
    Summary: methods, model_selection, singularity, initialisation, label_switching); no
    question and the method comparison's form when there is no such file. The runner leaves
    the block out of the runs' settings (:func:`gmmlab.study.runner.register_configs`)."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    path = folder.parent.parent / f"{folder.parent.name}.yaml"
    study = (yaml.safe_load(path.read_text()) or {}).get("study") if path.is_file() else None
    if study is None:
        return {"question": None, "answer": "methods"}
    answers = {"methods", "model_selection", "singularity", "initialisation",
               "label_switching"}
    if study.get("answer") not in answers:
        raise ValueError(f"{path}: study.answer is {study.get('answer')!r}; expected one of "
                         f"{sorted(answers)}.")
    return {"question": study.get("question"), "answer": study["answer"]}


def main(argv=None):
    """Console entry point ``gmmlab-collect``."""
    from gmmlab.console import run_command

    def collect_command():
        parser = argparse.ArgumentParser(
            description="Gather every result.json below a sweep directory into results.csv and "
                        "results.parquet.")
        parser.add_argument("sweep_dir", help="directory holding run directories with "
                                              "result.json")
        args = parser.parse_args(argv)
        table = collect(args.sweep_dir)
        print(f"{len(table)} runs ({counts(table)}) -> "
              f"{Path(args.sweep_dir) / 'results.csv'} and results.parquet")

    run_command("gmmlab-collect", collect_command,
                interrupted="interrupted (Ctrl-C); results.csv and results.parquet are as they "
                            "were (each is written whole or not at all).")


if __name__ == "__main__":
    main()
