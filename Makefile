# MuscleVision. Two commands do everything on a fresh machine (Debian, Python 3.11, Node 20):
#   make demo   set up, then run the main job: train on synthetic keypoints, evaluate, export
#   make test   set up, then run the whole test suite (what CI runs via .ci/run)
#   make check  the quick loop while you work: lint, format, the page's JS units, in-process tests (~1 min)
# Set-up is idempotent: .venv (torch 2.13.0 CPU first, then the package), node_modules
# (pinned npm packages), assets/ (pose .task bundles + the page's vendored JS/wasm).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export MUSCLEVISION_ROOT := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
FOLDS := 0,1,2,3,4,5
UV := uv==0.13.9
# This machine's pip config lists local wheel folders; pip warns once per package about the
# missing ones. Keep every other line (and pip's exit status, via pipefail).
PIP_QUIET := { grep -v "^WARNING: Location 'file://" || true; }

.PHONY: setup demo test check lint-check js-test system-deps cluster-deps serve default-model page-report crossval bench cluster-up cluster-down lint clean-setup

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, from the pinned CPU wheel: left to the resolver it would pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0 2>&1 | $(PIP_QUIET)
	# The rest through uv (pinned): installed and byte-compiled on every core, 23 s against pip's 91 s here, the same
	# 120 packages as pip resolved (the project's own requirements are pinned). uv reads none of pip's config (local
	# mirrors, find-links): where uv cannot be installed or cannot reach an index, pip does the install.
	$(PY) -m pip install --quiet $(UV) 2>&1 | $(PIP_QUIET) || true
	if test -x $(BIN)/uv && $(BIN)/uv pip install --quiet --python $(PY) --compile-bytecode -e '.[dev]'; then :; else \
	  echo "uv is not available or could not install the package; pip will (slower)"; \
	  $(PY) -m pip install --quiet -e '.[dev]' 2>&1 | $(PIP_QUIET); fi
	touch $@

node_modules/.package-lock.json: package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

assets/.built: $(VENV)/.installed node_modules/.package-lock.json
	$(PY) -m musclevision.web.assets
	touch $@

# The page's copy of the Python-defined contract (skeleton, model-card schema): rebuilt when they change.
CONTRACT_JS := src/musclevision/web/static/js/generated/contract.js
$(CONTRACT_JS): $(VENV)/.installed src/musclevision/pose/skeleton.py src/musclevision/card.py src/musclevision/web/assets.py src/musclevision/extract/exerciser.py
	$(PY) -m musclevision.web.assets --contract-only

setup: $(VENV)/.installed assets/.built $(CONTRACT_JS)

# Debian packages the tests need (browser, video conversion, a test TLS certificate).
system-deps:
	@command -v chromium >/dev/null && command -v ffmpeg >/dev/null && command -v openssl >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ffmpeg openssl; }

# The SLURM dev cluster's packages (slurm/dev-cluster/start.sh installs them too when they are missing); after
# system-deps, as apt takes one install at a time.
cluster-deps: system-deps
	@slurm/dev-cluster/start.sh --packages-only

# The main job: the whole stack on synthetic keypoints (no video needed, about a minute).
demo: setup
	rm -rf logs/quickstart
	$(BIN)/musclevision-train experiment=quickstart hydra.run.dir=logs/quickstart
	$(BIN)/musclevision-export ckpt_path=logs/quickstart/checkpoints/last.ckpt name=quickstart hydra.run.dir=logs/quickstart/export
	@echo
	@echo "Done: report, plots and checkpoints in logs/quickstart/, model in exports/quickstart.onnx."
	@echo "(Trained on synthetic keypoints: its accuracies show the pipeline runs, not how well real people are recognised;"
	@echo " for that, README 'Results: the paper's recipe versus ours, on held-out groups'.)"
	@echo "Real data: musclevision-train experiment=best_synth   (the default model's recipe; extracts ../shared clips on first use)"
	@echo "Live page with the model trained on the real clips: make serve   (http://127.0.0.1:8000)"

# Lint and format check (ruff), as CI runs them.
lint-check: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The page's ES modules under Node's test runner; a skipped JS test fails the run like a skipped pytest.
js-test: setup
	node --test tests/js/ 2>&1 | tee .js-test.log
	@grep -q '^# skipped 0$$' .js-test.log || { echo "FAILING: JS tests were skipped; CI must run everything"; exit 1; }
	@rm -f .js-test.log

# The quick tier: no videos, no MediaPipe, no browser, no cluster (tests marked `integration` are left out).
check: lint-check js-test
	$(PY) -m pytest -m "not integration"

# Everything: the quick tier and the integration tier (real clips, MediaPipe, Chromium, the SLURM cluster), on two
# pytest-xdist workers (tests/conftest.py keeps the SLURM and the live-page modules whole on one worker).
PYTEST_WORKERS ?= 2
# The Python/npm set-up and the Debian packages at once (apt waits on the network and the disk, pip on the CPU).
test:
	$(MAKE) --no-print-directory $(if $(findstring -j,$(MAKEFLAGS)),,-j2) --output-sync=target setup cluster-deps
	$(MAKE) --no-print-directory lint-check js-test
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=15

serve: setup
	$(BIN)/musclevision-serve

# Six held-out group folds of one experiment (E=best|paper|...), compared: logs/crossval/E/crossval.json, or (optional
# 2nd and 3rd arguments) in another folder with more overrides, e.g. $(call CROSSVAL,E,logs/crossval/E-seed7,seed=7).
CROSSVAL = $(BIN)/musclevision-train -m experiment=$(1) $(3) data.split.fold=$(FOLDS) logger=csv \
	hydra.sweep.dir=$(or $(2),logs/crossval/$(1)) && $(BIN)/musclevision-compare $(or $(2),logs/crossval/$(1))

