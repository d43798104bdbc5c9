"""Time of ``gmmlab.select`` on Old Faithful: ``python experiments/speed/bench_select.py`` (or
``make bench-select``).

Every covariance model the EM estimator fits x K = 1..9 with select's default starts (hc, then
10 k-means++ and 10 random_from_data starts a cell), cells spread over ``--n-jobs`` processes;
the median of ``--repeats`` runs, wall-clock, the pool's start-up included, and the CPU seconds
of one run in one process (a figure other jobs on the machine do not inflate). Target: under
30 s on 2 cores.
"""

import argparse
import statistics
import time

from benchmark_table import machine_description, publish

from gmmlab import select
from gmmlab.datasets import load_dataset
from gmmlab.model.search import DEFAULT_SEARCH, available_models


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python experiments/speed/bench_select.py",
                                     description="Time gmmlab.select on Old Faithful.")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-o", "--output", help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    X = load_dataset("faithful").X
    models = available_models(X.shape[1])
    times, result = [], None
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = select(X, range(1, 10), n_jobs=args.n_jobs)
        times.append(time.perf_counter() - started)
    # CPU seconds of one run in this process: what the grid costs, whatever else the machine
    # runs (wall-clock on a shared machine is not)
    cpu = time.process_time()
    select(X, range(1, 10), n_jobs=1)
    cpu = time.process_time() - cpu
    best = result.best(1).iloc[0]
    publish(f"# gmmlab.select on Old Faithful\n\n"
            "`python experiments/speed/bench_select.py "
            f"--n-jobs {args.n_jobs} --repeats {args.repeats}`"
            f" on {machine_description()}.\n\n"
            f"{len(models)} models ({', '.join(models)}) x K = 1..9, "
            f"{len(DEFAULT_SEARCH.runs(0))}"
            f" starts a cell, {args.n_jobs} processes: median {statistics.median(times):.1f} s "
            f"over {args.repeats} runs ({', '.join(f'{t:.1f}' for t in times)} s); one run in "
            f"one process takes {cpu:.1f} CPU seconds. "
            f"Chosen by BIC: {best['model']},{best['n_components']} ({best['bic']:.3f}).\n",
            args.output)


if __name__ == "__main__":
    main()
