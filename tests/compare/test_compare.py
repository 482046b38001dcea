"""`tfctl compare` on a tiny 2-stage growth run: the baseline is trained once and then reused; the report's
numbers are the runs' metrics; the files exist and are what they claim."""

import json
import math
from pathlib import Path

import pytest

from tfctl.compare import compare_run
from tfctl.run.layout import RunDir
from tfctl.tracking import read_metrics

pytestmark = pytest.mark.slow  # the shared growth run trains two stages through the worker


def stage_flops(run_dir) -> float:
    return sum(r["stage_flops"] for r in read_metrics(RunDir(Path(run_dir)).metrics, kind="stage_end"))


def snapshot(run_dir) -> dict:
    """Every file of a run dir (wandb/ aside) with its mtime and size."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and "wandb" not in path.parts:
            out[str(path.relative_to(run_dir))] = (path.stat().st_mtime_ns, path.stat().st_size)
    return out


def test_the_baseline_is_a_sibling_run_at_the_final_size(growth_run, compared):
    report, lines, _ = compared
    sibling = growth_run.parent / "tiny.baseline-scratch"
    assert [r["path"] for r in report["runs"]] == [str(growth_run), str(sibling)]
    state = json.loads(RunDir(sibling).state.read_text())
    assert state["stages"]["scratch"]["status"] == "done"
    assert (RunDir(sibling).final("scratch") / "model.safetensors").is_file()
    assert (
        json.loads((RunDir(sibling).final("scratch") / "config.json").read_text())["family"] == "transformer"
    )
    growth, baseline = report["runs"]
    assert growth["kind"] == "growth" and baseline["kind"] == "scratch"
    assert abs(baseline["params"] / growth["params"] - 1) < 0.03  # matched parameters
    assert baseline["tokens"] == growth["tokens"] == 2 * 20 * 8 * 32  # the growth run's total
    spec = json.loads(RunDir(sibling).spec("scratch").read_text())
    grown = json.loads(RunDir(growth_run).spec("s2").read_text())
    for key in ("data_dir", "seq_len", "train"):  # train: eval set, precision, optimizer settings
        assert spec[key] == grown[key], key
    assert spec["model"]["d_model"] == 32 and spec["model"]["n_layers"] == 2 and spec["model"]["n_heads"] == 4
    assert any("training" in line for line in lines)


def test_report_numbers_are_the_runs_metrics(growth_run, compared):
    report, _, _ = compared
    saved = json.loads((growth_run / "compare" / "report.json").read_text())
    assert saved["runs"][0]["flops"] == report["runs"][0]["flops"]
    for run in saved["runs"]:
        assert run["flops"] == pytest.approx(stage_flops(run["path"]), rel=1e-12)
        ends = read_metrics(RunDir(Path(run["path"])).metrics, kind="stage_end")
        assert run["val_ppl"] == pytest.approx(ends[-1]["val_ppl"])
        assert run["device_hours"] == pytest.approx(
            sum(e["wall_seconds"] * e["world_size"] for e in ends) / 3600
        )
    growth = saved["runs"][0]
    assert growth["flops"] == pytest.approx(
        read_metrics(RunDir(growth_run).metrics, kind="stage_end")[-1]["flops"]
    )
    assert len(growth["stages"]) == 2
    head = saved["headline"][0]
    assert head["flops_ratio"] == pytest.approx(growth["flops"] / saved["runs"][1]["flops"])
    assert head["ppl_gap_pct"] == pytest.approx((growth["val_ppl"] / saved["runs"][1]["val_ppl"] - 1) * 100)
    race = saved["flops_to_reach"][0]  # the baseline's final perplexity
    assert race["ppl"] == pytest.approx(saved["runs"][1]["val_ppl"])
    assert race["flops"]["tiny.baseline-scratch"] is not None
    assert race["flops"]["tiny.baseline-scratch"] <= saved["runs"][1]["flops"]


def test_report_files(growth_run, compared):
    out = growth_run / "compare"
    markdown = (out / "report.md").read_text()
    assert "| run | kind | seeds | val loss | val ppl |" in markdown
    assert "## Headline (finished runs, final against final)" in markdown
    assert f"tfctl train {growth_run}/recipe.yaml -o {growth_run}" in markdown
    assert f"tfctl compare {growth_run}" in markdown
    png = out / "ppl_vs_flops.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        image.verify()
    figure = json.loads((out / "report.json").read_text())["figure"]
    lines = figure["lines"]
    assert [line["label"] for line in lines] == ["tiny (growth)", "baseline-scratch (scratch)"]
    assert figure["legend"][-1] == "growth (a new stage starts)"
    assert all(line["points"] >= 3 for line in lines)
    split = json.loads((out / "report.json").read_text())["time_split"]  # one row per stage of the growth run
    stages = [r["stage"] for r in json.loads((out / "report.json").read_text())["runs"][0]["stage_ends"]]
    assert [row["stage"] for row in split] == stages and len(stages) == 2
    for row in split:  # the phases add up to the stage's wall time (worker main() → stage_end)
        parts = sum(row[phase] for phase in ("start-up", "steps", "evals", "other", "export"))
        assert row["steps"] > 0 and parts == pytest.approx(row["wall"])
    assert "## Where the growth run's wall time went, per stage" in markdown


def test_wandb_offline_compare_run(growth_run, compared):
    report, _, _ = compared
    assert report["wandb"] == "offline"
    assert any(p.name.startswith("offline-run") for p in (growth_run / "wandb").iterdir())


def test_a_second_offline_compare_updates_its_wandb_run_instead_of_adding_one(growth_run, compared):
    from tfctl.tracking.wandb_ids import wandb_run_id

    def compare_runs():
        return [p.name for p in (growth_run / "wandb").glob("offline-run-*") if p.name.endswith(run_id)]

    run_id = wandb_run_id(growth_run, "compare")
    assert len(compare_runs()) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        assert compare_run(growth_run, say=lambda line: None)["wandb"] == "offline"
    assert len(compare_runs()) == 1 and wandb_run_id(growth_run, "compare") == run_id


def test_second_call_reuses_the_baseline(growth_run, compared):
    sibling = growth_run.parent / "tiny.baseline-scratch"
    before = snapshot(sibling)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        report = compare_run(growth_run, say=lines.append)
    assert snapshot(sibling) == before  # nothing retrained, nothing rewritten
    assert lines == ["[tiny.baseline-scratch] already trained with these settings, reused"]
    assert report["runs"][1]["flops"] == compared[0]["runs"][1]["flops"]


def _planned(growth_run):
    from tfctl.data import load_prepared
    from tfctl.recipe import load_recipe
    from tfctl.recipe.plan import plan_recipe
    from tfctl.run.state import RunState

    recipe = load_recipe(RunDir(growth_run).recipe)
    data_dir = RunState.load(RunDir(growth_run).state, "tiny").data["data_dir"]
    return recipe, plan_recipe(recipe, vocab_size=load_prepared(Path(data_dir)).vocab_size).stages


def test_other_budgets_are_other_siblings(growth_run):
    from tfctl.compare.baselines import plan_jobs, select_baselines

    recipe, stages = _planned(growth_run)
    (section,) = select_baselines(recipe, ["scratch"])
    (job,) = plan_jobs(growth_run, recipe, section, 2_000_000, stages, [recipe.seed])
    assert job.directory == growth_run.parent / "tiny.baseline-scratch-2m"
    assert job.plans[0].steps == math.ceil(2_000_000 / (8 * 32))
    (matched,) = plan_jobs(growth_run, recipe, section, None, stages, [recipe.seed])
    assert matched.directory == growth_run.parent / "tiny.baseline-scratch"
    assert matched.plans[0].tokens == sum(s.tokens for s in stages)


def test_families_seeds_and_budgets_name_their_siblings(growth_run):
    from tfctl.compare.baselines import plan_jobs
    from tfctl.model.config import TokenformerConfig, TransformerConfig
    from tfctl.recipe.schema import BaselineSection

    recipe, stages = _planned(growth_run)
    family = BaselineSection(name="scratch", sizes="stages", tokens="base")
    jobs = plan_jobs(growth_run, recipe, family, None, stages, [7, 1007])
    assert [j.directory.name for j in jobs] == [
        "tiny.baseline-scratch-s1-5.12k",
        "tiny.baseline-scratch-s2-5.12k",
        "tiny.baseline-scratch-s1-5.12k.seed1007",
        "tiny.baseline-scratch-s2-5.12k.seed1007",
    ]
    assert {j.group for j in jobs} == {"baseline-scratch-s1-5.12k", "baseline-scratch-s2-5.12k"}
    for job, stage in zip(jobs, stages * 2, strict=True):
        assert isinstance(job.plans[0].config, TransformerConfig)
        assert abs(job.plans[0].params / stage.params - 1) < 0.03  # each member matches its stage's size
        assert job.plans[0].tokens == stages[0].tokens  # `base`: the first stage's budget
    control = BaselineSection(name="tf-scratch", family="tokenformer")
    (job,) = plan_jobs(growth_run, recipe, control, None, stages, [7])
    config = job.plans[0].config
    assert isinstance(config, TokenformerConfig) and config.scale_mode == "sqrt_n"
    assert config.qkv_tokens == stages[-1].config.qkv_tokens and job.plans[0].params == stages[-1].params


def test_net2net_plan_follows_the_growth_schedule(growth_run):
    from tfctl.compare.baselines import plan_jobs, select_baselines
    from tfctl.model.sizes import count_params

    recipe, stages = _planned(growth_run)
    (section,) = select_baselines(recipe, ["net2net"])
    (job,) = plan_jobs(growth_run, recipe, section, None, stages, [recipe.seed])
    assert job.directory == growth_run.parent / "tiny.baseline-net2net"
    assert [p.name for p in job.plans] == ["s1", "s2"] and [p.steps for p in job.plans] == [20, 20]
    for plan, stage in zip(job.plans, stages, strict=True):
        assert abs(plan.params / count_params(stage.config) - 1) < 0.03
    assert job.plans[0].config.ffn_hidden < job.plans[1].config.ffn_hidden


def test_one_report_holds_every_baseline_of_the_run(growth_run, compared):
    """A baseline trained by an earlier compare (here: a copy standing for another budget) stays in the
    report when another one is asked for: `--baseline net2net` does not hide the scratch one."""
    import shutil

    sibling = growth_run.parent / "tiny.baseline-scratch"
    other = growth_run.parent / "tiny.baseline-scratch-1k"
    shutil.copytree(sibling, other, symlinks=True, ignore=shutil.ignore_patterns("checkpoints", "wandb"))
    recorded = json.loads((other / "baseline.json").read_text())  # as trained for another budget
    (other / "baseline.json").write_text(
        json.dumps({**recorded, "budget": 1000, "family": "transformer, 1k tokens"})
    )
    lines: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WANDB_MODE", "disabled")
            report = compare_run(growth_run, say=lines.append)
    finally:
        shutil.rmtree(other)
    assert [r["name"] for r in report["runs"]] == [
        "tiny",
        "tiny.baseline-scratch",
        "tiny.baseline-scratch-1k",
    ]
    assert report["reference"] == "tiny.baseline-scratch"  # the one asked for stays the reference
    assert "[tiny.baseline-scratch-1k] trained by an earlier compare: in the report too" in lines
    (head,) = report["headline"]  # two budgets of one architecture: one frontier, one headline
    assert head["family"] == ["baseline-scratch", "baseline-scratch-1k"]
