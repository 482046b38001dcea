"""The recipe format: typed, documented, strict. Field descriptions are the reference in README.

A recipe is YAML with the sections below; unknown keys are an error. Sizes and token budgets are
counts like `124m`, `1.4b`, `30b`, `2m` (or plain integers).
"""

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from tfctl.data.settings import DEFAULT_SEED
from tfctl.model.sizes import parse_count
from tfctl.recipe.budgets import FlopsBudgets, TokenBudgets


def _count(kind: str):
    def parse(value):
        try:
            return parse_count(value)
        except ValueError:
            raise ValueError(
                f"must be a positive {kind} like {'30b or 2m' if kind == 'token count' else '124m or 1.4b'}, "
                f"got {value!r}"
            ) from None

    return BeforeValidator(parse)


TokenCount = Annotated[int, _count("token count")]
ParamCount = Annotated[int, _count("size")]

STAGE_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"  # one path component, never "." or ".."


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class DataSection(Section):
    source: str | list[str] = Field(
        "shakespeare",
        description="Built-in corpus (`shakespeare`, `sotu`), a text "
        "file/glob/dir, a `.jsonl`/`.json`/`.parquet`/`.csv` file, or `hf:NAME_OR_DIR`; a list or `a+b` combines.",
    )
    tokenizer: str = Field(
        "bpe:8192",
        description="`bpe:N` (byte-level BPE trained on the train split), `gpt2`, "
        "or a path to a tokenizer.json.",
    )
    seq_len: int = Field(256, gt=0, description="Tokens per training sequence.")
    val_fraction: float = Field(
        0.05, gt=0, lt=1, description="Fraction of documents held out for validation."
    )
    text_field: str = Field("text", description="Field holding the text in JSONL / HF datasets.")
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**31,
        description="Seed of the validation split; default: the recipe's seed (a seed sibling keeps its "
        "run's split).",
    )

    def fingerprint(self) -> dict:
        """What the prepared data depends on, as in a stage fingerprint (an unset `seed` leaves it as before)."""
        return self.model_dump(mode="json", exclude={"seed"} if self.seed is None else set())


class TokenRatiosSection(Section):
    qkv: float = Field(1.0, gt=0, description="Relative tokens of each Q, K, V layer.")
    proj: float = Field(1.0, gt=0, description="Relative tokens of the attention output layer.")
    ffn: float = Field(4.0, gt=0, description="Relative tokens of the FFN layer.")


class ModelSection(Section):
    family: Literal["tokenformer"] = Field(
        "tokenformer", description="Only Tokenformers grow; baselines are set in `baseline`."
    )
    d_model: int = Field(768, gt=0, description="Width of the residual stream (fixed across stages).")
    n_layers: int = Field(
        12, gt=0, description="Blocks of the first stage (a stage may add more with `layers`)."
    )
    n_heads: int = Field(12, gt=0, description="Attention heads (fixed across stages).")
    rotary_pct: float = Field(
        0.25, ge=0, le=1, description="Fraction of each head's dims with rotary embeddings."
    )
    norm: Literal["l2_norm_gelu", "gelu_l2_norm", "softmax"] = Field(
        "l2_norm_gelu", description="Pattention Θ."
    )
    scale_mode: Literal["sqrt_n", "fixed", "anneal"] = Field(
        "sqrt_n",
        description="τ = sqrt(n) (the paper), fixed at the first stage's value, or `anneal`: after a "
        "`preserve` growth (τ held, exact) τ moves to sqrt(n) over `anneal`, so each stage ends as "
        "the paper's architecture. At a growth τ follows the stage's `init` in every mode: `paper` sets "
        "sqrt(n) of the grown size, `preserve` holds it.",
    )
    anneal: float = Field(
        0.1,
        gt=0,
        description="With `scale_mode: anneal`: how long τ takes to reach sqrt(n) after a growth, a fraction "
        "of the grown stage's steps if < 1, else a number of steps (independent of the LR warmup); the "
        "stage is also evaluated when it ends.",
    )
    token_ratios: TokenRatiosSection = Field(
        default_factory=TokenRatiosSection,
        description="Parameter tokens qkv : proj : ffn (the paper: 1:1:4).",
    )

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        # set to anything but its default (a recorded recipe.yaml holds every default) without the anneal
        if self.anneal != type(self).model_fields["anneal"].default and self.scale_mode != "anneal":
            raise ValueError(f"anneal: applies to scale_mode anneal only (scale_mode is {self.scale_mode})")
        return self


