"""`tfctl grow SOURCE --to SIZE`: grow a trained Tokenformer (a model directory, or the last stage of a run)."""

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from tfctl.errors import UserError
from tfctl.model_dir.config import load_model_config
from tfctl.recipe.schema import StageSection
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState

EPILOG = """\
Examples:

  [bold]tfctl grow runs/tiny/stages/s1/final --to 2m -o grown/[/bold]
      append parameter tokens until the model holds 2M parameters (qkv:proj:ffn ratios kept), verify, write grown/

  [bold]tfctl grow ckpt/124m --to incremental-1.4b -o ckpt/1.4b --json[/bold]
      the paper's 124M → 1.4B step (a preset name), the report as one JSON object

  [bold]tfctl grow ckpt/124m --to 354m --layers 16 --placement interleave --init preserve -o ckpt/354m-deep[/bold]
      exact growth: 4 more blocks spread between the old ones start as the identity, new tokens as zero keys

  [bold]tfctl grow ckpt/124m --to qkv=1024,proj=1024,ffn=4096 -o ckpt/wide[/bold]
      explicit token counts, grown the paper's way (the default)

  [bold]tfctl grow runs/owt --to 354m --tokens 30b[/bold]
      a run directory: append a stage grown from its last finished stage and train it

--init paper (default) is the paper's growth: random new tokens, τ = sqrt(n) of the grown size (the loss
jumps; the report says by how much). --init preserve keeps the model's function exactly (new keys 0, τ held
fixed). --optimizer carry also grows optimizer.safetensors (old rows' AdamW moments kept, new rows' zero).
See docs/growth.md."""


RANDOM_PROBE = "random token ids (not a validation loss)"


def probe_batch(source: Path):
    """The batch the growth is checked on: a model directory inside a run (RUN/stages/<s>/final) has its
    stage's validation data, so the loss it reports is a real one; any other gets random token ids."""
    spec = source.parent / "spec.json"
    if not spec.is_file():
        return None, RANDOM_PROBE
    from tfctl.data import eval_batches, load_prepared

    settings = json.loads(spec.read_text())
    try:
        data = load_prepared(settings["data_dir"])
    except (UserError, KeyError):
        return None, RANDOM_PROBE
    return eval_batches(data.tokens("val"), settings["seq_len"], 4, 1)[0][
        0
    ], f"val data ({settings['data_dir']})"


def _print_report(report: dict) -> None:
    print(f"grown      {report['out']}")
    print(f"params     {report['params_before']:,} → {report['params_after']:,}")
    print(
        f"max |Δlogits|  {report['max_abs_logit_diff']:.3g} on {report['probe_tokens']} probe tokens "
        f"({report['init']})"
    )
    print(f"loss       {report['loss_before']:.4f} → {report['loss_after']:.4f} on {report['probe']}")
    print(f"seconds    {report['seconds']:.2f}")


def grow(
    source: Path = typer.Argument(
        ..., help="A model directory (model.safetensors + config.json) or a run directory."
    ),
    to: str = typer.Option(
        ...,
        "--to",
        help="Target: a size (354m, 1.4b), a preset (incremental-1.4b) or "
        "token counts (qkv=1024,proj=1024,ffn=4096).",
    ),
    layers: int | None = typer.Option(None, "--layers", help="Blocks after growth (default: unchanged)."),
    placement: str = typer.Option("append", "--placement", help="Where new blocks go: append | interleave."),
    init: str = typer.Option(
        StageSection.model_fields["init"].default,  # a recipe's stage default: declared once, in the schema
        "--init",
        help="New tokens: paper (the paper's: random, τ = sqrt(n)) | preserve (exact: new keys 0, τ held).",
    ),
    optimizer: str = typer.Option("reset", "--optimizer", help="AdamW moments: reset | carry."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Grown model directory (default: SOURCE-TO next to SOURCE)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random init of new tokens."),
    tokens: str | None = typer.Option(
        None, "--tokens", help="Run directory only: training tokens of the new stage."
    ),
    steps: int | None = typer.Option(
        None, "--steps", help="Run directory only: training steps of the new stage."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the growth report as one JSON object."),
) -> None:
    """Grow a trained Tokenformer by appending parameter tokens (and optionally layers), verified."""
    if layers is not None and layers < 1:
        raise UserError(f"--layers {layers}: a model has at least 1 block")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed {seed}: must be from 0 to 2^63 - 1")
    if RunDir(source).is_run():
        if out is not None or placement != "append":
            raise UserError("-o and --placement are for model directories; a run directory grows in place")
        RunState.load(RunDir(source).state, source.name)  # damaged: refused before torch loads
        try:
            from tfctl.run.append_stage import grow_run
        except ImportError as error:
            if error.name not in ("tfctl.run.append_stage", "tfctl.run"):
                raise
            raise UserError("growing a run directory needs tfctl.run.append_stage") from None
        grow_run(source, to, layers, init, optimizer, tokens, steps, json_output)
        return
    if tokens is not None or steps is not None:
        raise UserError(
            "--tokens and --steps are for run directories; a model directory is grown, not trained"
        )
    load_model_config(source)  # not a model directory, or a damaged config: refused before torch loads

    from tfctl.growth import grow_model_dir
    from tfctl.model_dir.config import MODEL_OUTPUT
    from tfctl.outputs import claim_output
    from tfctl.tracking.live import RunDisplay

    out = (
        out if out is not None else source.with_name(f"{source.name}-{to.replace('=', '').replace(',', '-')}")
    )
    if out.exists() or out.is_symlink():  # grow never replaces a directory, not even an earlier growth
        raise UserError(f"{out}: already exists; choose another -o or remove it")
    claim_output(out, MODEL_OUTPUT, sources=(source,))  # a link, a path in a run: refused
    probe, probe_source = probe_batch(source)
    display = RunDisplay(interactive=sys.stderr.isatty(), console=Console(stderr=True))
    with display.activity(f"growing {source} to {to}"):  # minutes for a large model
        report = grow_model_dir(
            source,
            out,
            to,
            layers=layers,
            init=init,
            optimizer=optimizer,
            seed=seed,
            placement=placement,
            probe=probe,
        )
    result = {**report.to_dict(), "probe": probe_source, "out": str(out)}
    if json_output:
        print(json.dumps(result))
    else:
        _print_report(result)
