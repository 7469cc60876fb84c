# Two commands on a fresh machine:  make demo   |   make test
# Both create .venv, install the project and fetch the Kafka jars themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-unit lint jars clean syscheck-demo syscheck-test

# The system packages (README's set-up line), checked before anything else is attempted.
syscheck-%:
	@$(PYTHON) deploy/syscheck.py $*

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

jars: $(STAMP)
	$(BIN)/python -m deploy.jars

demo: syscheck-demo jars
	$(BIN)/kentongan demo

test: syscheck-test jars
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -m "not kafka"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
