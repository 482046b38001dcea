from tests.conftest import REPO
from tfctl.recipe.reference import embed


def test_readme_recipe_reference_is_current():
    """README's field table is generated from the schema: regenerate with python -m tfctl.recipe.reference --write README.md."""
    text = (REPO / "README.md").read_text()
    assert embed(text) == text


def test_ci_runs_make_test():
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_recipe_example_is_recipes_tiny():
    text = (REPO / "README.md").read_text()
    block = text[text.index("```yaml\n") + len("```yaml\n") :]
    assert block[: block.index("```")] == (REPO / "recipes" / "tiny.yaml").read_text()


def test_readme_stage_forms_validate():
    import yaml

    from tfctl.recipe import plan_recipe, validate_recipe

    recipe = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    recipe["stages"][1] = {"name": "s2", "size": "330k", "tokens": "400k"}
    recipe["stages"][2] = {
        "name": "s3",
        "size": "520k",
        "layers": 3,
        "steps": 50,
        "init": "preserve",
        "optimizer": "carry",
    }
    plan = plan_recipe(validate_recipe(recipe, "README.md"))
    assert plan.stages[-1].config.n_layers == 3 and plan.stages[-1].steps == 50


def test_readme_examples_use_their_own_run_directories():
    """Trying an example must not change runs/tiny, or `make demo` would refuse it afterwards."""
    lines = (REPO / "README.md").read_text().splitlines()
    grow_runs = [line for line in lines if line.startswith("$ tfctl grow runs/") and "/stages/" not in line]
    train_sets = [line for line in lines if line.startswith("$ tfctl train ") and "--set" in line]
    assert (
        grow_runs and train_sets
    )  # README still shows both kinds of example: the checks below check something
    assert [line for line in grow_runs if line.startswith("$ tfctl grow runs/tiny ")] == []
    assert [line for line in train_sets if " -o " not in line] == []
