"""Baseline runs for `tfctl compare`: Transformers trained through the same worker, as sibling run dirs.

    scratch   one stage: a Transformer at the final stage's size (same d_model, layers, heads; the MLP width
              solved to match its parameters), trained from scratch on the growth run's data, eval set,
              precision and train settings, by default for as many tokens as the growth run consumed.
    net2net   the growth run's schedule: stage i is a Transformer matched to stage i's Tokenformer size,
              grown from stage i-1 by Net2Net widening of the MLP (tfctl.growth.net2net), with the same
              steps, batch and learning rates as the growth stage.

A baseline lives next to its run: `runs/<run>.baseline-<name>` (`-<budget>` when the token budget is not
`match`, e.g. `runs/tiny.baseline-scratch-2m`), with the usual layout (state.json, metrics.jsonl,
stages/<stage>/) plus baseline.json. Each stage's fingerprint covers the data, the Transformer, the budget
and the train settings: a finished sibling with the same fingerprints is reused, never retrained.
"""

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tfctl.compare.runs import BASELINE_FILE
from tfctl.errors import UserError
from tfctl.recipe import Recipe, StagePlan
from tfctl.recipe.schema import BaselineSection, StageSection
from tfctl.run.layout import RunDir
from tfctl.run.orchestrate import Run, cumulative_fingerprints, fingerprinted_train
from tfctl.run.state import DONE, GROWING, RunState, atomic_write_text

KINDS = ("scratch", "net2net")


