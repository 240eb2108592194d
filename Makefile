# The two set-up commands: `make run` (the whole system, embedded) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint prerequisites services bench faults clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/closeloop run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# PostgreSQL, Redis, rabbitmq-server and Chromium, started or installed when missing.
prerequisites:
	bash infra/test-prerequisites

# pytest exits 5 when it collects no test; that is not a failure of the code under test.
test: prerequisites lint
	$(BIN)/pytest; status=$$?; if [ $$status -eq 5 ]; then exit 0; else exit $$status; fi

# Services mode: every service in its own processes on PostgreSQL and Redis (settings: infra/services.env);
# `make services SERVICES_ENV=infra/services.env,infra/rabbitmq.env` runs them on RabbitMQ instead.
SERVICES_ENV ?= infra/services.env
services: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho -f infra/Procfile -e $(SERVICES_ENV) -d . start

bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/intake_bench.py
	$(BIN)/python bench/memory_bench.py
	$(BIN)/python bench/loop_services_bench.py
	$(BIN)/python bench/sentiment_bench.py
	$(BIN)/python bench/loop_bench.py
	$(BIN)/python bench/nps_bench.py
	$(BIN)/python bench/resend_bench.py
	$(BIN)/python bench/limits_bench.py

# The fault harness (tests/e2e/faults.py): services mode with the provider simulator, signed events posted
# while workers, clocks and Redis are SIGKILLed at random; prints what was accepted, sent, lost and duplicated.
FAULTS_ARGS ?= --events 3000 --kills 12 --seed 6
faults: prerequisites $(STAMP)
	$(BIN)/python -m tests.e2e.faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
