# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test install benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gencourse demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 tests

benchmark: $(STAMP)
	$(PY) benchmarks/vae.py

clean:
	rm -rf runs .pytest_cache
