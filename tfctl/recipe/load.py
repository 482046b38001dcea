"""Load a recipe: safe YAML → `--set` overrides → schema validation → semantic checks.

Every problem is collected and reported at once, one line each, as
`recipes/x.yaml: stages[1].tokens: must be a positive token count like 30b or 2m, got -3`.
"""

import glob
import importlib.util
from pathlib import Path

import yaml
from pydantic import ValidationError

from tfctl.data.sources import BUILTIN_CORPORA
from tfctl.errors import RecipeError
from tfctl.recipe.plan import GPT2_PADDED_VOCAB, resolve_stage_configs
from tfctl.recipe.schema import Recipe

MAX_YAML_VALUES = 100_000  # a recipe has a few hundred; nested aliases ("billion laughs") expand to billions


def expanded_size(node: yaml.Node, sizes: dict) -> int:
    """How many values `node` stands for once every alias is expanded (shared nodes counted each time)."""
    if id(node) not in sizes:
        sizes[id(node)] = 0  # a recursive alias counts once, not forever
        children = node.value if isinstance(node.value, list) else []
        items = [n for pair in children for n in pair] if isinstance(node, yaml.MappingNode) else children
        sizes[id(node)] = 1 + sum(expanded_size(child, sizes) for child in items)
    return sizes[id(node)]


