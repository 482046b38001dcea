"""From a recipe to numbers: each stage's model, parameters, steps, tokens and FLOPs, and the baselines'.

Pure arithmetic (no model is built, no data is read), so `tfctl plan` is instant even for 1.4B.
"""

import dataclasses
import math
from pathlib import Path

from tfctl.data.tokenizer import load_tokenizer, padded_vocab_size
from tfctl.errors import UserError
from tfctl.model.config import TokenformerConfig, TransformerConfig
from tfctl.model.flops import training_flops_per_token
from tfctl.model.sizes import TokenRatios, count_params, solve_ffn_hidden, solve_tokens, with_tokens
from tfctl.recipe.budgets import Budget, baseline_budgets, compact_count
from tfctl.recipe.schema import BaselineSection, Recipe, StageSection
from tfctl.recipe.tau import TauPolicy, fresh_tau, stage_tau

GPT2_PADDED_VOCAB = 50304


def estimated_vocab_size(recipe: Recipe) -> int:
    """The model vocabulary the tokenizer will give, padded to 64, without preparing data."""

    tokenizer = recipe.data.tokenizer
    if tokenizer.startswith("bpe:"):
        return padded_vocab_size(int(tokenizer[4:]))
    if tokenizer == "gpt2":
        return GPT2_PADDED_VOCAB
    return padded_vocab_size(load_tokenizer(Path(tokenizer).expanduser()).get_vocab_size())


def base_config(recipe: Recipe, vocab_size: int) -> TokenformerConfig:
    m = recipe.model
    return TokenformerConfig(
        vocab_size=vocab_size,
        seq_len=recipe.data.seq_len,
        n_layers=m.n_layers,
        d_model=m.d_model,
        n_heads=m.n_heads,
        rotary_pct=m.rotary_pct,
        norm=m.norm,
        scale_mode="sqrt_n",
    )


def token_ratios(recipe: Recipe) -> TokenRatios:
    r = recipe.model.token_ratios
    return TokenRatios(qkv=r.qkv, proj=r.proj, ffn=r.ffn)


def resolve_stage_configs(recipe: Recipe, vocab_size: int | None = None) -> list[TokenformerConfig]:
    """The model of every stage (token counts and layers; τ is decided by growth)."""
    config = base_config(recipe, vocab_size or estimated_vocab_size(recipe))
    configs = []
    for i, stage in enumerate(recipe.stages):
        layers = stage.layers or config.n_layers
        config = dataclasses.replace(config, n_layers=layers)
        if stage.param_tokens is not None:
            config = with_tokens(config, stage.param_tokens, token_ratios(recipe))
        else:
            try:
                config = solve_tokens(config, stage.size, token_ratios(recipe), layers)
            except ValueError as error:
                raise ValueError(f"stages[{i}].size: {error}") from None
        # τ: the first stage's model is built fresh; growth decides it for the stages after (tfctl/recipe/tau.py)
        fresh = dataclasses.replace(config, scale_mode=fresh_tau(recipe.model).scale_mode)
        configs.append(fresh if i == 0 else config)
    return configs


@dataclasses.dataclass
class StagePlan:
    name: str
    config: TokenformerConfig | TransformerConfig
    params: int
    non_embedding_params: int
    global_batch: int
    steps: int
    tokens: int
    flops: float
    cumulative_flops: float
    lr: float
    min_lr: float
    warmup_steps: int
    tau: TauPolicy = TauPolicy()  # τ during the stage (tfctl/recipe/tau.py); a Transformer has none: unused

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("config", "tau")}
        if self.tau.kind == "anneal":  # only an anneal is listed: plans without one read as before
            out["anneal_steps"] = self.tau.steps
        c = self.config
        out["layers"] = c.n_layers
        if isinstance(c, TokenformerConfig):
            out["param_tokens"] = {"qkv": c.qkv_tokens, "proj": c.proj_tokens, "ffn": c.ffn_tokens}
        else:
            out["ffn_hidden"] = c.ffn_hidden
        return out


