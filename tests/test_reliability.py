"""Bad inputs and faults through the console commands, in subprocesses: every one ends with a
defined exit status, a message naming the culprit, no traceback, and no lost or corrupted
result. Then stale data, kills during sweeps, and two sweeps into one folder.

The single-command cases run all at once in a pool (:func:`outcomes`), so the battery costs
about as much as its slowest commands.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import (
    PLUGINS,
    SLOW,
    alive,
    descendants,
    gmmlab,
    holds_lock,
    processes_in,
    results,
    start,
    wait_for,
)

from gmmlab.console import run_command
from gmmlab.datasets import load_dataset
from gmmlab.study.results import RUNS_FILE, read_result

pytestmark = pytest.mark.e2e

GOOD = "a,b\n" + "".join(f"{i % 7},{(i * 3) % 11}\n" for i in range(40))


@dataclass
class Case:
    """One command: its arguments (``{tmp}`` is the case's folder), the files to write first,
    the expected exit status and text; ``absent``: text that must not appear."""

    args: list
    status: int
    expected: str
    files: dict = field(default_factory=dict)
    command: str = "gmmlab"
    absent: str | None = None


def csv_case(content, expected, *extra, columns=None):
    """A single run on ``data.csv`` holding ``content`` (str, or bytes)."""
    options = [] if columns is None else [f"dataset.options.columns={columns}"]
    return Case(["dataset=csv", "dataset.options.path={tmp}/data.csv", *options, *extra,
                 "hydra.run.dir={tmp}/run"], 1, expected, {"data.csv": content})


def with_result(text):
    """A sweep folder with one good run and one whose result.json holds ``text``."""
    good = json.dumps({"status": "ok", "message": "", "backend": "em", "dataset": "faithful",
                       "n_components": 2, "seed": 0, "provenance": {}, "loglik": -1.5})
    return {"sweep/good/result.json": good, "sweep/bad/result.json": text}


# Bad data files, all in one sweep (each job's record holds its message; the sweep goes on):
# name -> (content, None for no file, or FOLDER; expected message).
FOLDER = object()
CSV_FILES = {
    "header-only": ("a,b\n", "header-only.csv: 0 data rows, at least 2 needed"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not text (it holds NUL bytes"),
    "latin-1": ("a,b\n1,2\n3,4\ncaf\xe9,5\n".encode("latin-1"), "is not UTF-8 text (byte 15)"),
    "folder": (FOLDER, "folder.csv is a folder; expected a file"),
    "missing": (None, "missing.csv does not exist"),
    "repeated-header": ("a,a\n1,2\n3,4\n", "the header names column(s) ['a'] more than once"),
    "text-cell": ("a,b\n1,2\n3,oops\n4,5\n", "column 'b' is not numeric: data row 2 (line 3) "
                                             "holds 'oops'"),
    "missing-cell": ("a,b\n1,2\n3,\n4,5\n", "column 'b' has a missing value in data row 2 "
                                           "(line 3)"),
    "na-cell": ("a,b\n1,2\n3,4\nNA,5\n", "column 'a' has a missing value in data row 3"),
    "infinite-cell": ("a,b\n1,2\n3,inf\n4,5\n", "column 'b' is not numeric: data row 2 (line 3) "
                                                "holds 'inf'"),
    "constant-column": ("a,b\n1,2\n1,3\n1,5\n", "column 'a' is constant (1)"),
    "ragged-row": ("a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
    "one-column-blank-line": ("\na,b\n1,2\n", "is empty or its first line is blank"),
}


def csv_sweep():
    files = {f"{name}.csv": content for name, (content, _) in CSV_FILES.items()
             if content is not None}
    paths = ",".join(f"{{tmp}}/{name}.csv" for name in [*CSV_FILES, "good"])
    return Case(["-m", "dataset=csv", f"dataset.options.path={paths}", "hydra.sweep.dir="
                 "{tmp}/sweep"], 0, "collected 14 runs (13 failed, 1 ok)", files | {
                     "good.csv": GOOD})


# Plug-in backends returning what no mixture can be, exiting or interrupting (tests/plugins/
# bad_backends.py), all in one sweep beside the good toy method: name -> expected message.
BAD_BACKENDS = {
    "weights_sum_3": "weights must be non-negative and sum to 1 (within 1e-08)",
    "nan_weights": "weights must be finite, got nan at index 0",
    "infinite_mean": "means must be finite, got inf at index (0, 0)",
    "negative_covariances": "covariance 0 is not positive definite",
    "asymmetric_covariances": "covariance 0 is not symmetric",
    "wrong_shape_covariances": "the covariances have shape (2, 3); expected (2, 2, 2)",
    "one_component_too_many": "the weights have shape (3,); expected (2,)",
    "returns_a_list": "it returned list; expected a FitResult or a mapping",
    "exits": "exits) called sys.exit(3)",
    "interrupts": "raised KeyboardInterrupt, though gmmlab was not interrupted",
}
GOOD_BACKENDS = ("toy_methods:fit_cluster_moments", "bad_backends:zeroes_the_data")


def bad_backends_sweep():
    targets = ",".join([*(f"bad_backends:{name}" for name in BAD_BACKENDS), *GOOD_BACKENDS])
    return Case(["-m", "dataset=faithful", "backend=custom", f"backend.target={targets}",
                 "hydra.sweep.dir={tmp}/sweep"], 0,
                f"collected {len(BAD_BACKENDS) + 2} runs ({len(BAD_BACKENDS)} failed, 2 ok)")


RECORD_HEADER = "status,message,backend,dataset,n_components,seed\n"


def scaled_faithful(factor):
    """Old Faithful's CSV with every value times ``factor``."""
    data = load_dataset("faithful").X * factor
    return "eruptions,waiting\n" + "".join(f"{a:.17g},{b:.17g}\n" for a, b in data)


CASES = {
    "bad-data-files-in-a-sweep": csv_sweep(),
    "bad-backends-in-a-sweep": bad_backends_sweep(),
    "a-data-set-that-exits-in-a-sweep": Case(
        ["-m", "dataset=custom", "dataset.target=bad_backends:exiting_data",
         "n_components=1,2", "hydra.sweep.dir={tmp}/sweep"], 1,
        "gmmlab: every run of the sweep failed (2 runs)"),
    "collect-fails-at-the-end-of-a-sweep": Case(
        ["-m", "dataset=faithful", "n_components=1,2", "hydra.sweep.dir={tmp}/sweep"], 1,
        "the sweep's runs are done, but collecting them failed: {tmp}/sweep/results.csv: it is "
        "a folder; expected a file.", {"sweep/results.csv/keep": "x"}),
    "csv-with-a-byte-order-mark": Case(
        ["dataset=csv", "dataset.options.path={tmp}/data.csv", "dataset.options.columns=[a]",
         "n_components=1", "hydra.run.dir={tmp}/run"], 0, "data             csv N=40 D=1",
        {"data.csv": b"\xef\xbb\xbf" + GOOD.encode()}),
    "estimator-tol-nan": Case(["backend.tol=nan", "hydra.run.dir={tmp}/run"], 1,
                              "The 'tol' parameter of EMGaussianMixture must be a float in the "
                              "range [0.0, inf). Got nan instead."),
    "estimator-n-init-zero": Case(["backend.n_init=0", "hydra.run.dir={tmp}/run"], 1,
                                  "The 'n_init' parameter of EMGaussianMixture must be an int "
                                  "in the range [1, inf). Got 0 instead."),
    "unknown-objective-column": Case(
        ["-m", "n_components=1,2", "objective=bicc", "hydra.sweep.dir={tmp}/sweep"], 1,
        "objective='bicc': the record has no such column; expected one of ["),
    # the gmmlab command, single runs: exit 1 and one paragraph naming the culprit
    "csv-without-path": Case(["dataset=csv", "hydra.run.dir={tmp}/run"], 1,
                             "dataset.options.path has no value; expected one"),
    "empty-csv": csv_case("", "data.csv is empty or its first line is blank; expected a header"),
    "binary-file": csv_case(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not text (it holds NUL"),
    "directory-as-path": Case(["dataset=csv", "dataset.options.path={tmp}",
                               "hydra.run.dir={tmp}/run"], 1, "is a folder; expected a file"),
    "repeated-column": csv_case(GOOD, "columns=['a', 'a'] names ['a'] more than once",
                                columns="[a,a]"),
    "unknown-column": csv_case(GOOD, "no column ['c'] (columns are ['a', 'b'])",
                               columns="[a,c]"),
    "no-column": csv_case(GOOD, "columns=[] selects nothing", columns="[]"),
    "too-few-rows-for-k": csv_case("a,b\n1,2\n3,4\n5,7\n", "n_components = 5, n_samples = 3",
                                   "n_components=5"),
    "reg-covar-nan": Case(["reg_covar=nan", "hydra.run.dir={tmp}/run"], 1,
                          "reg_covar=nan: expected a finite number >= 0"),
    "reg-covar-inf": Case(["reg_covar=inf", "hydra.run.dir={tmp}/run"], 1,
                          "reg_covar=inf: expected a finite number >= 0"),
    "reg-covar-negative": Case(["reg_covar=-1", "hydra.run.dir={tmp}/run"], 1,
                               "reg_covar=-1.0: expected a finite number >= 0"),
    "run-dir-is-a-file": Case(["hydra.run.dir={tmp}/taken"], 1,
                              "taken: a file of that name is in the way; expected a folder",
                              {"taken": "x"}),
    # configuration mistakes stop before anything runs (no result.json)
    "misspelt-key": Case(["n_compnents=3", "hydra.run.dir={tmp}/run"], 1,
                         "Key 'n_compnents' not in 'RunSchema'"),
    "unknown-backend-option": Case(["backend.n_draws=10", "hydra.run.dir={tmp}/run"], 1,
                                   "Key 'n_draws' not in 'EmBackendSchema'"),
    "bad-covariance-type": Case(["covariance_type=ful", "hydra.run.dir={tmp}/run"], 1,
                                "Invalid value 'ful', expected one of [full, tied"),
    "unknown-dataset": Case(["dataset=faithfull", "hydra.run.dir={tmp}/run"], 1,
                            "Could not find 'dataset/faithfull'"),
    "seed-not-a-number": Case(["seed=one", "hydra.run.dir={tmp}/run"], 1,
                              "Value 'one' of type 'str' could not be converted to Integer"),
    "backend-target-missing": Case(["backend=custom", "backend.target=no_such_module:fit",
                                    "hydra.run.dir={tmp}/run"], 1,
                                   "cannot import module 'no_such_module'"),
    "collapse-with-singular-stop": Case(
        ["dataset=few_distinct", "backend=em_stop", "n_components=4", "reg_covar=0",
         "hydra.run.dir={tmp}/run"], 1, "singular='reset'", absent="singular='stop'"),
    # gmmlab-collect: unreadable results are named and left out (exit 0), or exit 1
    "collect-truncated": Case(["{tmp}/sweep"], 0, "bad/result.json: not valid JSON",
                              with_result('{"status": "ok", "mess'), "gmmlab-collect"),
    "collect-empty-record": Case(["{tmp}/sweep"], 0, "incomplete record, no status, message",
                                 with_result("{}"), "gmmlab-collect"),
    "collect-list": Case(["{tmp}/sweep"], 0, "bad/result.json: holds a JSON list",
                         with_result("[1, 2]"), "gmmlab-collect"),
    "collect-not-utf8": Case(["{tmp}/sweep"], 0, "bad/result.json: not UTF-8 text",
                             with_result(b"\xff\xfe{"), "gmmlab-collect"),
    "collect-missing-folder": Case(["{tmp}/nowhere"], 1, "nowhere is not a directory of runs",
                                   command="gmmlab-collect"),
    "collect-a-file": Case(["{tmp}/results.csv"], 1, "results.csv is not a directory of runs",
                           {"results.csv": "a\n1\n"}, "gmmlab-collect"),
    "collect-no-results": Case(["{tmp}/sweep"], 1, "no readable result.json below",
                               {"sweep/run/other.txt": "x"}, "gmmlab-collect"),
    "collect-all-unreadable": Case(["{tmp}/sweep"], 1, "(1 unreadable: ",
                                   {"sweep/run/result.json": "{"}, "gmmlab-collect"),
    # gmmlab-report
    "report-into-a-file": Case(["{tmp}/sweep", "-o", "{tmp}/taken"], 1,
                               "taken: a file of that name is in the way; expected a folder",
                               with_result("{}") | {"taken": "x"}, "gmmlab-report"),
    "report-not-a-table": Case(["{tmp}/notes.txt"], 1,
                               "notes.txt is neither a sweep directory nor a .csv/.parquet",
                               {"notes.txt": "x"}, "gmmlab-report"),
    "report-missing-source": Case(["{tmp}/nowhere"], 1, "nowhere is neither a sweep directory",
                                  command="gmmlab-report"),
    "report-foreign-table": Case(["{tmp}/table.csv"], 1, "table.csv: no column ['status', "
                                 "'message', 'backend', 'dataset', 'n_components', 'seed'] "
                                 "(columns are ['a', 'b']); expected a results table",
                                 {"table.csv": "a,b\n1,2\n"}, "gmmlab-report"),
    "report-zero-rows": Case(["{tmp}/results.csv"], 1, "results.csv: the table has no rows; "
                             "expected one row per run.", {"results.csv": RECORD_HEADER},
                             "gmmlab-report"),
    "report-k-not-a-number": Case(["{tmp}/results.csv"], 1, "results.csv: column "
                                  "'n_components' holds 'two' in row 1; expected an integer.",
                                  {"results.csv": RECORD_HEADER + "ok,,em,faithful,two,0\n"},
                                  "gmmlab-report"),
    "report-table-not-text": Case(["{tmp}/results.csv"], 1, "results.csv: not UTF-8 text (byte",
                                  {"results.csv": b"status\n\xff\xfe\n"}, "gmmlab-report"),
    "report-broken-parquet": Case(["{tmp}/results.parquet"], 1,
                                  "results.parquet: not a readable table (",
                                  {"results.parquet": "not parquet"}, "gmmlab-report"),
    "report-foreign-page-in-the-way": Case(
        ["{tmp}/results.csv", "-o", "{tmp}/out"], 1, "out/report.html: a file gmmlab-report "
        "did not write is in the way (not listed in", {"out/report.html": "mine",
                                                       "results.csv": RECORD_HEADER},
        "gmmlab-report"),
    # gmmlab-select: every argument checked before any fit
    "select-output-folder-missing": Case(["faithful", "-o", "{tmp}/nowhere/table.csv"], 1,
                                         "nowhere: it does not exist", command="gmmlab-select"),
    "select-output-is-a-folder": Case(["faithful", "-o", "{tmp}"], 1, ": it is a folder; "
                                      "expected a file.", command="gmmlab-select"),
    "select-n-init-zero": Case(["faithful", "--n-init", "0"], 1, "The 'n_init' parameter of "
                               "EMGaussianMixture must be an int in the range [1, inf). Got 0",
                               command="gmmlab-select"),
    "select-k-not-whole": Case(["faithful", "-k", "1.5"], 2, "expected a range like 1-9 or a "
                               "list like 1,2,3, got '1.5'", command="gmmlab-select"),
    "select-huge-values": Case(["{tmp}/huge.csv", "-k", "2-3", "--models", "EEE", "VVV"], 0,
                               "EEE,3", {"huge.csv": scaled_faithful(1e200)},
                               command="gmmlab-select"),
    "select-tiny-values-default-floor": Case(
        ["{tmp}/tiny.csv", "-k", "2"], 1, "reg_covar=1e-06 is far above the variance of the "
        "data (their largest value is of order", {"tiny.csv": scaled_faithful(1e-200)},
        command="gmmlab-select"),
}


CONFIG_MISTAKES = ("csv-without-path", "misspelt-key", "unknown-backend-option",
                   "bad-covariance-type", "unknown-dataset", "seed-not-a-number",
                   "backend-target-missing", "run-dir-is-a-file")


def run_case(name, case, folder):
    folder.mkdir()
    for path, content in case.files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        if content is FOLDER:
            (folder / path).mkdir()
            continue
        write = (folder / path).write_bytes if isinstance(content, bytes) else (
            folder / path).write_text
        write(content)
    args = [a.replace("{tmp}", str(folder)) for a in case.args]
    path = [str(PLUGINS), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])]
    env = os.environ | {"GMMLAB_TRACEBACK_DIR": str(folder / "tracebacks"),
                        "PYTHONPATH": os.pathsep.join(path)}
    return gmmlab(*args, cwd=folder, check=False, command=case.command, env=env)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case's completed process, the commands run three at a time."""
    base = tmp_path_factory.mktemp("cases")
    with ThreadPoolExecutor(3) as pool:
        futures = {name: pool.submit(run_case, name, case, base / name)
                   for name, case in CASES.items()}
        return {name: (future.result(), base / name) for name, future in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_gives_a_clear_message_and_no_traceback(outcomes, name):
    case, (done, folder) = CASES[name], outcomes[name]
    output = done.stdout + done.stderr
    assert done.returncode == case.status, output
    assert case.expected.replace("{tmp}", str(folder)) in output, output
    assert "unexpected error" not in output
    assert not list(folder.rglob("*.tmp")), output  # no temporary file left
    assert "Traceback" not in done.stderr
    if case.absent:
        assert case.absent not in output
    for path in folder.rglob("result.json"):  # every result but the broken one still parses
        if "bad" not in path.parts and name != "collect-all-unreadable":
            read_result(path.parent)
    if name in CONFIG_MISTAKES:
        assert not list(folder.rglob("result.json"))
    if case.command == "gmmlab" and case.status and (folder / "run" / "result.json").exists():
        record = read_result(folder / "run")  # a run that got as far as its data: recorded
        assert record["status"] == "failed" and case.expected in record["message"]
    if name.startswith("collect-") and case.status == 0:
        table = pd.read_csv(folder / "sweep" / "results.csv")
        assert list(table["run_dir"]) == ["good"]
        assert "1 runs (1 ok, 1 unreadable)" in done.stdout
    if name == "report-foreign-page-in-the-way":
        assert (folder / "out" / "report.html").read_text() == "mine"
    if name == "collect-fails-at-the-end-of-a-sweep":
        assert len(results(folder / "sweep")) == 2  # the runs are kept


def test_an_unexpected_error_writes_its_traceback_to_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GMMLAB_TRACEBACK_DIR", str(tmp_path))

    def broken():
        return {}["missing"]

    with pytest.raises(SystemExit) as exit:
        run_command("gmmlab-report", broken)
    written = next(tmp_path.glob("gmmlab-report-traceback-*.txt"))
    assert "Traceback (most recent call last)" in written.read_text()
    assert str(exit.value.code).startswith("gmmlab-report: unexpected error KeyError: ")
    assert f"The full traceback is in {written}" in str(exit.value.code)


# ------------------------------------------------------------------ plug-ins that misbehave


def bad_backend_records(outcomes):
    folder = outcomes["bad-backends-in-a-sweep"][1]
    return {read_result(p.parent)["backend"]: read_result(p.parent)
            for p in results(folder / "sweep")}


@pytest.mark.parametrize("name", list(BAD_BACKENDS))
def test_a_misbehaving_plug_in_is_its_runs_failed_record(outcomes, name):
    record = bad_backend_records(outcomes)[f"bad_backends:{name}"]
    assert record["status"] == "failed" and record.get("params") is None
    assert BAD_BACKENDS[name] in record["message"], record["message"]
    assert record.get("loglik") is None and record.get("bic") is None


def test_metrics_use_the_data_as_loaded_when_a_plug_in_zeroes_its_input(outcomes):
    records = bad_backend_records(outcomes)
    zeroing, good = records["bad_backends:zeroes_the_data"], records[GOOD_BACKENDS[0]]
    assert zeroing["status"] == good["status"] == "ok"
    assert zeroing["loglik"] == pytest.approx(good["loglik"], rel=1e-12)
    assert zeroing["loglik"] < -1000  # Old Faithful's, not that of 272 zeros


def test_a_report_on_misbehaving_plug_ins_ranks_only_the_good_ones(outcomes, tmp_path):
    sweep = outcomes["bad-backends-in-a-sweep"][1] / "sweep"
    table = pd.read_csv(sweep / "results.csv")
    assert set(table.loc[table["status"] == "ok", "backend"]) == set(GOOD_BACKENDS)
    out = tmp_path / "report"
    out.mkdir()
    (out / "mine.png").write_bytes(b"not gmmlab's")
    (out / "notes.txt").write_text("mine")
    gmmlab(str(sweep), "-o", str(out), cwd=tmp_path, command="gmmlab-report")
    first = json.loads((out / ".gmmlab-report.json").read_text())["files"]
    assert "mine.png" not in first and {"report.md", "report.html"} <= set(first)
    markdown = (out / "report.md").read_text()
    ranking = markdown.split("## Summary", 1)[1].split("\n## ", 1)[0]
    for name in BAD_BACKENDS:  # never ranked, never "best"
        assert not re.search(rf"bad_backends:{name}\b[^\n]*best", ranking), name
    # a rerun replaces only its own files; foreign files stay as they were
    (out / "stale.png").write_bytes(b"x")  # foreign: not in the manifest
    manifest = json.loads((out / ".gmmlab-report.json").read_text())
    manifest["files"].append("old-figure.png")
    (out / ".gmmlab-report.json").write_text(json.dumps(manifest))
    (out / "old-figure.png").write_bytes(b"an earlier report's figure")
    gmmlab(str(sweep), "-o", str(out), cwd=tmp_path, command="gmmlab-report")
    assert (out / "mine.png").read_bytes() == b"not gmmlab's"
    assert (out / "notes.txt").read_text() == "mine" and (out / "stale.png").exists()
    assert not (out / "old-figure.png").exists()  # its own, no longer drawn: removed
    assert json.loads((out / ".gmmlab-report.json").read_text())["files"] == first


@pytest.mark.parametrize("name", list(CSV_FILES))
def test_a_bad_data_file_in_a_sweep_is_its_jobs_failed_record(outcomes, name):
    folder = outcomes["bad-data-files-in-a-sweep"][1]
    records = {Path(read_result(p.parent)["provenance"]["config"]["dataset"]["options"]["path"])
               .stem: read_result(p.parent) for p in results(folder / "sweep")}
    assert len(records) == len(CSV_FILES) + 1 and records["good"]["status"] == "ok"
    assert records[name]["status"] == "failed"
    assert CSV_FILES[name][1] in records[name]["message"]


# ------------------------------------------------------------------ sweeps


def test_a_config_error_of_one_job_is_its_record_and_the_sweep_goes_on(tmp_path):
    """`gmmlab -m dataset=csv,faithful`: the csv job lacks its path."""
    done = gmmlab("-m", "dataset=csv,faithful", f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path)
    assert "Traceback" not in done.stderr
    table = pd.read_csv(tmp_path / "s" / "results.csv").set_index("dataset")
    assert table.loc["faithful", "status"] == "ok"
    assert table.loc["csv", "status"] == "failed"
    assert "dataset.options.path has no value" in table.loc["csv", "message"]


def test_long_override_lists_and_path_values_give_short_flat_run_folders(tmp_path):
    data = tmp_path / "deep" / "er" / "folder"
    data.mkdir(parents=True)
    for name in ("one", "two"):
        (data / f"{name}.csv").write_text(GOOD)
    options = ["backend.n_init=1", "backend.max_iter=50", "backend.tol=0.001",
               "backend.init_params=kmeans", "backend.singular=error",
               "seed=0", "covariance_type=full", "reg_covar=1e-6",
               "alignment_cost=means", "save_idata=false", "dataset.standardize=false",
               "dataset.split_seed=0", "+dataset.true_components=2"]
    sweep = tmp_path / "s"
    gmmlab("-m", "dataset=csv", f"dataset.options.path={data}/one.csv,{data}/two.csv",
           "n_components=1,2", *options, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    folders = sorted(p.parent for p in results(sweep))
    assert len(folders) == 4 and all(f.parent == sweep for f in folders)  # none nested
    assert all(len(f.name.encode()) <= 100 for f in folders)
    for folder in folders:
        record = read_result(folder)
        assert record["status"] == "ok"
        assert len(record["provenance"]["overrides"]) == 3 + len(options)  # all kept inside


def test_an_unreadable_result_is_rerun_by_resume(tmp_path):
    args = ("-m", "dataset=faithful", "n_components=1,2,3", f"hydra.sweep.dir={tmp_path}/s")
    gmmlab(*args, cwd=tmp_path)
    paths = results(tmp_path / "s")
    paths[0].write_text("{}")
    paths[1].write_text(paths[1].read_text()[:100])
    again = gmmlab(*args, cwd=tmp_path)
    assert again.stdout.count("its result file is unreadable (incomplete record") == 1
    assert again.stdout.count("its result file is unreadable (not valid JSON") == 1
    assert again.stdout.count("skipped (already done)") == 1
    assert "collected 3 runs (3 ok)" in again.stdout
    assert all(read_result(p.parent)["status"] == "ok" for p in paths)


def test_existing_sweeps_keep_their_run_folders_and_resume(tmp_path):
    """A sweep made before hashed names (folders named by the overrides alone) resumes in its
    folders: the same sweep skips every run."""
    args = ["-m", "dataset=faithful", "n_components=1,2", f"hydra.sweep.dir={tmp_path}/s"]
    gmmlab(*args, cwd=tmp_path)
    for path in results(tmp_path / "s"):  # rename to the old names
        path.parent.rename(path.parent.with_name(path.parent.name.rsplit("-", 1)[0]))
    assert sorted(p.parent.name for p in results(tmp_path / "s")) == [
        "dataset=faithful,n_components=1", "dataset=faithful,n_components=2"]
    again = gmmlab(*args, cwd=tmp_path)
    assert again.stdout.count("skipped (already done)") == 2
    assert len(results(tmp_path / "s")) == 2


# ------------------------------------------------------------------ stale results


def test_changed_csv_contents_rerun_the_same_command_and_say_why(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text(GOOD)
    args = ("-m", "dataset=csv", f"dataset.options.path={data}", "n_components=1,2",
            f"hydra.sweep.dir={tmp_path}/s")
    gmmlab(*args, cwd=tmp_path)
    same = gmmlab(*args, cwd=tmp_path)
    assert same.stdout.count("skipped (already done)") == 2
    data.write_text(GOOD + "9,9\n")
    changed = gmmlab(*args, cwd=tmp_path)
    assert changed.stdout.count("rerun, data changed since the last run") == 2
    assert set(pd.read_csv(tmp_path / "s" / "results.csv")["n_samples"]) == {41}


def test_a_config_file_edit_reruns_and_names_the_changed_key(tmp_path):
    conf = tmp_path / "conf" / "dataset"
    conf.mkdir(parents=True)
    mine = conf / "mine.yaml"
    template = "defaults:\n  - dataset_schema\n  - _self_\nname: synthetic\noptions:\n  " \
               "n_samples: {n}\n"
    mine.write_text(template.format(n=100))
    args = ("--config-dir", str(tmp_path / "conf"), "dataset=mine", "hydra.run.dir=run")
    gmmlab(*args, cwd=tmp_path)
    assert "skipped (already done)" in gmmlab(*args, cwd=tmp_path).stdout
    mine.write_text(template.format(n=120))
    edited = gmmlab(*args, cwd=tmp_path)
    assert ("rerun, configuration changed since the last run (dataset.options.n_samples: 100 "
            "-> 120)") in edited.stdout
    assert read_result(tmp_path / "run")["n_samples"] == 120
    forced = gmmlab(*args, "resume=false", cwd=tmp_path)
    assert "skipped" not in forced.stdout and "[gmmlab] result:" in forced.stdout


# ------------------------------------------------------------------ interrupts and kills


def test_ctrl_c_stops_a_run_cleanly_and_says_how_to_resume(tmp_path):
    """SIGINT once the run holds its folder's lock (it is inside the job: data, fit, record),
    waited for in /proc/locks."""
    process = start([*SLOW, "dataset.options.n_samples=200000", "backend.n_init=20",
                     f"hydra.run.dir={tmp_path}/run"], tmp_path)
    wait_for(lambda: holds_lock(process.pid, tmp_path / "run" / ".lock") or
             process.poll() is not None, what="the run to hold its folder's lock")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stdout + stderr
    assert "gmmlab: interrupted (Ctrl-C); nothing partial was written" in stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert not list((tmp_path / "run").glob("*result.json*"))


@pytest.mark.parametrize("launcher", ["basic", "parallel"])
def test_sigkill_during_a_sweep_then_resume_reruns_exactly_the_missing_runs(tmp_path, launcher):
    """Killed once two results are written (a fit takes seconds, so the other four cannot all
    finish between the two); the kill is final once no process works in the sweep's folder:
    no result can appear after the results are counted."""
    sweep = tmp_path / "s"
    args = ["-m", *SLOW, "seed=0,1,2,3,4,5", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={sweep}"]
    if launcher == "parallel":
        args.append("hydra.launcher.n_jobs=2")
    process = start(args, tmp_path)
    wait_for(lambda: len(results(sweep)) >= 2 or process.poll() is not None,
             what="two results")
    workers = descendants(process.pid)
    process.kill()
    process.wait()
    assert launcher == "basic" or workers  # joblib's workers were running
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30,
             what=f"the workers {workers} to end with their parent")
    wait_for(lambda: not processes_in(tmp_path), timeout=30, what="no process in the sweep")
    done = {p.parent for p in results(sweep)}
    for folder in done:
        assert read_result(folder)["status"] == "ok"  # every file whole
    assert 2 <= len(done) < 6
    again = gmmlab(*args, cwd=tmp_path)
    assert again.stdout.count("skipped (already done)") == len(done)
    assert again.stdout.count("[gmmlab] result:") == 6 - len(done)
    table = pd.read_csv(sweep / "results.csv")
    assert len(table) == 6 and table["run_dir"].is_unique and set(table["seed"]) == set(range(6))


def test_two_identical_sweeps_into_one_folder_run_each_job_once(tmp_path):
    args = ["-m", "dataset=tutorial_2d", "n_components=1,2,3", "seed=0,1",
            f"hydra.sweep.dir={tmp_path}/s"]
    outputs = {}

    def sweep(name):
        process = start(args, tmp_path)
        outputs[name] = process.communicate(timeout=600) + (process.returncode,)

    threads = [threading.Thread(target=sweep, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [outputs[name][2] for name in "ab"] == [0, 0]
    fitted = sum(outputs[name][0].count("[gmmlab] result:") for name in "ab")
    skipped = sum(outputs[name][0].count("skipped (already done)") for name in "ab")
    assert (fitted, skipped) == (6, 6)
    assert len(pd.read_csv(tmp_path / "s" / "results.csv")) == 6


# ------------------------------------------------------------------ resume and collect


def test_an_edited_plug_in_backend_reruns_on_resume(tmp_path):
    module = tmp_path / "mine.py"
    source = ("from toy_methods import fit_cluster_moments\n\n"
              "def fit(X, n_components, seed):\n"
              "    return fit_cluster_moments(X, n_components, seed, shrinkage={})\n")
    module.write_text(source.format(0.0))
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(PLUGINS), *filter(None, [os.environ.get("PYTHONPATH")])])}
    args = ("backend=custom", "backend.target=mine:fit", "hydra.run.dir=run")
    gmmlab(*args, cwd=tmp_path, env=env)
    before = read_result(tmp_path / "run")["loglik"]
    assert "skipped (already done)" in gmmlab(*args, cwd=tmp_path, env=env).stdout
    module.write_text(source.format(0.5))
    again = gmmlab(*args, cwd=tmp_path, env=env)
    assert "rerun, the code of backend mine:fit changed since the last run" in again.stdout
    after = read_result(tmp_path / "run")
    assert after["resume_key"]["code"]["backend"]["function"] == "mine:fit"
    assert after["loglik"] < before  # shrunk covariances fit worse: the new code's numbers


def test_collect_reads_only_the_sweeps_own_runs(tmp_path):
    sweep = tmp_path / "s"
    gmmlab("-m", "n_components=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    listed = (sweep / RUNS_FILE).read_text().splitlines()
    assert sorted(listed) == sorted(p.parent.name for p in results(sweep))
    copy = sweep / "copy of a run"
    shutil.copytree(results(sweep)[0].parent, copy)
    done = gmmlab(str(sweep), cwd=tmp_path, command="gmmlab-collect")
    assert "2 runs (2 ok)" in done.stdout
    assert f"not a run of this sweep (not listed in {sweep / RUNS_FILE}), ignored: " \
           f"{copy / 'result.json'}" in done.stderr
    assert len(pd.read_csv(sweep / "results.csv")) == 2


# ------------------------------------------------------------------ signals


def select_with_workers(tmp_path, signal_number):
    """gmmlab-select on a large CSV with two joblib workers, sent ``signal_number`` once the
    workers run; (stdout, stderr, exit status, the workers' ids)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "big.csv"
    pd.DataFrame(rng.normal(size=(40000, 3)), columns=list("abc")).to_csv(data, index=False)
    process = subprocess.Popen([str(Path(sys.executable).parent / "gmmlab-select"), str(data),
                                "--n-jobs", "2", "-k", "1-8"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(descendants(process.pid)) >= 2, timeout=300)
    workers = descendants(process.pid)
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=60)
    return stdout, stderr, process.returncode, workers


def test_sigterm_ends_select_and_its_workers(tmp_path):
    """The workers end with the command (joblib aborts on the SIGTERM handler's exception and
    kills them), not minutes later; how fast is measured apart, not by a timed test."""
    stdout, stderr, status, workers = select_with_workers(tmp_path, signal.SIGTERM)
    assert status == 143 and "gmmlab-select: terminated (SIGTERM)." in stderr
    assert "Traceback" not in stderr
    wait_for(lambda: not [pid for pid in workers if alive(pid)], timeout=10)


def test_ctrl_c_in_select_says_nothing_was_written_and_promises_no_resume(tmp_path):
    stdout, stderr, status, workers = select_with_workers(tmp_path, signal.SIGINT)
    assert status == 1 and "Traceback" not in stderr
    assert "gmmlab-select: interrupted (Ctrl-C); nothing was written" in stderr
    assert "resume" not in stderr
    wait_for(lambda: not [pid for pid in workers if alive(pid)], timeout=10)
