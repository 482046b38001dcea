"""Loading a recipe: every problem at once, one line each, naming the field; `--set` typed and applied before
validation; nothing written on a refusal."""

import json

import pytest
import yaml

from tfctl.errors import RecipeError
from tfctl.recipe import load_recipe
from tfctl.recipe.load import apply_override

GOOD = {
    "name": "t",
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 4},
    "stages": [
        {"name": "a", "param_tokens": 16, "steps": 10},
        {"name": "b", "param_tokens": 32, "steps": 10},
    ],
    "train": {"global_batch": 4},
}


def write(tmp_path, recipe, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe) if isinstance(recipe, dict) else recipe)
    return path


def with_change(path: str, value):
    recipe = json.loads(json.dumps(GOOD))
    apply_override(recipe, f"{path}={value}")
    return recipe


MALFORMED = [
    (with_change("bogus", 1), "bogus: unknown key"),
    (with_change("train.zero_stage", "two"), "train.zero_stage: input should be a valid integer"),
    (
        with_change("stages.1.param_tokens", 8),
        "stages[1].param_tokens: qkv parameter tokens shrink from 16 to 8",
    ),
    (with_change("stages.1.steps", -3), "stages[1].steps: input should be greater than 0, got -3"),
    (
        {**GOOD, "stages": [{"name": "a", "size": "12q", "steps": 1}]},
        "stages[0].size: must be a positive size like 124m or 1.4b, got '12q'",
    ),
    (
        {**GOOD, "stages": [{"name": "a", "param_tokens": 16, "tokens": -3}]},
        "stages[0].tokens: must be a positive token count like 30b or 2m, got -3",
    ),
    (
        with_change("data.source", "/no/such/corpus"),
        "data.source: no such file, directory or glob: /no/such/corpus",
    ),
    (with_change("data.tokenizer", "/no/tok.json"), "data.tokenizer: no such tokenizer file: /no/tok.json"),
    (
        with_change("launch.nproc_per_node", 3),
        "stages[0].global_batch: 4 sequences do not divide into 3 ranks",
    ),
    ({**GOOD, "stages": [{"name": "a", "param_tokens": 16}]}, "stages[0]: needs exactly one budget"),
    (with_change("model.n_heads", 5), "model: d_model 32 is not divisible by n_heads 5"),
    (
        {
            **GOOD,
            "stages": [
                {"name": "a", "param_tokens": 16, "steps": 1},
                {"name": "a", "param_tokens": 32, "steps": 1},
            ],
        },
        "stages: stage names must be unique, repeated: a",
    ),
    ({**GOOD, "name": None}, "name: input should be a valid string"),
    ("name: [unclosed", "line 1: not valid YAML"),
]


@pytest.mark.parametrize("recipe,message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_recipe_is_one_line_per_problem(tmp_path, recipe, message):
    path = write(tmp_path, recipe)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert any(
        line == f"{path}: {message}" or line.startswith(f"{path}: {message}")
        for line in str(caught.value).splitlines()
    ), str(caught.value)


def test_cli_reports_all_problems_and_writes_nothing(tmp_path, tfctl):
    path = write(tmp_path, with_change("train.zero_stage", 9) | {"extra": 1})
    result = tfctl("train", path, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert sorted(lines) == [
        f"error: {path}: extra: unknown key",
        f"error: {path}: train.zero_stage: input should be less than or equal to 3, got 9",
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_missing_recipe_file(tmp_path, tfctl):
    result = tfctl("plan", tmp_path / "nope.yaml", cwd=tmp_path)
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such recipe file"
    )


def test_set_overrides_are_typed_and_applied_before_validation(tmp_path):
    path = write(tmp_path, GOOD)
    recipe = load_recipe(
        path,
        [
            "stages.1.steps=7",
            "train.zero_stage=2",
            "train.compile=true",
            "data.source=shakespeare+sotu",
            "wandb.tags=[a, b]",
        ],
    )
    assert recipe.stages[1].steps == 7 and recipe.train.zero_stage == 2 and recipe.train.compile is True
    assert recipe.wandb.tags == ["a", "b"]
    with pytest.raises(RecipeError, match=r"--set stages.5.steps=1: stages has 2 items, no index '5'"):
        load_recipe(path, ["stages.5.steps=1"])
    with pytest.raises(RecipeError, match="expected KEY=VALUE"):
        load_recipe(path, ["stages"])
