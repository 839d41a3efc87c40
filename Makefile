# The front door. `make help` lists the targets.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test lint fmt golden bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or: make PY=python3)"; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) ## start both sandbox CRMs, seed them, sync, write back and report
	$(BIN)/crmsync demo

test: $(STAMP) ## run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff, and mypy --strict on the product ([tool.mypy] in pyproject.toml)
	$(BIN)/ruff check sync connectors rules state sandbox tests bench
	$(BIN)/mypy sync connectors rules state

fmt: $(STAMP) ## format the code
	$(BIN)/ruff format sync connectors rules state sandbox tests bench

golden: $(STAMP) ## regenerate golden expectations (review the diff like code)
	CRMSYNC_REGEN_GOLDEN=1 $(BIN)/python -m pytest tests/golden -q

bench: $(STAMP) ## full-pull benchmarks against the sandboxes (100k contacts / 20k accounts each)
	$(BIN)/python bench/pull.py --crm salesforce --contacts 100000 --accounts 20000 --bulk never
	$(BIN)/python bench/pull.py --crm salesforce --contacts 100000 --accounts 20000 --bulk always --bulk-job-seconds 10
	$(BIN)/python bench/pull.py --crm hubspot --contacts 100000 --accounts 20000

clean: ## remove the virtualenv and demo output
	rm -rf $(VENV) demo-out
