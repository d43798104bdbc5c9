"""How often do the default starts of :func:`gmmlab.select` reach the best fit known?

For every shipped real data set, model and K = 1..6, the best log-likelihood known is the
highest non-degenerate one over the hc start and ``--restarts`` starts of each random method
(k-means, k-means++, random_from_data, random): every start's short run, the best 20 distinct
ones run on to select's tolerance (:func:`gmmlab.model.search.best_fit`), or a configuration's
fit where it went higher; a start configuration reaches a cell when its cell comes within
1e-3 of it.
Prints the shares per configuration and, for select's default, per data set and model with
the cells it misses; ``-o`` writes the report and the measured table (.csv) beside it.

    python experiments/model_selection/start_coverage.py --n-jobs 2 \
        -o experiments/model_selection/start_coverage.md
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from gmmlab.datasets import load_dataset
from gmmlab.model import metrics
from gmmlab.model.search import DEFAULT_SEARCH, SearchSettings, available_models, fit_cell

DATASETS = ("faithful", "faithful_eruptions", "faithful_140", "galaxies", "galaxies_mass",
            "acidity", "enzyme", "iris")
RANDOM_STARTS = ("kmeans", "k-means++", "random_from_data", "random")


def label(settings):
    """'hc + k-means++ x 20 + ... (to 0.001, best 3 on)' of a search (hc runs once)."""
    starts = " + ".join(s if s == "hc" else f"{s} x {settings.n_init}"
                        for s in settings.starts)
    return f"{starts} (to {settings.short_tol:g}, best {settings.n_refine} on)"


DEFAULT = DEFAULT_SEARCH
# Configurations compared: the em backend's k-means start, select's default, and select's
# starts with random soft starts added, 10, 20 and 40 of each method, shorter short runs and
# fewer long ones (each of those runs about as long as the default on Old Faithful).
WITH_RANDOM = ("hc", "k-means++", "random_from_data", "random")
CONFIGURATIONS = [
    SearchSettings(("hc", "kmeans"), 5), DEFAULT,
    *[SearchSettings(WITH_RANDOM, n_init, short_tol=1e-3, n_refine=3) for n_init in (10, 20, 40)]]
# The best known: every start's short run to 1e-4, the best 20 distinct run on to the end.
REFERENCE = dict(short_tol=1e-4, n_refine=20)
TOLERANCE = 1e-3


def measure_cell(X, name, model, k, restarts, seed):
    """The best known log-likelihood of a cell and each configuration's."""
    resolution = metrics.data_resolution(X)
    reference = fit_cell(X, model, k, SearchSettings(("hc",) + RANDOM_STARTS, restarts,
                                                     **REFERENCE),
                         seed=seed, resolution=resolution)
    row = {"data": name, "model": model, "n_components": k}
    for configuration in CONFIGURATIONS:
        cell = fit_cell(X, model, k, configuration, seed=seed + 1, resolution=resolution)
        row[label(configuration)] = cell["loglik"] if cell["status"] == "ok" else np.nan
    # the best any run found: the reference, or a configuration that went beyond it
    found = [row[label(configuration)] for configuration in CONFIGURATIONS]
    found.append(reference["loglik"] if reference["status"] == "ok" else np.nan)
    found = [value for value in found if np.isfinite(value)]
    return row | {"best_known": max(found) if found else np.nan}


def measure(restarts=50, max_components=6, n_jobs=None, seed=0):
    """One row per data set x model x K: best known and each configuration's log-likelihood."""
    jobs = []
    for name in DATASETS:
        X = load_dataset(name).X
        for model in available_models(X.shape[1]):
            for k in range(1, max_components + 1):
                jobs.append(delayed(measure_cell)(X, name, model, k, restarts, seed))
    return pd.DataFrame(Parallel(n_jobs=n_jobs)(jobs))


def coverage(table):
    """Which cells (with a non-degenerate fit known) each configuration reaches, (cells,
    configurations) of bool, and the cells."""
    known = table.dropna(subset=["best_known"]).reset_index(drop=True)
    columns = [c for c in known.columns if c not in ("data", "model", "n_components",
                                                     "best_known")]
    reached = pd.DataFrame({c: known[c] >= known["best_known"] - TOLERANCE for c in columns})
    return known, reached


def report(table, command, seconds=None):
    """The markdown report of a measured table: shares per configuration, per data set and
    model for select's default, and the cells the default misses."""
    known, reached = coverage(table)
    default = label(DEFAULT)
    timing = "" if seconds is None else f", {seconds / 60:.0f} min on a 2-core machine"
    lines = ["# Start coverage of gmmlab.select\n",
             f"`{command}` ({datetime.date.today()}{timing}). For every shipped real data set, "
             f"covariance model and K = 1..{table['n_components'].max()}, the best "
             f"log-likelihood known is the highest non-degenerate one over the hc start and "
             f"{int(table.attrs.get('restarts', 50))} starts of each of "
             f"{', '.join(RANDOM_STARTS)} (short runs from every start to a change of "
             f"{REFERENCE['short_tol']:g} in the mean log-likelihood, the best "
             f"{REFERENCE['n_refine']} distinct ones run on to the end), or a configuration's "
             f"fit where it went higher. A configuration reaches a cell when select's cell "
             f"(short runs from its starts to the change shown, the best few distinct ones "
             f"run on, the best non-degenerate kept) comes within {TOLERANCE} of it. "
             f"{len(known)} cells have a non-degenerate fit known "
             f"({len(table) - len(known)} have none).\n",
             "| starts per cell | cells reached | share |", "|---|---|---|"]
    for column in reached:
        mark = " (select's default)" if column == default else ""
        lines.append(f"| {column}{mark} | {int(reached[column].sum())} / {len(known)} | "
                     f"{reached[column].mean():.1%} |")
    if default in reached:
        per_model = reached[default].groupby([known["data"], known["model"]]).mean()
        lines += [f"\nShare reached by the default ({default}) per data set and model:\n",
                  per_model.unstack().map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
                  .to_markdown()]
        missed = known[~reached[default]]
        if len(missed):
            lines += ["\nCells the default misses (log-likelihoods):\n",
                      missed[["data", "model", "n_components", "best_known", default]]
                      .to_markdown(index=False, floatfmt=".3f")]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python experiments/model_selection/start_coverage.py",
                                     description="Share of cells select's starts reach.")
    parser.add_argument("--restarts", type=int, default=50,
                        help="starts of each random method for the best known (default 50)")
    parser.add_argument("--max-components", type=int, default=6)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("-o", "--output", help="write the report (markdown) here, and the "
                                               "measured table beside it (.csv)")
    parser.add_argument("--from-table", help="rewrite the report from a measured table (.csv) "
                                             "instead of measuring")
    args = parser.parse_args(argv)
    command = ("python experiments/model_selection/start_coverage.py "
               + " ".join(argv or sys.argv[1:]))
    if args.from_table:
        table, seconds = pd.read_csv(args.from_table), None
        table.attrs["restarts"] = args.restarts
    else:
        started = time.perf_counter()
        table = measure(args.restarts, args.max_components, args.n_jobs)
        table.attrs["restarts"] = args.restarts
        seconds = time.perf_counter() - started
        if args.output:
            table.to_csv(Path(args.output).with_suffix(".csv"), index=False)
    text = report(table, command, seconds)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
