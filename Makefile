# Two commands: `make demo` and `make test` (ruff, mypy, the import-layer contract, pytest). Both build .venv from constraints.txt first.
# `make bench` (docs/benchmarks.md) also installs the [bench] extra (Lightning).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: demo test chaos bench format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/neuralab quickstart

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy neuralab
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Kill training and checkpoint writes at many more random points than `make test` does.
chaos: $(STAMP)
	NEURALAB_CHAOS_KILLS=20 NEURALAB_CHAOS_WRITE_KILLS=50 $(BIN)/python -m pytest \
		tests/train/test_resume.py tests/train/test_checkpoint_writes.py -k "sigkill or catches"

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Meant to take under 20 minutes on 2 cores; BENCH_ARGS=--quick checks the pipeline quickly.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
