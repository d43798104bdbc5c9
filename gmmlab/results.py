"""Gather every ``result.json`` below a directory into one table: ``gmmlab-collect SWEEP_DIR``.

One row per run; nested fields flattened to dotted columns (``param_error.means``,
``diagnostics.max_rhat``); list-valued fields (parameters, permutations, histories) kept as
JSON text. Written as ``results.csv`` and ``results.parquet`` in the directory.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from gmmlab.job import RESULT_FILE

# Large or nested fields left out of the table (they stay in each result.json).
DROPPED = ("traceback", "truth", "provenance.config", "dataset_provenance")


def load_results(sweep_dir):
    """DataFrame of every result.json below ``sweep_dir``, with its run directory."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir} is not a directory of runs.")
    records = []
    for path in sorted(sweep_dir.rglob(RESULT_FILE)):
        record = json.loads(path.read_text())
        record["run_dir"] = str(path.parent.relative_to(sweep_dir))
        records.append(record)
    if not records:
        raise FileNotFoundError(f"no {RESULT_FILE} below {sweep_dir}.")
    table = pd.json_normalize(records, max_level=2)
    table = table.drop(columns=[c for c in table.columns if c.startswith(DROPPED)])
    for column in table.columns:
        if table[column].map(lambda v: isinstance(v, list | dict)).any():
            table[column] = table[column].map(
                lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return table


def collect(sweep_dir):
    """Write results.csv and results.parquet in ``sweep_dir``; return the table."""
    table = load_results(sweep_dir)
    table.to_csv(Path(sweep_dir) / "results.csv", index=False)
    table.to_parquet(Path(sweep_dir) / "results.parquet", index=False)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="directory holding run directories with result.json")
    args = parser.parse_args(argv)
    try:
        table = collect(args.sweep_dir)
    except FileNotFoundError as error:
        raise SystemExit(f"gmmlab-collect: {error}") from None
    counts = table["status"].value_counts().to_dict()
    print(f"{len(table)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}) -> "
          f"{Path(args.sweep_dir) / 'results.csv'} and results.parquet")


if __name__ == "__main__":
    main()
