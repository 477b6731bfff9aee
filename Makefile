# Targets are named for what people do. `make run` and `make test` install what they need.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1

LAMBDA_PYTHON := 3.12
LAMBDA_PLATFORM := aarch64-manylinux_2_28
LAYER_DIR := .build/layers/dependencies
# What the layer leaves out (docs/decisions.md, 2026-12-07 "Cold starts"). Six is in the Lambda Python runtime.
# boto3 and botocore stay in, as the lock pins them: the runtime's copies change with the runtime and the Region.
# pycparser is never imported in Lambda: cffi reads C declarations with it when building, and PyNaCl
# loads only cffi's compiled backend.
NOT_IN_LAYER := six pycparser
# The AWS services the functions call, through boto3 or pynamodb: botocore keeps only their models (2 MB of
# its 18 MB). A client for any other service would fail with UnknownServiceError, in AWS only.
BOTOCORE_SERVICES := bedrock bedrock-runtime dynamodb events kms service-quotas sqs sts
# Files nothing reads in Lambda: boto3's resource models (the code makes clients only) and Powertools' copy of
# Swagger UI (served only by enable_swagger(), which no function calls).
UNREAD_FILES := boto3/data aws_lambda_powertools/event_handler/openapi/swagger_ui/*.min.*
# Strips the layer's native modules of what only a debugger reads (pydantic-core's and PyNaCl's debug sections):
# --strip-unneeded keeps the dynamic symbols Python loads them by. Debian's cross binutils, as arm64 is the target.
STRIP := /usr/bin/aarch64-linux-gnu-strip
# The browser tests drive Debian's Chromium: Playwright's own browser download cannot work offline.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SCREENSHOTS := tests/artifacts/screenshots

.PHONY: install run test lint synth deploy layer screenshots clean

install: $(CHROMIUM) node_modules/.package-lock.json
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.5'
	uv sync --frozen

# The CDK CLI, prettier and axe-core, as package-lock.json pins them; again whenever the lock changes.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

run: install
	uv run --frozen python -m local_stack

lint:
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .
	uv run --frozen mypy
	uv run --frozen lint-imports
	npx prettier --check console

test: install lint
	uv run --frozen pytest -n 2

# The dependencies layer, from the lock file, for arm64 Lambda, without Docker.
layer: $(STRIP)
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.5'
	rm -rf $(LAYER_DIR) && mkdir -p $(LAYER_DIR)
	uv export --frozen --no-dev --no-emit-project --format requirements-txt \
		$(foreach p,$(NOT_IN_LAYER),--no-emit-package $(p)) > .build/layer-requirements.txt
	uv pip install --quiet --require-hashes --no-deps --only-binary :all: \
		--python-platform $(LAMBDA_PLATFORM) --python-version $(LAMBDA_PYTHON) \
		--target $(LAYER_DIR)/python -r .build/layer-requirements.txt
	find $(LAYER_DIR)/python/botocore/data -mindepth 1 -maxdepth 1 -type d \
		$(foreach s,$(BOTOCORE_SERVICES),! -name $(s)) -exec rm -rf {} +
	cd $(LAYER_DIR)/python && rm -rf $(UNREAD_FILES)
	find $(LAYER_DIR)/python -name '*.so' -exec $(STRIP) --strip-unneeded {} +

$(STRIP):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils-aarch64-linux-gnu

synth: install layer
	npx cdk synth

deploy: install layer
	npx cdk deploy

# Runs the browser tests and copies their screenshots to docs/screenshots, which the README shows.
screenshots: install
	uv run --frozen pytest tests/browser -n 0 -q
	mkdir -p docs/screenshots && cp $(SCREENSHOTS)/*.png docs/screenshots/

clean:
	rm -rf .build cdk.out .local .pytest_cache .mypy_cache .ruff_cache
