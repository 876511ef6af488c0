# The README's two commands: `make run` and `make test`. Everything else is their parts.
SHELL := /bin/bash
PY := .venv/bin/python
# Debian packages the Python dependencies need to install: venv, and what python-ldap
# (django-auth-ldap) compiles against; git, which the catalog reads repositories with.
# Installed only when missing.
PY_SYSTEM_DEPS := missing=""; \
	python3 -m venv --help >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	python3 -c 'import os,sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || missing="$$missing python3-dev"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	for pkg in libldap-dev libsasl2-dev; do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then echo "[make] installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
# Local runs take PostgreSQL/Redis URLs from the file devtools/services.py writes.
WITH_ENV := set -a; [ -f .local/services.env ] && . ./.local/services.env; set +a;

.PHONY: install services binaries browser-deps ldap-deps registry-deps prometheus-deps run test test-fast bench lint stop clean

install: .venv/.installed

.venv/.installed: pyproject.toml
	@$(PY_SYSTEM_DEPS)
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	@touch $@

services: install
	$(PY) -m devtools.services up

run: services prometheus-deps
	$(WITH_ENV) exec $(PY) -m devtools.run

test: services browser-deps ldap-deps registry-deps prometheus-deps binaries
	$(WITH_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# The LDAP tests run a private slapd (Debian's), like PostgreSQL and Redis.
ldap-deps:
	@command -v slapd >/dev/null 2>&1 && command -v ldapadd >/dev/null 2>&1 || { \
	  echo "[make] installing slapd and ldap-utils (LDAP sign-in tests)"; \
	  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null; }

# The registry tests run a private docker-registry (Debian's CNCF distribution).
registry-deps:
	@command -v docker-registry >/dev/null 2>&1 || { \
	  echo "[make] installing docker-registry (image registry tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; }

# helm, etcd, the Kubernetes control plane and kwok for the e2e tier: reused from
# KUBEBUILDER_ASSETS, PATH or the cache ($$SLIPWAY_CACHE, default ~/.cache/slipway), else
# built from Go modules in the background (niced; progress in the cache's build.log) while
# the tiers without a cluster run; those that need one run last and wait for it, saying so.
binaries: install
	$(PY) -m devtools.kube build --background

# Verification and the promotion gates query a real Prometheus scraping a real Pushgateway
# (Debian's): in the tests, and in `make run` with the demo traffic.
prometheus-deps:
	@command -v prometheus >/dev/null 2>&1 && command -v prometheus-pushgateway >/dev/null 2>&1 || { \
	  echo "[make] installing prometheus and prometheus-pushgateway (verification)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-pushgateway >/dev/null; }

# The browser tier drives Debian's Chromium (Playwright's own download cannot work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "[make] installing chromium (browser tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Unit and integration tiers only (no cluster, no browser).
test-fast: services ldap-deps registry-deps prometheus-deps
	$(WITH_ENV) $(PY) -m pytest -m "not e2e and not browser" $(PYTEST_ARGS)

# Slipway at a large company's scale, in its own database (slipway_bench): writes
# bench/results.json, bench/RESULTS.md and the README's table. BENCH_ARGS="--quick" for a
# small smoke run.
bench: services binaries
	$(PY) -m bench $(BENCH_ARGS)

# ruff, then the layers (import-linter's contracts in pyproject.toml; see CONTRIBUTING.md).
lint: install
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports

stop:
	-$(PY) -m devtools.services down

# Start over: stops the private PostgreSQL and Redis and deletes their data (the
# database lives outside the checkout), then .local and .venv.
clean:
	-[ -x $(PY) ] && $(PY) -m devtools.services remove
	rm -rf .local .venv
