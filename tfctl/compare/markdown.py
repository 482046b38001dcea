"""report.md: the comparison's tables, headline sentences and notes as a Markdown document."""

from tfctl.compare import tables
from tfctl.compare.dynamics import dynamics_markdown
from tfctl.compare.races import MID_SCHEDULE
from tfctl.compare.time_split import time_split_rows

HEADLINE_NOTE = (
    "FLOPs are cumulative training FLOPs (6·N + attention per token; a growth run sums its stages). "
    "Device-hours are wall time × world size, worker start-up included. A run's perplexity is exp(mean loss) "
    "over its finished seeds. The perplexity gap is ppl(run) / ppl(against) − 1; ratios are the growth run's "
    "over the other's. The frontier is the lower convex hull of (log FLOPs, log ppl) over the architecture's "
    "finished from-scratch runs, every size and budget; the frontier FLOPs ratio is the growth run's FLOPs over "
    "those the frontier needs for its perplexity, the iso-FLOP ppl the frontier's perplexity at the growth "
    "run's FLOPs (interpolated along the hull; out of its range a bound, ≤ or ≥, never extrapolated). "
    "[90 %]: a bootstrap interval over every run's seeds (2,000 draws, seeded). Verdict: saves compute when "
    "the frontier FLOPs ratio's interval lies below 1, costs compute above 1, otherwise inconclusive "
    "(without a frontier: from the FLOPs ratio and the ppl gap's interval; one seed: inconclusive)."
)


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict, figure: str | None = None) -> str:
    parts = [f"# tfctl compare: {report['run']}", "", _markdown_table(*tables.run_rows(report)), ""]
    parts += ["## Headline (finished runs, final against final)", ""]
    parts += [_markdown_table(*tables.headline_rows(report)), ""]
    parts += [f"**{line}**  " for line in tables.headline_lines(report)] + [""]
    parts += [
        HEADLINE_NOTE,
        "",
    ]
    outliers = tables.outlier_lines(report)
    parts += [f"- {line}" for line in outliers] + ([""] if outliers else [])
    if report.get("time_split"):  # tfctl/compare/time_split.py says how each phase is measured
        parts += ["## Where the growth run's wall time went, per stage", ""]
        parts += [_markdown_table(*time_split_rows(report["time_split"])), ""]
    if report["stage_ends"]:
        parts += [f"## {tables.stage_end_title(report).capitalize()}", ""]
        parts += [_markdown_table(*tables.stage_end_rows(report)), ""]
    if report.get("variants"):
        parts += ["## Other growth runs against the from-scratch frontier", ""]
        parts += [_markdown_table(*tables.variant_rows(report)), ""]
    parts += ["## Mid-schedule: FLOPs to first reach a perplexity", "", MID_SCHEDULE, ""]
    parts += [_markdown_table(*tables.target_rows(report)), ""]
    if figure:
        parts += [f"![validation perplexity against training FLOPs and device-hours]({figure})", ""]
    parts += dynamics_markdown(report.get("growth_dynamics", []))
    if report["commands"]:
        parts += ["## Reproduce", "", "```sh", *report["commands"], "```", ""]
    return "\n".join(parts)
