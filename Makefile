# Ochre: `make play` to play the shipped CoinRun world (`make play WORLD=doom` or `WORLD=pong` for the
# others), `make test` to run the tests.
PYTHON ?= python3.11
WORLD  ?= coinrun
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: venv play play-headless world test test-faults lint bench bench-data bench-tokenizer bench-live

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; Ochre needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

play: venv
	$(PY) -m live.play --checkpoint checkpoints/$(WORLD).pt

play-headless: venv
	$(PY) -m live.play --checkpoint checkpoints/$(WORLD).pt --headless --frames 300 --out runs/play

# A world made from its recipe, configs/$(WORLD)/recipe.yaml (README: Recipes): every stage in order into
# runs/world_$(WORLD)/, skipping what is complete and resuming what was interrupted; `make world WORLD=new_game`
# starts your own game; RECIPE_ARGS="--dry-run" prints the commands, "--until STAGE" stops after one.
world: venv
	$(PY) -m train.recipe configs/$(WORLD)/recipe.yaml $(RECIPE_ARGS)

test: venv
	$(PY) -m pytest

# The slow fault tests (README: Reliability): a bad input of each entry point and category as a real command, and
# generation, tokenizing and training killed with SIGKILL (20, 5 and 10 times) and run again to identical outputs.
test-faults: venv
	KILLS_GENERATE=20 KILLS_TOKENIZE=5 KILLS_TRAIN=10 $(PY) -m pytest tests/faults -m slow_faults

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench-data: venv
	OMP_NUM_THREADS=1 $(PY) -m preprocess.bench --out runs/bench_data.json

bench-tokenizer: venv
	$(PY) -m vqvae.bench --tokenizer checkpoints/coinrun.pt --batch 64

bench-live: venv
	$(PY) -m live.bench --checkpoint checkpoints/$(WORLD).pt --out runs/bench/$(WORLD)/live.json

# Every shipped world's quality, controllability, stability and live frame times, training
# throughput and data rate, measured again and written to BENCHMARKS.md (long on a CPU).
bench: venv
	$(PY) -m train.benchmarks --measure
