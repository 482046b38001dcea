"""What the CLI prints for people: rich tables that fit the terminal, and one-line events.

A table never cuts a number: numeric columns do not wrap, text columns fold; on a narrow terminal the
columns a caller names as least valuable go first, and a table that still does not fit is stacked: one small
"column | value" block per row (a pipe or log file gets 160 columns: whole tables).
"""

import sys

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from tfctl.model.sizes import format_count

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def fit_table(
    columns: list[str],
    rows: list[list[str]],
    text_columns: int = 1,
    drop: tuple[str, ...] = (),
    out: Console | None = None,
    **table_options,
) -> Table:
    """A table of `rows` that fits `out`'s width: the first `text_columns` columns fold, the others (numbers)
    never wrap; columns named in `drop` are left out, in that order, until it fits; if it still does not, the
    rows are stacked (`stacked_table`)."""
    out = out or console
    for dropped in range(len(drop) + 1):
        keep = [i for i, column in enumerate(columns) if column not in drop[:dropped]]
        table = Table(**table_options)
        for i in keep:
            text = i < text_columns
            table.add_column(
                columns[i],
                justify="left" if text else "right",
                no_wrap=not text,
                overflow="fold" if text else "ellipsis",
            )
        for row in rows:
            table.add_row(*(row[i] for i in keep), style=getattr(row, "style", None))
        if _width(out, table) <= out.width:
            return table
    return stacked_table(columns, rows, **table_options)


def _width(out: Console, table: Table) -> int:
    """The width the table needs to show every cell on one line (headers included)."""
    return Measurement.get(out, out.options.update(max_width=10**4), table).maximum


def stacked_table(columns: list[str], rows: list[list[str]], **table_options) -> Table:
    """Each row as a block of "column  value" lines (a section per row): as narrow as its longest pair."""
    table = Table(show_header=False, **table_options)
    table.add_column(no_wrap=False, overflow="fold")
    table.add_column(no_wrap=True, justify="left")
    for row in rows:
        for i, (column, cell) in enumerate(zip(columns, row, strict=True)):
            table.add_row(column.replace("\n", " "), cell, style="bold" if i == 0 else None)
        table.add_section()
    return table


class Row(list):
    """A table row with a rich style."""

    def __init__(self, cells, style: str | None = None):
        super().__init__(cells)
        self.style = style


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


PLAN_COLUMNS = [
    "stage",
    "layers",
    "param tokens\nqkv/proj/ffn",
    "params",
    "tokens",
    "batch",
    "steps",
    "FLOPs",
    "cumulative\nFLOPs",
    "est.\ntime",
]


def print_plan(name: str, plan, run_dir: str | None = None) -> None:
    rows = []
    data = plan.to_dict()
    for entry in data["stages"]:
        t = entry["param_tokens"]
        rows.append(
            [
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
            ]
        )
    for entry in data["baselines"]:
        seeds = f" ×{entry['seeds']}" if entry["seeds"] > 1 else ""  # seed siblings of this run
        cells = [
            f"baseline {entry['name']}{seeds}",
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
        ]
        rows.append(Row(cells, style="dim"))
    title = f"plan: {name}  (vocab {plan.vocab_size}, seq {plan.seq_len}, {plan.world_size} rank(s))"
    console.print(fit_table(PLAN_COLUMNS, rows, drop=("batch", "cumulative\nFLOPs", "layers"), title=title))
    if plan.times:
        console.print(
            f"est. time: {format_seconds(plan.times.overhead_seconds)} a stage (start-up, evals, checkpoints, "
            f"export, growth)\n  + its FLOPs at {plan.times.flops_per_second:.3g} FLOP/s, {plan.times.source}"
        )
    else:
        where = f" in {run_dir}" if run_dir else ""
        console.print(
            f"est. time —: no finished stage{where} yet\n"
            "  (a stage's start-up, evals and export + its FLOPs at the rate its steps ran);\n"
            "  train the recipe, or pass --run DIR, and plan again"
        )
    if data["baselines"]:
        largest = max(plan.baselines, key=lambda b: b.params)  # a family's final-size member
        ratio = plan.total_flops / largest.flops
        console.print(
            f"growth run: {plan.total_flops:.3g} FLOPs = {ratio:.2f}× the baseline "
            f"{largest.name!r} ({largest.flops:.3g} FLOPs)"
        )
        runs = data["seeds"] + sum(entry["seeds"] for entry in data["baselines"])
        console.print(
            f"tfctl compare trains {runs} runs (every seed: ×N above, the growth run ×{data['seeds']}): "
            f"{data['all_seeds_flops']:.3g} FLOPs in all"
        )


def print_report(report: dict, out: Console | None = None) -> None:
    """`tfctl compare`'s tables (device-hours kept beside FLOPs) and headline verdicts on the console."""
    from tfctl.compare import tables
    from tfctl.compare.time_split import time_split_rows

    out = out or console
    columns, rows = tables.run_rows(report)
    out.print(fit_table(columns, rows, out=out, title="runs"))
    for line in tables.outlier_lines(report):
        out.print(line)
    if report.get("headline"):
        columns, rows = tables.headline_rows(report)
        out.print(fit_table(columns, rows, out=out, title="headline: finished runs, final against final"))
    if report.get("time_split"):
        columns, rows = time_split_rows(report["time_split"])
        out.print(fit_table(columns, rows, out=out, title="where the growth run's wall time went, per stage"))
    if report.get("stage_ends"):
        columns, rows = tables.stage_end_rows(report)
        out.print(fit_table(columns, rows, out=out, title=tables.stage_end_title(report)))
    if report.get("variants"):
        columns, rows = tables.variant_rows(report)
        out.print(fit_table(columns, rows, out=out, title="other growth runs against the frontier"))
    columns, rows = tables.target_rows(report)
    title = "mid-schedule (not a headline): FLOPs to first reach a perplexity"
    out.print(fit_table(columns, rows, text_columns=2, out=out, title=title))
    for line in tables.headline_lines(report):
        out.print(f"[bold]{escape(line)}[/]")
