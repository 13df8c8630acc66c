# `make run` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 5000

.PHONY: install run test lint fuzz bench bench-catalogue proto worker scheduler grpc clean

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

lint: install  ## ruff, the import-graph check (feature order), mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_imports.py
	$(BIN)/mypy

fuzz: install  ## the long schemathesis run over the whole API (FUZZ_EXAMPLES per operation)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider

# Benchmarks need PostgreSQL and Redis; each writes its figures to bench/results/<name>.json.
bench: install  ## every benchmark: catalogue, orders, token check
	$(BIN)/python bench/catalogue.py
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/token_check.py

bench-catalogue: install  ## 10k and 1M products: list, filters, search, deep pages, with plans
	$(BIN)/python bench/catalogue.py

# The generated code is checked in (project/rpc/generated); run this after editing protos/.
# protoc writes `import auth_pb2`, which only works from that directory: make it a package import.
proto: install
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=project/rpc/generated \
		--pyi_out=project/rpc/generated --grpc_python_out=project/rpc/generated protos/auth.proto
	sed -i 's/^import auth_pb2 as auth__pb2$$/from project.rpc.generated import auth_pb2 as auth__pb2/' \
		project/rpc/generated/auth_pb2_grpc.py

grpc: install
	$(BIN)/python grpc_server.py

worker: install
	$(BIN)/python worker.py

scheduler: install
	$(BIN)/python worker.py --scheduler

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache instance/*.db