# A stage's fixed cost when a run's history cannot measure it: worker start-up (DeepSpeed import, rendezvous;
# ~3-4 s on an idle machine), the step-0 and final evaluations, checkpoints, export. What tiny stages showed
# on a shared 2-core machine; a run's own history replaces it (tfctl/run/history.py).
DEFAULT_STAGE_OVERHEAD_SECONDS = 15.0


@dataclasses.dataclass(frozen=True)
class StageTimes:
    """How long a stage takes: a fixed part plus its FLOPs at the rate training steps run."""

    flops_per_second: float  # of training steps alone
    overhead_seconds: (
        float  # per stage: start-up, evaluations, checkpoints, export (growth, for grown stages)
    )
    source: str  # where both came from, in words

    def seconds(self, flops: float) -> float:
        return self.overhead_seconds + flops / self.flops_per_second


@dataclasses.dataclass
class Plan:
    stages: list[StagePlan]
    baselines: list[StagePlan]
    vocab_size: int
    seq_len: int
    world_size: int
    times: StageTimes | None = None  # measured on an earlier run of this recipe, for the time estimates
    seeds: int = 1  # the growth run's seeds (`tfctl compare` trains the others as siblings)
    baseline_seeds: list[int] = dataclasses.field(default_factory=list)  # seeds of each baseline run

    @property
    def all_seeds_flops(self) -> float:
        """The FLOPs of every run `tfctl compare` trains: the growth run and each baseline, every seed."""
        seeds = self.baseline_seeds or [1] * len(self.baselines)
        return self.seeds * self.total_flops + sum(
            b.flops * n for b, n in zip(self.baselines, seeds, strict=True)
        )

    @property
    def total_tokens(self) -> int:
        return sum(s.tokens for s in self.stages)

    @property
    def total_flops(self) -> float:
        return self.stages[-1].cumulative_flops

    def to_dict(self) -> dict:
        def with_time(entry: StagePlan) -> dict:
            d = entry.to_dict()
            d["estimated_seconds"] = self.times.seconds(entry.flops) if self.times else None
            return d

        seeds = self.baseline_seeds or [1] * len(self.baselines)
        return {
            "stages": [with_time(s) for s in self.stages],
            "baseline": with_time(self.baselines[0]) if self.baselines else None,
            "baselines": [{**with_time(b), "seeds": n} for b, n in zip(self.baselines, seeds, strict=True)],
            "seeds": self.seeds,
            "all_seeds_flops": self.all_seeds_flops,
            "total_tokens": self.total_tokens,
            "total_flops": self.total_flops,
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "world_size": self.world_size,
            "flops_per_second": self.times.flops_per_second if self.times else None,
            "stage_overhead_seconds": self.times.overhead_seconds if self.times else None,
            "times_source": self.times.source if self.times else None,
        }


def stage_seed(seed: int, index: int) -> int:
    """The seed of a run's stage `index` (its init, data order and growth), from the run's seed."""
    return seed + index


def warmup_steps(warmup: float, steps: int) -> int:
    return int(round(warmup * steps)) if warmup < 1 else min(int(warmup), steps)


def _budget(recipe: Recipe, tokens: int | None, steps: int | None, batch: int) -> tuple[int, int]:
    per_step = batch * recipe.data.seq_len
    steps = steps if steps is not None else max(1, math.ceil(tokens / per_step))
    return steps, steps * per_step


def resolved_plan(
    recipe: Recipe,
    name: str,
    config: TokenformerConfig | TransformerConfig,
    overrides: StageSection | BaselineSection,
    tokens: int | None,
    steps: int | None,
    flops_before: float = 0.0,
) -> StagePlan:
    """A stage's plan: its budget, FLOPs and learning rates, `overrides` (a stage or baseline section)
    falling back on the recipe's train section."""
    t = recipe.train
    batch = overrides.global_batch or t.global_batch
    steps, tokens = _budget(recipe, tokens, steps, batch)
    flops = training_flops_per_token(config) * tokens
    return StagePlan(
        name=name,
        config=config,
        params=count_params(config),
        non_embedding_params=count_params(config, non_embedding=True),
        global_batch=batch,
        steps=steps,
        tokens=tokens,
        flops=flops,
        cumulative_flops=flops_before + flops,
        lr=overrides.lr or t.lr,
        min_lr=t.min_lr if overrides.min_lr is None else overrides.min_lr,
        warmup_steps=warmup_steps(t.warmup if overrides.warmup is None else overrides.warmup, steps),
    )


