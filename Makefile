# MesoClinic: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test venv venv-dev lint messages migrate demo serve worker beat clean-var bench bench-calendar bench-seed bench-patients bench-outbox bench-all backup-drill fault-drill

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

messages: venv
	$(BIN)/python manage.py compilemessages --ignore=.venv --ignore=var -v 0

migrate: venv
	$(BIN)/python manage.py migrate --no-input -v 0

demo: migrate
	$(BIN)/python manage.py demo_seed

run: export DEBUG ?= true
run: venv messages migrate demo
	$(BIN)/python manage.py serve --port $(PORT)

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: export DEBUG = false
test: export SECRET_KEY ?= make-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
test: venv-dev lint messages
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks (docs/benchmarks.md). Each writes its own section of the doc. On a fresh
# machine: `make bench-seed` once (about 8 min), then `make bench-all` (about 20 min).
BENCH_100K ?= postgres://postgres@127.0.0.1:5432/mesoclinic_bench100k
BENCH_1M ?= postgres://postgres@127.0.0.1:5432/mesoclinic_bench1m
BENCH_CAL ?= postgres://postgres@127.0.0.1:5432/mesoclinic_benchcal
BENCH_B8 ?= postgres://postgres@127.0.0.1:5432/mesoclinic_b8
# The database named by a postgres:// URL, created when missing.
ensure_db = psql "$(1)" -qAtc "SELECT 1" >/dev/null 2>&1 || psql "$(dir $(1))postgres" -qc 'CREATE DATABASE "$(notdir $(1))"'

bench-seed: venv-dev
	$(call ensure_db,$(BENCH_100K))
	$(call ensure_db,$(BENCH_1M))
	$(call ensure_db,$(BENCH_CAL))
	DATABASE_URL=$(BENCH_100K) $(BIN)/python manage.py migrate -v 0
	DATABASE_URL=$(BENCH_100K) $(BIN)/python manage.py bench_seed_patients
	DATABASE_URL=$(BENCH_1M) $(BIN)/python manage.py migrate -v 0
	DATABASE_URL=$(BENCH_1M) $(BIN)/python manage.py bench_seed_patients --patients 1000000 --sessions 0
	DATABASE_URL=$(BENCH_CAL) $(BIN)/python manage.py migrate -v 0
	DATABASE_URL=$(BENCH_CAL) $(BIN)/python manage.py bench_seed_calendar

# B0–B3, B5 (about 10 min).
bench-patients: venv-dev
	DATABASE_URL=$(BENCH_100K) $(BIN)/python bench/patients_bench.py --b2-database-url $(BENCH_1M)

# B4 (about 5 min).
bench-calendar: venv-dev
	DATABASE_URL=$(BENCH_CAL) $(BIN)/python bench/calendar_bench.py

# B7, on a throw-away database of its own (about 2 min).
bench: venv-dev
	$(BIN)/python bench/pdf_bench.py

# B8; the broker is REDIS_URL's when set, else kombu's filesystem transport (about 10 min).
bench-outbox: venv-dev
	$(call ensure_db,$(BENCH_B8))
	DATABASE_URL=$(BENCH_B8) $(BIN)/python bench/outbox_bench.py

bench-all: bench-patients bench-calendar bench bench-outbox

# Backup and restore drill (docs/durability.md): seeds a fresh *drill* database unless
# DRILL_ARGS has --source-db NAME; the server is DATABASE_URL's, else the embedded one.
backup-drill: venv-dev
	$(BIN)/python bench/backup_drill.py $(DRILL_ARGS)

# The fault suite FAULT_ROUNDS times in a row (the kill points differ each round).
FAULT_ROUNDS ?= 5
fault-drill: venv-dev
	for round in $$(seq $(FAULT_ROUNDS)); do \
		$(BIN)/python -m pytest tests/faults -p no:cacheprovider -q $(PYTEST_ARGS) || exit 1; \
	done

clean-var:
	-$(BIN)/python manage.py embedded_pg stop
	rm -rf var
