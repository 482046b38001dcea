"""`tfctl eval MODEL`: validation loss and perplexity of an exported model; `--tasks`: lm-evaluation-harness tasks."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION

EPILOG = """Examples:

  tfctl eval runs/tiny                           # the last finished stage, on the val batches it was trained with

  tfctl eval runs/tiny/stages/s2/final --text my_notes.txt --json

  tfctl eval grown/ --data ~/.cache/tfctl/data/<hash>

  tfctl eval runs/tiny --tasks lambada_openai,hellaswag --limit 100 --json      # lm-evaluation-harness tasks

  tfctl eval runs/tiny --tasks my_mc --include-path my_tasks/ --all-stages      # local task YAMLs, every stage
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
    tasks: str = typer.Option(
        None, "--tasks", help="lm-evaluation-harness tasks, comma-separated (needs the `eval` extra)."
    ),
    include_path: Path = typer.Option(
        None,
        "--include-path",
        help="A directory of lm-eval task YAMLs (e.g. local data, no network). A task YAML can run Python code (lm-eval's `!function`): use only task files you trust.",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many examples per task."),
    all_stages: bool = typer.Option(
        False, "--all-stages", help="With --tasks on a run: every finished stage's final model."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Evaluate loss and perplexity (or, with --tasks, lm-eval downstream tasks) of a model or a run's latest model."""
    from tfctl.errors import UserError
    from tfctl.run.targets import resolve_target

    if text is not None and data is not None:
        raise UserError("give --text or --data, not both")
    if tasks is not None:
        if text is not None or data is not None:
            raise UserError("--tasks scores downstream tasks; give it without --text/--data")
        _eval_tasks(target, tasks, include_path, limit, all_stages, batch_size or 8, json_output)
        return
    if include_path is not None or limit is not None or all_stages:
        raise UserError("--include-path, --limit and --all-stages go with --tasks")
    model = resolve_target(target)  # a wrong path is refused before torch loads
    from tfctl.run.eval_generate import evaluate_model

    result = evaluate_model(model, text=text, data=data, batches=batches, batch_size=batch_size)
    if json_output:
        print(json.dumps(result))
    else:
        typer.echo(
            f"{result['model']} on {result['data']}: loss {result['loss']:.4f}, "
            f"perplexity {result['ppl']:.2f} over {result['tokens']:,} tokens"
        )


def _eval_tasks(target, tasks, include_path, limit, all_stages, batch_size, json_output) -> None:
    from tfctl.errors import UserError

    try:
        from tfctl.downstream.tasks import evaluate_run_stages, evaluate_tasks
    except ImportError as error:
        raise UserError(
            f"--tasks needs lm-evaluation-harness ({error.name}): pip install 'tfctl[eval]'"
        ) from None
    if all_stages:
        result = evaluate_run_stages(target, tasks, include_path, limit, batch_size)
        models = result["stages"]
    else:
        result = evaluate_tasks(target, tasks, include_path, limit, batch_size)
        models = {result["model"]: result}
    if json_output:
        print(json.dumps(result))
        return
    for name, entry in models.items():
        for task, metrics in entry["results"].items():
            values = ", ".join(f"{metric} {value:.4g}" for metric, value in metrics.items())
            typer.echo(f"{name}  {task}: {values}")
