# Everything a fresh machine with Python >= 3.10 needs: the targets create the
# virtual environment and install the package into it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test tutorials clean

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,plots]"
	touch $@

demo: $(INSTALLED)  ## train a Bayesian regressor on the built-in data, print the uncertainty table
	$(PY) -m tfp_bnn.demo

test: $(INSTALLED)  ## the test suite (what CI runs)
	$(PY) -m pytest -q -m "not slow"

tutorials: $(INSTALLED)  ## re-execute every tutorial chapter in full, saving the notebooks with their outputs
	$(PY) tutorials/notebooks.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
