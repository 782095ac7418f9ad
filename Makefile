# One command each: `make run` (the demo), `make test` (every tier), `make lint`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# python3.11 when the machine has it (the version CI and the image use), else whatever python3 is.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
# Test tiers that exist in this checkout (git keeps no empty folders, so a fresh clone may lack one).
TEST_DIRS := $(wildcard tests/unit tests/integration tests/e2e)

.PHONY: help venv run test fuzz soak soak-drill bench lint clean distclean images

help:
	@echo "make venv   create .venv and install the project with its test extras (skipped when up to date)"
	@echo "make run    start the whole demo: nats-server, the four services, the 2023 edition (hoithi up)"
	@echo "make test   unit, integration and e2e tests: in parallel, then the fault tests alone (HOITHI_TEST_SERVERS=own|given|containers)"
	@echo "make fuzz   the full schemathesis run (stateful phase, 100 examples per operation), outside make test"
	@echo "make soak   the two-replica fault run at N=10000 reports (make soak N=...) and the rush on both databases, outside make test"
	@echo "make bench  the 100,000-official rush and the 1,000,000-event replay (POSTGRES=URL adds PostgreSQL runs), outside make test"
	@echo "make soak-drill  the restore drill at DRILL_N=400 receipts (make soak-drill DRILL_N=...), outside make test"
	@echo "make lint   ruff check"
	@echo "make clean  remove caches and local run data (.hoithi); distclean also removes .venv"

venv: $(STAMP)

# Reinstall only when the dependency list changed (or the venv is new): a no-op `make venv` takes no time.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	@touch $(STAMP)

run: venv
	$(VENV)/bin/hoithi up

# Exit code 5 means pytest collected nothing: for CI that is a failure, not a pass.
# HOITHI_TEST_SERVERS unset: `containers` when a Docker engine answers and has the images (`make images`):
# every tier on testcontainers, plus the container tier (tests named test_containers_* / test_compose_*);
# otherwise `own` (servers of our own; the container tier skips, saying why). Either way this says which.
# Two phases: every test that is neither `fault` nor `serial` on TEST_WORKERS pytest-xdist workers (a module
# stays on one worker, so its module-scoped system starts once; each worker has servers of its own); then the
# `fault` and `serial` tests (they kill servers, or measure, or rush the machine) alone, one at a time.
TEST_WORKERS ?= 2
test: venv
	@if [ -z "$${HOITHI_TEST_SERVERS:-}" ]; then \
	  if ! docker info >/dev/null 2>&1; then export HOITHI_TEST_SERVERS=own; \
	    echo "make test: no Docker engine answers: HOITHI_TEST_SERVERS=own, the container tier is skipped"; \
	  elif ! docker image inspect nats:2.15 postgres:15 $${HOITHI_IMAGE:-hoithi:dev} >/dev/null 2>&1; then \
	    export HOITHI_TEST_SERVERS=own; \
	    echo "make test: a Docker engine answers but the images are missing (make images): HOITHI_TEST_SERVERS=own, the container tier is skipped"; \
	  else export HOITHI_TEST_SERVERS=containers; \
	    echo "make test: a Docker engine answers: HOITHI_TEST_SERVERS=containers, NATS and PostgreSQL through testcontainers, the container tier runs"; fi; \
	else echo "make test: HOITHI_TEST_SERVERS=$$HOITHI_TEST_SERVERS (given)"; fi; \
	echo "make test: phase 1 of 2: the tests that may share the machine, on $(TEST_WORKERS) workers"; \
	rc1=0; $(PY) -m pytest $(TEST_DIRS) -m "not fault and not serial" -n $(TEST_WORKERS) --dist loadfile \
	  -q -ra --durations=25 || rc1=$$?; \
	echo "make test: phase 2 of 2: the fault and serial tests, one at a time"; \
	rc2=0; $(PY) -m pytest $(TEST_DIRS) -m "fault or serial" -q -ra --durations=15 || rc2=$$?; \
	for rc in $$rc1 $$rc2; do \
	  if [ $$rc -eq 5 ]; then echo "make test: a phase collected no tests" >&2; exit 1; fi; \
	  if [ $$rc -ne 0 ]; then echo "make test: phase exit codes $$rc1 and $$rc2" >&2; exit $$rc; fi; \
	done; echo "make test: both phases passed"

# The full schemathesis run (every check, the stateful phase, 100 examples per operation) against all four
# services with a secretariat and an official token; make test runs the 20-example one (no stateful phase).
fuzz: venv
	HOITHI_FUZZ=full HOITHI_TEST_SERVERS=$${HOITHI_TEST_SERVERS:-own} $(PY) -m pytest tests/integration/test_fuzz_services.py -q -ra

# The two-replica fault run of make test (2,000 reports) at N reports, outside make test: every service twice on
# one PostgreSQL, the faults in sequence, then the checker (0 lost, 0 applied twice, 0 false misses); then the
# 2,000-official intake rush on SQLite as well as on PostgreSQL (make test rushes PostgreSQL only).
N ?= 10000
soak: venv
	HOITHI_REPLICAS_N=$(N) HOITHI_TEST_SERVERS=$${HOITHI_TEST_SERVERS:-own} $(PY) -m pytest \
	  tests/integration/test_two_replicas.py -q -ra -s -p no:cacheprovider
	HOITHI_RUSH_DATABASES=sqlite,postgresql HOITHI_TEST_SERVERS=$${HOITHI_TEST_SERVERS:-own} $(PY) -m pytest \
	  tests/e2e/test_intake_rush.py -q -ra -p no:cacheprovider

# The restore drill of make test (6 receipts) at N receipts, outside make test: back up mid-way with notify behind,
# keep running, destroy, restore, compare the answers byte for byte; then rewards from an older backup.
DRILL_N ?= 400
soak-drill: venv
	HOITHI_DRILL_REPORTS=$(DRILL_N) HOITHI_TEST_SERVERS=$${HOITHI_TEST_SERVERS:-own} $(PY) -m pytest \
	  tests/integration/test_backup_restore_drill.py -k test_long_restore_drill -q -ra -p no:cacheprovider

# Issue 16's full-size benchmarks, hours on a 2-core machine: bench/RESULTS.md records each run.
RUSH_OFFICIALS ?= 100000
REPLAY_EVENTS ?= 1000000
bench: venv
	$(PY) bench/rush.py --officials $(RUSH_OFFICIALS) $(if $(POSTGRES),--postgres $(POSTGRES))
	$(PY) bench/replay.py --events $(REPLAY_EVENTS) $(if $(POSTGRES),--postgres $(POSTGRES))
	$(PY) bench/directory.py --people $(RUSH_OFFICIALS) $(if $(POSTGRES),--postgres $(POSTGRES))

images: venv
	bash deploy/build-image.sh

lint: venv
	$(VENV)/bin/ruff check shared services tests

clean:
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hoithi build
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
