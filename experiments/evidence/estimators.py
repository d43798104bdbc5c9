"""Which evidence estimator: accuracy per second against the exact evidence.
``python experiments/evidence/estimators.py [--seeds 5]``

The six enumeration cases of tests/test_evidence.py (two groups of points, N = 10..12, D = 1
and 2, K = 1..3, the normal-inverse-Wishart prior with mean 0, kappa 0.1, dof D + 2, scale I),
each estimated with ``--seeds`` random states by every method of
:func:`gmmlab.marginal_likelihood` at its defaults (4 chains x 1000 kept Gibbs draws, S = 100
proposal components). Printed per method and case: the root mean square error against the
exact value, the mean reported se, the share of runs within max(4 se, 0.05), the mean seconds,
and the work-normalised efficiency 1 / (MSE x seconds) (higher is better: the precision bought
per second).
"""

import argparse
import statistics
import time

import numpy as np

from gmmlab import marginal_likelihood
from gmmlab.model import conjugate
from gmmlab.selection.evidence import METHODS

CASES = [(1, 1, 12), (1, 2, 12), (1, 3, 11), (2, 1, 12), (2, 2, 12), (2, 3, 10)]


def data(N, D, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-2, 1, (N // 2, D)), rng.normal(2, 1, (N - N // 2, D))])


def prior(D):
    return {"family": "normal-inverse-wishart", "mean": np.zeros(D), "kappa": 0.1,
            "dof": D + 2.0, "scale": np.eye(D), "alpha": 1.0}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python experiments/evidence/estimators.py")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'method':<11} {'D':>2} {'K':>2} {'N':>3} {'rmse':>7} {'mean se':>8} "
          f"{'covered':>8} {'seconds':>8} {'1/(MSE s)':>10}")
    totals = {method: [] for method in METHODS}
    for D, K, N in CASES:
        X = data(N, D, seed=N + D)
        exact = conjugate.exact_log_evidence(X, K, prior(D))
        for method in METHODS:
            errors, ses, seconds, covered = [], [], [], 0
            for seed in range(args.seeds):
                began = time.perf_counter()
                result = marginal_likelihood(X, K, prior=prior(D), method=method,
                                             random_state=seed)
                seconds.append(time.perf_counter() - began)
                errors.append(result.log_evidence - exact)
                ses.append(result.se)
                covered += abs(errors[-1]) <= max(4 * result.se, 0.05)
            mse = float(np.mean(np.square(errors)))
            mean_seconds = statistics.mean(seconds)
            totals[method].append((mse, mean_seconds))
            print(f"{method:<11} {D:>2} {K:>2} {N:>3} {mse ** 0.5:>7.4f} {np.mean(ses):>8.4f} "
                  f"{covered:>4}/{args.seeds:<3} {mean_seconds:>8.2f} "
                  f"{1 / (max(mse, 1e-12) * mean_seconds):>10.3g}")
    for method, rows in totals.items():
        mse = np.mean([row[0] for row in rows])
        seconds = np.mean([row[1] for row in rows])
        print(f"{method}: over the cases rmse {mse ** 0.5:.4f}, {seconds:.2f} s a run, "
              f"1/(MSE s) {1 / (mse * seconds):.3g}")


if __name__ == "__main__":
    main()
