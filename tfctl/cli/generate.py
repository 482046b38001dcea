"""`tfctl generate MODEL --prompt ...`: sample text from an exported model."""

from pathlib import Path

import typer

EPILOG = """Examples:

  tfctl generate runs/tiny --prompt 'To be, or not'

  tfctl generate runs/tiny/stages/s3/final --prompt 'ROMEO:' --max-new-tokens 200 --temperature 0.7 --seed 3
"""


def generate(
    target: Path = typer.Argument(..., help="A model directory or a run directory (its latest model)."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="Text to continue."),
    max_new_tokens: int = typer.Option(100, "--max-new-tokens", "-n", min=1),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0),
    top_k: int = typer.Option(50, "--top-k", min=1),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Sample a continuation of a prompt from a model directory."""
    from tfctl.run.targets import generation_target

    model = generation_target(target, max_new_tokens, seed, temperature)  # refused before torch loads
    from tfctl.run.eval_generate import generate as sample

    typer.echo(sample(model, prompt, max_new_tokens, temperature, top_k, seed))
