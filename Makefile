# Switchboard: `make run` sets everything up and starts the product; `make test` sets up and runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
FRONTEND_STAMP := frontend/node_modules/.installed

.PHONY: run test demo lint frontend chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend: $(FRONTEND_STAMP)
	cd frontend && npm run build --silent

run: $(RUNTIME_STAMP) frontend
	$(BIN)/flask --app wsgi setup
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

demo: $(RUNTIME_STAMP)
	$(BIN)/flask --app wsgi setup
	$(BIN)/flask --app wsgi seed-demo

chromium:
	@sh tools/ensure-chromium.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check app connectors tests bench
	$(BIN)/ruff format --check app connectors tests bench

test: $(DEV_STAMP) frontend chromium
	$(BIN)/ruff check app connectors tests bench
	cd frontend && npm test --silent
	sh tools/run-tests.sh

bench: $(DEV_STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) frontend/node_modules instance
