# MuscleVision. Two commands do everything on a fresh machine (Debian, Python 3.11, Node 20):
#   make demo   set up, then run the main job (see README)
#   make test   set up, then run the whole test suite (what CI runs via .ci/run)
# Set-up is idempotent: .venv (torch 2.13.0 CPU first, then the package), node_modules
# (pinned npm packages), assets/ (pose .task bundles + the page's vendored JS/wasm).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MUSCLEVISION_ROOT := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test system-deps lint clean-setup

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, from the pinned CPU wheel: left to the resolver it would pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

assets/.built: $(VENV)/.installed node_modules/.package-lock.json
	$(PY) -m musclevision.web.assets
	touch $@

setup: $(VENV)/.installed assets/.built

# Debian packages the tests need (browser + video conversion); SLURM is installed by
# slurm/dev-cluster/start.sh when the cluster tests start it.
system-deps:
	@command -v chromium >/dev/null && command -v ffmpeg >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ffmpeg; }

demo: setup
	$(PY) -m musclevision.demo

test: setup system-deps
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

clean-setup:
	rm -rf $(VENV) node_modules assets
