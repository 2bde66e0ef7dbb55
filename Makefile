# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PACKAGE_DIRS := hardstack blueprints modules stacks policies cli

.PHONY: setup demo test bench docs clean

setup: $(VENV)/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON=$(PYTHON) UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --compile-bytecode
	$(VENV)/bin/python -m compileall -q $(PACKAGE_DIRS)
	touch $@

demo: setup
	$(VENV)/bin/hardstack synth llm-inference --out-dir out

test: setup
	$(VENV)/bin/python -m pytest

docs: setup
	$(VENV)/bin/python -m hardstack.blueprints.reference > docs/blueprint-reference.md

bench: setup
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .tools out build dist *.egg-info
