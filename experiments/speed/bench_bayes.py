"""PyMC backend speed: ``python experiments/speed/bench_bayes.py`` (or ``make bench-bayes``).

Per data set (Old Faithful K = 2 full, tutorial_1d K = 3, synthetic 2-D N = 5000 K = 3), at the
backend's defaults (4 chains x (1000 tune + 1000 draws), target_accept 0.9, EM start), four
ways to sample the same posterior:

- ``marginal + nutpie, numba``: gmmlab's default, nutpie on the log density and gradient
  written by hand in Numba (gmmlab.backends.mixture_posterior, cached on disk), its mass
  matrix adapted as a diagonal plus a low-rank correction;
- ``marginal + nutpie, numba, diagonal mass matrix``: the same with a diagonal mass matrix
  (nutpie's default adaptation);
- ``marginal + nutpie, pytensor``: nutpie on the PyMC model with the batched marginal
  likelihood, compiled by PyTensor's Numba backend;
- ``mixture + pymc``: the textbook model (pm.Mixture of pm.MvNormal / pm.NormalMixture) with
  PyMC's own NUTS, the baseline of the ratios;
- ``mixture + nutpie``: the textbook model with nutpie (what ``pm.sample`` picks when nutpie is
  installed).

Columns: the first fit in a fresh process (interpreter start, imports, compile and sampling),
measured after one fresh-process fit of the same way that warms the on-disk compile caches
(Numba's, PyTensor's), so it is the fit a returning user sees; compile seconds (nutpie; for
the hand-written density, loading its callbacks from Numba's cache; PyMC compiles inside
``pm.sample``, so its compile is in its sampler seconds), the sampler's wall time, leapfrog
steps (tuning + draws), milliseconds per leapfrog step (sampler wall / steps, chains in
parallel), the smallest bulk ESS of the weights and means, ESS per second of sampler wall time
(compile excluded), and that rate against the baseline's.
"""

import argparse
import json
import math
import shlex
import subprocess
import sys
import time

from benchmark_table import machine_description, publish

from gmmlab import backends
from gmmlab.datasets import load_dataset

CASES = [("faithful", {}, 2), ("tutorial_1d", {}, 3),
         ("synthetic", {"n_components": 3, "n_features": 2, "n_samples": 5000}, 3)]
WAYS = {"marginal + nutpie, numba": {"likelihood": "marginal", "sampler": "nutpie",
                                     "density": "numba"},
        "marginal + nutpie, numba, diagonal mass matrix": {
            "likelihood": "marginal", "sampler": "nutpie", "density": "numba",
            "mass_matrix": "diag"},
        "marginal + nutpie, pytensor": {"likelihood": "marginal", "sampler": "nutpie",
                                        "density": "pytensor"},
        "mixture + pymc": {"likelihood": "mixture", "sampler": "pymc"},
        "mixture + nutpie": {"likelihood": "mixture", "sampler": "nutpie"}}
BASELINE = "mixture + pymc"
FRESH_FIT = """
import json, sys
from gmmlab import backends
from gmmlab.datasets import load_dataset
name, options, K, way = json.loads(sys.argv[1])
result = backends.fit("pymc", load_dataset(name, **options).X, K, "full", seed=0, **way)
print(json.dumps(result.status))
"""


def fresh_process_seconds(name, options, K, way, environment=None):
    """Wall time of one fit in a new Python process, from its start to its end (environment:
    that process's variables, e.g. NUMBA_CACHE_DIR; None, this one's)."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FRESH_FIT,
                           json.dumps([name, options, K, WAYS[way]])],
                          capture_output=True, text=True, check=True, env=environment)
    if json.loads(done.stdout.splitlines()[-1]) != "ok":
        raise RuntimeError(f"fresh fit of {name} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - began


def measure(name, options, K, way, seed=0, single=False):
    """One row: a fresh-process fit after one that warms the compile caches, then a fit in
    this process (after a first one that compiles) for the statistics. single: only one fit,
    in this process (compile included in its fit seconds, no fresh-process column), for the
    data set whose textbook fit takes minutes."""
    X = load_dataset(name, **options).X
    fresh = float("nan")
    if not single:
        fresh_process_seconds(name, options, K, way)  # warms Numba's and PyTensor's caches
        fresh = fresh_process_seconds(name, options, K, way)
    first = backends.fit("pymc", X, K, "full", seed=seed, **WAYS[way])
    result = first if single else backends.fit("pymc", X, K, "full", seed=seed + 1,
                                               **WAYS[way])
    for fit in (first, result):
        if fit.status != "ok":
            raise RuntimeError(f"{name} {way}: {fit.message}")
    d = result.diagnostics
    steps = d["leapfrog_steps_draws"] + d.get("leapfrog_steps_tuning", 0)
    return dict(data=name, K=K, way=way, fresh_seconds=fresh,
                compile_seconds=first.diagnostics["compile_seconds"],
                warm_fit_seconds=result.fit_seconds, sampler_seconds=d["sampler_seconds"],
                leapfrog_steps=steps, ms_per_step=1e3 * d["sampler_seconds"] / steps,
                min_ess_bulk=d["min_ess_bulk"],
                ess_per_second=d["min_ess_bulk"] / d["sampler_seconds"],
                max_rhat=d["max_rhat"], divergences=d["divergences"])


def format_table(rows):
    """Rows as a Markdown table, each with its ESS/s ratio to the baseline of its data set."""
    baseline = {r["data"]: r["ess_per_second"] for r in rows if r["way"] == BASELINE}
    lines = ["| data | K | way | fresh-process fit s (caches warm) | compile s | warm fit s | "
             "sampler s | leapfrog steps | ms/step | min bulk ESS | ESS/s | "
             "ESS/s vs textbook PyMC | R-hat | divergences |", "|" + "---|" * 14]
    for r in rows:
        ratio = r["ess_per_second"] / baseline[r["data"]] if r["data"] in baseline else float("nan")
        lines.append(
            f"| {r['data']} | {r['K']} | {r['way']} | "
            f"{'-' if math.isnan(r['fresh_seconds']) else format(r['fresh_seconds'], '.1f')} | "
            f"{r['compile_seconds']:.1f} | {r['warm_fit_seconds']:.1f} | "
            f"{r['sampler_seconds']:.2f} | {r['leapfrog_steps']:,} | {r['ms_per_step']:.3f} | "
            f"{r['min_ess_bulk']:.0f} | {r['ess_per_second']:.0f} | {ratio:.1f}x | "
            f"{r['max_rhat']:.3f} | {r['divergences']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", help="also write the table, with the machine, to this file")
    parser.add_argument("--data", nargs="*", help="only these data sets")
    parser.add_argument("--ways", nargs="*", choices=list(WAYS), help="only these ways")
    parser.add_argument("--single", action="store_true",
                        help="one fit per way in this process (no fresh-process fit)")
    args = parser.parse_args(argv)
    rows = []
    for name, options, K in CASES:
        if args.data and name not in args.data:
            continue
        for way in args.ways or WAYS:
            rows.append(measure(name, options, K, way, single=args.single))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    report = (f"Machine: {machine_description()}\n\n"
              "Command: python experiments/speed/bench_bayes.py "
              f"{shlex.join(argv or sys.argv[1:])}\n\n"
              f"{format_table(rows)}\n")
    publish(report, args.output)
    return rows


if __name__ == "__main__":
    main()
