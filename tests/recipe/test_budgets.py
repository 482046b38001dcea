"""Baselines with several budgets (token keywords, multiples, counts, FLOPs) and stage FLOPs budgets: what the
recipe accepts, what `tfctl plan` lists, which sibling runs `tfctl compare` plans, and the τ anneal's length."""

import json

import pytest
import yaml

from tests.conftest import RECIPES
from tfctl.compare.baselines import plan_jobs
from tfctl.errors import RecipeError
from tfctl.model.flops import training_flops_per_token
from tfctl.recipe import load_recipe, plan_recipe
from tfctl.recipe.plan import plan_stages
from tfctl.recipe.schema import Recipe
from tfctl.recipe.tau import TauPolicy, anneal_steps
from tfctl.run.orchestrate import stage_fingerprints

BASE = {
    "name": "b",
    "seeds": 2,
    "data": {"source": "shakespeare", "tokenizer": "bpe:257", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 4},
    "stages": [
        {"name": "s1", "param_tokens": 8, "tokens": 40960},  # 160 steps of 8 × 32
        {"name": "s2", "param_tokens": 24, "steps": 50},
    ],
    "train": {"global_batch": 8},
    "baseline": [],
}


def recipe_with(tmp_path, **changes) -> Recipe:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return load_recipe(path)


