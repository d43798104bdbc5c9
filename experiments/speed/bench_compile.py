"""The compiled EM engine's first-compile cost: ``python experiments/speed/bench_compile.py``.

Two fresh processes share an empty Numba cache directory (a temporary ``NUMBA_CACHE_DIR``): the
first compiles gmmlab's kernels (gmmlab.model.kernels) and writes them to the cache, the second
loads them from it. Each times ``import gmmlab`` and the first EM fits of the four storage forms
(full, tied, diag, spherical) and of EVE (the rotation sweep) on Old Faithful, then the same
fits again (everything compiled); wall-clock and CPU seconds.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from benchmark_table import machine_description, publish

FRESH_PROCESS = """
import time, warnings
warnings.simplefilter("ignore")
began, cpu = time.perf_counter(), time.process_time()
from gmmlab import EMGaussianMixture, load_dataset
imported, imported_cpu = time.perf_counter(), time.process_time()
X = load_dataset("faithful").X
def fits():
    for covariance_type in ("full", "tied", "diag", "spherical", "EVE"):
        EMGaussianMixture(2, covariance_type=covariance_type, max_iter=2).fit(X)
fits()
first, first_cpu = time.perf_counter(), time.process_time()
fits()
again = time.perf_counter()
print(f"{imported - began:.2f} | {imported_cpu - cpu:.2f} | {first - imported:.2f} | "
      f"{first_cpu - imported_cpu:.2f} | {again - first:.3f}")
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="also write the table, with the machine, here")
    args = parser.parse_args(argv)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        environment = os.environ | {"NUMBA_CACHE_DIR": cache}
        environment.pop("NUMBA_OPT", None)
        for label in ("empty cache (compiles)", "cache written by the first"):
            out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], env=environment,
                                 capture_output=True, text=True, check=True).stdout.strip()
            rows.append(f"| {label} | {out} |")
    publish("# First compile of the EM kernels\n\n"
            "Command: `python experiments/speed/bench_compile.py`\n\n"
            f"Machine: {machine_description()}. Load average before the run: {load}.\n\n"
            "| process | import gmmlab s | (CPU s) | first fits s | (CPU s) | "
            "same fits again s |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
            args.output)


if __name__ == "__main__":
    main()
