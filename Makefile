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

.PHONY: setup data test report bench beyond clean
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv from requirements.txt (idempotent)"
	@echo "make data    fetch and verify MNIST into data/"
	@echo "make test    run the test suite (no network, tiny synthetic data)"
	@echo "make report  run the notebooks and render report/kronecker_report.html (FORCE=1 retrains all runs)"
	@echo "make bench   print the speed ratios of the fast paths, measured side by side"
	@echo "make beyond  run notebooks/04_beyond.ipynb (FORCE=1 retrains) and render its HTML"

setup: $(STAMP)
	@mkdir -p runs
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

data: setup
	$(PY) -c "import kron_utils as ku; print('verified:', ku.fetch_dataset('data', '$(DATASET)'))"

test: setup
	$(PY) -m pytest -q

REPORT_HTML := report/kronecker_report.html
PAPERMILL   := $(VENV)/bin/papermill --cwd . --stdout-file /dev/stdout --kernel python3
force_flag   = $(if $(filter 1 true True yes,$(FORCE)),True,False)

report: setup data
	$(PAPERMILL) notebooks/01_kronecker_product.ipynb notebooks/01_kronecker_product.ipynb
	$(PAPERMILL) notebooks/03_report.ipynb notebooks/03_report.ipynb -p force $(force_flag)
	$(PY) -c "import kron_utils as ku; print('\nThe write-up is at', ku.render_html(['notebooks/01_kronecker_product.ipynb', 'notebooks/03_report.ipynb'], '$(REPORT_HTML)', 'Kronecker-factored MLPs on MNIST'))"

BEYOND_HTML := report/beyond.html

beyond: setup data
	$(PAPERMILL) notebooks/04_beyond.ipynb notebooks/04_beyond.ipynb -p force $(force_flag)
	$(PY) -c "import kron_utils as ku; print('\nPart 3 is at', ku.render_html(['notebooks/04_beyond.ipynb'], '$(BEYOND_HTML)', 'How far can Kronecker layers go?'))"

bench: setup data
	$(PY) bench.py

clean:
	rm -rf runs .pytest_cache __pycache__ tests/__pycache__
