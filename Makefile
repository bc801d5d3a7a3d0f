# usbkit: `make report` runs the whole study; `make test` runs the test suite.
# Both create .venv if it is missing and install everything they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.usbkit-installed
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)
export BROWSER_PATH ?= $(CHROMIUM)
STUDY  ?=
OUT    ?= reports/latest

.PHONY: install report test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "NOTE: Chromium not found; static PNG/SVG figures and the browser test need it (apt-get install chromium)."; \
	  fi; \
	fi
	touch $(STAMP)

# The whole study on the synthetic quick cohort (or STUDY=...): notebooks run by papermill,
# HTML report in $(OUT)/index.html, the study's figures copied into figures/.
report: install
	$(VENV)/bin/usbkit report $(if $(STUDY),--study $(STUDY)) --out $(OUT) --figures figures

test: install
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	# OpenCV and MONAI only as points of comparison (decoding, FROC); not usbkit dependencies
	$(PY) -m pip install -q opencv-python-headless monai
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check usbkit tests benchmarks
	$(VENV)/bin/ruff format --check usbkit tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
