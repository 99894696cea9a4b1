# make figure3 | make figures | make test | make lab | make benchmark      (PROFILE=cpu by default)
# Every target builds the environment (.venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
BUILD := build/$(PROFILE)
STAMP := $(VENV)/.installed

.PHONY: setup test test-unit figures lab benchmark clean
.DEFAULT_GOAL := figure3

setup: $(STAMP)
$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# One pattern rule runs every figure notebook: notebooks/figureN_<name>.ipynb -> paper_figures/figureN.*
# The executed notebook goes to build/<profile>/, never over its source.
figure%: $(STAMP)
	@nb=$$(ls notebooks/figure$*_*.ipynb 2>/dev/null | head -1); \
	if [ -z "$$nb" ]; then echo "no notebook notebooks/figure$*_*.ipynb"; exit 2; fi; \
	mkdir -p $(BUILD); \
	$(BIN)/papermill -k python3 --log-output --no-progress-bar --cwd notebooks "$$nb" "$(BUILD)/$$(basename $$nb)" \
	  -f configs/profiles/$(PROFILE).yaml -p out_dir ../paper_figures

FIGURES := $(shell ls notebooks/figure*_*.ipynb 2>/dev/null | sed -E 's|notebooks/(figure[^_]+)_.*|\1|')
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
