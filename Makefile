# Two entry points: `make run` (the main job) and `make test` (the test suite).
# Both create .venv/ with the pinned stack of constraints.txt on first use, with a Python 3.12
# or 3.13: PYTHON=... if given, else python3.12 / python3.13 on PATH, else one that pyenv has
# (in `pyenv root`, $PYENV_ROOT or ~/.pyenv).
PYTHON ?= $(shell for p in python3.12 python3.13; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; exit; }; done; \
	root=$$(pyenv root 2>/dev/null || echo $${PYENV_ROOT:-$$HOME/.pyenv}); for v in 3.12 3.13; do for p in $$root/versions/$$v*/bin/python3; do [ -x $$p ] && { echo $$p; exit; }; done; done)
VENV := .venv
BIN := $(VENV)/bin
# The extra 'r' (rpy2, for the mclust backend) when R with the mclust package is installed; the
# stamp names the extras, so installing R later rebuilds .venv with them. Others on demand, e.g.
# make test EXTRAS=dev,ray (the Ray launcher; .ci/run does so).
EXTRAS := dev$(shell Rscript -e 'quit(status = !requireNamespace("mclust", quietly = TRUE))' >/dev/null 2>&1 && echo ,r)
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),+,$(EXTRAS))

.PHONY: run test test-slow test-cluster lint bench bench-bayes bench-mclust bench-select clean

$(STAMP): pyproject.toml constraints.txt
	@[ -n "$(PYTHON)" ] || { echo "gmmlab needs Python 3.12 or 3.13: install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] <= (3, 13) else "gmmlab needs Python 3.12 or 3.13, found " + sys.version.split()[0] + " ($(PYTHON)); set PYTHON=/path/to/python3.12")'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The main job: the method-comparison study (resumes finished runs), with its mclust arm when
# R and mclust are installed, then its report.
run: $(STAMP)
	$(BIN)/gmmlab -m experiment=method_comparison
	$(if $(findstring $(comma)r,$(EXTRAS)),$(BIN)/gmmlab -m experiment=method_comparison_mclust)
	$(BIN)/gmmlab-report experiments/method_comparison/runs -o experiments/method_comparison/report \
		--title 'Method comparison'
	@echo "results: experiments/method_comparison/runs/results.csv (and .parquet)"
	@echo "report:  experiments/method_comparison/report/report.html (and report.md)"

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# As root: start a one-node SLURM cluster, run the cluster tests through it, stop it.
test-cluster: $(STAMP)
	bash tests/cluster/slurm.sh test

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m gmmlab.bench

bench-bayes: $(STAMP)
	$(BIN)/python -m gmmlab.bench_bayes --output experiments/speed/bayes.md

bench-mclust: $(STAMP)
	$(BIN)/python -m gmmlab.bench_mclust --output experiments/speed/mclust.md

bench-select: $(STAMP)
	$(BIN)/python -m gmmlab.bench_select --output experiments/speed/select.md

clean:
	rm -rf $(VENV) build *.egg-info
