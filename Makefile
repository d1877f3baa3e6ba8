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

demo: install
	$(VENV)/bin/qtool models
	$(VENV)/bin/qtool calib inspect calib_data --model qwen2-vl-tiny

bench: install
	$(PY) -m pytest -q -m slow

clean-venv:
	rm -rf $(VENV)