def flops_steps(recipe: Recipe, config, overrides: StageSection | BaselineSection, flops: float) -> int:
    """The whole steps whose training FLOPs are nearest `flops` (at least one)."""
    per_step = (overrides.global_batch or recipe.train.global_batch) * recipe.data.seq_len
    return max(1, round(flops / (training_flops_per_token(config) * per_step)))


def plan_stage(
    recipe: Recipe, stage: StageSection, config: TokenformerConfig, flops_before: float
) -> StagePlan:
    steps = stage.steps if stage.flops is None else flops_steps(recipe, config, stage, stage.flops)
    return resolved_plan(recipe, stage.name, config, stage, stage.tokens, steps, flops_before)


def baseline_config(recipe: Recipe, baseline: BaselineSection, final: TokenformerConfig) -> TransformerConfig:
    """A Transformer of the final stage's size on the same backbone, the MLP width solved to match."""
    config = TransformerConfig(
        vocab_size=final.vocab_size,
        seq_len=final.seq_len,
        n_layers=baseline.n_layers or final.n_layers,
        d_model=baseline.d_model or final.d_model,
        n_heads=baseline.n_heads or final.n_heads,
        rotary_pct=final.rotary_pct,
    )
    return solve_ffn_hidden(config, baseline.size or count_params(final))


MLP_RATIO = 4  # the usual Transformer shape: MLP hidden = 4 × d_model
MAX_LAYERS = 96


def shaped_config(recipe: Recipe, baseline: BaselineSection, like: TokenformerConfig) -> TransformerConfig:
    """A Transformer of `like`'s size in the usual shape: the recipe's d_model and heads, the number of layers
    whose solved MLP width is nearest 4 × d_model (in ratio), the MLP width matching the parameters. A small
    stage of a wide backbone then gets fewer layers, a large one more (the paper's from-scratch family varies
    depth and width the same way)."""
    target = baseline.size or count_params(like)
    best, best_distance = None, math.inf
    for layers in range(1, MAX_LAYERS + 1):
        try:
            config = baseline_config(
                recipe, baseline.model_copy(update={"n_layers": layers, "size": target}), like
            )
        except ValueError:
            break  # more layers only leave less for the MLP
        distance = abs(math.log(config.ffn_hidden / (MLP_RATIO * config.d_model)))
        if distance < best_distance:
            best, best_distance = config, distance
    if best is None:
        raise ValueError(f"{target:,} parameters is below one block of this backbone and its embedding")
    return best


def scratch_models(
    recipe: Recipe, baseline: BaselineSection, stage_configs: list[TokenformerConfig]
) -> list[tuple[str, TokenformerConfig | TransformerConfig]]:
    """The models of a scratch baseline, one per size, each with its size's label (`""` for `final`, a stage
    name for `stages`, the count for a list). A Transformer is matched to the Tokenformer of that size (for
    `final`, with its layers; for a family, in the usual shape, `shaped_config`); a Tokenformer is that size
    on the recipe's backbone with the recipe's τ (sqrt_n: the paper's)."""
    final = stage_configs[-1]
    if baseline.sizes == "final":
        sized = [("", final, baseline.size)]
    elif baseline.sizes == "stages":
        sized = [
            (stage.name, config, None) for stage, config in zip(recipe.stages, stage_configs, strict=True)
        ]
    else:
        sized = []
        by_name = dict(zip((stage.name for stage in recipe.stages), stage_configs, strict=True))
        for entry in baseline.sizes:
            if isinstance(entry, str):
                if entry not in by_name:
                    raise ValueError(f"sizes: no stage named {entry!r} (stages: {', '.join(by_name)})")
                sized.append((entry, by_name[entry], None, {}))
                continue
            size = entry if isinstance(entry, int) else entry.size
            shape = {} if isinstance(entry, int) else entry.model_dump(exclude={"size"}, exclude_none=True)
            sized.append((compact_count(size), final, size, shape))
    models = []
    for label, config, size, *shape in sized:
        if shape and shape[0]:  # a member with its own shape (the paper's GPT-style family)
            section = baseline.model_copy(update={"size": size, **shape[0]})
            solve = baseline_config if "n_layers" in shape[0] else shaped_config
            models.append((label, solve(recipe, section, config)))
        elif baseline.family == "tokenformer":
            if size is not None:
                config = solve_tokens(config, size, token_ratios(recipe), config.n_layers)
            models.append((label, dataclasses.replace(config, scale_mode=fresh_tau(recipe.model).scale_mode)))
        else:
            section = baseline.model_copy(update={"size": size})
            if baseline.n_layers or baseline.sizes == "final":
                models.append((label, baseline_config(recipe, section, config)))
            else:  # a family spans sizes one depth cannot hold: each member in the usual shape
                models.append((label, shaped_config(recipe, section, config)))
    return models


