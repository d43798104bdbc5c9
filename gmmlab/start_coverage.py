"""How often do the default starts of :func:`gmmlab.select` reach the best fit known?

For every shipped real data set, model and K = 1..6, the best log-likelihood known is the
highest non-degenerate one over the hc start and ``--restarts`` starts of each random method
(k-means, k-means++, random_from_data, random); a start configuration reaches a cell when its
cell (:func:`gmmlab.selection.fit_cell`) comes within 1e-3 of it. Prints the share per data set
and model for each configuration, and writes them with the misses to ``--output``.

    python -m gmmlab.start_coverage --n-jobs 2 -o experiments/model_selection/start_coverage.md
"""

import argparse
import datetime
import platform
import sys
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from gmmlab import metrics, selection
from gmmlab.datasets import load_dataset

DATASETS = ("faithful", "faithful_eruptions", "faithful_140", "galaxies", "galaxies_mass",
            "acidity", "enzyme", "iris")
RANDOM_STARTS = ("kmeans", "k-means++", "random_from_data", "random")
# Configurations compared: name -> (starts, n_init); the first is select's default.
CONFIGURATIONS = {
    "default: " + " + ".join(selection.DEFAULT_STARTS) + f" x {selection.DEFAULT_N_INIT}":
        (selection.DEFAULT_STARTS, selection.DEFAULT_N_INIT),
    "hc + kmeans x 5": (("hc", "kmeans"), 5),
    "hc + k-means++ x 10 + random_from_data x 10": (("hc", "k-means++", "random_from_data"), 10),
}
TOLERANCE = 1e-3


def measure_cell(X, name, model, k, restarts, seed):
    """The best known log-likelihood of a cell and each configuration's."""
    resolution = metrics.data_resolution(X)
    runs = selection.start_runs(("hc",) + RANDOM_STARTS, restarts, seed)
    candidates = selection.fit_starts(X, model, k, runs, resolution=resolution)
    sound = [c["loglik"] for c in candidates if c["estimator"] is not None and not c["degenerate"]]
    row = {"data": name, "model": model, "n_components": k,
           "best_known": max(sound) if sound else np.nan}
    for label, (starts, n_init) in CONFIGURATIONS.items():
        cell = selection.fit_cell(X, model, k, starts=starts, n_init=n_init, seed=seed + 1,
                                  resolution=resolution)
        row[label] = cell["loglik"] if cell["status"] == "ok" else np.nan
    return row


def measure(restarts=50, max_components=6, n_jobs=None, seed=0):
    """One row per data set x model x K: best known and each configuration's log-likelihood."""
    jobs = []
    for name in DATASETS:
        X = load_dataset(name).X
        for model in selection.available_models(X.shape[1]):
            for k in range(1, max_components + 1):
                jobs.append(delayed(measure_cell)(X, name, model, k, restarts, seed))
    return pd.DataFrame(Parallel(n_jobs=n_jobs)(jobs))


def coverage(table):
    """Share of cells (with a non-degenerate fit known) each configuration reaches."""
    known = table.dropna(subset=["best_known"])
    reached = {label: known[label] >= known["best_known"] - TOLERANCE for label in CONFIGURATIONS}
    per_model = pd.DataFrame(reached).groupby([known["data"], known["model"]]).mean()
    return known, reached, per_model


def report(table, seconds, restarts):
    known, reached, per_model = coverage(table)
    lines = ["# Start coverage of gmmlab.select\n",
             f"`python -m gmmlab.start_coverage --restarts {restarts}` on "
             f"{datetime.date.today()}, {platform.node()}, {seconds:.0f} s. Best known: the "
             f"highest non-degenerate log-likelihood over the hc start and {restarts} starts of "
             f"each of {', '.join(RANDOM_STARTS)}; reached: within {TOLERANCE} of it. "
             f"{len(known)} cells with a non-degenerate fit known "
             f"({len(table) - len(known)} without).\n",
             "| configuration | cells reached | share |", "|---|---|---|"]
    for label in CONFIGURATIONS:
        lines.append(f"| {label} | {int(reached[label].sum())} / {len(known)} | "
                     f"{reached[label].mean():.1%} |")
    lines += ["\nShare reached per data set and model (K = 1..6):\n",
              per_model.map("{:.0%}".format).to_markdown()]
    default = next(iter(CONFIGURATIONS))
    missed = known[~reached[default]]
    if len(missed):
        lines += ["\nCells the default misses (log-likelihood against the best known):\n",
                  missed[["data", "model", "n_components", "best_known", default]]
                  .to_markdown(index=False, floatfmt=".3f")]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gmmlab.start_coverage",
                                     description="Share of cells the default starts reach.")
    parser.add_argument("--restarts", type=int, default=50,
                        help="starts of each random method for the best known (default 50)")
    parser.add_argument("--max-components", type=int, default=6)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("-o", "--output", help="write the report (markdown) here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = measure(args.restarts, args.max_components, args.n_jobs)
    text = report(table, time.perf_counter() - started, args.restarts)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
