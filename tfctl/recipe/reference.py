"""The recipe format's reference table, generated from the schema's field descriptions.

README.md embeds it between `<!-- recipe-reference -->` markers; a test keeps the two in step.
Regenerate with `python -m tfctl.recipe.reference --write README.md`.
"""

import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from tfctl.recipe.schema import Recipe

BEGIN, END = "<!-- recipe-reference:begin -->", "<!-- recipe-reference:end -->"


def _type_name(annotation) -> str:
    """`int | None`, `'fp32' | 'bf16'`, `count` (a number like 30b) — what a recipe author writes."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return "count" if args[0] is int else _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return ""
    return f"`{value!r}`" if value not in (None, [], ()) else "—"


def _section_model(annotation):
    for candidate in (annotation, *typing.get_args(annotation)):
        inner = typing.get_args(candidate)
        for c in (candidate, *inner):
            if isinstance(c, type) and issubclass(c, BaseModel):
                return c
    return None


def rows(model: type[BaseModel] = Recipe, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = _section_model(field.annotation)
        if nested is not None:
            is_list = typing.get_origin(field.annotation) is list or "list[" in str(field.annotation)
            out.append((key, "list of mappings" if is_list else "mapping", "", field.description or ""))
            out.extend(rows(nested, f"{key}[]." if is_list else f"{key}."))
        else:
            out.append((key, _type_name(field.annotation), _default(field), field.description or ""))
    return out


def markdown() -> str:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for key, *cells in rows():
        kind, default, description = (cell.replace("|", r"\|") for cell in cells)
        lines.append(f"| `{key}` | {kind} | {default} | {description} |")
    return "\n".join(lines)


def embed(text: str) -> str:
    """`text` with the table between the markers replaced by the current one."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown()}\n{END}{tail}"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = Path(sys.argv[2])
        path.write_text(embed(path.read_text()))
    else:
        print(markdown())
