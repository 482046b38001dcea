"""Baseline runs for `tfctl compare`: models trained through the same worker, as sibling run dirs.

    scratch   one stage from scratch on the growth run's data, eval set, precision and train settings:
              a Transformer (the Tokenformer backbone with linear layers, its MLP width solved to match the
              parameters) or, with `family: tokenformer`, a Tokenformer — at the final stage's size, at every
              stage's size (`sizes: stages`: a family whose frontier the growth run is measured against) or at
              given sizes; for `match` (the growth run's total), `base` (its first stage's) or a count of tokens.
    net2net   the growth run's schedule: stage i is a Transformer matched to stage i's Tokenformer size,
              grown from stage i-1 by Net2Net widening of the MLP (tfctl.growth.net2net), with the same
              steps, batch and learning rates as the growth stage.

A scratch baseline has one or more budgets (`tokens:` a keyword, a multiple of base or a count, or `flops:`
the FLOPs every size is trained to, its tokens solved per size in whole steps); each size × budget × seed is
its own run. A baseline lives next to its run:
`runs/<run>.baseline-<name>[-<size>][-<budget>][.seed<seed>]` (the size for a family member, the budget unless
it is `match` tokens — a token count, or `<C>flops` — the seed unless it is the recipe's), e.g.
`runs/tiny.baseline-scratch-s2-400k.seed2337`, `runs/tiny.baseline-tf-s1-3e12flops`, with the usual layout (state.json, metrics.jsonl,
stages/<stage>/) plus baseline.json. Each stage's fingerprint covers the data, the model, the seed, the budget
and the train settings: a finished sibling with the same fingerprints is reused, never retrained.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tfctl.compare.runs import BASELINE_FILE, read_json_object
from tfctl.errors import UserError
from tfctl.files import atomic_write_json
from tfctl.growth.net2net import net2net_model_dir
from tfctl.model import config_to_dict
from tfctl.recipe import Recipe, StagePlan
from tfctl.recipe.budgets import Budget, baseline_budgets, compact_count
from tfctl.recipe.plan import (
    baseline_config,
    plan_scratch,
    plan_stage,
    scratch_models,
    shaped_config,
    stage_seed,
)
from tfctl.recipe.schema import BaselineSection
from tfctl.run.job import GrowFn, RunJob, changed_stages, cumulative_fingerprints, fingerprinted_train
from tfctl.run.layout import RunDir
from tfctl.run.peak import inherited_cpu_peaks
from tfctl.run.stage_loop import StageLoop, locked_run
from tfctl.run.state import DONE, RunState
from tfctl.tracking.live import RunDisplay

KINDS = ("scratch", "net2net")


def select_baselines(recipe: Recipe, names: list[str] | None) -> list[BaselineSection]:
    """The recipe's baseline sections, or those named: a recipe section by name, else a default of that kind."""
    if not names:
        return list(recipe.baseline)
    sections = {b.name: b for b in recipe.baseline}
    chosen = []
    for name in names:
        if name in sections:
            chosen.append(sections[name])
        elif name in KINDS:
            chosen.append(BaselineSection(name=name, kind=name))
        else:
            known = sorted(set(sections) | set(KINDS))
            raise UserError(
                f"--baseline {name}: not in the recipe's baseline section (known: {', '.join(known)})"
            )
    return chosen


def seed_suffix(recipe: Recipe, seed: int) -> str:
    """A seed sibling's directory suffix: none for the recipe's own seed, `.seed<seed>` otherwise."""
    return "" if seed == recipe.seed else f".seed{seed}"


@dataclass
class BaselineJob:
    """One baseline run to train (or reuse): what it is, where it goes, and its stages."""

    section: BaselineSection
    budget: Budget | None  # the resolved budget (tokens or FLOPs), or None for net2net (its schedule)
    member: str  # which size of the baseline's family ("" for a single size)
    seed: int
    directory: Path
    plans: list[StagePlan]
    source_run: Path  # the growth run it is compared with
    family: str | None = None  # scratch runs of one architecture and budget: the from-scratch frontier

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def group(self) -> str:
        """The baseline and size, without the seed: what the report aggregates over seeds."""
        return self.directory.name.removeprefix(f"{self.source_run.name}.").split(".seed")[0]

    def recorded_budget(self) -> dict:
        """The budget as baseline.json records it: `budget` the tokens unless `match` (as before FLOPs
        budgets existed), `flops_budget` the FLOPs each size was trained to."""
        budget = self.budget or Budget()
        named_tokens = budget.flops is None and budget.label
        return {"budget": budget.tokens if named_tokens else None, "flops_budget": budget.flops}


