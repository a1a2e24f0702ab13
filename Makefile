# pumptwin: an index of commands. The logic lives in scripts/.

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-slow test-integration test-browser lint format bench bench-accuracy bench-hydraulics bench-plant bench-ingest bench-skab bench-early-warning bench-transients bench-leak bench-estimation bench-ingest-memory bench-reliability bench-retrieval bench-recommend bench-loop bench-integrity bench-inspection bench-fleet clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv (Python 3.11) and install pumptwin with dev tools

$(STAMP): pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh

demo: venv ## Run the end-to-end demo
	$(BIN)/pumptwin demo

test: venv ## Unit tests (excludes slow and integration)
	$(BIN)/python -m pytest

test-slow: venv ## Slow tests only
	$(BIN)/python -m pytest -m slow

test-integration: venv ## Integration tests (real services) only
	$(BIN)/python -m pytest -m integration

test-browser: venv ## Browser test: approve a paused implement run in the Prefect UI (headless Chromium)
	scripts/browser_ci.sh

lint: venv ## ruff check, ruff format --check, mypy, import-linter
	scripts/lint.sh

format: venv ## Fix lint findings and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: bench-accuracy bench-hydraulics bench-plant bench-ingest bench-skab bench-early-warning bench-transients bench-leak bench-estimation bench-ingest-memory bench-reliability bench-retrieval bench-recommend bench-loop bench-integrity bench-inspection bench-fleet ## Every benchmark

bench-accuracy: venv ## Accuracy against EPANET 2.2 (steady and 24 h)
	$(BIN)/python -m benchmarks.accuracy

bench-hydraulics: venv ## Hydraulic solver against EPANET's toolkit
	$(BIN)/python -m benchmarks.hydraulics

bench-plant: venv ## Plant simulator: a month of 1-minute data for 20 stations x 3 pumps
	$(BIN)/python -m benchmarks.plant

bench-ingest: venv ## Ingest and validate 10 M readings
	$(BIN)/python -m benchmarks.ingest

SKAB ?= ../shared/datasets/skab

bench-ingest-memory: venv ## Peak memory of `pumptwin ingest` on a 2 GB wide CSV
	$(BIN)/python -m benchmarks.ingest_memory --size-gb 2.0

bench-reliability: venv ## Hostile inputs, concurrent ingest, kill and rerun (0 of each failure)
	$(BIN)/python -m benchmarks.reliability

bench-retrieval: venv ## Retrieval of the knowledge corpus: recall@5 and MRR, dense, sparse and hybrid
	$(BIN)/pumptwin knowledge eval --json .pumptwin/bench/retrieval.json

bench-recommend: venv ## Recommendations against an oracle that simulates every candidate on the plant
	$(BIN)/python -m benchmarks.recommend

bench-loop: venv ## The closed loop against alarms only: fault episodes with load-dependent wear, three ways
	$(BIN)/python -m benchmarks.loop --jobs 2

bench-integrity: venv ## Pipe integrity: derating against known crossings, corrosion growth recovered from two ILI runs
	$(BIN)/python -m benchmarks.integrity

bench-inspection: venv ## Condition-based rounds against calendar rounds over a simulated year
	$(BIN)/python -m benchmarks.inspection --all

bench-fleet: venv ## One hourly cycle of 100, 300 and 1,000 pumps, in-process and on Dask (time per stage, peak memory)
	$(BIN)/python -m benchmarks.fleet --pumps 100 300 1000 --runner local dask

bench-skab: venv ## SKAB anomaly benchmark (SKAB's protocol; data read from $(SKAB))
	$(BIN)/pumptwin bench skab --data $(SKAB) --out .pumptwin/bench/skab_predictions.csv

bench-early-warning: venv ## Early warning on simulated run-to-failure histories
	$(BIN)/python -m benchmarks.early_warning

bench-transients: venv ## Surge solver speed (x real time) and surge figures
	$(BIN)/python -m benchmarks.transients

bench-leak: venv ## Leak detection: API RP 1130 sensitivity, reliability, accuracy
	$(BIN)/python -m benchmarks.leak

bench-estimation: venv ## Twin calibration: estimated impeller wear against the plant's hidden truth
	$(BIN)/python -m benchmarks.estimation

clean: ## Remove build outputs and caches (keeps .venv and .pumptwin)
	scripts/clean.sh
