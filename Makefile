# The two set-up commands are `make demo` and `make test`; both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: deps demo test lint bench clean

deps:
	@bash scripts/install-deps.sh

demo: deps
	$(VENV)/bin/wardwatch-sim demo

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	bash scripts/typecheck.sh

bench:
	@WITH_BENCH=1 bash scripts/install-deps.sh
	$(PY) bench/snmp_poll.py
	$(PY) bench/collector_ingest.py --points 60000 --runs 3
	$(PY) bench/camera_poll.py --cameras 200 --interval 60 --duration 150 --runs 3

clean:
	rm -rf run .pytest_cache
