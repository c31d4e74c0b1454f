# Pulselytics: `make run` (the app, embedded defaults) and `make test` (the whole suite).
#
#   make run      venv + pinned deps, migrate, seed_demo, web + Celery worker + beat
#   make test     venv + pinned deps, pytest (PYTEST_ARGS="-k foo -x" passes through)
#   make lint     ruff over the whole tree (rules in pyproject.toml)
#   make ci-deps  PostgreSQL, Redis, Chromium (Debian) and the client-generator venv (tests)
#   make lock     regenerate requirements.lock from pyproject.toml (+[dev])

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.11 (pyproject: requires-python >=3.11,<3.12); plain python3 when there is no
# python3.11 that runs (a pyenv shim for a missing version exists but fails).
PYTHON ?= $(shell for p in python3.11 python3; do "$$p" -c '' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
PIP_VERSION := 26.3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
PYTEST_ARGS ?=

# Debian packages the tests start throwaway servers from (tests/servers.py, conftest.py),
# and curl for the README's examples (tests/test_readme.py).
CI_PACKAGES := postgresql redis-server chromium chromium-driver curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help install test lint run ci-deps lock

help:
	@sed -n '3,7p' Makefile | sed 's/^# *//'

# Internal: (re)build the venv only when the dependency pins change.
install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "no python3.11 or python3 found" >&2; exit 1; }
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet pip==$(PIP_VERSION)
	$(VPY) -m pip install --quiet -r requirements.lock
	touch $@

# pytest's own exit code is make's: failures fail, and so does 5 (no tests collected).
test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

# scripts/run.py migrates, runs seed_demo when that command exists, then supervises
# gunicorn + Celery worker + Celery beat until Ctrl-C / SIGTERM, which stop them all.
run: install
	PORT=$(PORT) exec $(VPY) scripts/run.py

# Installing as root on a Debian-like machine (sudo otherwise). A policy-rc.d that
# answers 101 keeps the packages' post-install scripts from starting the system
# PostgreSQL/Redis daemons: the tests start their own on free ports. It is only put in
# place (and removed afterwards) when the machine has none of its own.
ci-deps:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c '\
	  set -e; policy=/usr/sbin/policy-rc.d; \
	  if [ ! -e "$$policy" ]; then \
	    printf "#!/bin/sh\nexit 101\n" > "$$policy"; chmod 755 "$$policy"; \
	    trap "rm -f $$policy" EXIT; \
	  fi; \
	  apt-get install -y --no-install-recommends $(CI_PACKAGES)'
	@# The generated-client test's own virtualenv (tests/api/client_venv.py), built once here
	@# so that the timed suite only reuses it.
	$(PYTHON) tests/api/client_venv.py

# Resolve pyproject.toml's direct pins (+[dev]) in a throwaway venv and freeze the closure.
# The requirements are read straight from pyproject.toml, so nothing is built in the tree.
lock:
	@test -n "$(PYTHON)" || { echo "no python3.11 or python3 found" >&2; exit 1; }
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet pip==$(PIP_VERSION); \
	"$$tmp/venv/bin/python" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > "$$tmp/direct.txt"; \
	"$$tmp/venv/bin/python" -m pip install --quiet -r "$$tmp/direct.txt"; \
	{ sed -n '/^#/!q;p' requirements.lock; "$$tmp/venv/bin/python" -m pip freeze --exclude pulselytics; } > "$$tmp/requirements.lock"; \
	mv "$$tmp/requirements.lock" requirements.lock
	@echo "requirements.lock regenerated; review with: git diff requirements.lock"
