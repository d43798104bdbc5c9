"""``gmmlab-select DATA``: the BIC / ICL table of a data set and the models it chooses
(:func:`gmmlab.select` from the command line; ``python -m gmmlab.selection`` does the same).

    gmmlab-select faithful
    gmmlab-select data.csv --columns x y -k 1-6 --models VVV EEE -o table.csv
"""

import argparse
import sys
from pathlib import Path

from gmmlab.console import run_command
from gmmlab.datasets import available, load_dataset
from gmmlab.model.search import CRITERIA, DEFAULT_SEARCH
from gmmlab.selection.select import select


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


def main(argv=None):
    """Console entry point ``gmmlab-select`` (errors explained by gmmlab.console)."""
    run_command("gmmlab-select", select_command, argv)


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
    X = load_data(args.data, args.columns)
    result = select(X, args.n_components, "all" if args.models == ["all"] else args.models,
                    args.criterion, args.n_init, args.seed, args.n_jobs)
    print(result.summary(args.top))
    if args.output:
        result.table.to_csv(args.output, index=False)
        print(f"\ntable written to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
