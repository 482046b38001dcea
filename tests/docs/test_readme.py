from tests.conftest import REPO
from tfctl.recipe.reference import embed


def test_readme_recipe_reference_is_current():
    """README's field table is generated from the schema: regenerate with python -m tfctl.recipe.reference --write README.md."""
    text = (REPO / "README.md").read_text()
    assert embed(text) == text


def test_ci_runs_make_test():
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_recipe_example_validates():
    import yaml

    from tfctl.recipe import plan_recipe, validate_recipe

    text = (REPO / "README.md").read_text()
    block = text[text.index("```yaml\n") + len("```yaml\n") :]
    plan = plan_recipe(validate_recipe(yaml.safe_load(block[: block.index("```")]), "README.md"))
    assert [s.name for s in plan.stages] == ["s1", "s2", "s3"] and plan.stages[-1].config.n_layers == 3
