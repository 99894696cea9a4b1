# make figure1 | figure2 | figure3 | figure4 | figure5 | generality | study | controls | crossdataset | sourcesize |
#      crossarch | pointwise | figures (every figure) | tables (every table) (PROFILE=quick by default)
# make plan | records | results | verify | test | test-unit | lab | benchmark | setup | clean
# Every target builds the environment (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= quick
BUILD := build/$(PROFILE)
STAMP := $(VENV)/.installed

# Every notebook notebooks/<target>_<name>.ipynb is a make target: figure1, figure3, figure4, figure5, generality, study,
# controls, crossdataset, sourcesize, crossarch, pointwise.
NOTEBOOKS := $(shell ls notebooks/*_*.ipynb 2>/dev/null | sed -E 's|notebooks/([^_]+)_.*|\1|')
FIGURES := $(filter figure%,$(NOTEBOOKS))
TABLES := $(shell ls notebooks/*_table.ipynb 2>/dev/null | sed -E 's|notebooks/([^_]+)_.*|\1|')
TWICE := $(shell echo $(NOTEBOOKS) | tr ' ' '\n' | sort | uniq -d)
$(if $(TWICE),$(error two notebooks for target $(TWICE) in notebooks/: one notebook per target, notebooks/<target>_<name>.ipynb))
OUT := paper_figures/$(PROFILE)
EXECUTOR ?=
GPUS ?= 0
SUBMIT = -y '{"overrides": {"submit": {"executor": "$(EXECUTOR)", "gpus": $(GPUS)}}}'

.PHONY: setup test test-unit plan verify records results figures tables lab benchmark clean $(NOTEBOOKS)
.DEFAULT_GOAL := figure3

setup: $(STAMP)
$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# A notebook target checks the profile (one-line error on a bad key), then always executes its notebook with papermill
# into build/<profile>/<target>/, and only when it succeeds moves the outputs into paper_figures/<profile>/, with the
# executed notebook as <target>.ipynb (outputs and charts included, readable without running it): a failed or
# killed build leaves the previous figure intact. Runs come from the run store (runs/, records committed),
# so only missing runs train: with every record present a figure rebuilds in a minute.
# NB_ARGS passes more papermill parameters, e.g. NB_ARGS="-p recorded_only True" (study: plot what is recorded).
# EXECUTOR=slurm (or local, auto; GPUS per job) submits the notebook's missing runs as cluster jobs instead of training
# them (the profile's submit key; an NB_ARGS that sets overrides replaces it: put submit in those overrides then).
$(NOTEBOOKS): | $(STAMP)
	@$(BIN)/mkf profile $(PROFILE)
	@rm -rf $(BUILD)/$@ && mkdir -p $(BUILD)/$@/out $(OUT)
	$(BIN)/papermill -k python3 --log-output --no-progress-bar --cwd notebooks $(wildcard notebooks/$@_*.ipynb) \
	  $(BUILD)/$@/$@.ipynb -p profile $(PROFILE) -p out_dir $(if $(filter /%,$(BUILD)),,../)$(BUILD)/$@/out \
	  -p figure_name $@ $(if $(EXECUTOR),$(SUBMIT)) $(NB_ARGS)
	mv -f $(BUILD)/$@/out/* $(OUT)/ && cp $(BUILD)/$@/$@.ipynb $(OUT)/$@.ipynb

figures: $(FIGURES)
tables: $(TABLES)

# Tests and nbval use a temporary run store: they never read or write the committed records in runs/.
# One pytest worker per core (pytest-xdist), one thread each; a module's tests (a notebook's cells) stay together.
TEST_WORKERS ?= auto
test: $(STAMP)
	store=$$(mktemp -d); trap 'rm -rf "$$store"' EXIT; \
	MKF_STORE=$$store OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope \
	  --doctest-modules mkf_utils tests --nbval-lax notebooks

test-unit: $(STAMP)
	store=$$(mktemp -d); trap 'rm -rf "$$store"' EXIT; \
	MKF_STORE=$$store OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "unit and not integration" --doctest-modules mkf_utils tests

# Train the missing runs of one section of the profile (bases and all-units runs seed by seed, then partial depths),
# without building the figure: for long profiles, run it in the background and `make records` as runs finish.
# `.venv/bin/mkf plan PROFILE SECTION --list` counts what is recorded, estimates the time left and lists what is missing.
# EXECUTOR=slurm (or local, auto) submits each missing run as a cluster job instead (mkf_utils.slurm; GPUS per job).
SECTION ?= figure3
plan: $(STAMP)
	$(BIN)/mkf plan $(PROFILE) $(SECTION) $(if $(EXECUTOR),--executor $(EXECUTOR) --gpus $(GPUS))

# Retrain VERIFY_RUNS recorded runs drawn at random and compare them with their records (exit 1 on drift).
VERIFY_RUNS ?= 2
verify: $(STAMP)
	$(BIN)/mkf verify --runs $(VERIFY_RUNS)

# Stage the record (config, metrics, result; reproductions.csv where a retraining checked it) of every finished
# run in runs/ for a commit (`mkf records` names the files: mkf_utils.runfolder.RunFolder.RECORD); unfinished runs
# and weights stay out.
records: | $(STAMP)
	@$(BIN)/mkf records --store runs | xargs -r git add; $(BIN)/mkf index --store runs && git add runs/INDEX.csv; \
	  echo "runs/: $$(git diff --cached --name-only -- runs | wc -l) record files staged"

# Rewrite paper_figures/<profile>/README.md for every profile: each figure with its reading, computed from the tables
# (a test fails when a committed page differs from what this writes).
results: | $(STAMP)
	$(BIN)/mkf results $(wildcard paper_figures/*)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

benchmark: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf build
