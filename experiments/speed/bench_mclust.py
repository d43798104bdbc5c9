"""gmmlab's model-selection grid against mclust's ``mclustBIC``:
``python experiments/speed/bench_mclust.py``
(or ``make bench-mclust``; needs R, mclust and gmmlab[r]).

On each real data set, both fit the same grid, K = 1..9 for every covariance model the EM
estimator has (mclust's names VII, VVI, EEE, VVV; in 1-D E and V), with their default starts
(gmmlab: one k-means start, tol 1e-3; mclust: its hierarchical-clustering start), one process,
one after the other. gmmlab's time is that of the ``em`` backend plus the BIC of each cell, as a
study computes them; mclust's is the ``mclustBIC`` call from Python, conversion included, R
already started. Each is the median of ``--repeats`` runs; the ratio is gmmlab / mclust.
"""

import argparse
import statistics
import time

import numpy as np
from benchmark_table import machine_description, publish

from gmmlab import backends
from gmmlab.backends.mclust import r_session
from gmmlab.datasets import load_dataset
from gmmlab.model import gaussian, metrics

DATA = ("faithful", "faithful_eruptions", "galaxies", "acidity", "enzyme", "iris")
COMPONENTS = range(1, 10)


def grid_types(n_features):
    """gmmlab's covariance types and their mclust names, one per distinct model (1-D: E, V)."""
    types = gaussian.COVARIANCE_TYPES if n_features > 1 else ("tied", "full")
    return types, [gaussian.mclust_name(t, n_features) for t in types]


def gmmlab_grid(X, types):
    """BIC (scikit-learn's sign) of every (K, type) cell by the em backend; NaN where a fit
    failed."""
    table = np.full((len(COMPONENTS), len(types)), np.nan)
    for i, K in enumerate(COMPONENTS):
        for j, covariance_type in enumerate(types):
            result = backends.fit("em", X, K, covariance_type, seed=0)
            if result.status == "ok":
                table[i, j] = metrics.information_criteria(
                    X, result.weights, result.means, result.covariances, covariance_type)["bic"]
    return table


def mclust_grid(X, models):
    """mclustBIC over the same grid, in scikit-learn's sign; NaN for mclust's NA cells."""
    ro, converter, _ = r_session()
    with ro.conversion.localconverter(converter):
        bic = ro.r("function(X, G, models) mclustBIC(X, G = G, modelNames = models, "
                   "verbose = FALSE)")(X, np.array(list(COMPONENTS)), np.array(models))
    return -np.asarray(bic, dtype=float)


def timed(function, repeats):
    """(median seconds over ``repeats`` calls, the last result)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), out


def measure(name, repeats):
    X = load_dataset(name).X
    types, models = grid_types(X.shape[1])
    mclust_grid(X[:20], models)  # R started and mclust loaded before timing
    gmmlab_seconds, ours = timed(lambda: gmmlab_grid(X, types), repeats)
    mclust_seconds, theirs = timed(lambda: mclust_grid(X, models), repeats)
    best_ours = np.unravel_index(np.nanargmin(ours), ours.shape)
    best_theirs = np.unravel_index(np.nanargmin(theirs), theirs.shape)
    return {"data": name, "N": len(X), "D": X.shape[1], "models": "/".join(models),
            "cells": ours.size, "gmmlab_s": gmmlab_seconds, "mclust_s": mclust_seconds,
            "ratio": gmmlab_seconds / mclust_seconds,
            "gmmlab_failed": int(np.isnan(ours).sum()), "mclust_na": int(np.isnan(theirs).sum()),
            "gmmlab_best": f"{models[best_ours[1]]},{COMPONENTS[best_ours[0]]}",
            "mclust_best": f"{models[best_theirs[1]]},{COMPONENTS[best_theirs[0]]}"}


def format_table(rows):
    lines = ["| data | N | D | models | cells | gmmlab s | mclustBIC s | gmmlab / mclust | "
             "failed (gmmlab / mclust NA) | lowest BIC (gmmlab / mclust) |",
             "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['data']} | {r['N']} | {r['D']} | {r['models']} | {r['cells']} | "
                     f"{r['gmmlab_s']:.3f} | {r['mclust_s']:.3f} | {r['ratio']:.2f}x | "
                     f"{r['gmmlab_failed']} / {r['mclust_na']} | "
                     f"{r['gmmlab_best']} / {r['mclust_best']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", help="also write the table, with the machine, to this file")
    args = parser.parse_args(argv)
    rows = []
    for name in DATA:
        rows.append(measure(name, args.repeats))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    total = (sum(r["gmmlab_s"] for r in rows), sum(r["mclust_s"] for r in rows))
    report = (f"Machine: {machine_description()}; R mclust through rpy2\n\n"
              f"Command: python experiments/speed/bench_mclust.py --repeats {args.repeats}\n\n"
              f"{format_table(rows)}\n\nAll data sets: gmmlab {total[0]:.2f} s, mclustBIC "
              f"{total[1]:.2f} s, ratio {total[0] / total[1]:.2f}x.\n")
    publish(report, args.output)
    return rows


if __name__ == "__main__":
    main()
