"""`tfctl submit RECIPE`: write RUN/submit.slurm and submit it with sbatch."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION, SET_OPTION

EPILOG = """Examples:

  tfctl submit recipes/openwebtext-124m-to-1.4b.yaml --nodes 4 --gpus-per-node 8 --time 2-00:00 -p gpu

  tfctl submit recipes/tiny.yaml --nodes 2 --gpus-per-node 8 --time 4:00:00 --dry-run    # write and print it

  tfctl submit recipes/tiny.yaml --nodes 2 --gpus-per-node 8 --time 4:00:00 --sbatch-arg=--qos=high

  sbatch runs/tiny/submit.slurm          # re-submit: the run resumes from its last checkpoint

The job trains every stage on all nodes (one srun task per node, each a torchrun agent starting that node's
ranks). Some minutes before the time limit (--signal-minutes), and on preemption, every rank saves a
checkpoint at the step it is on and the job requeues itself; the requeued job resumes the run. Its output
goes to RUN/slurm-<job id>.out.
"""


def submit(
    recipe: Path = typer.Argument(..., help="A growth recipe (YAML)."),
    nodes: int = typer.Option(..., "--nodes", "-N", help="Nodes to allocate."),
    gpus_per_node: int = typer.Option(
        ..., "--gpus-per-node", "-g", help="GPUs per node (0 for CPU nodes: see --ranks-per-node)."
    ),
    time: str = typer.Option(..., "--time", "-t", help="Time limit, in Slurm's format: 2-00:00, 12:00:00."),
    output: Path = typer.Option(None, "--output", "-o", help="Run directory (default: runs/<recipe name>)."),
    partition: str = typer.Option(None, "--partition", "-p", help="Slurm partition."),
    account: str = typer.Option(None, "--account", "-A", help="Slurm account."),
    sbatch_args: list[str] = typer.Option(
        [],
        "--sbatch-arg",
        metavar="--OPTION=VALUE",
        help="Another #SBATCH line, e.g. --sbatch-arg=--qos=high.",
    ),
    ranks_per_node: int = typer.Option(
        None, "--ranks-per-node", help="Ranks per node (default: --gpus-per-node, or 1 without GPUs)."
    ),
    signal_minutes: int = typer.Option(
        10, "--signal-minutes", help="Checkpoint and requeue this many minutes before the time limit."
    ),
    overrides: list[str] = SET_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Write RUN/submit.slurm and print it; submit nothing."
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a recipe on a Slurm allocation: writes RUN/submit.slurm, submits it, prints the job id."""
    from tfctl.recipe import load_recipe
    from tfctl.run.state import checked_run_dir
    from tfctl.slurm import SubmitSettings, sbatch, write_script

    loaded = load_recipe(recipe, overrides)  # a bad recipe is refused here, not after hours in the queue
    run_dir = checked_run_dir(output, loaded.name)
    settings = SubmitSettings(
        recipe=recipe.resolve(),
        run_dir=run_dir.resolve(),
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        time=time,
        ranks_per_node=ranks_per_node or max(gpus_per_node, 1),
        signal_minutes=signal_minutes,
        partition=partition,
        account=account,
        sbatch_args=list(sbatch_args),
        overrides=list(overrides),
        job_name=f"tfctl-{loaded.name}",
    )
    script = write_script(settings)
    job_id = None if dry_run else sbatch(script)
    if json_output:
        print(json.dumps({"script": str(script), "job_id": job_id, "text": script.read_text()}, indent=2))
    elif dry_run:
        print(script.read_text(), end="")
        print(f"# written to {script}; not submitted (--dry-run)")
    else:
        print(f"submitted job {job_id}: {run_dir / script.name}; output in {run_dir / f'slurm-{job_id}.out'}")
