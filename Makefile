# Self-documenting: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# test processes (pytest-xdist); each has its own throwaway database. 1 runs them in this process.
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck check migrate bench load throughput fuzz hostile slow-readers clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required (set PYTHON=...)" if sys.version_info < (3, 11) else 0)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP) ## create .venv and install the project (runs only when pyproject.toml changed)

run: $(STAMP) ## serve on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/python -m app serve

test: $(STAMP) ## run the whole test suite against a real PostgreSQL (embedded, or TEST_DATABASE_URL)
	$(BIN)/python -m pytest $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix app tests bench migrations
	$(BIN)/ruff format app tests bench migrations

typecheck: $(STAMP) ## mypy --strict over app/, tests/ and bench/
	$(BIN)/mypy app tests bench

check: lint typecheck test ## lint, typecheck and test

migrate: $(STAMP) ## bring the database schema up to date
	$(BIN)/python -m app migrate

bench: $(STAMP) ## run the benchmarks (~15 minutes; see docs/performance.md)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/run.py

load: $(STAMP) ## 50 clients of mixed traffic for 60 s against a fresh service; checks every count adds up
	$(BIN)/python bench/load.py

throughput: $(STAMP) ## requests/s of item detail, rows, summary, widget data vs a bare Starlette+asyncpg floor, and WORKERS=2 (~6 min; needs wrk)
	$(BIN)/python bench/throughput.py --setup

fuzz: $(STAMP) ## schemathesis over every operation (~1,000 cases each, at most FUZZ_SECONDS each), then 2,000 values through the upload/API agreement tests
	@report=$$(mktemp); FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FUZZ_SECONDS=$${FUZZ_SECONDS:-45} FUZZ_REPORT=$$report \
		$(BIN)/python -m pytest tests/fuzz -q -p no:cacheprovider; status=$$?; cat $$report; rm -f $$report; \
		HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/fieldtypes -q -p no:cacheprovider || status=1; exit $$status

hostile: $(STAMP) ## hostile files and JSON bombs against a fresh service: answer, time, peak memory (~1 min)
	$(BIN)/python bench/hostile.py

slow-readers: $(STAMP) ## 30 clients reading an export at 1 KB/s while another account works: its p50/p99/errors (~1 min)
	$(BIN)/python bench/slow_readers.py

clean: ## remove the virtualenv and caches (keeps .data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
