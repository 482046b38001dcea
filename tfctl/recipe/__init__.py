"""Recipes: the YAML format, loading with overrides and checks, and the plan (sizes, tokens, FLOPs)."""

from tfctl.recipe.load import load_recipe, validate_recipe
from tfctl.recipe.plan import Plan, StagePlan, plan_recipe, resolve_stage_configs
from tfctl.recipe.schema import Recipe

__all__ = [
    "Plan",
    "Recipe",
    "StagePlan",
    "load_recipe",
    "plan_recipe",
    "resolve_stage_configs",
    "validate_recipe",
]
