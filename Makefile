# Two commands do everything on a fresh machine:
#   make demo   install into .venv, then run the main job on the bundled data
#   make test   install into .venv, then run the whole test suite (no GPU needed)
PYTHON      ?= python3
VENV        ?= .venv
CONSTRAINTS ?= constraints.txt
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.genolong-installed
DEMO_OUT    ?= demo_out
DEMO_STEPS  ?= 400
PYTEST_ARGS ?= -n 2

.PHONY: install test demo lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

test: install
	$(VENV)/bin/ruff check genolong tests benchmarks data scripts
	OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest $(PYTEST_ARGS)

demo: install
	PYTHON=$(PY) DEMO_OUT=$(DEMO_OUT) DEMO_STEPS=$(DEMO_STEPS) bash scripts/demo.sh

lint: install
	$(VENV)/bin/ruff check genolong tests benchmarks data

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .hypothesis
