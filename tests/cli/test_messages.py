"""What the command line says: usage errors in one line, --version, flags without a type label, tables that
fit 80 columns without cutting a number."""

import io
import re

import pytest
from rich.console import Console

from tests.conftest import RECIPES


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--bogus", "x.yaml"], ["No such option: --bogus", "tfctl train --help"]),
        (["plan"], ["Missing argument 'recipe'"]),
        (["nosuch"], ["No such command 'nosuch'"]),
        (["eval", "runs/x", "--batches", "0"], ["--batches"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tfctl, args, words):
    result = tfctl(*args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "╭" not in result.stderr
    assert all(word in line for word in words), line


def test_version(tfctl):
    result = tfctl("--version")
    assert result.returncode == 0 and re.fullmatch(r"tfctl \S+\n", result.stdout)


def test_flags_have_no_type_label(tfctl):
    out = tfctl("train", "--help").stdout
    assert "<bool>" not in out and "--verbose" in out and "<path>" in out


def render(print_function, *args, width=80, **kwargs) -> str:
    import tfctl.cli.render as render_module

    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False)
    saved, render_module.console = render_module.console, console
    try:
        print_function(*args, **kwargs)
    finally:
        render_module.console = saved
    return out.getvalue()


def test_plan_table_at_80_columns_keeps_every_number():
    from tfctl.cli.render import print_plan
    from tfctl.recipe import load_recipe, plan_recipe

    recipe = load_recipe(RECIPES / "openwebtext-124m-to-1.4b.yaml")
    plan = plan_recipe(recipe)
    text = render(print_plan, recipe.name, plan)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    for stage in plan.stages:
        assert f"{stage.flops:.3g}" in text and str(stage.steps) in text
    assert "9232/9232/36928" in text and "300.00B" in text
    assert "est. time —: no finished stage yet\n  (a stage's start-up, evals and export" in text
    wide = render(print_plan, recipe.name, plan, width=160)
    assert "cumulative" in wide and "batch" in wide  # dropped only when narrow


def test_compare_tables_at_80_columns_keep_names_and_numbers():
    from tfctl.cli.render import print_report

    runs = [
        {
            "name": n,
            "label": label,
            "kind": kind,
            "val_loss": 4.6,
            "val_ppl": ppl,
            "params": 524_416,
            "tokens": 1_204_224,
            "flops": flops,
            "device_hours": 0.0123,
            "mfu": 0.0712,
        }
        for n, label, kind, ppl, flops in (
            ("tiny-paper-init", "tiny-paper-init", "growth", 99.26, 2.76e12),
            ("tiny-paper-init.baseline-scratch", "baseline-scratch", "scratch", 93.01, 4.02e12),
        )
    ]
    report = {
        "run": "tiny-paper-init",
        "reference": runs[1]["name"],
        "runs": runs,
        "headline": [],
        "flops_to_reach": [
            {
                "ppl": 93.01,
                "label": "final of baseline-scratch",
                "speedup": {"tiny-paper-init": None},
                "flops": {"tiny-paper-init": None, runs[1]["name"]: 4.02e12},
                "group_flops": {"tiny-paper-init": None, "baseline-scratch": 4.02e12},
            },
        ],
    }
    out = io.StringIO()
    print_report(report, out=Console(file=out, width=80, highlight=False))
    text = out.getvalue()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    for cell in ("tiny-paper-init", "baseline-scratch", "99.26", "93.01", "2.76e+12", "4.02e+12", "7.12%"):
        assert cell in text
