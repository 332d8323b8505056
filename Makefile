# Every command a developer needs. The first target that needs the virtualenv builds it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
UV      := $(BIN)/uv
STAMP   := $(VENV)/.installed-$(shell cat requirements/dev.lock pyproject.toml | cksum | cut -d' ' -f1)
DAYS    ?= 2
SEED    ?= 7
# The SAM CLI (339 MB) and checkov (it pins packaging<24, which pytest 9 cannot share a venv
# with) run pinned in uv's own tool environments, fetched on first use.
SAM     ?= SAM_CLI_TELEMETRY=0 $(UV) tool run --from aws-sam-cli==1.170.0 sam
CHECKOV := $(UV) tool run --from checkov==3.3.30 checkov

.PHONY: install browser-deps lint test test-fast test-py312 demo bench bench-scoring bench-peak build train lock clean train-parcels serve test-e2e bench-gateway bench-faults mutate

install: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(BIN)/python requirements/dev.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

lock:  ## re-resolve the pinned dependencies into the hashed lock file
	$(UV) pip compile -q pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.lock

lint: install  ## ruff, formatting, mypy --strict, and the layering contracts of ARCHITECTURE.md
	$(BIN)/ruff check functions models infra tests
	$(BIN)/ruff format --check functions models infra tests
	$(BIN)/mypy functions models infra
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory validate

validate: install  ## the template: cfn-lint, checkov (skips justified in its Metadata), sam validate --lint (offline)
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download \
		--skip-check "$$($(BIN)/python -c "from dozor_local.sam import load_template as t; print(','.join(t('template.yaml')['Metadata']['CheckovSkips']))")"
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=eu-central-1 $(SAM) validate --lint

test: install browser-deps
	$(BIN)/pytest -n 2 -q

# The console's browser tests (marker `browser`) drive Debian's chromium; installed once, as root.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Python 3.12, Lambda's runtime: a second virtualenv from the same lock (it resolves for 3.12 too)
# and the serving tests (the Lambda package's unit and integration tests) on it.
PY312      ?= $(shell for c in python3.12 $(HOME)/.pyenv/versions/3.12.*/bin/python3.12; do \
                "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)
VENV312    := .venv312
STAMP312   := $(VENV312)/.installed-$(shell cat requirements/dev.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST312  ?= -n 2
SERVING_TESTS := tests/unit/shared tests/unit/fraud tests/unit/parcels tests/unit/local tests/unit/handlers tests/integration/fraud tests/integration/parcels

$(STAMP312): requirements/dev.lock pyproject.toml | $(STAMP)
	@test -n "$(PY312)" || { echo "no python3.12 on PATH or under ~/.pyenv/versions (set PY312=...)" >&2; exit 1; }
	test -x $(VENV312)/bin/python || $(UV) venv -q --python $(PY312) $(VENV312)
	$(UV) pip sync -q --python $(VENV312)/bin/python requirements/dev.lock
	$(UV) pip install -q --python $(VENV312)/bin/python --no-deps -e .
	rm -f $(VENV312)/.installed-* && touch $@

test-py312: $(STAMP312)  ## the serving tests on Python 3.12 (PYTEST312= to run them in one process)
	$(VENV312)/bin/python -m pytest $(PYTEST312) -q $(SERVING_TESTS)

test-fast: install
	$(BIN)/pytest -q -x tests/unit

demo: install
	$(BIN)/dozor demo --days $(DAYS) --seed $(SEED)

serve: install  ## the whole stack locally: API on 127.0.0.1:3000, emulator on :5000; Ctrl-C stops it
	$(BIN)/dozor local up

test-e2e: install
	$(BIN)/pytest -q -m e2e tests/e2e

bench-gateway: install
	$(BIN)/python -m dozor_local.bench_gateway

bench-faults: install  ## checkout's status and p50/p99 on the local stack per DynamoDB fault (refused, hang, throttled, replay)
	$(BIN)/python -m dozor_local.bench_faults

BENCH_ORDERS ?= 1000000

bench-scoring: install  ## scoring path, batch, cold start and DynamoDB writes as ratios (BENCHMARKS.md); last line is JSON
	$(BIN)/python -m dozor_training.fraud.bench

PEAK_WINDOW ?= 0.2

bench-peak: install  ## the 11.11 peak through the handlers on moto with DynamoDB contention modelled (sharded, then unsharded); JSON
	$(BIN)/dozor bench-peak --window $(PEAK_WINDOW) --compare-unsharded

bench: bench-scoring  ## bench-scoring; then `dozor train` on BENCH_ORDERS simulated orders, then the deploy
	$(BIN)/python -m dozor_training.fraud.bench_train --orders $(BENCH_ORDERS)
	$(BIN)/python -m dozor_local.bench_deploy

train: install
	$(BIN)/dozor train-fraud --days 90 --seed 42 --orders-per-day 1500 --install

train-parcels: install
	$(BIN)/dozor train-parcels --days 60 --seed 42 --orders-per-day 1000 --fraud-scores --install

build: install
	bash infra/build_layer.sh

# PARAMS="JwtIssuer=https://... JwtAudience=checkout" for JWT mode; STACK=<name> for another stack.
deploy: build  ## build the layer, sam build, sam deploy (samconfig.toml, --resolve-s3); needs AWS credentials
	$(SAM) build
	$(SAM) deploy --resolve-s3 $(if $(STACK),--stack-name $(STACK)) $(if $(PARAMS),--parameter-overrides $(PARAMS))

mutate: install  ## mutation check (mutmut, one worker, nice 19; not in CI): the domain, then the SQS handlers
	bash tests/mutation/run.sh domain
	bash tests/mutation/run.sh handlers

clean:
	rm -rf $(VENV) $(VENV312) .aws-sam .pytest_cache .mypy_cache .ruff_cache
