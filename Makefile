# The two README commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.qtool-installed
export GPTQMODEL_CPU_WORKERS ?= 2
export PYTHONWARNINGS ?= ignore
export TORCH_LOGS ?= -all

.PHONY: install test demo bench clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

test: install
	$(PY) -m pytest -q -m "not slow"

DEMO := out/demo
QTOOL := $(VENV)/bin/qtool

# The demo: the bundled tiny model quantized with GPTQ-Int4 and AWQ-Int4, answers compared with float,
# then the accuracy/fidelity and speed/memory tables, a release bundle and its verification.
demo: install
	$(QTOOL) models
	$(QTOOL) calib inspect calib_data --model qwen2-vl-tiny
	rm -rf $(DEMO)
	$(QTOOL) release qwen2-vl-tiny --profiles gptq-int4,awq-int4 --out $(DEMO)/release --eval-limit 500 --bench-gen 64,256
	$(QTOOL) ask qwen2-vl-tiny $(DEMO)/release/qwen2-vl-tiny-gptq-int4 $(DEMO)/release/qwen2-vl-tiny-awq-int4 --heldout 10
	@echo; echo "== accuracy and fidelity (qtool eval) =="; cat $(DEMO)/release/eval/table.md
	@echo; echo "== speed and memory (qtool bench) =="; cat $(DEMO)/release/bench/table.md
	$(QTOOL) verify $(DEMO)/release

bench: install
	$(PY) -m pytest -q -m slow

clean-venv:
	rm -rf $(VENV)
