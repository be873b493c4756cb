# airflow-personalize — every entry point a user or CI needs.
#   make demo   the whole pipeline on the embedded stack, on the Bingewatch sample (sets itself up)
#   make test   lint + types + every test tier (sets itself up); .ci/run calls exactly this
#   make stack  start the embedded stack in the foreground (S3, Personalize, Pinpoint, mParticle)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)

.PHONY: venv browser lint typecheck test test-fast demo stack lock bench clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# Headless Chromium for the end-to-end screenshot of the Airflow UI (Debian's package; needs root).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get)"; \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium: the UI screenshot test will skip"; \
	  else echo "chromium missing and not root: the UI screenshot test will skip"; fi; }

lint: venv
	$(BIN)/ruff check dags plugins emulators tests benchmarks scripts
	$(BIN)/ruff format --check dags plugins emulators tests benchmarks scripts

typecheck: venv
	$(BIN)/mypy

# pytest exits 5 when it collects nothing: make turns every non-zero exit into a failure.
test: venv browser lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m scripts.demo $(DEMO_ARGS)

stack: venv
	$(BIN)/python -m emulators start $(STACK_ARGS)

bench: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: venv
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version 3.11 --no-header

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build/
