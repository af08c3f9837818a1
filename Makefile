# Everything a fresh machine with Python >= 3.10 needs: the targets create the
# virtual environment and install the package into it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test tutorials bench bench-baselines clean

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,plots]"
	touch $@

demo: $(INSTALLED)  ## train a Bayesian regressor on the built-in data, print the uncertainty table
	$(PY) -m tfp_bnn.demo

# Two workers, one per core of the CI machine. A test file stays on one worker (--dist
# loadfile), so a module's fixtures are built once and its tests run in their order. The
# slowest 25 tests are listed at the end: CI's budget is 25 minutes with the install, and
# most of a test's time is TensorFlow tracing its functions (a fit, a predict, an export
# each), then ~10 s per subprocess to import TensorFlow.
test: $(INSTALLED)  ## the test suite (what CI runs)
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile --durations=25

tutorials: $(INSTALLED)  ## re-execute every tutorial chapter in full, saving the notebooks with their outputs
	$(PY) tutorials/notebooks.py

# The benchmarks (about 5.5 hours on 2 cores, not part of `make test`): speed.py took 28 minutes
# (measured, 2026-11-23); uci.py's 105 splits about 5 hours, estimated from the committed run's
# seconds per split (9.9 hours of split-seconds, two splits side by side). The optional
# comparison with Bayesian-Torch needs the bench extra: torch 2.13.0 (the CPU build here)
# and bayesian-torch without its dependencies (its torchvision would pull a CUDA torch).
UCI_DATA ?= ../shared/data/uci
BENCH_INSTALLED := $(VENV)/.bench-installed

$(BENCH_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet -e ".[test,plots,bench]"
	$(PY) -m pip install --quiet --no-deps bayesian-torch==0.5.0
	touch $@

bench: $(BENCH_INSTALLED)  ## speed and UCI benchmarks -> benchmarks/results/
	nice -n 10 $(PY) benchmarks/speed.py --json benchmarks/results/speed.json --markdown benchmarks/results/speed.md
	nice -n 10 $(PY) benchmarks/uci.py --data-dir $(UCI_DATA) --jobs 2 --json benchmarks/results/uci.json \
		--markdown benchmarks/results/uci.md

# The baselines under the same protocol on the two small data sets (about 2.1 hours for MC dropout and
# 0.5 for the ensemble, two splits side by side, from the committed runs' seconds).
bench-baselines: $(INSTALLED)  ## MC dropout and deep ensemble on boston and concrete -> benchmarks/results/
	for method in mc_dropout ensemble; do \
		nice -n 10 $(PY) benchmarks/uci.py --data-dir $(UCI_DATA) --datasets bostonHousing,concrete \
			--method $$method --jobs 2 --json benchmarks/results/uci_$$method.json \
			--markdown benchmarks/results/uci_$$method.md || exit 1; \
	done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
