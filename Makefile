# amqptool: the two entry points are `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/ensure_broker.py
	$(PY) -m amqptool.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check amqptool worker tests bench scripts
	$(VENV)/bin/ruff format --check amqptool worker tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: $(STAMP)
	$(PY) scripts/ensure_broker.py
	$(PY) scripts/ensure_chromium.py
	$(PY) scripts/ensure_services.py
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) scripts/ensure_broker.py
	$(PY) scripts/ensure_services.py
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
