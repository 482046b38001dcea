"""Seeds: sibling recipes keep the data split; numbers aggregate to mean ± sample std; an outlier seed is flagged."""

import statistics
from pathlib import Path

import pytest

from tfctl.compare.seeds import growth_seed_dir, growth_seed_recipe, mean_std, seed_values
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


def test_seeds_average_in_loss_space_with_the_median_beside():
    import math

    from tfctl.compare.seeds import seed_ppl

    losses = [math.log(12.6), math.log(12.7), math.log(16.38)]  # one stalled seed (the s2)
    mean, median = seed_ppl(losses)
    assert mean == pytest.approx(math.exp(sum(losses) / 3))
    assert mean < statistics.fmean([12.6, 12.7, 16.38])  # the stalled seed weighs less than in ppl space
    assert median == pytest.approx(12.7)
    assert seed_ppl([]) == (None, None)


def test_a_stalled_seed_is_flagged_and_normal_spread_is_not():
    import math

    from tfctl.compare.seeds import outliers

    assert outliers([math.log(p) for p in (12.6, 12.7, 16.38)]) == [2]
    assert outliers([math.log(p) for p in (12.6, 12.7, 12.65, 12.9)]) == []  # ordinary seed spread
    assert outliers([2.5, 2.9]) == []  # two seeds: no way to tell which one is off
    assert outliers([2.5, 2.5, 2.5, 2.51]) == []  # MAD 0, but 0.01 is below the 0.02 floor
    assert outliers([2.5, 2.5, 2.5, 2.6]) == [3]  # MAD 0, 0.1 apart: flagged
    assert outliers([2.50, 2.55, 2.60, 2.65, 2.70]) == []  # evenly spread: no outlier
