# Two commands matter: `make demo` (set up, then run the main job offline) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
DEMO_DIR ?= data/demo
DEMO_OUT ?= outputs/demo

.PHONY: install chromium demo studio test lint format clean

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

# The gallery test renders the page in Debian's chromium.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# Two workers of one torch thread each: the CLI tests are mostly single-threaded start-up, and
# the trainings share the cores better side by side than one at a time with two threads. The
# slow tests are handed out first (tests/conftest.py), in collection order.
TEST_WORKERS ?= 2
test: install lint chromium
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15

ENCODER := $(DEMO_OUT)/encoder/checkpoints/last.ckpt
STYLIZER := $(DEMO_OUT)/stylizer/checkpoints/last.ckpt
PHOTO = $$(ls $(DEMO_DIR)/photos/*.jpg | head -1)
DREAM := $(PY) -m miro.dream ckpt=$(ENCODER) max_size=192 settings.octaves=3
RETRIEVE := $(PY) -m miro.retrieve query ckpt=$(ENCODER) dataset_dir=$(DEMO_DIR)/dataset split=test k=8 build_if_missing=true

demo: install
	$(PY) -m data_pipeline.synthetic out=$(DEMO_DIR)/raw num_posts=3000 seed=0
	$(PY) -m data_pipeline.build raw=$(DEMO_DIR)/raw out=$(DEMO_DIR)/dataset
	rm -rf $(DEMO_OUT)
	$(PY) -m miro.train +experiment=synthetic_demo data.dataset_dir=$(DEMO_DIR)/dataset hydra.run.dir=$(DEMO_OUT)/encoder
	$(PY) -m miro.evaluate ckpt=$(ENCODER) dataset_dir=$(DEMO_DIR)/dataset queries=motifs output=$(DEMO_OUT)/evaluation.json progress=false
	$(RETRIEVE) words=star output=$(DEMO_OUT)/retrieval/star_en.png
	$(RETRIEVE) words=lluna output=$(DEMO_OUT)/retrieval/lluna_ca.png
	$(RETRIEVE) words=pájaro output=$(DEMO_OUT)/retrieval/pajaro_es.png
	$(RETRIEVE) words=échelle output=$(DEMO_OUT)/retrieval/echelle_fr.png
	$(PY) -m data_pipeline.synthetic out=$(DEMO_DIR)/styles num_posts=3 seed=1 generator.min_motifs=3
	$(PY) -m data_pipeline.synthetic out=$(DEMO_DIR)/photos num_posts=4 seed=2
	$(PY) -m miro.train +experiment=synthetic_style_demo data.dataset_dir=$(DEMO_DIR)/dataset style_set.dir=$(DEMO_DIR)/styles hydra.run.dir=$(DEMO_OUT)/stylizer
	$(PY) -m miro.stylize ckpt=$(STYLIZER) input=$(DEMO_DIR)/photos output=$(DEMO_OUT)/stylized style=all
	$(PY) -m miro.stylize ckpt=$(STYLIZER) input=$(DEMO_DIR)/photos output=$(DEMO_OUT)/mix 'mix={0: 0.5, 2: 0.5}'
	$(DREAM) input=$(PHOTO) layers=all output=$(DEMO_OUT)/dreams/layers
	$(DREAM) objective=text words=star size=192 output=$(DEMO_OUT)/dreams/text
	$(DREAM) input=$(PHOTO) stylize.ckpt=$(STYLIZER) stylize.style=0 output=$(DEMO_OUT)/composition
	$(PY) -m data_pipeline.synthetic_clip out=$(DEMO_DIR)/clip.mp4 frames=48 size=128
	$(PY) -m miro.stylize ckpt=$(STYLIZER) input=$(DEMO_DIR)/clip.mp4 output=$(DEMO_OUT)/video style=0
	$(DREAM) input=$(DEMO_DIR)/clip.mp4 output=$(DEMO_OUT)/video video.octaves=1 video.steps=3
	$(PY) -m miro.gallery root=$(DEMO_OUT)

# The studio on the demo's models (after `make demo`): http://127.0.0.1:7860
studio: install
	$(PY) -m miro.studio encoder=$(ENCODER) stylizer=$(STYLIZER) dataset_dir=$(DEMO_DIR)/dataset

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
