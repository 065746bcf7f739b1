# wordlens: the two commands are `make demo` and `make test` (see README.md).
# Both create the virtual environment .venv in the repository root if it is missing
# and install everything the project needs into it.

PYTHON ?= python3
CORES  ?= all
VENV   ?= .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.wordlens-installed

.PHONY: help install test demo bench lint clean

help:
	@echo "make demo   set up .venv and run the default workflow (config.yaml; CORES=all by default)"
	@echo "make test   set up .venv and run the test suite"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make lint   snakemake --lint"
	@echo "make clean  remove results/, logs/ and .snakemake/ (keeps .venv)"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wordlens needs Python >= 3.11, found " + sys.version.split()[0] + "; run e.g. make test PYTHON=python3.12")'
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV) || { echo "could not create $(VENV): on Debian/Ubuntu install the venv module (apt-get install python3-venv)"; exit 1; }
	$(VPY) -m pip install --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(VPY) -m pip install --disable-pip-version-check --no-deps cleverhans==4.0.0
	@command -v dot >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y --no-install-recommends graphviz >/dev/null 2>&1 || \
	    { apt-get update >/dev/null 2>&1; apt-get install -y --no-install-recommends graphviz >/dev/null; }; \
	  else echo "warning: Graphviz's dot is missing; architecture diagrams need it (apt-get install graphviz, or conda install graphviz)"; fi; }
	@touch $(STAMP)

test: $(STAMP)
	$(VPY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

bench: $(STAMP)
	$(VPY) benchmarks/bench_stats.py
	$(VPY) benchmarks/bench_activations.py
	$(VPY) benchmarks/bench_attacks.py
	$(VPY) benchmarks/bench_actmax.py
	$(VPY) benchmarks/bench_clustering.py
	$(VPY) benchmarks/bench_workflow.py

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint

clean:
	rm -rf results logs .snakemake benchmarks/out