# The default model (exports/best.{onnx,json}): experiment=$(DEFAULT_RECIPE) trained with each of $(SEEDS), the models
# averaged in one graph. Its card's metrics are the cross-validation of that ensemble, fold by fold (each fold's seeds
# held out the same groups); the temperature and the "no exercise" threshold come from the same held-out windows.
# The crossvals are run here unless they exist (about 20 minutes each on 2 cores; delete logs/crossval/$(DEFAULT_RECIPE)-*
# to redo them, e.g. after re-extracting the keypoints), then the recipe on every group, always from scratch (a run
# folder with last.ckpt would otherwise resume: a finished one would not train again).
# A crossval's run folders are numbered in sweep order, so FOLDS must list 0..5 in order here (fold k in folder k).
DEFAULT_RECIPE := best_synth
SEEDS := 42 7 123
SEED_DIRS := $(foreach s,$(SEEDS),logs/crossval/$(DEFAULT_RECIPE)-seed$(s))
ENSEMBLE_DIR := logs/crossval/$(DEFAULT_RECIPE)-ensemble
comma := ,
empty :=
space := $(empty) $(empty)
commas = $(subst $(space),$(comma),$(strip $(1)))
default-model: setup
	for s in $(SEEDS); do d=logs/crossval/$(DEFAULT_RECIPE)-seed$$s; test -f $$d/crossval.json || { \
	  $(call CROSSVAL,$(DEFAULT_RECIPE),$$d,seed=$$s); } || exit 1; done
	$(BIN)/musclevision-eval -m data.split.fold=$(FOLDS) hydra.sweep.dir=$(ENSEMBLE_DIR) \
	  'ckpt_paths=[$(call commas,$(foreach d,$(SEED_DIRS),$(d)/$${data.split.fold}/checkpoints/last.ckpt))]'
	$(BIN)/musclevision-compare $(ENSEMBLE_DIR)
	$(BIN)/musclevision-calibrate --ensemble $(SEED_DIRS) --out $(ENSEMBLE_DIR)/calibration.json
	for s in $(SEEDS); do rm -rf logs/default-model/seed$$s; $(BIN)/musclevision-train experiment=best_deploy seed=$$s \
	  logger=csv hydra.run.dir=logs/default-model/seed$$s; done
	$(BIN)/musclevision-export name=best hydra.run.dir=logs/default-model/export \
	  'ckpt_paths=[$(call commas,$(foreach s,$(SEEDS),logs/default-model/seed$(s)/checkpoints/last.ckpt))]' \
	  metrics_file=$(ENSEMBLE_DIR)/crossval.json calibration=$(ENSEMBLE_DIR)/calibration.json

# What the page shows, on held-out groups (benchmarks/report_page.py): each fold's model, calibrated without its
# own fold, replayed by the page's engine on the groups it never trained on. FOLDS_DIRS: the crossval of a recipe, or
# several (seeds of one recipe: each fold's models as one ensemble, as the default model); the report goes to
# REPORT_DIR (default: the default model's ensemble folder for its seeds, <first dir>-ensemble for other ensembles, the
# crossval's own folder for one). `make page-report` reports the default model's ensemble (after `make default-model`).
FOLDS_DIRS ?= $(SEED_DIRS)
REPORT_DIR ?= $(if $(filter-out $(SEED_DIRS),$(FOLDS_DIRS))$(filter-out $(FOLDS_DIRS),$(SEED_DIRS)),$(if \
  $(word 2,$(FOLDS_DIRS)),$(firstword $(FOLDS_DIRS))-ensemble,$(FOLDS_DIRS)),$(ENSEMBLE_DIR))
page-report: setup
	for d in $(FOLDS_DIRS); do test -f $$d/crossval.json || { echo "$$d/crossval.json is missing: run its \
	  cross-validation first (make default-model runs the default recipe's)"; exit 2; }; done
	mkdir -p $(REPORT_DIR)
	$(BIN)/musclevision-calibrate $(if $(word 2,$(FOLDS_DIRS)),--ensemble) $(FOLDS_DIRS) --out $(REPORT_DIR)/calibration.json
	for run in $(firstword $(FOLDS_DIRS))/*/checkpoints/last.ckpt; do k=$$(basename $$(dirname $$(dirname $$run))); \
	  $(BIN)/musclevision-export "ckpt_paths=[$(call commas,$(foreach d,$(FOLDS_DIRS),$(d)/$$k/checkpoints/last.ckpt))]" \
	    name=fold$$k out_dir=$(REPORT_DIR)/exports \
	    calibration=$(REPORT_DIR)/calibration.json hydra.run.dir=$(REPORT_DIR)/exports/logs/$$k || exit 1; done
	$(PY) benchmarks/report_page.py --folds $(REPORT_DIR)/exports/fold*.json --cache data/cache/ucf101-full \
	  --json $(REPORT_DIR)/page-report.json

# README accuracy table: paper and best, six held-out group folds each.
crossval: setup
	$(call CROSSVAL,paper)
	$(call CROSSVAL,best)

# The paper's extraction used legacy mp.solutions.pose, which needs numpy<2: its own small venv.
.venv-legacy/.installed:
	$(PYTHON) -m venv .venv-legacy
	.venv-legacy/bin/python -m pip install --quiet mediapipe==0.10.21 numpy==1.26.4 2>&1 | $(PIP_QUIET)
	touch $@

bench: setup system-deps .venv-legacy/.installed
	$(PY) benchmarks/bench_extract.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_page.py
	$(PY) benchmarks/bench_memory.py

cluster-up:
	slurm/dev-cluster/start.sh

cluster-down:
	slurm/dev-cluster/stop.sh

lint: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean-setup:
	rm -rf $(VENV) node_modules assets
