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

# constraints.txt pins torch to the CPU build that pip finds on the machine. pip compiles what it
# installs one file at a time; compileall does it on every core (a fresh install: 2m10s -> 1m20s),
# and compiles routeshell's own modules too, which matters where PYTHONDONTWRITEBYTECODE is set:
# there every process would compile them again (0.7 s -> 0.57 s to import the app). A few files
# that packages ship for newer Pythons do not compile here, as under pip: that is not an error of
# the install, so compileall's status is not the install's.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile --constraint constraints.txt --editable '.[dev]'
	$(BIN)/python -m compileall -q -j 0 engine agents tui \
	  "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" > /dev/null || true
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
	$(BIN)/mypy engine agents tui scripts

imports: install
	$(BIN)/lint-imports

# Three workers on 2 cores: many tests wait on subprocesses, servers and the screen, and a third
# worker uses that time (measured: pytest 15m21s with 3, 18m06s-18m52s with 2). Each test file stays
# on one worker (--dist loadfile), so a module's server or trained model is made once, not once
# per worker, and the slowest files start first, in the order tests/conftest.py gives
# (--no-loadscope-reorder); torch in each worker and in what it starts runs on one thread.
# The slowest tests are listed at the end. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

pytest: install system-deps
	$(PYTEST)

# The type check takes a minute of one core: it runs beside the tests, and its report follows theirs.
test: lint imports install system-deps
	@echo "$(BIN)/mypy engine agents tui scripts (beside the tests)"; \
	$(BIN)/mypy engine agents tui scripts > $(VENV)/mypy.log 2>&1 & typecheck=$$!; \
	trap 'kill $$typecheck 2>/dev/null' INT TERM; \
	echo "$(PYTEST)"; $(PYTEST); tests=$$?; \
	wait $$typecheck; typed=$$?; trap - INT TERM; cat $(VENV)/mypy.log; \
	test $$tests -eq 0 && test $$typed -eq 0

bench: install
	$(BIN)/python bench/run.py

# The router routeshell ships (engine/router/default), built from data that needs no network.
router: install
	$(BIN)/python scripts/build_router.py

# The base and planner adapter routeshell ships (engine/models), with the planner's model card:
# pretraining (3000 steps, about an hour), 30 minutes of adapter training and the evaluation, offline.
planner: install
	$(BIN)/python scripts/build_planner.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
