"""Every `$ tfctl ...` command the README shows still parses: its command, subcommand and options exist and
take the values written (the CLI's own argument parsing, nothing runs)."""

import re
import shlex

import pytest
import typer.main
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from tests.conftest import REPO
from tfctl.cli import app


def readme_commands() -> list[str]:
    """The tfctl command of each `$ ` line in the README's console blocks: environment assignments before it,
    a `# comment` and a `| pipe` after it left out."""
    commands = []
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"^\$ (?:[A-Z_]+=\S+ )*(tfctl .*)$", line)
        if match:
            words = shlex.split(match.group(1), comments=True)
            commands.append(shlex.join(words[: words.index("|")] if "|" in words else words))
    return commands


def parse(command: str) -> None:
    """Resolve the (sub)commands and parse every option and argument as tfctl would, without running it."""
    group = typer.main.get_command(app)
    words = shlex.split(command)[1:]
    context = group.make_context("tfctl", words, resilient_parsing=False)
    while isinstance(context.command, TyperGroup):
        name, sub, rest = context.command.resolve_command(context, [*context._protected_args, *context.args])
        context = sub.make_context(name, rest, parent=context)


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_of_every_section():
    shown = {shlex.split(command)[1] for command in COMMANDS}
    assert {"plan", "train", "grow", "compare", "eval", "generate", "export", "import", "data"} <= shown


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_parses(command):
    try:
        parse(command)
    except click_errors.UsageError as error:
        pytest.fail(f"{command}: {error.format_message()}")


@pytest.mark.parametrize(
    "command",
    ["tfctl train recipes/tiny.yaml --no-such-option", "tfctl grwo runs/tiny", "tfctl data prepare -s x -t"],
)
def test_a_command_that_no_longer_parses_is_caught(command):
    with pytest.raises(click_errors.UsageError):
        parse(command)


def test_make_readme_outputs_runs_every_readme_command_but_the_kept_ones():
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "scripts/readme_outputs.py", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    shown = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("$ ")]
    assert [line.split("$ ", 1)[1].split("  (needs")[0] for line in lines] == [line[2:] for line in shown]
    kept = [line for line in lines if line.startswith("keep")]
    assert len(kept) == 3 and all("(needs" in line for line in kept)


def readme_outputs_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_outputs", REPO / "scripts" / "readme_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_shortened_readme_output_keeps_its_shape():
    shortened = readme_outputs_module().shortened
    new = [f"line {i}" for i in range(20)]
    assert shortened(new, ["a", "b", "...", "c"]) == ["line 0", "line 1", "...", "line 19"]  # counted
    assert shortened(new, ["a", "b"]) == new and shortened(new[:2], ["a", "b", "...", "c"]) == new[:2]
    assert shortened(new, ["a", "...", "b", "...", "c", "d"]) is None  # a middle part it cannot find: whole


def progress(tag, steps, total, evals=()):
    """The piped lines of a stage's training, as tfctl prints them."""
    lines = [f"[{tag}] training 524,416 params for {total} steps (602,112 tokens) on 1 rank(s)"]
    lines.append(f"[{tag}] eval at step 0: val loss 7.6502, ppl 2101.04")
    for step in steps:
        lines.append(f"[{tag}] step {step}/{total} · loss 5.1 · 20.5K tokens · 9,597 tok/s · MFU 8.0%")
        if step in evals or step == total:
            lines.append(f"[{tag}] eval at step {step}: val loss 4.9, ppl 137.{step % 100:02d}")
    return [*lines, f"[{tag}] done"]


TABLE = ["┏━━━━━┓", "┃ run ┃", "┡━━━━━┩", "│ {} │", "└─────┘"]


def test_the_compare_block_keeps_every_table_after_the_elided_steps():
    """`tfctl compare runs/tiny`: the steps and evals between the first eval and the last are elided, and
    everything from the last eval on is kept, however many tables and rows it has now."""
    shortened = readme_outputs_module().shortened
    old = [*progress("scratch", [10, 294], 294)[:2], "...", *progress("scratch", [294], 294)[-2:]]
    old += [*TABLE[:3], "│ tiny │", TABLE[4], "tiny vs baseline-scratch: inconclusive", "report: r.md"]
    run = progress("scratch", [*range(10, 300, 30), 300], 300, evals=(100, 190))
    tables = [*TABLE[:3], "│ tiny │", "│ baseline │", "│ tf-scratch │", TABLE[4], *TABLE]  # one more of each
    new = [*run, *tables, "tiny vs baseline-scratch: costs compute", "report: r.md"]
    last_eval = max(i for i, line in enumerate(new) if line.startswith("[scratch] eval at step "))
    assert shortened(new, old) == [*new[:2], "...", *new[last_eval:]]


def test_the_train_block_keeps_both_growths_and_the_stage_tables_between_its_elisions():
    """`tfctl train recipes/tiny.yaml`: two `...` in one output; the part between them (s1's end, its table,
    the growth line, s2's start) is found by what its lines say, not by counting."""
    shortened = readme_outputs_module().shortened
    s1, s2, s3 = (progress(tag, [*range(10, 98, 10), 98], 98, evals=(50,)) for tag in ("s1", "s2", "s3"))
    grown = "[s2] grown from s1 (paper): 196,736 → 327,808 params, max |Δlogits| 1.2, loss 5.9 → 6.4"
    wandb = ["W&B logged offline (no API key, or WANDB_MODE=offline); to upload:", "  wandb sync x"]
    old = [*s1[:4], "...", *s1[-3:], *TABLE, "[s2] grown from s1 (preserve): ...", s2[0], "...", *s3[-3:]]
    old += [*TABLE, *wandb]
    notice = "measuring the CPU's peak FLOP/s for MFU (once per run): done in 0:05"  # printed first: kept
    new = [notice, *s1, *TABLE, "│ s1 extra row │", grown, *s2, *TABLE, "[s3] grown from s2 (paper)", *s3]
    new += [*TABLE, *wandb]
    s1_last, s3_last = new.index(s1[-3]), new.index(s3[-3])
    expected = [*new[:5], "...", *new[s1_last : new.index(s2[0]) + 1], "...", *new[s3_last:]]
    assert shortened(new, old) == expected
    assert grown in expected and "│ s1 extra row │" in expected


def test_every_shortened_readme_output_can_be_regenerated():
    """Each kept part after a `...` in README's console blocks starts (and, in the middle, ends) with a line
    the script can find again in a new output; otherwise `make readme-outputs` would paste it whole."""
    module = readme_outputs_module()
    lines = (REPO / "README.md").read_text().splitlines()
    blocks, current = [], None
    for line in lines:
        if line.startswith("$ ") or line.startswith("```"):
            if current and "..." in current:
                blocks.append(current)
            current = [] if line.startswith("$ ") else None
        elif current is not None:
            current.append(line)
    assert len(blocks) >= 3  # train, compare, compare --tasks
    for old in blocks:
        parts = [[]]
        for line in old:
            if line == "...":
                parts.append([])
            else:
                parts[-1].append(line)
        for index, part in enumerate(parts[1:], 1):
            assert part, old  # `...` twice in a row, or last: nothing to find again
            assert module.usable(module.line_key(part[0])), part[0]
            if index < len(parts) - 1:
                assert module.usable(module.line_key(part[-1])), part[-1]