class StageSection(Section):
    model_config = ConfigDict(
        extra="forbid", validate_default=True, validate_by_name=True, serialize_by_alias=True
    )

    name: str = Field(
        description="Stage name (a directory under stages/; letters, digits, ., - and _).",
        pattern=STAGE_NAME_PATTERN,
    )
    size: ParamCount | None = Field(
        None, description="Target parameter count (`124m`, `1.4b`); the parameter tokens are solved for it."
    )
    param_tokens: int | None = Field(
        None, gt=0, description="Or: the qkv layers' parameter-token count (proj/ffn follow the ratios)."
    )
    layers: int | None = Field(
        None, gt=0, description="Blocks in this stage (depth growth); default: unchanged."
    )
    tokens: TokenCount | None = Field(None, description="Training budget in tokens (`30b`, `2m`).")
    steps: int | None = Field(None, gt=0, description="Or: training budget in optimizer steps.")
    flops: float | None = Field(
        None,
        gt=0,
        exclude_if=lambda value: value is None,  # recipes without it dump (and fingerprint) as before
        description="Or: training budget in FLOPs (`3e12`): the whole steps nearest it at the stage's size.",
    )
    global_batch: int | None = Field(
        None, gt=0, description="Sequences per optimizer step (default: train's)."
    )
    lr: float | None = Field(None, gt=0, description="Peak learning rate (default: train's).")
    min_lr: float | None = Field(
        None, ge=0, description="Final learning rate of the cosine (default: train's)."
    )
    warmup: float | None = Field(
        None,
        ge=0,
        description="Warmup: a fraction of the stage's steps if < 1, "
        "else a number of steps (default: train's).",
    )
    init: Literal["paper", "preserve"] = Field(
        "paper",
        description="How appended parameter tokens start: `paper` (the paper's growth: random new tokens, "
        "τ = sqrt(n) of the grown size; the loss jumps) or `preserve` (exactly function-preserving: new key "
        "tokens zero, τ held; with `model.scale_mode: anneal`, τ then moves to sqrt(n)).",
    )
    optimizer: Literal["reset", "carry"] = Field(
        "reset",
        description="AdamW moments at growth: `reset` (the paper) or `carry` (old rows kept, new rows zero).",
    )
    from_: str | None = Field(
        None,
        alias="from",
        exclude_if=lambda value: value is None,  # recipes without it dump (and fingerprint) as before
        description="First stage only: start from this model directory (`tfctl import`'s output, a "
        "stage's final/) instead of random weights, grown to the stage's size.",
    )

    @model_validator(mode="after")
    def _one_of_each(self):
        if self.size is not None and self.param_tokens is not None:
            raise ValueError("give either size or param_tokens, not both")
        if self.size is None and self.param_tokens is None:
            raise ValueError("needs a size (like 124m) or param_tokens")
        if [self.tokens, self.steps, self.flops].count(None) != 2:
            raise ValueError("needs exactly one budget: tokens (like 30b), steps or flops (like 3e12)")
        return self


