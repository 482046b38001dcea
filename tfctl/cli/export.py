"""`tfctl export MODEL|RUN --hf DIR`: a Hugging Face trust-remote-code package of a tfctl model."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION

EPILOG = """Examples:

  tfctl export runs/tiny --hf hf/tiny                       # the run's latest model, with a model card

  tfctl export runs/tiny.baseline-scratch --hf hf/baseline  # a baseline Transformer exports the same way

Then, with transformers installed (no tfctl needed):

  AutoModelForCausalLM.from_pretrained("hf/tiny", trust_remote_code=True)
"""


def export(
    source: Path = typer.Argument(..., help="A model directory or a run directory (its latest model)."),
    hf: Path = typer.Option(
        ..., "--hf", help="Write a Hugging Face package (remote code) to this directory."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Add the package's files to an existing folder that is not an earlier export "
        "(nothing else in it is touched; a file of the package's names already there is still refused).",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Export a model as a Hugging Face transformers package (config, remote code, safetensors, tokenizer, card)."""
    from tfctl.run.targets import model_dir_of, run_summary

    model_dir = model_dir_of(source)  # not a model or a run: refused before torch loads
    from tfctl.interop.hf_export import export_hf

    out = export_hf(model_dir, hf, run_summary(source, model_dir), force, sources=(source,))
    files = sorted(p.name for p in out.iterdir())
    if json_output:
        print(json.dumps({"source": str(source), "out": str(out), "files": files}))
        return
    typer.echo(f"exported {source} → {out}")
    for name in files:
        typer.echo(f"  {name:<30} {(out / name).stat().st_size:>12,} bytes")
    typer.echo(f'load: AutoModelForCausalLM.from_pretrained("{out}", trust_remote_code=True)')
