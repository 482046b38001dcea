"""Intervals from the seeds: a seeded percentile bootstrap that resamples each run's seeds independently.
Pure Python + numpy.

A draw resamples, for every run, as many of its seeds' final losses as it has (with replacement) and takes
their mean; a statistic of those means (a headline number) is computed per draw, and its 5th and 95th
percentiles are the 90 % interval. A statistic read off the frontier outside its range is a bound, so a draw
can be censored: it is then ±inf (the value lies somewhere beyond the bound), and an interval end that lands
on such a draw is unbounded (None). The generator is seeded: a report is reproducible.
"""

from collections.abc import Callable

import numpy as np

DRAWS = 2000
LEVEL = 0.90
SEED = 0


def resampled_means(samples: list[list[float]], draws: int = DRAWS, seed: int = SEED) -> list[np.ndarray]:
    """Per run, the means of `draws` resamples of its values (each run resampled independently)."""
    rng = np.random.default_rng(seed)
    means = []
    for values in samples:
        values = np.asarray(values, dtype=float)
        picks = rng.integers(0, len(values), size=(draws, len(values)))
        means.append(values[picks].mean(axis=1))
    return means


def bootstrap(
    statistic: Callable[[list[float]], dict[str, float]],
    samples: list[list[float]],
    draws: int = DRAWS,
    seed: int = SEED,
) -> dict[str, np.ndarray]:
    """`statistic` (run means → named values, ±inf when censored) over `draws` resamples of `samples`."""
    means = resampled_means(samples, draws, seed)
    rows = [statistic([float(m[i]) for m in means]) for i in range(draws)]
    return {key: np.array([row[key] for row in rows], dtype=float) for key in rows[0]} if rows else {}


def interval(values: np.ndarray, level: float = LEVEL) -> list[float | None]:
    """The central `level` percentile interval [low, high]; an end that is infinite (censored) is None."""
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return [float(v) if np.isfinite(v) else None for v in (low, high)]
