# triage: two commands on a fresh clone, `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help venv run test test-unit lint bench clean

# Two install levels so that `make run` on a fresh clone only waits for what the stack needs.
$(RUN_STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -e .
	touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

help:  ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

venv: $(STAMP)  ## create .venv and install the pinned dependencies

run: $(RUN_STAMP)  ## start the whole local stack (emulators, functions, exporter) until Ctrl-C
	$(PY) -m devstack run

test: $(STAMP)  ## the whole suite, emulator-backed tests included
	$(PY) -m pytest

test-unit: $(STAMP)  ## tests that need no emulator
	$(PY) -m pytest -m "not emulators and not e2e and not packaging_deploy"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)  ## benchmarks; writes bench/results/*.json
	$(PY) -m bench

clean:
	rm -rf .devstack dist .pytest_cache

# make package (mk/package.mk), make tools / checkov / terraform-fmt (mk/tools.mk)
include mk/*.mk
