"""The recipes shipped in recipes/: they validate, the paper's Figure 3 pair differs only in `init`, the
OpenWebText plan hits the paper's sizes, a study's named stage sizes plan a family of baselines."""

import json

import pytest
import yaml

from tests.conftest import RECIPES
from tfctl.errors import UserError
from tfctl.recipe import load_recipe, plan_recipe


def test_shipped_recipes_validate():
    for path in [*RECIPES.glob("*.yaml"), *RECIPES.glob("*/*.yaml")]:
        if "openwebtext" in path.name:
            continue  # its data lives on the cluster; checked by plan below with a stand-in source
        plan_recipe(load_recipe(path))


def test_figure_3_recipe_grows_as_the_paper_and_its_sibling_preserves():
    paper, preserve = (
        yaml.safe_load((RECIPES / f"openwebtext-124m-to-1.4b{suffix}.yaml").read_text())
        for suffix in ("", "-preserve")
    )
    assert [s.get("init") for s in paper["stages"][1:]] == ["paper"] * 3
    assert [s.get("init") for s in preserve["stages"][1:]] == ["preserve"] * 3
    for key in ("data", "model", "train", "launch", "baseline"):
        assert paper[key] == preserve[key], key
    assert [s["tokens"] for s in paper["stages"]] == [s["tokens"] for s in preserve["stages"]]


def test_the_cpu_study_recipes_keep_the_growth_they_were_run_with():
    """docs/results/cpu-study-2026-12-01.md ran when `preserve` was the default: its recipes say so."""
    for path in sorted([RECIPES / "cpu-study.yaml", *(RECIPES / "cpu-study").glob("*.yaml")]):
        init = "paper" if path.stem.startswith("paper") else "preserve"
        assert [s.init for s in load_recipe(path).stages[1:]] == [init, init], path


def test_plan_json_for_openwebtext_hits_paper_sizes(tfctl, tmp_path):
    result = tfctl("plan", RECIPES / "openwebtext-124m-to-1.4b.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    for stage, target in zip(plan["stages"], (124e6, 354e6, 757e6, 1.4e9), strict=True):
        assert abs(stage["params"] - target) / target < 0.01, stage
        assert {"name", "params", "tokens", "steps", "flops", "cumulative_flops"} <= stage.keys()
    assert [s["param_tokens"]["qkv"] for s in plan["stages"]][0] == 576
    # the paper's from-scratch family (GPT-style, 300B tokens each) and a Tokenformer of 1.4B from scratch
    family = [(b["name"], b["layers"], b["tokens"]) for b in plan["baselines"]]
    assert family == [
        ("scratch-354m", 24, family[0][2]),
        ("scratch-757m", 24, family[0][2]),
        ("scratch-1.4b", 24, family[0][2]),
        ("tf-scratch", 12, family[0][2]),
    ]
    assert family[0][2] == plan["stages"][0]["tokens"]  # `base`: the 124M base's 300B tokens
    for baseline, target in zip(plan["baselines"], (354e6, 757e6, 1.4e9, 1.4e9), strict=True):
        assert abs(baseline["params"] - target) / target < 0.01, baseline
    assert plan["stages"][-1]["cumulative_flops"] == pytest.approx(sum(s["flops"] for s in plan["stages"]))
    # FLOPs are 6N + attention per token, times tokens
    first = plan["stages"][0]
    assert first["flops"] == pytest.approx(
        first["tokens"] * (6 * (first["params"] - 768 * 2) + 12 * 12 * 1024 * 768), rel=1e-6
    )


def test_a_family_of_named_stage_sizes():
    recipe = load_recipe(RECIPES / "cpu-study.yaml")
    plan = plan_recipe(recipe)
    by_name = {b.name: b for b in plan.baselines}
    for stage in plan.stages[:2]:
        member = by_name[f"tf-small-{stage.name}"]
        assert member.config.qkv_tokens == stage.config.qkv_tokens and member.config.scale_mode == "sqrt_n"
        assert member.tokens == plan.stages[0].tokens  # `base`
    assert [by_name[f"scratch-{s.name}"].params for s in plan.stages] == [s.params for s in plan.stages]
    wrong = recipe.model_copy(
        update={
            "baseline": [recipe.baseline[0].model_copy(update={"sizes": ["s9"], "family": "tokenformer"})]
        }
    )
    with pytest.raises(UserError, match="no stage named 's9'"):
        plan_recipe(wrong)