def plan_scratch(
    recipe: Recipe,
    baseline: BaselineSection,
    config: TokenformerConfig | TransformerConfig,
    budget: Budget,
) -> StagePlan:
    """One from-scratch run: a single stage named after the baseline, one warmup+cosine over its budget
    (tokens, or the whole steps nearest a FLOPs budget); a Tokenformer's τ is that of a model built fresh."""
    if budget.flops is None:
        plan = resolved_plan(recipe, baseline.name, config, baseline, budget.tokens, None)
    else:
        steps = flops_steps(recipe, config, baseline, budget.flops)
        plan = resolved_plan(recipe, baseline.name, config, baseline, None, steps)
    if isinstance(config, TokenformerConfig):
        plan = dataclasses.replace(plan, tau=fresh_tau(recipe.model))
    return plan


def plan_stages(recipe: Recipe, vocab_size: int) -> list[StagePlan]:
    """The plan of every stage of the growth run (what `tfctl train` needs; the baselines are not sized)."""
    stages: list[StagePlan] = []
    configs = resolve_stage_configs(recipe, vocab_size)
    for index, (stage, config) in enumerate(zip(recipe.stages, configs, strict=True)):
        plan = plan_stage(recipe, stage, config, stages[-1].cumulative_flops if stages else 0.0)
        stages.append(dataclasses.replace(plan, tau=stage_tau(recipe, index, plan.steps)))
    return stages


def plan_recipe(recipe: Recipe, vocab_size: int | None = None, times: StageTimes | None = None) -> Plan:
    """The plan of every stage and baseline; `times` (measured on an earlier run) gives time estimates.
    A baseline that cannot be sized on this backbone is a UserError naming it."""
    vocab_size = vocab_size or estimated_vocab_size(recipe)
    stages = plan_stages(recipe, vocab_size)
    configs = [s.config for s in stages]
    baselines, baseline_seeds = [], []
    for baseline in recipe.baseline:
        try:
            models = (
                scratch_models(recipe, baseline, configs)
                if baseline.kind == "scratch"
                else [("", baseline_config(recipe, baseline, configs[-1]))]
            )
        except ValueError as error:
            raise UserError(
                f"baseline {baseline.name}: {error}; give it a size, d_model or n_layers that fit "
                f"(or `baseline: []` for none)"
            ) from None
        budgets = baseline_budgets(baseline, stages)  # net2net: its final stage at `match` tokens
        for budget in budgets:
            for label, model in models:
                plan = plan_scratch(recipe, baseline, model, budget)
                named = budget.label if len(budgets) > 1 or budget.flops is not None else ""
                name = "-".join(p for p in (baseline.name, label, named) if p)
                baselines.append(dataclasses.replace(plan, name=name))
                baseline_seeds.append(baseline.seeds or recipe.seeds)
    return Plan(
        stages=stages,
        baselines=baselines,
        vocab_size=vocab_size,
        seq_len=recipe.data.seq_len,
        world_size=recipe.launch.world_size,
        times=times,
        seeds=recipe.seeds,
        baseline_seeds=baseline_seeds,
    )
