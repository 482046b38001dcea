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


def test_a_shortened_readme_output_keeps_its_shape():
    sys_path = str(REPO / "scripts")
    import sys

    sys.path.insert(0, sys_path)
    try:
        from readme_outputs import shortened
    finally:
        sys.path.remove(sys_path)
    new = [f"line {i}" for i in range(20)]
    assert shortened(new, ["a", "b", "...", "c"]) == ["line 0", "line 1", "...", "line 19"]
    assert shortened(new, ["a", "...", "b", "...", "c", "d"]) == ["line 0", "...", "line 18", "line 19"]
    assert shortened(new, ["a", "b"]) == new and shortened(new[:2], ["a", "b", "...", "c"]) == new[:2]
