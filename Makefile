# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PACKAGE_DIRS := hardstack blueprints modules stacks policies cli

.PHONY: setup system-deps demo test bench docs clean

setup: $(VENV)/.synced

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON=$(PYTHON) UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --compile-bytecode
	$(VENV)/bin/python -m compileall -q $(PACKAGE_DIRS)
	touch $@

# Debian packages the report and its browser test need: Graphviz (layout) and headless Chromium with its driver.
system-deps:
	@missing=""; for tool in chromium chromedriver dot; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver graphviz >/dev/null; \
	fi
	@# promtool (Debian's prometheus package) runs the model alert rules against series in the monitoring tests
	@if ! command -v promtool >/dev/null; then \
	  echo "installing Debian package prometheus (for promtool)"; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi

demo: setup
	$(VENV)/bin/hardstack check llm-inference --out-dir out

test: setup system-deps
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

docs: setup
	$(VENV)/bin/python -m hardstack.blueprints.reference > docs/blueprint-reference.md
	$(VENV)/bin/python -m hardstack.policies.docs > docs/checks.md
	$(VENV)/bin/python -c "import json; from hardstack.policies.formats import JSON_SCHEMA; print(json.dumps(JSON_SCHEMA, indent=2))" > docs/report-schema.json

bench: setup
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) .tools out build dist *.egg-info
