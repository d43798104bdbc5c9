"""``gmmlab-select DATA``: the BIC / ICL table of a data set and the models it chooses
(:func:`gmmlab.select` from the command line; ``python -m gmmlab.selection`` does the same).

    gmmlab-select faithful
    gmmlab-select data.csv --columns x y -k 1-6 --models VVV EEE -o table.csv
"""

import argparse
import errno
import os
import sys
from pathlib import Path

from gmmlab.console import run_command
from gmmlab.datasets import available, load_dataset
from gmmlab.model.search import CRITERIA, DEFAULT_SEARCH
from gmmlab.selection.select import select

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
    parser.add_argument("-o", "--output", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if args.output:
        check_output_file(args.output)
    X = load_data(args.data, args.columns)
    result = select(X, args.n_components, "all" if args.models == ["all"] else args.models,
                    args.criterion, args.n_init, args.seed, args.n_jobs)
    print(result.summary(args.top))
    if args.output:
        write_csv_atomic(result.table, args.output)
        print(f"\ntable written to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
