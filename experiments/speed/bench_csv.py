"""CSV loading against plain pandas: ``python experiments/speed/bench_csv.py [--rows 2000000]``.

Writes a CSV of ``rows`` x ``columns`` random numbers (6 decimals), then loads it with
``pandas.read_csv`` and with :func:`gmmlab.datasets.load_csv` (which also validates every cell),
each in a fresh process (after a warm-up load of a tiny file), ``repeats`` times. Prints the
median wall time of each, their ratio, and the peak memory each load adds to its process (peak
resident set size during the load, reset just before it, minus the size before it; Linux's
/proc/self), also as a multiple of the file's size.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Run in a fresh process: the load alone, timed, with the peak resident memory it adds.
CHILD = r"""
import json, sys, tempfile, time
import pandas as pd
from gmmlab.datasets import load_csv
loader, path = sys.argv[1], sys.argv[2]
read = (lambda p: pd.read_csv(p).to_numpy()) if loader == "pandas" else (lambda p: load_csv(p).X)
with tempfile.NamedTemporaryFile("w", suffix=".csv") as small:  # warm-up: lazy imports
    small.write("x1,x2\n1,2\n3,4\n")
    small.flush()
    read(small.name)
def status(field):  # kB, from /proc/self/status
    text = open("/proc/self/status").read()
    return int(text.split(field + ":")[1].split()[0])
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current size
before = status("VmRSS")
started = time.perf_counter()
X = read(path)
seconds = time.perf_counter() - started
peak = status("VmHWM") - before
print(json.dumps({"seconds": seconds, "peak_kib": peak, "shape": list(X.shape)}))
"""


def write_csv(path, rows, columns, seed=0):
    """``rows`` x ``columns`` standard normal draws x 10, 6 decimals, header x1, x2, ..."""
    values = np.random.default_rng(seed).standard_normal((rows, columns)) * 10
    header = ",".join(f"x{j + 1}" for j in range(columns))
    np.savetxt(path, values, fmt="%.6f", delimiter=",", header=header, comments="")


def measure(loader, path):
    done = subprocess.run([sys.executable, "-c", CHILD, loader, str(path)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.csv"
        write_csv(path, args.rows, args.columns)
        size_mb = path.stat().st_size / 1e6
        runs = {"pandas": [], "gmmlab": []}
        for _ in range(args.repeats):
            for loader, found in runs.items():
                found.append(measure(loader, path))
    print(f"CSV of {args.rows:,} x {args.columns}: {size_mb:.1f} MB; median of {args.repeats} "
          "fresh processes each")
    print("| loader | seconds | peak extra MB | peak / file size |")
    print("|---|---|---|---|")
    seconds = {}
    for loader, found in runs.items():
        seconds[loader] = statistics.median(run["seconds"] for run in found)
        peak_mb = max(run["peak_kib"] for run in found) * 1024 / 1e6
        print(f"| {'pandas.read_csv' if loader == 'pandas' else 'gmmlab load_csv'} | "
              f"{seconds[loader]:.3f} | {peak_mb:.1f} | {peak_mb / size_mb:.2f}x |")
    print(f"load_csv / read_csv time: {seconds['gmmlab'] / seconds['pandas']:.2f}x")


if __name__ == "__main__":
    main()
