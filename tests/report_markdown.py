"""Reading a report.md back: its tables under their headings, its images (for the report
tests)."""

import re
from pathlib import Path

import pandas as pd
import pytest


def markdown_tables(markdown):
    """Every Markdown table with the heading above it: list of (heading, DataFrame of the cells'
    text, bold kept as **...**)."""
    tables, heading, lines = [], None, markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("# ")
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            header = [c.strip() for c in lines[i].strip().strip("|").split(" | ")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split(" | ")])
                i += 1
            tables.append((heading, pd.DataFrame(rows, columns=header)))
            continue
        i += 1
    return tables


def first_table(tables, heading):
    """The first table under ``heading``."""
    return next(table for h, table in tables if h == heading)


def images(markdown):
    """The image files a report.md shows, in order."""
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


ROOT = Path(__file__).resolve().parents[1]


def committed_reports():
    """Every committed report folder (experiments/*/report), as pytest parameters named by
    study."""
    folders = sorted(p.parent for p in (ROOT / "experiments").glob("*/report/report.md"))
    return [pytest.param(folder, id=folder.parent.name) for folder in folders]
