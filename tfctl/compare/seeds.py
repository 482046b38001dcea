"""Seeds: the growth run and its baselines retrained with other seeds as sibling runs, and numbers aggregated
over them. Pure, apart from the recipe copy a seed sibling is trained from.

Seed k of a recipe with seed s is s + 1000·k (k = 0 is the recipe's own run). A seed sibling keeps the
recipe's validation split (data.seed), so every seed is evaluated on the same data.

A run's perplexity over its seeds is exp(mean validation loss): the mean in loss space, so that one stalled
seed does not weigh as its perplexity would (the median is reported beside it). A seed is flagged as an
outlier, never dropped, when its loss is far from the others' median by a robust z-score (below).
"""

import math
import statistics
from pathlib import Path

from tfctl.recipe import Recipe

SEED_STRIDE = 1000
OUTLIER_Z = 3.5  # a seed whose modified z-score of loss is above this is an outlier (Iglewicz & Hoaglin)
OUTLIER_MIN_LOSS = 0.02  # ... and at least this far from the median in loss (2 % in perplexity)


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


def seed_ppl(losses: list[float]) -> tuple[float | None, float | None]:
    """A run's perplexity over its seeds: exp(mean loss), and exp(median loss) (the median perplexity)."""
    if not losses:
        return None, None
    return math.exp(statistics.fmean(losses)), math.exp(statistics.median(losses))


def outliers(losses: list[float]) -> list[int]:
    """The indices of outlier seeds: a modified z-score 0.6745·|loss − median| / MAD above OUTLIER_Z and a
    distance above OUTLIER_MIN_LOSS. It needs three seeds (with two, each is as far from the median as the
    other); with a MAD of zero (most seeds equal), any seed past OUTLIER_MIN_LOSS is one."""
    if len(losses) < 3:
        return []
    median = statistics.median(losses)
    mad = statistics.median(abs(x - median) for x in losses)
    flagged = []
    for i, loss in enumerate(losses):
        distance = abs(loss - median)
        if distance > OUTLIER_MIN_LOSS and (mad == 0 or 0.6745 * distance / mad > OUTLIER_Z):
            flagged.append(i)
    return flagged
