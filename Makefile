# usbkit: `make report` runs the whole study; `make test` runs the test suite.
# Both create .venv if it is missing and install everything they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.usbkit-installed
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)
export BROWSER_PATH ?= $(CHROMIUM)
STUDY  ?=
# Each study's report goes to its own folder: reports/latest for the built-in cohort,
# reports/<study folder name> for your own clips.
OUT    ?= reports/$(if $(STUDY),$(notdir $(abspath $(STUDY))),latest)

.PHONY: install report figures weights lab test bench lint clean

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

# The whole study on the synthetic cohort (or STUDY=...): notebooks run by papermill, HTML
# report in $(OUT)/index.html. A new run replaces the earlier report of the same study only
# when complete; nothing tracked by git changes.
report: install
	$(VENV)/bin/usbkit report $(if $(STUDY),--study $(STUDY)) --out $(OUT) --overwrite

# JupyterLab in usbkit's environment on the study notebooks (the scrubber first).
lab: install
	$(VENV)/bin/usbkit lab

# Regenerate the README's figures (figures/) from the default run, on purpose only.
figures: install
	$(VENV)/bin/usbkit report --out reports/latest --overwrite --figures figures

# Remake the shipped checkpoints (usbkit/models/weights/) from nothing: a training cohort of
# its own (seed 1, never the default run's seed 0); the single-frame detector with the default
# recipe, exported; then the sequence detector: that single-frame detector (pretrained:frame,
# frozen) with its temporal part trained on top (docs/temporal.md).
WEIGHTS_RUNS ?= runs/weights
weights: install
	$(VENV)/bin/usbkit synth $(WEIGHTS_RUNS)/train-study --preset quick --seed 1 --patients 96 --overwrite
	$(VENV)/bin/usbkit split $(WEIGHTS_RUNS)/train-study --fractions 0.85,0.15,0 --seed 1 --force
	$(VENV)/bin/usbkit train $(WEIGHTS_RUNS)/train-study --model frame --out $(WEIGHTS_RUNS)/frame
	$(PY) -c "from usbkit.models.detect import export_checkpoint as e; e('$(WEIGHTS_RUNS)/frame', 'usbkit/models/weights/frame.pt', 'make weights')"
	$(VENV)/bin/usbkit train $(WEIGHTS_RUNS)/train-study --model sequence --window 12 --epochs 12 --init pretrained:frame --train-part temporal --seed 1 --out $(WEIGHTS_RUNS)/sequence
	$(PY) -c "from usbkit.models.detect import export_checkpoint as e; e('$(WEIGHTS_RUNS)/sequence', 'usbkit/models/weights/sequence.pt', 'make weights')"

test: install
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	# OpenCV, MONAI and the ffmpeg command line only as points of comparison (decoding, FROC);
	# not usbkit dependencies
	$(PY) -m pip install -q opencv-python-headless monai
	@command -v ffmpeg >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  apt-get install -y -qq ffmpeg >/dev/null; } || echo "NOTE: no ffmpeg command line; its column stays empty"
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check usbkit tests benchmarks notebooks
	$(VENV)/bin/ruff format --check usbkit tests benchmarks notebooks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
