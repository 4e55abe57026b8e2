# Effort: `make run` builds the demo and serves; `make test` runs the tests. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EFFORT := $(VENV)/bin/effort
DEMO := var/demo
STAMP := $(VENV)/.installed

.PHONY: install constraints run demo serve test test-unit test-integration test-e2e test-faults lint buf-lint typecheck proto proto-check redis-server promtool haproxy test-rules h2load bench clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies

$(DEMO)/events.jsonl: | $(STAMP)
	$(EFFORT) simulate --out $(DEMO)

var/models/CURRENT: $(DEMO)/events.jsonl
	$(EFFORT) train --events $(DEMO)/events.jsonl --labels $(DEMO)/labels.csv --synthetic --promote

demo: $(STAMP) var/models/CURRENT  ## simulate SYNTHETIC journeys, load Feast, train and promote models

run: demo  ## build the demo if needed, then serve on :50051 (gRPC) and :9464 (metrics)
	$(EFFORT) serve

serve: $(STAMP)  ## serve the promoted model without rebuilding anything
	$(EFFORT) serve

redis-server:  ## install redis-server from Debian's packages when it is missing
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

promtool:  ## install promtool (Debian's prometheus package) when it is missing
	@command -v promtool >/dev/null || { \
	  echo "installing promtool (prometheus) from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

haproxy:  ## install haproxy (the overload guard, EFFORT_OVERLOAD_GUARD) from Debian's packages when it is missing
	@command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { \
	  echo "installing haproxy from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }

test-rules: promtool  ## check the Prometheus rules of monitoring/prometheus/ and run their unit tests
	promtool check rules monitoring/prometheus/*_rules.yml && promtool test rules monitoring/prometheus/tests/*.yml

test: $(STAMP) redis-server promtool haproxy proto-check  ## run every tier: the Prometheus rule tests, unit, integration, e2e, faults (starts its own redis-server and servers)
	$(MAKE) --no-print-directory test-rules
	$(PY) -m pytest -q tests/unit tests/integration tests/e2e tests/faults

test-unit: $(STAMP)  ## the fast tier: no server, no Feast apply, no training
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) redis-server  ## real Feast stores, redis-server and small trained models
	$(PY) -m pytest -q tests/integration

test-e2e: $(STAMP) redis-server haproxy  ## real gRPC servers and `effort` commands in their own processes
	$(PY) -m pytest -q tests/e2e

test-faults: $(STAMP) redis-server  ## the fault-injection suite: real processes killed, hung and fed garbage; prints its tally
	$(PY) -m pytest -q tests/faults

lint: $(STAMP) proto-check buf-lint  ## ruff, buf lint, and fail when generated protobuf code is stale
	$(VENV)/bin/ruff check .

buf-lint:  ## Buf's STANDARD and COMMENTS lint rules on proto/ (buf from the npm registry)
	npx --yes @bufbuild/buf@1.75.0 lint

typecheck: $(STAMP)  ## mypy
	$(VENV)/bin/mypy

proto: $(STAMP)  ## regenerate the effort.v1 Python code beside proto/effort/v1/*.proto
	$(PY) proto/generate.py

proto-check: $(STAMP)  ## fail when proto/effort/v1's generated code differs from what `make proto` would write
	@tmp=$$(mktemp -d) && $(PY) proto/generate.py --out $$tmp/v1 && \
	  diff -r -x __pycache__ -x '*.proto' $$tmp/v1 proto/effort/v1 >/dev/null || \
	  { echo "proto/effort/v1 generated code is stale: run make proto"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

constraints: $(STAMP)  ## rewrite constraints.txt from what .venv holds (after changing pins)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^effort'; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:  ## remove demo data, models and the feature store's data (keeps .venv)
	rm -rf var features/feast_repo/data

h2load:  ## install h2load (nghttp2-client) from Debian's packages when it is missing (make bench's overload)
	@command -v h2load >/dev/null || { \
	  echo "installing h2load (nghttp2-client) from Debian's packages"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nghttp2-client >/dev/null; }

bench: demo redis-server h2load haproxy  ## measure serving, ingestion and training on the demo (see BENCHMARKS.md)
	$(PY) bench/serving_bench.py
	$(PY) bench/score_bench.py
	$(PY) bench/journey_bench.py
	$(PY) bench/hardening_bench.py
	$(PY) bench/security_bench.py
	$(PY) bench/history_bench.py
	$(PY) bench/train_bench.py
	$(PY) bench/drift_bench.py
