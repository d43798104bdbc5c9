# Two entry points: `make run` (the main job) and `make test` (the test suite).
# Both create .venv/ with the pinned numerical stack of constraints.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gmmlab needs Python >= 3.11, found " + sys.version.split()[0] + " (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The main job: the method-comparison study (resumes finished runs), then its report.
run: $(STAMP)
	$(BIN)/gmmlab -m experiment=method_comparison
	$(BIN)/gmmlab-report experiments/method_comparison/runs -o experiments/method_comparison/report \
		--title 'Method comparison'
	@echo "results: experiments/method_comparison/runs/results.csv (and .parquet)"
	@echo "report:  experiments/method_comparison/report/report.html (and report.md)"

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m gmmlab.bench

clean:
	rm -rf $(VENV) build *.egg-info
