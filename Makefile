# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: anything looser pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/issqa serve

test: install
	$(BIN)/ruff check service tests bench
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/squad_retrieval.py ../shared/benchmarks/squad-v1.1-dev

clean:
	rm -rf $(VENV) index .pytest_cache
