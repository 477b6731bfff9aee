# Targets are named for what people do. `make run` and `make test` install what they need.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1

LAMBDA_PYTHON := 3.12
LAMBDA_PLATFORM := aarch64-manylinux_2_28
LAYER_DIR := .build/layers/dependencies
# Already in the Lambda Python runtime; the layer leaves them out. boto3 and botocore stay in: the
# runtime's copies can predate Bedrock Converse's performanceConfig and guardrailConfig parameters.
RUNTIME_PROVIDED := six
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
	npx prettier --check console

test: install lint
	uv run --frozen pytest -n 2

# The dependencies layer, from the lock file, for arm64 Lambda, without Docker.
layer:
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.5'
	rm -rf $(LAYER_DIR) && mkdir -p $(LAYER_DIR)
	uv export --frozen --no-dev --no-emit-project --format requirements-txt \
		$(foreach p,$(RUNTIME_PROVIDED),--no-emit-package $(p)) > .build/layer-requirements.txt
	uv pip install --quiet --require-hashes --no-deps --only-binary :all: \
		--python-platform $(LAMBDA_PLATFORM) --python-version $(LAMBDA_PYTHON) \
		--target $(LAYER_DIR)/python -r .build/layer-requirements.txt

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