def sibling_dir(run_dir: Path, section: BaselineSection, label: str, member: str = "", suffix: str = ""):
    parts = [section.name, member, label]
    return run_dir.parent / f"{run_dir.name}.baseline-{'-'.join(p for p in parts if p)}{suffix}"


def plan_jobs(
    run_dir: Path,
    recipe: Recipe,
    section: BaselineSection,
    budget: int | None,
    stages: list[StagePlan],
    seeds: list[int],
) -> list[BaselineJob]:
    """The runs of a baseline: one per seed, budget and size (in that order). `stages`: the growth run's
    planned stages; `budget`: a --tokens override of the section's own budgets."""
    if section.kind == "net2net":
        if budget is not None:
            raise UserError(
                f"baseline {section.name}: a net2net baseline follows the growth run's schedule; "
                "a token budget (--tokens or baseline.tokens) applies to scratch baselines only"
            )
        budgets = [None]
        members = {None: [("", net2net_plans(recipe, section, stages))]}
    else:
        budgets = (
            [Budget(tokens=budget, label=compact_count(budget))]
            if budget is not None
            else baseline_budgets(section, stages)
        )
        try:
            models = scratch_models(recipe, section, [s.config for s in stages])
        except ValueError as error:
            raise UserError(f"baseline {section.name}: {error}") from None
        members = {
            b: [(label, [plan_scratch(recipe, section, model, b)]) for label, model in models]
            for b in budgets
        }
    # the from-scratch runs of one architecture on one budget form a frontier, whichever sections they come from
    return [
        BaselineJob(
            section=section,
            budget=b,
            member=member,
            seed=seed,
            directory=sibling_dir(run_dir, section, b.label if b else "", member, seed_suffix(recipe, seed)),
            plans=plans,
            source_run=run_dir,
            family=_family(section, b, plans),
        )
        for seed in seeds
        for b in budgets
        for member, plans in members[b]
    ]


def _family(section: BaselineSection, budget: Budget | None, plans: list[StagePlan]) -> str | None:
    if section.kind != "scratch":
        return None
    if budget is not None and budget.flops is not None:
        return f"{section.family}, {budget.describe()}"
    return f"{section.family}, {compact_count(plans[0].tokens)} tokens"


def net2net_plans(recipe: Recipe, section: BaselineSection, stages: list[StagePlan]) -> list[StagePlan]:
    """Stage i: a Transformer matched to the growth run's stage i, its MLP never narrower than before."""
    plans, hidden = [], 0
    for stage, growth_plan in zip(recipe.stages, stages, strict=True):
        config = growth_plan.config
        per_stage = section.model_copy(update={"size": None, "n_layers": config.n_layers})
        try:
            transformer = baseline_config(recipe, per_stage, config)
        except ValueError:  # too small for the stage's depth: the usual shape, deepened later by Net2Net
            try:
                transformer = shaped_config(recipe, section.model_copy(update={"size": None}), config)
            except ValueError as error:
                raise UserError(f"baseline {section.name}, stage {stage.name}: {error}") from None
        if plans and transformer.n_layers < plans[-1].config.n_layers:  # Net2Net only deepens
            transformer = baseline_config(
                recipe, per_stage.model_copy(update={"n_layers": plans[-1].config.n_layers}), config
            )
        hidden = max(hidden, transformer.ffn_hidden)  # Net2Net only widens
        transformer = dataclasses.replace(transformer, ffn_hidden=hidden)
        same_steps = stage.model_copy(update={"tokens": None, "flops": None, "steps": growth_plan.steps})
        plans.append(
            plan_stage(recipe, same_steps, transformer, plans[-1].cumulative_flops if plans else 0.0)
        )
    return plans


def fingerprints(recipe: Recipe, job: BaselineJob, data_dir: Path) -> list[str]:
    """Stage i's fingerprint: data, kind, the Transformers and budgets of stages ≤ i, the train settings."""
    base = {
        "kind": job.section.kind,
        "data": recipe.data.fingerprint(),
        "data_dir": data_dir.name,
        "seed": job.seed,
        "train": fingerprinted_train(recipe.train),
    }
    stages = [
        {
            "name": p.name,
            "model": config_to_dict(p.config),
            "steps": p.steps,
            "global_batch": p.global_batch,
            "lr": p.lr,
            "min_lr": p.min_lr,
            "warmup_steps": p.warmup_steps,
        }
        for p in job.plans
    ]
    return cumulative_fingerprints(base, stages)