def test_token_budgets_keywords_multiples_and_counts_each_size_each_budget(tmp_path):
    family = {
        "name": "tf",
        "family": "tokenformer",
        "sizes": ["s1", "s2"],
        "tokens": ["base", "0.5x", "2x", "64k"],
    }
    recipe = recipe_with(tmp_path, baseline=[family, {"name": "one", "tokens": "match", "seeds": 1}])
    plan = plan_recipe(recipe, vocab_size=320)
    base = plan.stages[0].tokens
    rows = {(b.name, b.tokens) for b in plan.baselines}
    per_step = 8 * 32
    expected = {
        ("tf-s1-40.96k", base),
        ("tf-s2-40.96k", base),
        ("tf-s1-20.48k", base // 2),
        ("tf-s2-20.48k", base // 2),
        ("tf-s1-81.92k", 2 * base),
        ("tf-s2-81.92k", 2 * base),
        ("tf-s1-64k", -(-64000 // per_step) * per_step),
        ("tf-s2-64k", -(-64000 // per_step) * per_step),
        ("one", sum(s.tokens for s in plan.stages)),  # a single budget keeps its plain name
    }
    assert rows == expected
    listed = plan.to_dict()
    assert [b["seeds"] for b in listed["baselines"]] == [2] * 8 + [1]
    total = 2 * plan.total_flops + sum(b.flops * (1 if b.name == "one" else 2) for b in plan.baselines)
    assert listed["all_seeds_flops"] == pytest.approx(total)


def test_flops_budget_trains_every_size_to_the_same_flops_in_whole_steps(tmp_path):
    family = {"name": "tr", "sizes": ["s1", "s2"], "flops": ["match", "0.5x", 3e10]}
    recipe = recipe_with(tmp_path, baseline=[family])
    plan = plan_recipe(recipe, vocab_size=320)
    targets = [plan.total_flops, plan.total_flops / 2, 3e10]  # match, half of it, a number: for each size
    assert len(plan.baselines) == 6
    for b, target in zip(plan.baselines, [t for t in targets for _ in range(2)], strict=True):
        per_step = training_flops_per_token(b.config) * 8 * 32
        assert b.steps * per_step == pytest.approx(b.flops)  # whole steps ...
        assert abs(b.flops - target) <= per_step / 2  # ... the nearest ones to the budget
    assert [b.name for b in plan.baselines][-2:] == ["tr-s1-3e10flops", "tr-s2-3e10flops"]


def test_compare_plans_a_sibling_per_seed_budget_and_size(tmp_path):
    family = {"name": "tf", "family": "tokenformer", "sizes": ["s1", "s2"], "flops": [2e10, 1e10]}
    recipe = recipe_with(tmp_path, baseline=[family])
    stages = plan_stages(recipe, 320)
    run = tmp_path / "runs" / "b"
    jobs = plan_jobs(run, recipe, recipe.baseline[0], None, stages, [1337, 2337])
    assert [j.directory.name for j in jobs] == [
        "b.baseline-tf-s1-2e10flops",
        "b.baseline-tf-s2-2e10flops",
        "b.baseline-tf-s1-1e10flops",
        "b.baseline-tf-s2-1e10flops",
        "b.baseline-tf-s1-2e10flops.seed2337",
        "b.baseline-tf-s2-2e10flops.seed2337",
        "b.baseline-tf-s1-1e10flops.seed2337",
        "b.baseline-tf-s2-1e10flops.seed2337",
    ]
    assert jobs[0].family == "tokenformer, 2e10 FLOPs" and jobs[2].family == "tokenformer, 1e10 FLOPs"
    assert jobs[0].recorded_budget() == {"budget": None, "flops_budget": 2e10}
    override = plan_jobs(run, recipe, recipe.baseline[0], 100_000, stages, [1337])  # --tokens 100k
    assert [j.directory.name for j in override] == ["b.baseline-tf-s1-100k", "b.baseline-tf-s2-100k"]
    assert override[0].recorded_budget() == {"budget": 100_000, "flops_budget": None}


def test_stage_flops_budget_and_a_recorded_recipe_loads_back(tmp_path):
    stages = [
        {"name": "s1", "param_tokens": 8, "flops": 1e10},
        {"name": "s2", "param_tokens": 24, "flops": "5e9", "init": "preserve"},
    ]
    family = {"name": "tf", "family": "tokenformer", "flops": [1e10]}
    recipe = recipe_with(
        tmp_path, stages=stages, model={**BASE["model"], "scale_mode": "anneal"}, baseline=[family]
    )
    plan = plan_stages(recipe, 320)
    for stage, flops in zip(plan, [1e10, 5e9], strict=True):
        per_step = training_flops_per_token(stage.config) * 8 * 32
        assert abs(stage.flops - flops) <= per_step / 2
    recorded = (
        tmp_path / "recorded.yaml"
    )  # what `tfctl train` keeps in the run dir: every default written out
    recorded.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    assert load_recipe(recorded) == recipe


@pytest.mark.parametrize(
    "baseline,message",
    [
        (
            {"name": "x", "tokens": ["base", "0y"]},
            "baseline[0].tokens: entry 1: must be `match`, `base`, a multiple",
        ),
        ({"name": "x", "tokens": []}, "baseline[0].tokens: an empty list"),
        ({"name": "x", "tokens": ["2x", "2.0x"]}, "baseline[0].tokens: repeated budgets 2x"),
        ({"name": "x", "flops": ["match", -1]}, "baseline[0].flops: entry 1: must be `match`"),
        (
            {"name": "x", "tokens": "base", "flops": 1e12},
            "baseline[0]: tokens and flops: give one kind of budget",
        ),
        (
            {"name": "x", "kind": "net2net", "flops": 1e12},
            "baseline[0]: a net2net baseline follows the growth",
        ),
    ],
)
def test_wrong_budgets_are_one_line_naming_the_field(tmp_path, baseline, message):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**BASE, "baseline": [baseline]}))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert any(line.startswith(f"{path}: {message}") for line in str(caught.value).splitlines()), caught.value


def test_wrong_stage_budget_and_anneal_are_refused(tmp_path):
    path = tmp_path / "r.yaml"
    both = {**BASE, "stages": [{"name": "s1", "param_tokens": 8, "steps": 5, "flops": 1e9}]}
    path.write_text(yaml.safe_dump(both))
    with pytest.raises(RecipeError, match=r"stages\[0\]: needs exactly one budget"):
        load_recipe(path)
    path.write_text(yaml.safe_dump({**BASE, "model": {**BASE["model"], "anneal": 20}}))
    with pytest.raises(RecipeError, match="model: anneal: applies to scale_mode anneal only"):
        load_recipe(path)
    # the default growth (paper) already ends at τ = sqrt(n): an anneal after it would do nothing
    path.write_text(yaml.safe_dump({**BASE, "model": {**BASE["model"], "scale_mode": "anneal"}}))
    with pytest.raises(
        RecipeError, match=r"stages\[1\].init: paper growth sets τ = sqrt\(n\) at once.*set init: preserve"
    ):
        load_recipe(path)


def test_anneal_length_steps_or_fraction_independent_of_warmup(tmp_path):
    assert anneal_steps(0.1, 150) == 15 and anneal_steps(0.1, 4) == 1  # at least one step
    assert anneal_steps(20, 150) == 20 and anneal_steps(500, 150) == 150  # never past the stage
    anneal = {**BASE["model"], "scale_mode": "anneal"}
    train = {"global_batch": 8, "warmup": 3}
    stages = [BASE["stages"][0], {**BASE["stages"][1], "init": "preserve"}]  # the anneal follows preserve
    plans = plan_stages(recipe_with(tmp_path, model=anneal, train=train, stages=stages), 320)
    # 10 % of s2's 50 steps; the first stage, built fresh, starts at sqrt(n) and never anneals
    assert [p.tau for p in plans] == [TauPolicy("sqrt_n"), TauPolicy("anneal", 5)]
    assert [p.warmup_steps for p in plans] == [3, 3]
    plans = plan_stages(
        recipe_with(tmp_path, model={**anneal, "anneal": 12}, train=train, stages=stages), 320
    )
    assert plans[1].tau == TauPolicy("anneal", 12) and plans[1].to_dict()["anneal_steps"] == 12
    plain = plan_stages(recipe_with(tmp_path), 320)
    assert [p.tau.steps for p in plain] == [0, 0] and "anneal_steps" not in plain[1].to_dict()


def test_fingerprints_of_runs_without_anneal_are_as_before(tmp_path):
    """The tiny recipe's stage fingerprints, pinned: with the default growth (`paper`), and with
    `init: preserve` on the grown stages, which are the fingerprints main computed before `model.anneal`
    existed and before the default became `paper` — a run made then is still recognised (and reused) when
    continued with `--set stages.N.init=preserve`, and its first stage (which grows from nothing) in any
    case; an anneal run's length enters its fingerprints."""
    pins = json.loads((RECIPES.parent / "tests/recipe/tiny_fingerprints.json").read_text())
    recipe = load_recipe(RECIPES / "tiny.yaml")
    assert stage_fingerprints(recipe) == pins["default"]
    preserved = load_recipe(RECIPES / "tiny.yaml", ["stages.1.init=preserve", "stages.2.init=preserve"])
    assert stage_fingerprints(preserved) == pins["preserve"]
    first = load_recipe(RECIPES / "tiny.yaml", ["stages.0.init=preserve"])  # grows nothing: ignored
    assert stage_fingerprints(first) == pins["default"]
    annealed = recipe.model_copy(update={"model": recipe.model.model_copy(update={"scale_mode": "anneal"})})
    longer = annealed.model_copy(update={"model": annealed.model.model_copy(update={"anneal": 30})})
    assert stage_fingerprints(annealed)[1] != stage_fingerprints(longer)[1]


def test_study_recipes_plan_their_design():
    """recipes/study: one C per arm, the grown stage's share of it, no grown stage under 150 steps; the envelope
    at 4 sizes × (C, C/2) for both architectures, 2 seeds everywhere."""
    C = 2e12
    for path in sorted((RECIPES / "study").glob("*.yaml")):
        recipe = load_recipe(path)
        plan = plan_recipe(recipe, vocab_size=320)
        share = int(path.stem.split("-")[1]) / 100
        assert plan.total_flops == pytest.approx(C, rel=0.005)
        assert plan.stages[1].flops == pytest.approx(share * C, rel=0.01)
        assert plan.stages[1].steps >= 150 and recipe.seeds == 2
        assert recipe.stages[1].init == ("paper" if path.stem.startswith("paper") else "preserve")
        if path.stem == "paper-10":
            sizes = {b.name.rsplit("-", 1)[0] for b in plan.baselines}
            assert len(sizes) == 8 and {b.name.rsplit("-", 1)[1] for b in plan.baselines} == {
                "2e12flops",
                "1e12flops",
            }


def test_plan_cli_lists_every_budget_and_refuses_a_wrong_one(tfctl, tmp_path):
    result = tfctl("plan", RECIPES / "study" / "paper-10.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert len(plan["baselines"]) == 16 and {b["seeds"] for b in plan["baselines"]} == {2}
    assert {round(b["flops"] / 1e12, 2) for b in plan["baselines"]} == {2.0, 1.0}
    table = tfctl("plan", RECIPES / "study" / "paper-10.yaml", cwd=tmp_path, env={"COLUMNS": "160"})
    assert "baseline tf-s1-2e12flops ×2" in table.stdout and "tfctl compare trains 34 runs" in table.stdout
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, "baseline": [{"name": "x", "flops": "lots"}]}))
    bad = tfctl("plan", path, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"error: {path}: baseline[0].flops: must be `match` (the growth run's FLOPs), a multiple of it like 0.5x, "
        "or a number like 3e12, got 'lots'"
    ]
