"""The evidence's cost beside the fit it reuses: ``python experiments/speed/bench_evidence.py
[--datasets faithful galaxies acidity] [--ks 1 2 3 4 5] [--output F]``.

Per data set and K, one ``gibbs`` backend fit (4 chains x (500 + 1000) sweeps, seed 0): the
seconds of the fit (Gibbs sampling, relabelling, PSIS-LOO's log-likelihoods) and of the
evidence added to it (the K!-permutation proposal and the bridge iteration, from the same
draws), their ratio, and log p(X | K) +- se. One process; the times are wall seconds.
"""

import argparse
import os
import platform
import time

from gmmlab.backends.gibbs import fit_gibbs
from gmmlab.datasets import load_dataset


def measure(name, k):
    """One fit's row: data set, K, fit seconds, evidence seconds, ratio, log evidence, se."""
    X = load_dataset(name).X
    began = time.perf_counter()
    fit = fit_gibbs(X, k, "full", seed=0)
    total = time.perf_counter() - began
    d = fit.diagnostics
    return {"data set": f"{name} ({X.shape[0]} x {X.shape[1]})", "K": k,
            "fit (s)": d["sampling_seconds"], "evidence (s)": d["evidence_seconds"],
            "evidence / fit": f"{d['evidence_seconds'] / d['sampling_seconds']:.2f}x",
            "log evidence": f"{d['log_evidence']:.2f} ± {d['log_evidence_se']:.3f}",
            "total (s)": total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["faithful", "galaxies", "acidity"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--output", help="write the table to this Markdown file")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    rows = [measure(name, k) for name in args.datasets for k in args.ks]
    load = f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.2f}" if isinstance(row[c], float)
                                       else str(row[c]) for c in columns) + " |")
    table = "\n".join(lines)
    print(table)
    if args.output:
        with open(args.output, "w") as handle:
            machine = platform.processor() or platform.machine()
            handle.write(f"# The evidence beside the fit it reuses\n\n`python "
                         f"experiments/speed/bench_evidence.py`, {machine}, one process "
                         f"({os.cpu_count()} cores, {load})."
                         f"\n\n{table}\n")


if __name__ == "__main__":
    main()
