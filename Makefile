# The two set-up commands are `make demo` and `make test`; both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The suite runs in parallel (pytest-xdist). Its tests mostly wait on timers (outages,
# poll intervals), so more workers than the 2 cores pay; past 4 the CPU-bound ones (fuzz,
# snmpsim, the demo) slow each other down (README, Tests). Each worker starts its own
# services. --dist loadgroup keeps a module with module-scoped fixtures on one worker;
# tests/conftest.py marks those and puts the slowest first, which --no-loadscope-reorder keeps.
PYTEST_WORKERS ?= 4
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

.PHONY: deps demo test lint bench clean dist wheelhouse

deps:
	@bash scripts/install-deps.sh

# make demo FAST=1 (or ARGS=--fast): a day in minutes; ARGS passes any `wardwatch-sim demo` option.
demo: deps
	$(VENV)/bin/wardwatch-sim demo $(if $(FAST),--fast) $(ARGS)

test: deps
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	bash scripts/typecheck.sh

bench:
	@WITH_BENCH=1 bash scripts/install-deps.sh
	$(PY) bench/snmp_poll.py
	$(PY) bench/collector_ingest.py --points 60000 --runs 3
	$(PY) bench/camera_poll.py --cameras 200 --interval 60 --duration 150 --runs 3
	$(PY) bench/report_capacity.py --days 30 --runs 3

# The wheel and sdist (dist/), and a folder of every wheel a box needs for an install with no
# network (docs/deploy.md): make wheelhouse EXTRAS=agent [PLATFORM=manylinux_2_36_aarch64 PYVER=3.11]
EXTRAS ?= agent
dist: deps
	$(PY) -m build --outdir dist .

wheelhouse: deps
	PYTHON=$(PY) bash scripts/wheelhouse.sh -o dist/wheelhouse-$(subst $(comma),-,$(EXTRAS))$(if $(PLATFORM),-$(PLATFORM)) \
	    --extras $(EXTRAS) $(if $(PLATFORM),--platform $(PLATFORM)) $(if $(PYVER),--python $(PYVER))

comma := ,

clean:
	rm -rf run .pytest_cache dist