def net2net_growth(seed: int) -> GrowFn:
    """A net2net stage starts from the previous Transformer, its MLP widened (and layers added)."""

    def grow(source: Path, out: Path, plan: StagePlan, index: int, probe) -> dict:
        config = plan.config
        report = net2net_model_dir(
            source,
            out,
            ffn_hidden=config.ffn_hidden,
            layers=config.n_layers,
            seed=stage_seed(seed, index),
            probe=probe,
        ).to_dict()
        return {**report, "init": "net2net", "optimizer": "reset"}

    return grow


def baseline_run_job(job: BaselineJob, recipe: Recipe, data_dir: Path) -> RunJob:
    """The baseline as a run of the stage loop: the growth run's data and train settings, the baseline's
    stages; on W&B (job type `baseline`) in the growth run directory's group, so they show up together."""
    return RunJob.for_recipe(
        recipe,
        job.directory,
        group=job.source_run.name,
        name=job.name,
        data_dir=data_dir,
        plans=job.plans,
        fingerprints=fingerprints(recipe, job, data_dir),
        wandb_job_type="baseline",
        seed=job.seed,
        grow=net2net_growth(job.seed) if job.section.kind == "net2net" else None,
        retrain_hint="tfctl compare --retrain",
        wandb_config={
            **recipe.model_dump(mode="json"),
            "name": job.name,
            "baseline": job.section.model_dump(mode="json"),
            "stages": [p.to_dict() for p in job.plans],
        },
    )


def _recorded(directory: Path) -> dict | None:
    """What the sibling's baseline.json says it was trained as (None when missing or unreadable)."""
    return read_json_object(directory / BASELINE_FILE)


def _difference(recorded: dict | None, job: BaselineJob) -> str:
    stages = recorded.get("stages") if recorded else None
    if not isinstance(stages, list):
        return "different settings"
    before = {s.get("name"): s for s in stages if isinstance(s, dict)}
    for plan in job.plans:
        old = before.get(plan.name)
        if old is None:
            continue
        for key in ("tokens", "params", "steps", "global_batch"):
            if old.get(key) != getattr(plan, key):
                return f"stage {plan.name}: {key} {old.get(key)} then, {getattr(plan, key):,} now"
    return "different data or train settings"


def is_trained(run: RunJob) -> bool:
    """Whether the sibling holds every stage of `run`, finished with these fingerprints."""
    if not run.dirs.is_run():
        return False
    stages = RunState.load(run.dirs.state, run.name).stages()
    return all(
        stages.get(name, {}).get("status") == DONE and stages[name].get("fingerprint") == fingerprint
        for name, fingerprint in zip(run.stage_names, run.fingerprints, strict=True)
    )


def train_baseline(
    job: BaselineJob, recipe: Recipe, data_dir: Path, retrain: bool = False, say=print, display=None
) -> Path:
    """Train the baseline's sibling run dir, or reuse it when it is already trained with these settings.
    Without a display (a pool process, compare -j N), every line carries the baseline's name."""
    if display is None:  # a pool process (compare -j N): a compact display whose lines carry the name
        display = RunDisplay(interactive=False, tag=job.name)
        say = display.print if say is print else say
    run = baseline_run_job(job, recipe, data_dir)
    if is_trained(run):
        say(f"[{job.name}] already trained with these settings, reused")
        return job.directory
    if run.dirs.is_run() and not (job.directory / BASELINE_FILE).is_file():
        raise UserError(
            f"{job.directory}: a run directory that is not a baseline of {job.source_run}; "
            f"move it away or rename the baseline"
        )
    with locked_run(run.dirs, job.name) as state:
        loop = StageLoop(run, state, say, display)
        source = RunState.load(RunDir(job.source_run).state, job.source_run.name).data
        state.data.setdefault("cpu_peak_flops", inherited_cpu_peaks(source, job.source_run.name))
        stale = changed_stages(state, run)
        if stale:
            if not retrain:
                raise UserError(
                    f"{job.directory}: trained before with {_difference(_recorded(job.directory), job)}; "
                    f"pass --retrain to replace it"
                )
            say(f"[{job.name}] --retrain: dropping what it trained before ({', '.join(stale)})")
            loop.restart_from(list(state.stages()))
        loop.check_unfinished()
        described = {
            "name": job.section.name,
            "kind": job.section.kind,
            "source_run": str(job.source_run),
            **job.recorded_budget(),
            "member": job.member,
            "seed": job.seed,
            "group": job.group,
            "family": job.family,
            "fingerprints": run.fingerprints,
            "section": job.section.model_dump(mode="json"),
            "stages": [p.to_dict() for p in job.plans],
        }
        atomic_write_json(job.directory / BASELINE_FILE, described)
        loop.run()
    return job.directory