class TrainSection(Section):
    global_batch: int = Field(32, gt=0, description="Sequences per optimizer step, whatever the world size.")
    micro_batch: int | None = Field(
        None,
        gt=0,
        description="Sequences per rank per micro-step (gradient "
        "accumulation makes up the rest); default: global_batch / world size.",
    )
    lr: float = Field(6e-4, gt=0, description="Peak learning rate (AdamW).")
    min_lr: float = Field(6e-5, ge=0, description="Learning rate at the end of the cosine.")
    warmup: float = Field(0.01, ge=0, description="Warmup: fraction of steps if < 1, else steps.")
    lr_schedule: Literal["restart", "continue"] = Field(
        "restart",
        description="`restart` warmup+cosine every stage (the paper) or `continue` one schedule over all.",
    )
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (not on embeddings and norms).")
    grad_clip: float = Field(1.0, ge=0, description="Gradient-norm clipping (0: off).")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Training precision.")
    zero_stage: int = Field(0, ge=0, le=3, description="DeepSpeed ZeRO stage.")
    compile: bool = Field(False, description="torch.compile the model.")
    eval_interval: int = Field(100, gt=0, description="Steps between evaluations (and one at the end).")
    eval_batches: int = Field(8, gt=0, description="Validation batches per evaluation (a fixed set).")
    eval_batch_size: int = Field(8, gt=0, description="Sequences per validation batch.")
    checkpoint_interval: int = Field(100, gt=0, description="Steps between checkpoints (and one at the end).")
    keep_checkpoints: int = Field(2, gt=0, description="Checkpoints kept per stage.")
    peak_flops: float | None = Field(
        None,
        gt=0,
        description="Peak FLOP/s per device for MFU (default: a GPU table, or measured on CPU); a faster step raises it.",
    )


class LaunchSection(Section):
    launcher: Literal["auto", "local", "deepspeed", "torchrun", "srun"] = Field(
        "auto",
        description="`auto`: a plain process for one rank, else deepspeed. `srun`: one torchrun per node of a "
        "Slurm allocation (what `tfctl submit` uses).",
    )
    nproc_per_node: int = Field(1, gt=0, description="Ranks per node (GPUs, or CPU processes).")
    nnodes: int = Field(1, gt=0, description="Nodes.")
    hostfile: str | None = Field(None, description="DeepSpeed hostfile for multi-node runs.")
    master_addr: str | None = Field(None, description="Rendezvous host (multi-node).")
    master_port: int | None = Field(None, gt=0, lt=65536, description="Rendezvous port; default: a free one.")
    deepspeed_launcher: Literal["pdsh", "openmpi", "slurm", "mvapich", "impi", "mpich"] | None = Field(
        None, description="deepspeed --launcher: pdsh, openmpi, slurm, ..."
    )
    extra_args: list[str] = Field(default_factory=list, description="Extra arguments for the launcher.")

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


