# Two commands matter: `make demo` (set up, then run the main job offline) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
DEMO_DIR ?= data/demo

.PHONY: install demo test lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(VENV)/bin/pytest

demo: install
	$(PY) -m data_pipeline.synthetic out=$(DEMO_DIR)/raw num_posts=1500 seed=0 generator=learnable
	$(PY) -m data_pipeline.build raw=$(DEMO_DIR)/raw out=$(DEMO_DIR)/dataset
	$(PY) -m miro.train +experiment=synthetic_demo data.dataset_dir=$(DEMO_DIR)/dataset

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
