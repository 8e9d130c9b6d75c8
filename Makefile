# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   - runs examples/quickstart.py
#   make test   - lint, format check, mypy --strict, the whole test suite, the docs build
PYTHON ?= python3
VENV := .venv
CODE := $(wildcard src tests examples benchmarks)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs bench bench-ingest bench-calculators clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest -q

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint typecheck pytest docs

# benchmarks against plain pandas/numpy (minutes at 1M events; see docs/performance.md)
bench: bench-ingest bench-calculators

bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/ingest.py --repeat 3

bench-calculators: $(STAMP)
	$(BIN)/python benchmarks/calculators.py --repeat 3

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
