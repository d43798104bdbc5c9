"""One EM iteration on small data, where interpreter overhead dominates:
``python experiments/speed/bench_iteration.py [--label L] [--output F]``.

Old Faithful (272 x 2), K = 3, from a k-means++ start (seed 1), ``tol=0``, 200 iterations; CPU
seconds of the fit over its iterations, the best of three fits, per model. The script imports
only ``gmmlab.EMGaussianMixture`` and ``gmmlab.datasets.load_dataset``, so it runs on any gmmlab
checkout: to compare with another commit, ``git archive COMMIT gmmlab | tar -x -C /tmp/old``
and run it with ``PYTHONPATH=/tmp/old``; ``--output`` appends a row.
"""

import argparse
import os
import time
import warnings

from gmmlab import EMGaussianMixture
from gmmlab.datasets import load_dataset

MODELS = ("VVV", "EEE", "VVI", "VII", "EVE", "VVE", "VEV")


def per_iteration(X, model, repeats=3):
    """Best CPU microseconds per iteration over ``repeats`` fits (after one warm-up fit)."""
    estimator = EMGaussianMixture(3, covariance_type=model, tol=0, max_iter=200,
                                  init_params="k-means++", random_state=1)
    estimator.fit(X)
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        estimator.fit(X)
        best = min(best, (time.process_time() - began) / estimator.n_iter_)
    return best * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--output", help="append the row to this Markdown file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    X = load_dataset("faithful").X
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    row = (f"| {args.label} | " + " | ".join(f"{per_iteration(X, m):.0f}" for m in MODELS)
           + f" | {load} |")
    print(row)
    if args.output:
        new = not os.path.exists(args.output)
        with open(args.output, "a") as out:
            if new:
                out.write("# One EM iteration on Old Faithful, K = 3 (CPU microseconds)\n\n"
                          "Command: `python experiments/speed/bench_iteration.py --label L "
                          "--output experiments/speed/iteration.md` (another commit: see the "
                          "script's docstring)\n\n| checkout | " + " | ".join(MODELS)
                          + " | load average |\n|" + "---|" * (len(MODELS) + 2) + "\n")
            out.write(row + "\n")


if __name__ == "__main__":
    main()