def compact_count(value: int) -> str:
    """2_000_000 → "2m", 1_500_000_000 → "1.5b", 5120 → "5.12k": a budget as a directory-name suffix."""
    for suffix, scale in (("t", 10**12), ("b", 10**9), ("m", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.4g}{suffix}"
    return str(value)


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


@dataclass
class BaselineJob:
    """One baseline to train (or reuse): what it is, where it goes, and its stages."""

    section: BaselineSection
    budget: int | None  # an explicit token budget, or None for `match`
    directory: Path
    plans: list[StagePlan]
    source_run: Path  # the growth run it is compared with

    @property
    def name(self) -> str:
        return self.directory.name


def sibling_dir(run_dir: Path, section: BaselineSection, budget: int | None) -> Path:
    suffix = f"-{compact_count(budget)}" if budget is not None else ""
    return run_dir.parent / f"{run_dir.name}.baseline-{section.name}{suffix}"


def plan_job(
    run_dir: Path,
    recipe: Recipe,
    section: BaselineSection,
    budget: int | None,
    stage_configs: list,
    growth_tokens: int,
) -> BaselineJob:
    """The stages of a baseline. `stage_configs`: the growth run's finished stages' Tokenformer configs."""
    from tfctl.recipe.plan import baseline_config, plan_baseline, plan_stage

    if budget is None and section.tokens != "match":
        budget = section.tokens
    if section.kind == "scratch":
        section_for_plan = section.model_copy(update={"tokens": budget if budget is not None else "match"})
        try:
            plans = [plan_baseline(recipe, section_for_plan, stage_configs[-1], growth_tokens)]
        except ValueError as error:
            raise UserError(f"baseline {section.name}: {error}") from None
    else:
        if budget is not None:
            raise UserError(
                f"baseline {section.name}: a net2net baseline follows the growth run's schedule; "
                "a token budget (--tokens or baseline.tokens) applies to scratch baselines only"
            )
        plans, hidden = [], 0
        for stage, config in zip(recipe.stages, stage_configs, strict=False):
            per_stage = section.model_copy(update={"size": None, "n_layers": config.n_layers})
            try:
                transformer = baseline_config(recipe, per_stage, config)
            except ValueError as error:
                raise UserError(f"baseline {section.name}, stage {stage.name}: {error}") from None
            hidden = max(hidden, transformer.ffn_hidden)  # Net2Net only widens
            transformer = dataclasses.replace(transformer, ffn_hidden=hidden)
            plans.append(plan_stage(recipe, stage, transformer, plans[-1].cumulative_flops if plans else 0.0))
    return BaselineJob(
        section=section,
        budget=budget,
        directory=sibling_dir(run_dir, section, budget),
        plans=plans,
        source_run=run_dir,
    )


def fingerprints(recipe: Recipe, job: BaselineJob, data_dir: Path) -> list[str]:
    """Stage i's fingerprint: data, kind, the Transformers and budgets of stages ≤ i, the train settings."""
    from tfctl.model import config_to_dict

    base = {
        "kind": job.section.kind,
        "data": recipe.data.model_dump(mode="json"),
        "data_dir": data_dir.name,
        "seed": recipe.seed,
        "train": fingerprinted_train(recipe),
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


class BaselineRun(Run):
    """A Run whose stages are Transformers; a net2net stage starts from the previous one, widened."""

    wandb_job_type = "baseline"

    def grow_into(self, index: int) -> dict:
        from tfctl.data import eval_batches, load_prepared
        from tfctl.growth.net2net import net2net_model_dir

        stage, entry = self.recipe.stages[index], self.state.stage(self.recipe.stages[index].name)
        init = self.dirs.init(stage.name)
        if entry.get("growth") and (init / "config.json").is_file():
            return entry["growth"]
        previous = self.recipe.stages[index - 1].name
        self.state.update(stage.name, status=GROWING, fingerprint=self.fingerprints[index])
        shutil.rmtree(init, ignore_errors=True)
        probe = eval_batches(load_prepared(self.data_dir).tokens("val"), self.recipe.data.seq_len, 4, 1)[0][0]
        config = self.plan[index].config
        report = net2net_model_dir(
            self.dirs.final(previous),
            init,
            ffn_hidden=config.ffn_hidden,
            layers=config.n_layers,
            seed=self.recipe.seed + index,
            probe=probe,
        ).to_dict()
        report.update(source=previous, init="net2net", optimizer="reset")
        return report


def baseline_recipe(recipe: Recipe, job: BaselineJob) -> Recipe:
    """The growth recipe, renamed to the sibling and with the baseline's stages (names and budgets; the
    models come from the plans). W&B: the growth run directory's group, so they show up together."""
    stages = [
        StageSection(
            name=p.name,
            size=p.params,
            steps=p.steps,
            global_batch=p.global_batch,
            lr=p.lr,
            min_lr=p.min_lr,
            warmup=p.warmup_steps,
        )
        for p in job.plans
    ]
    wandb = recipe.wandb.model_copy(update={"group": recipe.wandb.group or job.source_run.name})
    return recipe.model_copy(update={"name": job.name, "stages": stages, "wandb": wandb})


def _difference(recorded: dict | None, job: BaselineJob) -> str:
    if not recorded:
        return "different settings"
    before = {s["name"]: s for s in recorded.get("stages", [])}
    for plan in job.plans:
        old = before.get(plan.name)
        if old is None:
            continue
        for key in ("tokens", "params", "steps", "global_batch"):
            if old.get(key) != getattr(plan, key):
                return f"stage {plan.name}: {key} {old.get(key):,} then, {getattr(plan, key):,} now"
    return "different data or train settings"


def is_trained(job: BaselineJob, prints: list[str]) -> bool:
    """Whether the sibling holds every stage of `job`, finished with these fingerprints."""
    dirs = RunDir(job.directory)
    if not dirs.is_run():
        return False
    stages = RunState.load(dirs.state, job.name).data["stages"]
    return all(
        stages.get(p.name, {}).get("status") == DONE and stages[p.name].get("fingerprint") == f
        for p, f in zip(job.plans, prints, strict=True)
    )


def train_baseline(
    job: BaselineJob, recipe: Recipe, data_dir: Path, retrain: bool = False, say=print, display=None
) -> Path:
    """Train the baseline's sibling run dir, or reuse it when it is already trained with these settings."""
    from tfctl.run.lock import RunLock
    from tfctl.run.orchestrate import link_data

    prints = fingerprints(recipe, job, data_dir)
    dirs = RunDir(job.directory)
    if is_trained(job, prints):
        say(f"[{job.name}] already trained with these settings, reused")
        return job.directory
    if dirs.is_run() and not (job.directory / BASELINE_FILE).is_file():
        raise UserError(
            f"{job.directory}: a run directory that is not a baseline of {job.source_run}; "
            f"move it away or rename the baseline"
        )
    job.directory.mkdir(parents=True, exist_ok=True)
    with RunLock(dirs.lock):
        state = RunState.load(dirs.state, job.name)
        recorded = (
            json.loads((job.directory / BASELINE_FILE).read_text())
            if (job.directory / BASELINE_FILE).is_file()
            else None
        )
        run = BaselineRun(
            recipe=baseline_recipe(recipe, job),
            dirs=dirs,
            state=state,
            data_dir=data_dir,
            plan=job.plans,
            fingerprints=prints,
            say=say,
            display=display,
        )
        names = [p.name for p in job.plans]
        stale = [
            name
            for name, entry in state.data["stages"].items()
            if name not in names or entry.get("fingerprint") not in (None, prints[names.index(name)])
        ]
        if stale:
            if not retrain:
                raise UserError(
                    f"{job.directory}: trained before with {_difference(recorded, job)}; "
                    f"pass --retrain to replace it"
                )
            say(f"[{job.name}] --retrain: dropping what it trained before ({', '.join(stale)})")
            run.restart_from(list(state.data["stages"]))
        described = {
            "name": job.section.name,
            "kind": job.section.kind,
            "source_run": str(job.source_run),
            "budget": job.budget,
            "fingerprints": prints,
            "section": job.section.model_dump(mode="json"),
            "stages": [p.to_dict() for p in job.plans],
        }
        atomic_write_text(job.directory / BASELINE_FILE, json.dumps(described, indent=2) + "\n")
        state.data.update(name=job.name, data_dir=str(data_dir))
        source = RunState.load(RunDir(job.source_run).state, job.source_run.name).data
        state.data.setdefault("cpu_peak_flops", dict(source.get("cpu_peak_flops", {})))  # one peak for MFU
        state.save()
        link_data(dirs, data_dir)
        for index, plan in enumerate(job.plans):
            if state.stage(plan.name).get("status") == DONE:
                continue
            run.train_stage(index)
    return job.directory
