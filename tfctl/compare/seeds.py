"""Seeds: the growth run and its baselines retrained with other seeds as sibling runs, and numbers aggregated
over them. Pure, apart from the recipe copy a seed sibling is trained from.

Seed k of a recipe with seed s is s + 1000·k (k = 0 is the recipe's own run). A seed sibling keeps the
recipe's validation split (data.seed), so every seed is evaluated on the same data.
"""

import math
import statistics
from pathlib import Path

from tfctl.recipe import Recipe

SEED_STRIDE = 1000
NOISE_MULTIPLE = 2.0  # a difference below this many seed spreads is "within noise"


def seed_values(recipe: Recipe, count: int) -> list[int]:
    return [recipe.seed + SEED_STRIDE * k for k in range(count)]


def growth_seed_dir(run_dir: Path, recipe: Recipe, seed: int) -> Path:
    return run_dir if seed == recipe.seed else run_dir.parent / f"{run_dir.name}.seed{seed}"


def growth_seed_recipe(recipe: Recipe, run_dir: Path, seed: int) -> Recipe:
    """The recipe of a growth run's seed sibling: another seed, the same data split, W&B in the same group."""
    return recipe.model_copy(
        update={
            "name": growth_seed_dir(run_dir, recipe, seed).name,
            "seed": seed,
            "seeds": 1,
            "data": recipe.data.model_copy(
                update={"seed": recipe.seed if recipe.data.seed is None else recipe.data.seed}
            ),
            "wandb": recipe.wandb.model_copy(update={"group": recipe.wandb.group or recipe.name}),
        }
    )


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """The mean and the sample standard deviation (None with one value); None when any value is None."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def within_noise(a: list[float], b: list[float]) -> bool | None:
    """Whether the means of `a` and `b` differ by less than twice the larger seed spread (None: one seed,
    no spread to judge by)."""
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    if mean_a is None or mean_b is None or std_a is None or std_b is None:
        return None
    return abs(mean_a - mean_b) < NOISE_MULTIPLE * max(std_a, std_b)
