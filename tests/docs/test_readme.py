from tests.conftest import REPO
from tfctl.recipe.reference import embed


def test_readme_recipe_reference_is_current():
    """README's field table is generated from the schema: regenerate with python -m tfctl.recipe.reference --write README.md."""
    text = (REPO / "README.md").read_text()
    assert embed(text) == text


def test_ci_runs_make_test():
    assert "make test" in (REPO / ".ci" / "run").read_text()
