# Songsmith: `make run` starts the whole product on the embedded default; `make test` runs the suite.
VENV ?= .venv
PORT ?= 8501
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-e2e lint fmt migrate simulator worker bench install

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m core.cli run --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q

test-e2e: $(STAMP)
	$(PY) -m pytest -q -m e2e tests/e2e

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

migrate: $(STAMP)
	$(PY) -m core.cli init-db

simulator: $(STAMP)
	$(PY) -m simulator

worker: $(STAMP)
	$(PY) -m worker

bench: $(STAMP)
	$(PY) -m bench
