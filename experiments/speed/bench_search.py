"""gmmlab.select and the bootstrap LRT against mclust, one process each:
``python experiments/speed/bench_search.py`` (needs R, mclust and gmmlab[r]).

On each data set, 14 models x K = 1..9 (1-D: E, V): ``gmmlab.select`` at its default search
(hc, 10 k-means++ and 10 random_from_data starts a cell, short runs then the best refined),
gmmlab's single hc start a cell (``select(starts=("hc",))``), and ``mclustBIC`` (its hc start),
one after the other in this process (n_jobs=1; R already started); seconds (``--clock``) and the
ratios gmmlab / mclust. mclust's own data sets (banknote, diabetes, thyroid, wdbc) are read
through R, without their class column (wdbc: its first six measurements). The cell-by-cell
comparison counts the cells where gmmlab's default search ends more than 0.01 BIC units worse
than mclustBIC (both non-degenerate), and lists the worst.

``--lrt`` adds the bootstrap LRT, Old Faithful, EEE, K = 1, 2, 3 against K + 1, B = 999:
``gmmlab.selection.bootstrap.bootstrap_lrt`` (n_jobs=1) against ``mclustBootstrapLRT(maxG = 3)``.
"""

import argparse
import os
import time

import numpy as np
from benchmark_table import machine_description, publish

from gmmlab import load_dataset, select
from gmmlab.backends.mclust import r_session
from gmmlab.selection.bootstrap import bootstrap_lrt

SHIPPED = ("faithful", "iris", "galaxies", "acidity")
MCLUST_DATA = {"banknote": "banknote[, -1]", "diabetes": "diabetes[, -1]",
               "thyroid": "thyroid[, -1]", "wdbc": "wdbc[, 3:8]"}
COMPONENTS = range(1, 10)
# The clock (--clock): wall-clock seconds, or this process's CPU seconds (R runs in it too),
# which other jobs on a shared machine do not inflate.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = [CLOCKS["wall"]]
CLOCK_NAMES = {"wall": "wall-clock", "cpu": "CPU seconds of this process"}


def load(name):
    """X of a shipped data set or of one of mclust's (through R)."""
    if name not in MCLUST_DATA:
        return load_dataset(name).X
    ro, converter, _ = r_session()
    with converter.context():
        return np.asarray(ro.r(f"as.matrix(mclust::{MCLUST_DATA[name]})"), dtype=float)


def mclust_bic(X):
    """mclustBIC over K = 1..9 and every model, in scikit-learn's sign (lower is better):
    (seconds, table K x models, model names); NaN for mclust's NA cells."""
    ro, converter, _ = r_session()
    function = ro.r("function(X, G) mclustBIC(X, G = G, verbose = FALSE)")
    with converter.context():
        started = CLOCK[0]()
        table = function(X, np.array(list(COMPONENTS)))
        seconds = CLOCK[0]() - started
    names = list(ro.r("function(X) colnames(mclustBIC(X, G = 1, verbose = FALSE))")(
        ro.r.matrix(ro.FloatVector(X[:30].T.ravel()), nrow=30)))
    return seconds, -np.asarray(table, dtype=float), [str(n) for n in names]


def timed_select(X, **options):
    started = CLOCK[0]()
    result = select(X, COMPONENTS, n_jobs=1, **options)
    return CLOCK[0]() - started, result


def compare_cells(result, theirs, models):
    """Cells where select's BIC is above mclustBIC's by more than 0.01 (both present):
    a list of (model,K, difference), worst first."""
    ours = result.criterion_table("bic")
    worse = []
    for j, model in enumerate(models):
        for i, K in enumerate(COMPONENTS):
            if model in ours.columns and np.isfinite(theirs[i, j]):
                value = ours.loc[K, model]
                if np.isfinite(value) and value - theirs[i, j] > 0.01:
                    worse.append((f"{model},{K}", value - theirs[i, j]))
    return sorted(worse, key=lambda cell: -cell[1])


