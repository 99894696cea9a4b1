# make figure3 | make figures | make test | make lab | make benchmark      (PROFILE=cpu by default)
# Every target builds the environment (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
BUILD := build/$(PROFILE)
STAMP := $(VENV)/.installed

.PHONY: setup test test-unit figures lab benchmark clean $(FIGURES)
.DEFAULT_GOAL := figure3

setup: $(STAMP)
$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# One pattern rule runs every figure notebook: notebooks/figureN_<name>.ipynb -> $(OUT)/figureN.{csv,png,svg,html,vl.json}
# (OUT is paper_figures/ for the cpu profile, paper_figures/<profile>/ for the others). A figure is rebuilt when
# its notebook, the profile or mkf_utils changes; its runs come from the run store, so only missing runs train.
# The executed notebook goes to build/<profile>/, never over its source.
OUT := $(if $(filter cpu,$(PROFILE)),paper_figures,paper_figures/$(PROFILE))
FIGURES := $(shell ls notebooks/figure*_*.ipynb 2>/dev/null | sed -E 's|notebooks/(figure[^_]+)_.*|\1|')
.SECONDEXPANSION:
$(FIGURES): %: $(OUT)/%.csv
$(OUT)/figure%.csv: $$(wildcard notebooks/figure$$*_*.ipynb) configs/profiles/$(PROFILE).yaml $(wildcard mkf_utils/*.py) | $(STAMP)
	@mkdir -p $(BUILD) $(OUT)
	$(BIN)/papermill -k python3 --log-output --no-progress-bar --cwd notebooks $< $(BUILD)/$(notdir $<) \
	  -f configs/profiles/$(PROFILE).yaml -p out_dir ../$(OUT)

figures: $(FIGURES)

test: $(STAMP)
	$(BIN)/python -m pytest --doctest-modules mkf_utils tests --nbval-lax notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m unit --doctest-modules mkf_utils tests

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

benchmark: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf build
