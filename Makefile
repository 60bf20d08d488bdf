# Every target sets up its own environment: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test lint typecheck docs docs-serve pytest bench clean

install: $(STAMP)

# torch first and alone: with the pin it takes the CPU build from local disk (seconds)
# instead of resolving a multi-GB CUDA build as a dependency of lightning.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[all,dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lightning-recipes demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck docs pytest

# the figure scripts last: they draw from the results the others write
bench: $(STAMP)
	$(PIP) -e ".[bench]"  # the peers the benchmarks compare against
	@for script in $$(ls benchmarks/[!_]*.py | grep -v figure) benchmarks/*figure*.py; do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) site runs lightning_logs .pytest_cache .mypy_cache .ruff_cache
