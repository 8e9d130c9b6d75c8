# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   - installs pipelinekit alone and runs examples/quickstart.py (seconds)
#   make test   - lint, format check, mypy --strict, the whole test suite, the docs build
#   make mutation - mutation testing of the core modules (slow, ~10 min on 2 cores; not in test)
PYTHON ?= python3
VENV := .venv
CODE := $(wildcard src tests examples benchmarks tools docs/make_images.py)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs bench bench-ingest bench-calculators bench-floor mutation clean

DEMO_STAMP := $(VENV)/.installed-core

# The virtualenv itself; each target below installs what it needs into it.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make demo` installs pipelinekit alone (pydantic, python-dateutil): seconds.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

# Everything else installs the dev tools and every extra (pyproject.toml's `dev`).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The whole suite runs with the engine chosen automatically (small histories go through the
# reference engine); tests/test_engines.py compares the two engines on every input it
# draws, and the tests that exercise ingestion, snapshots and the fast calculator paths run
# again with the columnar engine forced (the dev tools include polars and pyarrow).
ENGINE_TESTS := tests/test_history.py tests/test_core_properties.py tests/test_ingest_fuzz.py \
	tests/test_ingest_fast_paths.py tests/test_timestamps.py \
	tests/test_core_mutants.py tests/test_report_pipeline_by_stage.py \
	tests/test_forecast_weighted.py tests/test_calculators_gc.py

pytest: $(STAMP)
	$(BIN)/pytest -q
	PIPELINEKIT_ENGINE=columnar $(BIN)/pytest -q $(ENGINE_TESTS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint typecheck pytest docs

# benchmarks against plain pandas/numpy (minutes at 1M events; see docs/performance.md)
bench: bench-ingest bench-calculators bench-floor

bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/ingest.py --repeat 3

bench-calculators: $(STAMP)
	$(BIN)/python benchmarks/calculators.py --repeat 3

bench-floor: $(STAMP)
	$(BIN)/python benchmarks/floor.py --repeat 3

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml, docs/mutation-testing.md).
# Starts from scratch each time so the score is for the code and tests as they are now.
MUTATION_JOBS ?= 2
MUTATION_TIMEOUT ?= 3600
mutation: $(STAMP)
	rm -rf mutants
	HYPOTHESIS_PROFILE=mutation timeout $(MUTATION_TIMEOUT) \
		$(BIN)/mutmut run --max-children $(MUTATION_JOBS) > mutants.log 2>&1 \
		|| { tail -c 2000 mutants.log; exit 1; }
	$(BIN)/python tools/mutation_score.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis mutants mutants.log
