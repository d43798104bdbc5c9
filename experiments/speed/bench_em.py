"""EM speed and memory against scikit-learn: ``python experiments/speed/bench_em.py`` (or
``make bench``).

For every configuration both estimators start from identical initial parameters (``tol=0``, a
fixed number of iterations) in one process. Time per iteration is
(median T(1 + n iterations) - median T(1 iteration)) / n, which cancels set-up and
initialisation; peak extra memory is tracemalloc's peak over one fit (numpy's buffers are traced);
the final log-likelihoods must agree to 1e-8 relative.
"""

import argparse
import os
import statistics
import time
import tracemalloc
import warnings

import numpy as np
from benchmark_table import machine_description, publish
from sklearn.mixture import GaussianMixture

from gmmlab import EMGaussianMixture
from gmmlab.datasets import ancestor_sample, random_truth

SIZES = [(10_000, 2, 3), (100_000, 8, 8), (200_000, 16, 16), (1_000_000, 4, 5)]
QUICK_SIZES = [(2_000, 2, 3), (5_000, 4, 4)]
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
# The clock (--clock): wall-clock seconds, or this process's CPU seconds summed over its
# threads (BLAS's too), which other jobs on a shared machine do not inflate.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = [CLOCKS["wall"]]


def benchmark_data(n_samples, n_features, n_components, seed=0):
    """Ancestor-sampled data of a random full-covariance mixture, and the shared start."""
    truth = random_truth(n_components, n_features, separation=2.0, seed=seed)
    X = ancestor_sample(truth.weights, truth.means, truth.covariances, n_samples, seed)[0]
    rng = np.random.RandomState(seed)
    means = X[rng.choice(n_samples, n_components, replace=False)]
    return X, means


def initial_parameters(X, means, covariance_type):
    """Uniform weights, the given means, every component at the data covariance."""
    K, D = means.shape
    covariance = np.cov(X.T).reshape(D, D)
    precision = np.linalg.inv(covariance)  # of the data covariance, once, for the shared start
    precisions = {
        "full": np.stack([precision] * K),
        "tied": precision,
        "diag": np.tile(1 / np.diag(covariance), (K, 1)),
        "spherical": np.full(K, 1 / np.diag(covariance).mean()),
    }[covariance_type]
    return dict(weights_init=np.full(K, 1 / K), means_init=means, precisions_init=precisions)


def _fit(estimator_class, X, n_iter, covariance_type, start):
    model = estimator_class(len(start["weights_init"]), covariance_type=covariance_type, tol=0,
                            max_iter=n_iter, init_params="random_from_data", **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = CLOCK[0]()
        model.fit(X)
        return CLOCK[0]() - began, model


def _peak_memory(estimator_class, X, covariance_type, start):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    _fit(estimator_class, X, 2, covariance_type, start)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def measure(n_samples, n_features, n_components, covariance_type, n_iter=5, repeats=3):
    """One row: seconds per iteration and peak MiB of each, their ratio, log-likelihood gap."""
    X, means = benchmark_data(n_samples, n_features, n_components)
    start = initial_parameters(X, means, covariance_type)
    row = dict(N=n_samples, D=n_features, K=n_components, covariance=covariance_type)
    scores = {}
    for name, estimator_class in (("sklearn", GaussianMixture), ("gmmlab", EMGaussianMixture)):
        _fit(estimator_class, X, 1, covariance_type, start)  # warm-up: imports, caches, threads
        short = statistics.median(_fit(estimator_class, X, 1, covariance_type, start)[0]
                                  for _ in range(repeats))
        runs = [_fit(estimator_class, X, 1 + n_iter, covariance_type, start)
                for _ in range(repeats)]
        long = statistics.median(seconds for seconds, _ in runs)
        row[f"{name}_s_per_iter"] = max(long - short, 0.0) / n_iter
        row[f"{name}_peak_MiB"] = _peak_memory(estimator_class, X, covariance_type, start) / 2**20
        scores[name] = runs[-1][1].score(X)
    row["speedup"] = row["sklearn_s_per_iter"] / max(row["gmmlab_s_per_iter"], 1e-12)
    row["loglik_rel_diff"] = abs(scores["gmmlab"] - scores["sklearn"]) / abs(scores["sklearn"])
    return row


def format_table(rows):
    """The rows as a Markdown table."""
    header = ("| N | D | K | covariance | sklearn s/iter | gmmlab s/iter | speed-up | "
              "sklearn peak MiB | gmmlab peak MiB | loglik rel. diff |")
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['N']:,} | {r['D']} | {r['K']} | {r['covariance']} | "
            f"{r['sklearn_s_per_iter']:.4f} | {r['gmmlab_s_per_iter']:.4f} | "
            f"{r['speedup']:.2f}x | {r['sklearn_peak_MiB']:.1f} | {r['gmmlab_peak_MiB']:.1f} | "
            f"{r['loglik_rel_diff']:.1e} |"
        )
    return "\n".join(lines)


def _size(text):
    """'200000x16x16' -> (200000, 16, 16)."""
    try:
        n_samples, n_features, n_components = (int(part) for part in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size NxDxK like 200000x16x16, got "
                                         f"{text!r}") from None
    return n_samples, n_features, n_components


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", type=_size, metavar="NxDxK",
                        help="sizes to run instead, e.g. 200000x16x16")
    parser.add_argument("--types", nargs="+", choices=COVARIANCE_TYPES, default=COVARIANCE_TYPES)
    parser.add_argument("--output", help="also write the table, with the machine, to this file")
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall-clock or this process's CPU seconds (a busy machine)")
    args = parser.parse_args(argv)
    CLOCK[0] = CLOCKS[args.clock]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = []
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    for n_samples, n_features, n_components in sizes:
        for covariance_type in args.types:
            rows.append(measure(n_samples, n_features, n_components, covariance_type,
                                args.iterations, args.repeats))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    report = (f"Machine: {machine_description()}\n\n"
              f"Command: python experiments/speed/bench_em.py --repeats {args.repeats} "
              f"--iterations {args.iterations}{' --quick' if args.quick else ''}"
              + (f" --sizes {' '.join('x'.join(map(str, s)) for s in args.sizes)}"
                 if args.sizes else "")
              + (f" --types {' '.join(args.types)}" if args.types != COVARIANCE_TYPES else "")
              + f" --clock {args.clock}\n\nLoad average before the run: {load}; seconds are "
              + ("CPU seconds of the process, all threads" if args.clock == "cpu"
                 else "wall-clock") + "\n\n"
              f"{format_table(rows)}\n")
    publish(report, args.output)
    worst = max(row["loglik_rel_diff"] for row in rows)
    if worst >= 1e-8:
        raise SystemExit(f"log-likelihoods differ by {worst:.1e} relative (limit 1e-8)")
    return rows


if __name__ == "__main__":
    main()
