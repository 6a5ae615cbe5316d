# Vigil: every target installs what it needs into .venv first, so each works on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench bench-notifier bench-pipeline bench-language clean lock

$(STAMP): requirements/dev.lock pyproject.toml
	@# Debian and Ubuntu ship python3 without ensurepip unless python3-venv is installed:
	@# then make the venv without pip and bootstrap pip from PyPA.
	$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV) \
		&& $(PYTHON) -c "import urllib.request; urllib.request.urlretrieve('https://bootstrap.pypa.io/get-pip.py', '$(VENV)/get-pip.py')" \
		&& $(BIN)/python $(VENV)/get-pip.py --quiet; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP) ## the whole system on an embedded Redis
	$(BIN)/vigil up

# The console's browser tests drive Debian's Chromium through Playwright (never a browser build
# that Playwright would download); CI runs as root on a fresh machine and installs it here.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make test: the browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; \
	fi

test: $(STAMP) $(CHROMIUM) ## lint, type-check and the test suite against real servers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP) ## classifier throughput and cost by length
	$(BIN)/python bench/classifier_bench.py

bench-notifier: $(STAMP) ## webhook deliveries per second and alert-to-receiver latency
	$(BIN)/python bench/notifier_bench.py

bench-pipeline: $(STAMP) ## articles/s beside the stream ceiling, fetch-to-webhook latency, RSS per service
	$(BIN)/python bench/pipeline_bench.py

bench-language: $(STAMP) ## language detector accuracy per language on the labeled corpus
	$(BIN)/python bench/language_bench.py

lock: $(STAMP) ## re-resolve the pinned lock files after editing pyproject.toml (uv, in the venv)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -q -o requirements/runtime.lock
	$(BIN)/uv pip compile pyproject.toml --group dev --generate-hashes --python-version 3.11 -q -o requirements/dev.lock
	$(PYTHON) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
		| $(BIN)/uv pip compile - --generate-hashes --python-version 3.11 -q -o requirements/build.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
