"""Budgets: how long a run trains, as a recipe gives it and as the plan resolves it.

A baseline's `tokens` is `match` (the growth run's total), `base` (its first stage's), a multiple of base
(`0.5x`, `2x`) or a count (`2m`); its `flops` is `match` (the growth run's total FLOPs), a multiple of it or a
number (`3e12`); either may be a list. The validators below parse them for the schema (a wrong entry is named
by its position); `baseline_budgets` resolves them against the growth run's planned stages for `plan`.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator

from tfctl.model.sizes import parse_count

if TYPE_CHECKING:
    from tfctl.recipe.plan import StagePlan
    from tfctl.recipe.schema import BaselineSection

BUDGET_KEYWORDS = ("match", "base")  # the growth run's total, its first stage's


def _multiple(value) -> str | None:
    """ "0.5x" → "0.5x" (a positive multiple), anything else → None."""
    if isinstance(value, str) and value.lower().endswith("x"):
        try:
            number = float(value[:-1])
        except ValueError:
            return None
        if number > 0 and number == number and number != float("inf"):
            return f"{number:g}x"
    return None


def _token_budget(value):
    """A baseline's token budget: `match`, `base`, a multiple of base (`0.5x`, `2x`) or a count (`2m`)."""
    if isinstance(value, str) and value in BUDGET_KEYWORDS:
        return value
    multiple = _multiple(value)
    if multiple is not None:
        return multiple
    try:
        return parse_count(value)
    except ValueError:
        raise ValueError(
            f"must be `match`, `base`, a multiple of base like 0.5x or 2x, or a token count like 2m, got {value!r}"
        ) from None


def _flops_budget(value):
    """A baseline's FLOPs budget: `match` (the growth run's total), a multiple of it (`0.5x`) or a number."""
    if value == "match":
        return value
    multiple = _multiple(value)
    if multiple is not None:
        return multiple
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not (0 < number < float("inf")):
        raise ValueError(
            f"must be `match` (the growth run's FLOPs), a multiple of it like 0.5x, or a number like 3e12, "
            f"got {value!r}"
        )
    return number


def _each(parse):
    """A budget or a list of them, each parsed; a wrong list entry is named by its position."""

    def parse_all(value):
        if not isinstance(value, list):
            return parse(value)
        out = []
        for i, entry in enumerate(value):
            try:
                out.append(parse(entry))
            except ValueError as error:
                raise ValueError(f"entry {i}: {error}") from None
        if not out:
            raise ValueError("an empty list")
        repeated = sorted({f"{v:g}" if isinstance(v, float) else str(v) for v in out if out.count(v) > 1})
        if repeated:
            raise ValueError(f"repeated budgets {', '.join(repeated)}")
        return out

    return BeforeValidator(parse_all)


TokenBudgets = Annotated[int | str | list[int | str], _each(_token_budget)]
FlopsBudgets = Annotated[float | str | list[float | str], _each(_flops_budget)]


def compact_count(value: int) -> str:
    """2_000_000 → "2m", 1_500_000_000 → "1.5b", 5120 → "5.12k": a count as a directory-name suffix."""
    for suffix, scale in (("t", 10**12), ("b", 10**9), ("m", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.4g}{suffix}"
    return str(value)


@dataclass(frozen=True)
class Budget:
    """One budget of a scratch baseline, resolved: the tokens every size trains on, or the FLOPs every size
    is trained to (its tokens solved per size, whole steps)."""

    tokens: int | None = None
    flops: float | None = None
    label: str = ""  # the sibling directory's suffix: "" for `match` tokens, else the count

    def describe(self) -> str:
        return (
            f"{compact_flops(self.flops)} FLOPs"
            if self.flops is not None
            else f"{compact_count(self.tokens)} tokens"
        )


def compact_flops(value: float) -> str:
    """3e12 → "3e12", 1.5e12 → "1.5e12": FLOPs as a directory-name suffix."""
    exponent = math.floor(math.log10(value))
    mantissa = round(value / 10**exponent, 3)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:g}e{exponent}"


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _times(multiple: str, of: float) -> float:
    return float(multiple[:-1]) * of


def baseline_budgets(baseline: "BaselineSection", stages: list["StagePlan"]) -> list[Budget]:
    """A scratch baseline's budgets: token budgets (`match` the growth run's total, `base` its first stage's,
    a multiple of base, a count) or FLOPs budgets (`match` the growth run's total FLOPs, a multiple of it,
    a number)."""
    if baseline.flops is not None:
        total = stages[-1].cumulative_flops
        values = [
            total if v == "match" else _times(v, total) if isinstance(v, str) else v
            for v in _listed(baseline.flops)
        ]
        return [Budget(flops=v, label=f"{compact_flops(v)}flops") for v in values]
    budgets = []
    for value in _listed(baseline.tokens):
        if value == "match":
            budgets.append(Budget(tokens=sum(s.tokens for s in stages)))
            continue
        if value == "base":
            tokens = stages[0].tokens
        elif isinstance(value, str):  # a multiple of base
            tokens = max(1, int(round(_times(value, stages[0].tokens))))
        else:
            tokens = value
        budgets.append(Budget(tokens=tokens, label=compact_count(tokens)))
    return budgets
