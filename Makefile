# `make run` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 5000

.PHONY: install run test lint fuzz bench proto worker scheduler grpc clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

run: install  ## migrate the embedded SQLite database and serve the API on :5000
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

test: install  ## the whole suite (SQLite + fakeredis, or TEST_DATABASE_URL / TEST_REDIS_URL)
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

worker: install
	$(BIN)/python worker.py

scheduler: install
	$(BIN)/python worker.py --scheduler

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache instance/*.db
