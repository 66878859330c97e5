# sparselme — developer entry points.  `make demo` and `make test` install what is missing.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
SYSDEPS := libsuitesparse-dev libopenblas0-pthread

.PHONY: install sysdeps demo test test-all bench bench-large lint docs serve clean

install: $(STAMP)

# System libraries: CHOLMOD headers (SuiteSparse 5.12 on Debian bookworm) and an optimized BLAS.
# apt-get runs only when a package is missing, so repeated runs cost nothing.
sysdeps:
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml setup.py sparselme/engine/_gram.pyx | sysdeps
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# scikit-sparse is built against the system SuiteSparse with the numpy already in the venv.
	$(PY) -m pip install -q "numpy>=1.24" "cython>=3.0,<3.1"
	$(PY) -m pip install -q --no-build-isolation "scikit-sparse==0.4.16"
	$(PY) -m pip install -q -e ".[test,plot,parquet,dask,docs]"
	@touch $(STAMP)

demo: install
	$(PY) -m sparselme.demo

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ""

bench: install
	$(PY) -m benchmarks
	@if [ -n "$(LARGE)" ]; then $(MAKE) bench-large; fi

# Optional large problem (issue 21): 30M rows, 200,000 x 80,000 power-law crossed levels,
# streamed from a Parquet folder generated on first use under $TMPDIR and cached; the
# moments fit through lmer(estimator="moments"), then the exact path's refusal.
# `make bench LARGE=1` runs it after the standard benchmarks.
BENCH_LARGE = --rows 30000000 --levels-a 200000 --levels-b 80000
bench-large: install
	$(PY) -m benchmarks.moments_scale lmer $(BENCH_LARGE)
	$(PY) -m benchmarks.moments_scale refuse $(BENCH_LARGE)

# The docs site (MkDocs Material) in site/: open site/index.html from disk. Every example
# runs during the build (docs/hooks.py), and what it prints is shown under it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The same site served at http://127.0.0.1:8000, rebuilt when a page changes.
serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# ruff, and import-linter's contracts (pyproject.toml): layers that import only downward, no cycles
lint: install
	$(VENV)/bin/ruff check sparselme tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
