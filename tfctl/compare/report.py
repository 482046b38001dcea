"""The comparison as numbers (report.json), as a document (report.md) and as rich tables on the console.

`build_report` is pure: run summaries in, a JSON-ready dict out. The growth run is compared against a
reference (the first baseline, else the first `--with` run): the FLOPs ratio and perplexity gap of the
headline, and for a few target perplexities the FLOPs each run needed to first reach it.
"""

from tfctl.compare.curves import flops_to_reach, speedup
from tfctl.compare.runs import RunSummary
from tfctl.model.sizes import format_count

RELATIVE_TARGETS = (1.5, 1.25, 1.1)  # × the reference's final perplexity: easier targets on the way there


def headline(main: RunSummary, other: RunSummary) -> dict:
    return {
        "run": main.name,
        "against": other.name,
        "against_label": label(other, main),
        "against_kind": other.kind,
        "flops_ratio": main.flops / other.flops if other.flops else None,
        "ppl_gap_pct": (main.val_ppl / other.val_ppl - 1) * 100,
        "device_hours_ratio": main.device_hours / other.device_hours if other.device_hours else None,
    }


def label(run: RunSummary, main: RunSummary) -> str:
    """A short name for tables: a sibling baseline `tiny.baseline-scratch` of `tiny` is `baseline-scratch`."""
    return run.name if run is main else run.name.removeprefix(f"{main.name}.")


def target_list(main: RunSummary, reference: RunSummary | None, fixed: list[float]) -> list[dict]:
    """The perplexities to race to: the reference's final one first, then the growth run's final, a few
    easier multiples of the reference's, and the user's fixed targets; duplicates dropped."""
    targets = [(main.val_ppl, f"final of {main.name}")]
    if reference is not None:
        name = label(reference, main)
        targets.insert(0, (reference.val_ppl, f"final of {name}"))
        targets += [(reference.val_ppl * m, f"{m:g}× final of {name}") for m in RELATIVE_TARGETS]
    targets += [(float(p), "fixed") for p in fixed]
    seen, out = set(), []
    for ppl, what in targets:
        if round(ppl, 6) not in seen:
            seen.add(round(ppl, 6))
            out.append({"ppl": ppl, "label": what})
    return out


def build_report(
    main: RunSummary,
    others: list[RunSummary],
    targets: list[float] | None = None,
    commands: list[str] | None = None,
) -> dict:
    reference = others[0] if others else None
    runs = [main, *others]
    races = []
    for target in target_list(main, reference, list(targets or [])):
        reached = {r.name: flops_to_reach(r.curve.flops, r.curve.ppl, target["ppl"]) for r in runs}
        ratios = (
            {name: speedup(reached[reference.name], flops) for name, flops in reached.items()}
            if reference
            else {}
        )
        races.append({**target, "flops": reached, "speedup": ratios})
    return {
        "run": main.name,
        "reference": reference.name if reference else None,
        "runs": [{**r.to_dict(), "label": label(r, main)} for r in runs],
        "headline": [headline(main, other) for other in others],
        "flops_to_reach": races,
        "commands": commands or [],
    }


# ------------------------------------------------------------------------------------------------- formatting
def _flops(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


RUN_COLUMNS = ["run", "kind", "val loss", "val ppl", "params", "tokens", "train FLOPs", "device-hours", "MFU"]


def run_values(report: dict) -> tuple[list[str], list[list]]:
    """The runs table with numbers as numbers (W&B sorts and plots them)."""
    fields = ("label", "kind", "val_loss", "val_ppl", "params", "tokens", "flops", "device_hours", "mfu")
    return RUN_COLUMNS, [[r[f] for f in fields] for r in report["runs"]]


def run_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    columns = RUN_COLUMNS
    rows = [
        [
            r["label"],
            r["kind"],
            f"{r['val_loss']:.4f}",
            f"{r['val_ppl']:.2f}",
            format_count(r["params"]),
            format_count(r["tokens"]),
            _flops(r["flops"]),
            f"{r['device_hours']:.3g}",
            "—" if r["mfu"] is None else f"{r['mfu']:.2%}",
        ]
        for r in report["runs"]
    ]
    return columns, rows


def target_values(report: dict) -> tuple[list[str], list[list]]:
    """The FLOPs-to-reach table, easiest target (highest perplexity) first, numbers as numbers."""
    names = [r["name"] for r in report["runs"]]
    columns = ["target ppl", "target", *[f"FLOPs {r['label']}" for r in report["runs"]]]
    if report["reference"]:
        columns.append(f"speed-up {report['run']}")
    rows = []
    for race in sorted(report["flops_to_reach"], key=lambda race: -race["ppl"]):
        row = [race["ppl"], race["label"], *[race["flops"][n] for n in names]]
        if report["reference"]:
            row.append(race["speedup"].get(report["run"]))
        rows.append(row)
    return columns, rows


def target_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    columns, values = target_values(report)
    speedup = bool(report["reference"])
    rows = []
    for ppl, label, *flops in values:
        ratio = flops.pop() if speedup else None
        rows.append([f"{ppl:.2f}", label, *map(_flops, flops), *([_ratio(ratio)] if speedup else [])])
    return columns, rows


def headline_lines(report: dict) -> list[str]:
    lines = []
    for h in report["headline"]:
        lines.append(
            f"{h['run']} vs {h['against_label']}: {_flops_comparison(h['flops_ratio'])}, "
            f"perplexity gap {h['ppl_gap_pct']:+.1f} %"
        )
    return lines


def _flops_comparison(ratio: float | None) -> str:
    """0.69 → "0.69× the FLOPs (1.46× fewer)", 1.001 → "the same FLOPs (1.00×)", 1.3 → "1.30× the FLOPs"."""
    if ratio is None:
        return "FLOPs ratio —"
    if round(ratio, 2) == 1.0:
        return "the same FLOPs (1.00×)"
    if ratio < 1:
        return f"{ratio:.2f}× the FLOPs ({1 / ratio:.2f}× fewer)"
    return f"{ratio:.2f}× the FLOPs"


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict, figure: str | None = None) -> str:
    parts = [f"# tfctl compare: {report['run']}", "", _markdown_table(*run_rows(report)), ""]
    parts += [f"**{line}**  " for line in headline_lines(report)] + [""]
    parts += [
        "FLOPs are cumulative training FLOPs (6·N + attention per token; a growth run sums its stages). "
        "Device-hours are wall time × world size. The perplexity gap is ppl(run) / ppl(baseline) − 1.",
        "",
    ]
    parts += [
        "## FLOPs to reach a perplexity",
        "",
        "The cumulative FLOPs at which each run's eval curve first reaches the target (linear between "
        "evals); the speed-up is the reference's FLOPs over the run's.",
        "",
        _markdown_table(*target_rows(report)),
        "",
    ]
    if figure:
        parts += [f"![validation perplexity against training FLOPs]({figure})", ""]
    if report["commands"]:
        parts += ["## Reproduce", "", "```sh", *report["commands"], "```", ""]
    return "\n".join(parts)
