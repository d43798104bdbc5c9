"""What every benchmark table of experiments/speed/ shares: the machine it ran on and where it
is written. Imported by the bench_*.py scripts beside it (run as ``python
experiments/speed/bench_NAME.py``, which puts this folder first on the path)."""

import os
import platform

import numpy as np


def machine_description():
    """CPU model, cores, Python, numpy and its BLAS, scikit-learn."""
    import sklearn
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    blas = next((f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                 for p in threadpool_info() if p["user_api"] == "blas"), "unknown BLAS")
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"numpy {np.__version__} with {blas}, scikit-learn {sklearn.__version__}")


def publish(report, output=None):
    """Print a benchmark's report and, given a path, write it there too."""
    print("\n" + report)
    if output:
        with open(output, "w") as out:
            out.write(report)
