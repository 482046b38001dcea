"""Seeds: sibling recipes keep the data split; numbers aggregate to mean ± sample std; noise is 2× the spread."""

import statistics
from pathlib import Path

import pytest

from tfctl.compare.seeds import growth_seed_dir, growth_seed_recipe, mean_std, seed_values, within_noise
from tfctl.recipe.schema import Recipe
from tfctl.run.orchestrate import stage_fingerprints

RECIPE = Recipe.model_validate(
    {"name": "tiny", "seed": 7, "seeds": 3, "stages": [{"name": "s1", "param_tokens": 16, "steps": 5}]}
)


def test_mean_and_sample_std():
    assert mean_std([1.0, 2.0, 4.0]) == (pytest.approx(7 / 3), pytest.approx(statistics.stdev([1, 2, 4])))
    assert mean_std([3.0]) == (3.0, None)  # one seed: no spread
    assert mean_std([1.0, None]) == (None, None)  # a missing value is never averaged away
    assert mean_std([]) == (None, None)


def test_within_noise_is_twice_the_larger_spread():
    tight, loose = [10.0, 10.1, 9.9], [10.5, 11.5, 9.5]  # std 0.1 and 1.0
    assert within_noise(tight, loose) is True  # |10 − 10.5| < 2 × 1.0
    assert within_noise(tight, [12.0, 12.1, 11.9]) is False  # 2 apart, spread 0.1
    assert within_noise([10.0], [12.0]) is None  # one seed: unknown


def test_seed_siblings_keep_the_data_split(tmp_path):
    assert seed_values(RECIPE, 3) == [7, 1007, 2007]
    run_dir = tmp_path / "runs" / "tiny"
    assert growth_seed_dir(run_dir, RECIPE, 7) == run_dir
    assert growth_seed_dir(run_dir, RECIPE, 1007) == Path(tmp_path / "runs" / "tiny.seed1007")
    sibling = growth_seed_recipe(RECIPE, run_dir, 1007)
    assert (sibling.name, sibling.seed, sibling.data.seed, sibling.seeds) == ("tiny.seed1007", 1007, 7, 1)
    assert sibling.wandb.group == "tiny"
    assert stage_fingerprints(sibling) != stage_fingerprints(RECIPE)


def test_an_unset_data_seed_leaves_fingerprints_as_before():
    before = RECIPE.data.model_dump(mode="json")
    del before["seed"]
    assert RECIPE.data.fingerprint() == before