class WandbSection(Section):
    project: str = Field("tfctl", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    group: str | None = Field(None, description="W&B group; default: the run directory's name.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="Default: $WANDB_MODE, else online with an API key, else offline."
    )
    tags: list[str] = Field(default_factory=list, description="W&B tags.")


class BaselineShape(Section):
    size: ParamCount = Field(description="Parameters of this member of the family.")
    d_model: int | None = Field(None, gt=0, description="Default: the baseline's (or the Tokenformer's).")
    n_layers: int | None = Field(None, gt=0, description="Default: solved for the usual 4× MLP shape.")
    n_heads: int | None = Field(None, gt=0, description="Default: the baseline's (or the Tokenformer's).")


class BaselineSection(Section):
    name: str = Field(
        "scratch", pattern=r"^[A-Za-z0-9_-]+$", description="Baseline name (`tfctl compare --baseline NAME`)."
    )
    kind: Literal["scratch", "net2net"] = Field(
        "scratch",
        description="`scratch`: trained from scratch; `net2net`: a Transformer grown on the same schedule.",
    )
    family: Literal["transformer", "tokenformer"] = Field(
        "transformer",
        description="What a scratch baseline is: a Transformer, or a Tokenformer (the control that isolates "
        "growth from the architecture).",
    )
    sizes: Literal["final", "stages"] | list[ParamCount | BaselineShape | str] = Field(
        "final",
        description="`final` (the final stage's size), `stages` (one run per stage size: a from-scratch "
        "family whose frontier the growth run is measured against) or a list of stage names, counts, or "
        "shapes `{size, d_model, n_layers, n_heads}` (the paper's GPT-style family).",
    )
    size: ParamCount | None = Field(None, description="Parameters; default: the final stage's size.")
    n_layers: int | None = Field(None, gt=0, description="Default: the final stage's layers.")
    d_model: int | None = Field(None, gt=0, description="Default: the Tokenformer's d_model.")
    n_heads: int | None = Field(None, gt=0, description="Default: the Tokenformer's heads.")
    tokens: TokenBudgets = Field(
        "match",
        description="Budget per run: `match` (the growth run's total tokens), `base` (the first stage's, the "
        "paper's choice), a multiple of base (`0.5x`, `2x`) or a count like 30b; a list trains each size at "
        "each budget (every one a sibling run).",
    )
    flops: FlopsBudgets | None = Field(
        None,
        exclude_if=lambda value: value is None,  # recipes without it dump as before
        description="Or: a FLOPs budget every size is trained to (its tokens solved per size, whole steps): "
        "`match` (the growth run's total FLOPs), a multiple of it (`0.5x`) or a number like 3e12; a list "
        "for several (the iso-FLOP envelope).",
    )
    seeds: int | None = Field(
        None, gt=0, description="Seeds of this baseline; default: the recipe's `seeds`."
    )
    global_batch: int | None = Field(None, gt=0, description="Default: train's.")
    lr: float | None = Field(None, gt=0, description="Default: train's.")
    min_lr: float | None = Field(None, ge=0, description="Default: train's.")
    warmup: float | None = Field(None, ge=0, description="Default: train's.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "net2net" and self.family != "transformer":
            raise ValueError("a net2net baseline is a Transformer (family: transformer)")
        tokens_set = (
            self.tokens != type(self).model_fields["tokens"].default
        )  # recorded recipes hold defaults
        if self.flops is not None and tokens_set:
            raise ValueError("tokens and flops: give one kind of budget, not both")
        if self.kind == "net2net" and (self.flops is not None or tokens_set):
            raise ValueError("a net2net baseline follows the growth run's schedule (no tokens or flops)")
        if self.size is not None and self.sizes != "final":
            raise ValueError("give either size or sizes, not both")
        shaped = isinstance(self.sizes, list) and any(isinstance(s, BaselineShape) for s in self.sizes)
        if self.family == "tokenformer" and (self.n_layers or self.d_model or self.n_heads or shaped):
            raise ValueError(
                "a Tokenformer baseline uses the recipe's backbone (no n_layers/d_model/n_heads)"
            )
        return self


def _as_list(value):
    return [value] if isinstance(value, dict) else value


class Recipe(Section):
    name: str = Field(description="Run name: the run directory is runs/<name>.", pattern=STAGE_NAME_PATTERN)
    seed: int = Field(
        DEFAULT_SEED, ge=0, lt=2**31, description="Seeds init, data order and growth (0 to 2^31 - 1)."
    )
    seeds: int = Field(
        1,
        gt=0,
        le=100,
        description="Seeds `tfctl compare` trains the growth run and each baseline with (seed, seed+1000, "
        "...), each a sibling run; the report gives mean ± std.",
    )
    data: DataSection = Field(default_factory=DataSection, description="The corpus and its tokenization.")
    model: ModelSection = Field(default_factory=ModelSection, description="The Tokenformer backbone.")
    stages: list[StageSection] = Field(min_length=1, description="Ordered growth stages.")
    train: TrainSection = Field(default_factory=TrainSection, description="Defaults shared by all stages.")
    launch: LaunchSection = Field(default_factory=LaunchSection, description="How the ranks are started.")
    wandb: WandbSection = Field(default_factory=WandbSection, description="Weights & Biases logging.")
    baseline: Annotated[list[BaselineSection], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: [BaselineSection()],
        description="What `tfctl compare` trains (one or a list).",
    )

    @field_validator("stages")
    @classmethod
    def _unique_names(cls, stages):
        names = [s.name for s in stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique, repeated: {', '.join(duplicates)}")
        later = [s.name for s in stages[1:] if s.from_ is not None]
        if later:
            raise ValueError(
                f"only the first stage may start `from` a model directory, not {', '.join(later)}"
            )
        return stages
