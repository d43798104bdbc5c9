"""``gmmlab-select DATA``: the BIC / ICL table of a data set and the models it chooses
(:func:`gmmlab.select` from the command line; ``python -m gmmlab.selection`` does the same),
and with ``--evidence`` its Bayesian counterpart: the evidence of each K with its error, the
posterior over K (:func:`gmmlab.posterior_over_k`) and a sparse mixture's K+.

    gmmlab-select faithful
    gmmlab-select faithful -k 1-5 --evidence
    gmmlab-select data.csv --columns x y -k 1-6 --models VVV EEE -o table.csv
"""

import argparse
import errno
import os
import sys
import time
from pathlib import Path

from gmmlab.backends.gibbs import fit_gibbs
from gmmlab.console import run_command
from gmmlab.datasets import available, load_dataset
from gmmlab.model.bridge import MAX_PERMUTED
from gmmlab.model.search import CRITERIA, DEFAULT_SEARCH
from gmmlab.selection.evidence import posterior_over_k
from gmmlab.selection.select import select

# The sparse finite mixture's Dirichlet concentration (Malsiner-Walli et al. 2016).
SPARSE_ALPHA = 0.01

# What Ctrl-C leaves: select keeps nothing between runs.
INTERRUPTED = ("interrupted (Ctrl-C); nothing was written (the table is written only when "
               "every cell is fitted). Run the command again to start over.")


def parse_ks(text):
    """'1-9' or '1,2,3' or '4' -> list of ints."""
    try:
        if "-" in text:
            low, high = text.split("-")
            return list(range(int(low), int(high) + 1))
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a range like 1-9 or a list like 1,2,3, got {text!r}") from None


def load_data(source, columns=None):
    """X of a data set name (:func:`gmmlab.datasets.available`) or a CSV path."""
    if Path(source).suffix.lower() == ".csv" or Path(source).exists():
        return load_dataset("csv", path=source, columns=columns).X
    if source not in available():
        raise ValueError(f"{source!r} is neither a data set ({', '.join(available())}) nor "
                         f"an existing CSV file.")
    return load_dataset(source).X


def check_output_file(path):
    """Raise OSError naming ``path`` unless a file can be written there: its folder exists and
    is writable, and it is not a folder. Checked before any work."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not folder.is_dir():
        code = errno.ENOTDIR if folder.exists() else errno.ENOENT
        raise OSError(code, os.strerror(code), str(folder))
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def write_csv_atomic(table, path):
    """The table as CSV at ``path``, written whole or not at all (no temporary left)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table.to_csv(temporary, index=False)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def main(argv=None):
    """Console entry point ``gmmlab-select`` (errors explained by gmmlab.console)."""
    run_command("gmmlab-select", select_command, argv, interrupted=INTERRUPTED)


def select_command(argv=None):
    """``gmmlab-select DATA``: the BIC / ICL table of a data set and the models it chooses."""
    parser = argparse.ArgumentParser(
        prog="gmmlab-select", description=select_command.__doc__.split(":")[1].strip())
    parser.add_argument("data", help="a data set name (e.g. faithful) or a CSV file")
    parser.add_argument("--columns", nargs="+", help="CSV columns to use (default: numeric)")
    parser.add_argument("-k", "--n-components", type=parse_ks, default=list(range(1, 10)),
                        help="numbers of components, e.g. 1-9 (default) or 2,3")
    parser.add_argument("--models", nargs="+", default=["all"],
                        help="mclust model names (default: all the EM estimator fits)")
    parser.add_argument("--criterion", choices=CRITERIA, default="bic")
    parser.add_argument("--n-init", type=int, default=DEFAULT_SEARCH.n_init,
                        help="starts of each random method per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--top", type=int, default=3, help="models listed (default 3)")
    parser.add_argument("--evidence", action="store_true",
                        help="also the Bayesian evidence of each K <= 6 (full covariances, "
                             "conjugate prior), the posterior over K, and the K+ posterior "
                             "of a sparse mixture over the largest K")
    parser.add_argument("-o", "--output", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if args.output:
        check_output_file(args.output)
    X = load_data(args.data, args.columns)
    result = select(X, args.n_components, "all" if args.models == ["all"] else args.models,
                    args.criterion, args.n_init, args.seed, args.n_jobs)
    print(result.summary(args.top))
    if args.evidence:
        print("\n" + bayesian_summary(X, args.n_components, args.seed))
    if args.output:
        write_csv_atomic(result.table, args.output)
        print(f"\ntable written to {args.output}")


def bayesian_summary(X, n_components, seed):
    """The evidence of each K (up to MAX_PERMUTED) and the posterior over K under a uniform
    prior, then the K+ posterior of a sparse mixture (Dirichlet(SPARSE_ALPHA) weights) over
    the largest K: the text ``--evidence`` prints."""
    ks = [k for k in n_components if k <= MAX_PERMUTED]
    began = time.perf_counter()
    posterior = posterior_over_k(X, ks, random_state=seed)
    lines = [f"Bayesian evidence (full covariances, one conjugate prior for every K, scaled to "
             f"the data as mclust's defaultPrior at K = 1; bridge sampling from Gibbs draws, "
             f"{time.perf_counter() - began:.1f} s); posterior over K under a uniform prior:",
             posterior.summary()]
    k_max = max(n_components)
    began = time.perf_counter()
    sparse = fit_gibbs(X, k_max, "full", seed, alpha=SPARSE_ALPHA, evidence=False)
    shares = sparse.diagnostics["nonempty_components_probabilities"]
    lines += [f"\nSparse mixture (Dirichlet({SPARSE_ALPHA:g}) weights over K_max = {k_max}, "
              f"{time.perf_counter() - began:.1f} s): K+ = "
              f"{sparse.diagnostics['nonempty_components_mode']} non-empty components; "
              "posterior of K+: " + ", ".join(f"{k}: {share:.3f}" for k, share in enumerate(
                  shares, start=1) if share > 0)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
