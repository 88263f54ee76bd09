# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo demo-down lint unit venv deps clean

test: deps $(STAMP) lint
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check daemon tests bench
	$(VENV)/bin/ruff format --check daemon tests bench
	$(VENV)/bin/mypy

deps:
	@bash scripts/host-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: deps $(STAMP)
	bash scripts/demo.sh

demo-down:
	FERRY_TESTBED_DIR=$${FERRY_TESTBED_DIR:-/var/tmp/ferry-demo} \
	FERRY_TESTBED_PREFIX=$${FERRY_TESTBED_PREFIX:-ferry-demo-} \
	$(PY) -m tests.testbed down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
