# Every target sets up its own environment: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test lint typecheck docs docs-serve pytest bench clean peers-env bench-peers

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

# Two workers on the two cores (one torch thread each; the DDP tests go to one of them).
pytest: $(STAMP)
	$(BIN)/pytest --durations=15 -n 2 --dist loadgroup

test: lint typecheck docs pytest

# Benchmark-only peers (timm, torchattacks) in their own venv, never in the library's: both pull
# torchvision, and PyPI's torchvision does not load beside the CPU torch 2.13.0
# ("operator torchvision::nms does not exist"), which breaks `import lightning`. This venv takes a
# matching pair instead (torch 2.14.1 + torchvision 0.29.1, from local disk on x86_64 / Python 3.11;
# a CUDA build, about 5.5 GB) and this package, editable, with the versions of constraints.txt but
# torch's. torchattacks goes in with --no-deps: its pin on an old `requests` stays out of the way;
# torchdistill too (its KD loss needs torch only; its other pins are for its own training scripts).
PEERS_VENV := benchmarks/.peers-venv
TIMM_VERSION := 1.0.31
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_PIP := $(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check

peers-env: $(PEERS_STAMP)

$(PEERS_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PIP) torch==2.14.1 torchvision==0.29.1
	grep -v '^torch==' constraints.txt > $(PEERS_VENV)/constraints.txt
	$(PEERS_PIP) -c $(PEERS_VENV)/constraints.txt -e ".[data]" timm==$(TIMM_VERSION) tqdm scipy
	$(PEERS_PIP) --no-deps torchattacks==3.5.1 torchdistill==1.1.5
	touch $(PEERS_STAMP)

# ours beside timm and torchattacks (benchmarks/results/peers_*.md), in the peers' venv; then
# peers.md and the figures again from every peers_* result there is
bench-peers: $(STAMP) $(PEERS_STAMP)
	@for script in $(PEERS_VENV_SCRIPTS); do \
		echo "== $$script"; nice -n 10 $(PEERS_VENV)/bin/python $$script || exit 1; done
	$(BIN)/python benchmarks/peers_report.py

# Every benchmark, in one run: first the peers_* scripts that need timm or torchattacks in the
# peers' venv (their time ratios are the most sensitive to a machine that has been busy for an
# hour), then those of this venv (the peers that fit it come with the `bench` extra), then the
# figure scripts (they draw from the results the others write), and last peers_report.py, which
# builds benchmarks/results/peers.md and docs/recipes/img/peers_*.png from every peers_* result.
PEERS_VENV_SCRIPTS := benchmarks/peers_mixing.py benchmarks/peers_robustness.py \
	benchmarks/peers_distillation.py
bench: $(STAMP) $(PEERS_STAMP)
	$(PIP) -e ".[bench]"
	@for script in $(PEERS_VENV_SCRIPTS); do \
		echo "== $$script (peers' venv)"; PYTHONPATH=$(CURDIR) $(PEERS_VENV)/bin/python $$script || exit 1; done
	@for script in $$(ls benchmarks/[!_]*.py | grep -v -e figure -e peers_report $(patsubst benchmarks/%.py,-e %,$(PEERS_VENV_SCRIPTS))); do \
		echo "== $$script"; PYTHONPATH=$(CURDIR) $(BIN)/python $$script || exit 1; done
	@for script in benchmarks/*figure*.py benchmarks/peers_report.py; do \
		echo "== $$script"; PYTHONPATH=$(CURDIR) $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(PEERS_VENV) site runs lightning_logs .pytest_cache .mypy_cache .ruff_cache
