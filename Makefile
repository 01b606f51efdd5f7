# newsflow: every target creates .venv on first use (only Python 3.11+ and pip needed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck eval bench f1 deploy serve clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## import the bundled WARC of real pages into demo.duckdb and show what landed
	$(BIN)/newsflow demo

test: $(STAMP)  ## the whole test suite (starts its own Prefect API and local HTTP servers)
	$(BIN)/python -m pytest -q

check: lint typecheck  ## ruff and mypy, clean

lint: $(STAMP)
	$(BIN)/ruff check newsflow tasks flows storage tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

f1: $(STAMP)  ## extraction quality on the article-extraction benchmark (needs ../shared)
	$(BIN)/python bench/extraction_f1.py

eval: $(STAMP)  ## dedupe quality on the labelled evaluation set (needs ../shared)
	$(BIN)/python bench/dedupe_eval/run.py --seed $${SEED:-1}

bench: $(STAMP)  ## throughput and scaling ratios (needs ../shared)
	$(BIN)/python bench/run.py

deploy: $(STAMP)  ## work pool, writer concurrency limit and deployments on $PREFECT_API_URL (idempotent)
	$(BIN)/newsflow deploy

serve: $(STAMP)  ## run the schedules and triggers in this process (no worker needed)
	$(BIN)/newsflow serve

clean:
	rm -rf $(VENV) demo.duckdb build .pytest_cache .mypy_cache .ruff_cache
