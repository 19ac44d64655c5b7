# Everything a reader needs, from a fresh clone:  make report
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# notebooks and papermill find the venv's kernel and tools first
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

FORCE   ?= 0
DATASET ?= mnist

# FORCE: 0/1 or true/false, in any case; anything else is an error, not a silent "no".
FORCE_LC := $(shell printf '%s' '$(FORCE)' | tr '[:upper:]' '[:lower:]')
ifeq ($(filter $(FORCE_LC),0 1 true false),)
$(error FORCE must be 0, 1, true or false (any case), got '$(FORCE)')
endif
FORCE_PY := $(if $(filter 1 true,$(FORCE_LC)),True,False)

# DASK_SCHEDULER: where the sweeps train. local (default): a Dask cluster on this machine; serial: one run after
# another in the notebook's process; or the address of any Dask scheduler, e.g. tcp://host:8786.
DASK_SCHEDULER ?= local
SWEEP_PARAMS := {'force': $(FORCE_PY), 'scheduler': '$(DASK_SCHEDULER)'}

# DATASET chooses what `make data` fetches; the write-ups are about MNIST (Part 3 adds Fashion-MNIST itself).
ifneq ($(filter all report beyond why adapters,$(MAKECMDGOALS)),)
ifneq ($(DATASET),mnist)
$(error make report covers MNIST, and make beyond MNIST plus Fashion-MNIST; DATASET=$(DATASET) applies to make data only)
endif
endif

.PHONY: help setup data test all report bench beyond why adapters clean
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv from requirements.txt (idempotent)"
	@echo "make data    fetch and verify MNIST into data/ (DATASET=fashion-mnist for Fashion-MNIST)"
	@echo "make test    run the test suite (no network, tiny synthetic data)"
	@echo "make all     every page: report, beyond, why and adapters, from the committed runs (FORCE=1 retrains all)"
	@echo "make report  run the notebooks and render the post, the layer page and the verdicts page (FORCE=1 retrains;"
	@echo "             DASK_SCHEDULER=tcp://host:8786 trains on that Dask cluster, serial without Dask)"
	@echo "make bench   print the speed ratios of the fast paths, measured side by side"
	@echo "make beyond  run notebooks/04_beyond.ipynb (FORCE=1 retrains) and render its HTML"
	@echo "make why     run notebooks/05_why.ipynb (FORCE=1 retrains) and render report/why.html"
	@echo "make adapters run notebooks/06_adapters.ipynb (FORCE=1 retrains) and render report/adapters.html"

setup: $(STAMP)
	@mkdir -p runs
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

fetch = $(PY) -c "import kron_report as kr; kr.fetch_dataset('data', '$(1)')"

data: setup
	$(call fetch,$(DATASET))

test: setup
	$(PY) -m pytest -q

execute = $(PY) -c "import kron_report as kr; kr.execute_notebook('$(1)', $(2))"
render  = $(PY) -c "import kron_report as kr; print('\nThe write-up is at', kr.render_page('$(1)'))"

# Every page; the post (00) reads every page's runs, so it is rendered again last. FORCE=1 retrains everything.
all: report beyond why adapters
	$(call execute,notebooks/00_article.ipynb,{})
	$(call render,kronecker_report)

# Part 2 runs first: the post (00) reads its runs. Three pages: the post (00), the layer (01), every verdict (03).
report: setup data
	$(call execute,notebooks/03_report.ipynb,$(SWEEP_PARAMS))
	$(call execute,notebooks/01_kronecker_product.ipynb,{})
	$(call execute,notebooks/00_article.ipynb,{})
	$(call render,retest)
	$(call render,kronecker)
	$(call render,kronecker_report)

beyond: setup data
	$(call fetch,fashion-mnist)
	$(call execute,notebooks/04_beyond.ipynb,$(SWEEP_PARAMS))
	$(call render,beyond)

why: setup data
	$(call execute,notebooks/05_why.ipynb,$(SWEEP_PARAMS))
	$(call render,why)

adapters: setup data
	$(call fetch,fashion-mnist)
	$(call execute,notebooks/06_adapters.ipynb,$(SWEEP_PARAMS))
	$(call render,adapters)

bench: setup data
	$(PY) bench.py

clean:
	rm -rf runs .pytest_cache __pycache__ tests/__pycache__
