"""What the CLI prints for people: rich tables and one-line events. (Training progress bars live with the worker.)"""

import sys

from rich.console import Console
from rich.table import Table

from tfctl.model.sizes import format_count

# A log file or pipe gets wide tables rather than columns cut to 80 characters.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def print_plan(name: str, plan) -> None:
    table = Table(
        title=f"plan: {name}  (vocab {plan.vocab_size}, seq {plan.seq_len}, {plan.world_size} rank(s))"
    )
    for column in (
        "stage",
        "layers",
        "param tokens qkv/proj/ffn",
        "params",
        "tokens",
        "batch",
        "steps",
        "FLOPs",
        "cumulative FLOPs",
        "est. time",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    rows = plan.to_dict()
    for entry in rows["stages"]:
        t = entry["param_tokens"]
        table.add_row(
            entry["name"],
            str(entry["layers"]),
            f"{t['qkv']}/{t['proj']}/{t['ffn']}",
            format_count(entry["params"]),
            format_count(entry["tokens"]),
            str(entry["global_batch"]),
            str(entry["steps"]),
            f"{entry['flops']:.3g}",
            f"{entry['cumulative_flops']:.3g}",
            format_seconds(entry["estimated_seconds"]),
        )
    for entry in rows["baselines"]:
        table.add_row(
            f"baseline {entry['name']}",
            str(entry["layers"]),
            f"MLP {entry['ffn_hidden']}"
            if "ffn_hidden" in entry
            else "{qkv}/{proj}/{ffn}".format(**entry["param_tokens"]),
            format_count(entry["params"]),
            format_count(entry["tokens"]),
            str(entry["global_batch"]),
            str(entry["steps"]),
            f"{entry['flops']:.3g}",
            f"{entry['flops']:.3g}",
            format_seconds(entry["estimated_seconds"]),
            style="dim",
        )
    console.print(table)
    if rows["baselines"]:
        ratio = plan.total_flops / plan.baselines[0].flops
        console.print(
            f"growth run: {plan.total_flops:.3g} FLOPs = {ratio:.2f}× the baseline "
            f"{plan.baselines[0].name!r} ({plan.baselines[0].flops:.3g} FLOPs)"
        )
