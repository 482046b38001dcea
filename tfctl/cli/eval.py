"""`tfctl eval MODEL`: validation loss and perplexity of an exported model."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION

EPILOG = """Examples:

  tfctl eval runs/tiny                           # the last finished stage, on the val batches it was trained with

  tfctl eval runs/tiny/stages/s2/final --text my_notes.txt --json

  tfctl eval grown/ --data ~/.cache/tfctl/data/<hash>
"""


def eval_command(
    target: Path = typer.Argument(
        ..., help="A model directory (model.safetensors + config.json) or a run directory."
    ),
    text: Path = typer.Option(
        None, "--text", help="Score this UTF-8 text file (tokenized with the model's tokenizer)."
    ),
    data: Path = typer.Option(None, "--data", help="Score the val split of this prepared dataset."),
    batches: int = typer.Option(
        None, "--batches", min=1, help="Val batches (default: the run's eval_batches)."
    ),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Sequences per batch."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluate loss and perplexity of a model directory or of a run's latest model."""
    from tfctl.errors import UserError
    from tfctl.run.inspect import evaluate_model

    if text is not None and data is not None:
        raise UserError("give --text or --data, not both")
    result = evaluate_model(target, text=text, data=data, batches=batches, batch_size=batch_size)
    if json_output:
        print(json.dumps(result))
    else:
        typer.echo(
            f"{result['model']} on {result['data']}: loss {result['loss']:.4f}, "
            f"perplexity {result['ppl']:.2f} over {result['tokens']:,} tokens"
        )