def parse_yaml(text: str):
    """yaml.safe_load, refusing documents whose aliases expand beyond MAX_YAML_VALUES (raises ValueError)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return None
    if expanded_size(node, {}) > MAX_YAML_VALUES:
        raise ValueError(f"its aliases expand to more than {MAX_YAML_VALUES:,} values")
    return yaml.safe_load(text)


def yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    return f"{where}not valid YAML ({getattr(error, 'problem', None) or str(error).splitlines()[0]})"


def read_yaml_file(path: Path):
    """A YAML file's value, or a one-line error naming the file: unreadable, not UTF-8, not YAML, too big."""
    try:
        return parse_yaml(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise RecipeError(str(path), [f"cannot read it ({error.strerror})"]) from None
    except UnicodeDecodeError as error:
        raise RecipeError(str(path), [f"not UTF-8 text (byte {error.start})"]) from None
    except yaml.YAMLError as error:
        raise RecipeError(str(path), [yaml_problem(error)]) from None
    except (ValueError, RecursionError) as error:
        raise RecipeError(str(path), [f"not a usable recipe ({error or 'nested too deeply'})"]) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """The validated recipe at `path` with `overrides` ("stages.1.tokens=4m") applied first."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(str(path), ["no such recipe file"])
    raw = read_yaml_file(path)
    if not isinstance(raw, dict):
        raise RecipeError(str(path), ["a recipe is a YAML mapping with name, stages, ..."])
    problems = []
    for override in overrides or []:
        try:
            apply_override(raw, override)
        except ValueError as error:
            problems.append(f"--set {override}: {error}")
    if problems:
        raise RecipeError(str(path), problems)
    return validate_recipe(raw, str(path))


def validate_recipe(raw: dict, source: str = "recipe") -> Recipe:
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as error:
        raise RecipeError(source, [_describe(e) for e in error.errors()]) from None
    problems = semantic_problems(recipe)
    if problems:
        raise RecipeError(source, problems)
    return recipe


def apply_override(raw: dict, override: str) -> None:
    """Set `a.b.0.c=value` in the raw mapping; the value is parsed as YAML (typed: 2, true, 4m, [a, b])."""
    if "=" not in override:
        raise ValueError("expected KEY=VALUE, like stages.1.tokens=4m")
    key, text = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ValueError(f"bad key {key!r}")
    try:
        value = parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError as error:
        raise ValueError(yaml_problem(error)) from None
    node = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"{'.'.join(parts[:i])} has {len(node)} items, no index {part!r}")
            index = int(part)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ValueError(f"{'.'.join(parts[:i])} is not a section")


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith(("function-", "list[", "tagged-union[")):
            text += f".{part}" if text else str(part)
    return text or "recipe"


def _describe(error: dict) -> str:
    where = _location(error["loc"])
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: missing (required)"
    if kind == "value_error":
        return f"{where}: {message.removeprefix('Value error, ')}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{where}: {message[0].lower()}{message[1:]}, got {shown}"


def source_problems(source: str | list[str], field: str = "data.source") -> list[str]:
    """Built-in corpora must be installed; files, globs and directories must exist."""
    parts = source if isinstance(source, list) else str(source).split("+")
    problems = []
    for part in (p.strip() for p in parts):
        if part in BUILTIN_CORPORA:
            module, _, install = BUILTIN_CORPORA[part]
            if importlib.util.find_spec(module) is None:
                problems.append(f"{field}: built-in corpus {part!r} is not installed ({install})")
        elif part.startswith("hf:"):
            continue  # a hub name or a saved dataset: checked when loaded
        elif not glob.glob(str(Path(part).expanduser())):
            problems.append(f"{field}: no such file, directory or glob: {part}")
    return problems


def semantic_problems(recipe: Recipe) -> list[str]:
    """What the schema cannot see: growth order, world-size divisibility, data on disk."""

    problems = source_problems(recipe.data.source)
    tokenizer = recipe.data.tokenizer
    if (
        not (tokenizer.startswith("bpe:") or tokenizer == "gpt2")
        and not Path(tokenizer).expanduser().exists()
    ):
        problems.append(f"data.tokenizer: no such tokenizer file: {tokenizer} (or use bpe:N, gpt2)")
    if tokenizer.startswith("bpe:") and not tokenizer[4:].isdigit():
        problems.append(f"data.tokenizer: bpe:N needs a vocabulary size, got {tokenizer!r}")
    # the growth checks below need a vocabulary; a broken tokenizer is reported above, so stand in for it
    vocab_size = GPT2_PADDED_VOCAB if any(p.startswith("data.tokenizer") for p in problems) else None

    world = recipe.launch.world_size
    for i, stage in enumerate(recipe.stages):
        batch = stage.global_batch or recipe.train.global_batch
        if batch % world:
            problems.append(f"stages[{i}].global_batch: {batch} sequences do not divide into {world} ranks")
        elif recipe.train.micro_batch and (batch // world) % recipe.train.micro_batch:
            problems.append(
                f"train.micro_batch: {recipe.train.micro_batch} does not divide the {batch // world} "
                f"sequences per rank of stage {stage.name}"
            )
        if stage.tokens is not None and stage.tokens < batch * recipe.data.seq_len:
            problems.append(
                f"stages[{i}].tokens: {stage.tokens} is less than one step "
                f"({batch} × {recipe.data.seq_len} tokens)"
            )
        if i > 0 and recipe.model.scale_mode == "anneal" and stage.init == "paper":
            problems.append(
                f"stages[{i}].init: paper growth sets τ = sqrt(n) at once, so model.scale_mode anneal "
                f"(which moves τ after a preserve growth) would do nothing; set init: preserve"
            )
    try:
        configs = resolve_stage_configs(recipe, vocab_size)
    except ValueError as error:
        return problems + [str(error)]
    for i in range(1, len(configs)):
        before, after = configs[i - 1], configs[i]
        if after.n_layers < before.n_layers:
            problems.append(
                f"stages[{i}].layers: {after.n_layers} is fewer than stage "
                f"{recipe.stages[i - 1].name}'s {before.n_layers}; stages must grow"
            )
        for kind in ("qkv", "proj", "ffn"):
            if getattr(after, f"{kind}_tokens") < getattr(before, f"{kind}_tokens"):
                what = "size" if recipe.stages[i].size else "param_tokens"
                problems.append(
                    f"stages[{i}].{what}: {kind} parameter tokens shrink from "
                    f"{getattr(before, f'{kind}_tokens')} to {getattr(after, f'{kind}_tokens')}; "
                    f"stages must grow"
                )
                break
        else:
            if after == before:
                problems.append(
                    f"stages[{i}]: same model as stage {recipe.stages[i - 1].name}; stages must grow"
                )
    return problems