def measure(name):
    X = load(name)
    mclust_bic(X[:30])  # R started and mclust loaded before timing
    select(X[:30], [1, 2], models=["VVV"], n_jobs=1)  # kernels loaded
    mclust_seconds, theirs, models = mclust_bic(X)
    select_seconds, result = timed_select(X)
    hc_seconds, _ = timed_select(X, starts=("hc",))
    worse = compare_cells(result, theirs, models)
    best = result.best(1).iloc[0]
    row, column = np.unravel_index(np.nanargmin(theirs), theirs.shape)
    return {"data": name, "N": len(X), "D": X.shape[1], "mclust_s": mclust_seconds,
            "select_s": select_seconds, "hc_s": hc_seconds,
            "worse": worse, "best": f"{best['model']},{best['n_components']}",
            "mclust_best": f"{models[column]},{COMPONENTS[row]}"}


def format_rows(rows):
    lines = ["| data | N | D | mclustBIC s | select s | select / mclust | single hc s | "
             "hc / mclust | cells > 0.01 BIC worse (worst three) | best BIC (gmmlab / mclust) |",
             "|" + "---|" * 10]
    for r in rows:
        worst = ", ".join(f"{cell} +{difference:.2f}" for cell, difference in r["worse"][:3])
        lines.append(f"| {r['data']} | {r['N']} | {r['D']} | {r['mclust_s']:.2f} | "
                     f"{r['select_s']:.1f} | {r['select_s'] / r['mclust_s']:.1f}x | "
                     f"{r['hc_s']:.2f} | {r['hc_s'] / r['mclust_s']:.2f}x | "
                     f"{len(r['worse'])} ({worst or '-'}) | {r['best']} / {r['mclust_best']} |")
    return "\n".join(lines)


def lrt(n_boot):
    """Seconds of gmmlab's and mclust's bootstrap LRTs, Old Faithful EEE, K = 1..3."""
    X = load_dataset("faithful").X
    started = CLOCK[0]()
    ours = [bootstrap_lrt(X, "EEE", k, n_boot=n_boot, n_jobs=1) for k in (1, 2, 3)]
    ours_seconds = CLOCK[0]() - started
    ro, converter, _ = r_session()
    function = ro.r("function(X, B) { set.seed(0); mclustBootstrapLRT(X, modelName = 'EEE', "
                    "nboot = B, maxG = 3, verbose = FALSE)$p.value }")
    with converter.context():
        started = CLOCK[0]()
        theirs = np.asarray(function(X, n_boot))
        theirs_seconds = CLOCK[0]() - started
    return (f"| test | gmmlab s | mclustBootstrapLRT s | gmmlab / mclust | p-values (gmmlab / "
            f"mclust) |\n|---|---|---|---|---|\n| Old Faithful EEE 1v2, 2v3, 3v4, B = {n_boot} | "
            f"{ours_seconds:.1f} | {theirs_seconds:.1f} | {ours_seconds / theirs_seconds:.2f}x | "
            f"{', '.join(f'{r.p_value:.3f}' for r in ours)} / "
            f"{', '.join(f'{p:.3f}' for p in theirs)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="*", default=list(MCLUST_DATA) + list(SHIPPED))
    parser.add_argument("--lrt", action="store_true", help="also the bootstrap LRT")
    parser.add_argument("--n-boot", type=int, default=999)
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall-clock or this process's CPU seconds (a busy machine)")
    parser.add_argument("--output", help="also write the tables, with the machine, here")
    args = parser.parse_args(argv)
    CLOCK[0] = CLOCKS[args.clock]
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = []
    for name in args.data:
        rows.append(measure(name))
        print(format_rows(rows[-1:]).splitlines()[-1], flush=True)
    command = ("python experiments/speed/bench_search.py --data"
               + "".join(f" {name}" for name in args.data) + f" --clock {args.clock}"
               + (f" --lrt --n-boot {args.n_boot}" if args.lrt else ""))
    report = (f"# gmmlab.select and the bootstrap LRT against mclust\n\n"
              f"Command: `{command}`\n\nMachine: {machine_description()}; R mclust through "
              f"rpy2. Seconds are {CLOCK_NAMES[args.clock]}. Load average before the run: "
              f"{load_before}; after: "
              f"{{after}} (the machine is shared: the ratios, measured in one run, are what "
              f"count).\n\n" + (f"{format_rows(rows)}\n" if rows else ""))
    if args.lrt:
        table = lrt(args.n_boot)
        print(table, flush=True)
        report += f"\n{table}\n"
    after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    publish(report.replace("{after}", after), args.output)
    return rows


if __name__ == "__main__":
    main()
