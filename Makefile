# routeshell: `make run` opens the shell on a demo workspace, `make test` runs every check.
# Both create .venv and install the project into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.routeshell-installed
DEMO ?= demo-workspace
PROFILE ?= local

.PHONY: install run test lint typecheck imports pytest bench demo system-deps clean router planner

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins torch to the CPU build that pip finds on the machine.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

system-deps:
	@scripts/system-deps.sh

demo: install
	$(BIN)/python scripts/make_demo_workspace.py $(DEMO)

run: demo
	$(BIN)/routeshell --profile $(PROFILE) --workspace $(DEMO)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy engine agents tui

imports: install
	$(BIN)/lint-imports

# Two workers: many tests wait on subprocesses and servers. Each test file stays on one worker
# (--dist loadfile), so a module's server or trained model is made once, not once per worker;
# 15-19 minutes on 2 cores, where torch in each worker and in what it starts runs on one thread
# (tests/conftest.py). The slowest tests are listed at the end. PYTEST_WORKERS=0 runs it in one
# process.
PYTEST_WORKERS ?= 2

pytest: install system-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

test: lint typecheck imports pytest

bench: install
	$(BIN)/python bench/run.py

# The router routeshell ships (engine/router/default), built from data that needs no network.
router: install
	$(BIN)/python scripts/build_router.py

# The base and planner adapter routeshell ships (engine/models), with the planner's model card:
# pretraining, 30 minutes of adapter training and the evaluation, offline.
planner: install
	$(BIN)/python scripts/build_planner.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
