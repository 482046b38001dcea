"""The comparison as numbers (report.json), as a document (report.md) and as rich tables on the console.

`build_report` is pure: run groups in (a run and its seed siblings), a JSON-ready dict out. The headline
(tfctl.compare.headline) compares finished runs only, final against final, per reference: each baseline, a
from-scratch family by its largest member and its frontier. The growth run's stage ends are set against each
family's frontier. The "FLOPs to reach" races read whole eval curves, mid-schedule points included: they are
labelled as such and never part of a headline.
"""

from tfctl.compare.curves import flops_to_reach, speedup
from tfctl.compare.headline import headline, stage_ends, verdict
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.seeds import mean_std
from tfctl.compare.time_split import time_split_rows
from tfctl.model.sizes import format_count

RELATIVE_TARGETS = (1.5, 1.25, 1.1)  # × the reference's final perplexity: easier targets on the way there
MID_SCHEDULE = (
    "Mid-schedule: the cumulative FLOPs at which each run's eval curve first reaches a perplexity (linear "
    "between evals; first seed of each run). A point inside a schedule, before its LR decayed, is not where a "
    "run of that budget ends: these races are not headline numbers."
)


def as_group(run: RunSummary | RunGroup) -> RunGroup:
    return run if isinstance(run, RunGroup) else RunGroup(label=run.name, kind=run.kind, runs=[run])


def label(run: RunSummary, main: RunSummary) -> str:
    """A short name for tables: a sibling baseline `tiny.baseline-scratch` of `tiny` is `baseline-scratch`."""
    return run.name if run is main else run.name.removeprefix(f"{main.name}.")


def references(groups: list[RunGroup]) -> list[tuple[RunGroup, list[RunGroup]]]:
    """(reference, its family) per headline: a family's largest member with the family (when it has more than
    one member); any other group alone. Other growth runs (`--with`) are variants, not references, unless
    there is nothing else to compare with."""
    if any(g.kind != "growth" for g in groups):
        groups = [g for g in groups if g.kind != "growth"]
    out, seen = [], set()
    for group in groups:
        if group.family is None:
            out.append((group, []))
        elif group.family not in seen:
            seen.add(group.family)
            members = [g for g in groups if g.family == group.family]
            largest = max(members, key=lambda g: g.params or max((r.params for r in g.runs), default=0))
            out.append((largest, members if len(members) > 1 else []))
    return out


def target_list(
    main: RunSummary, reference: RunSummary | None, fixed: list[float], name: str = ""
) -> list[dict]:
    """The perplexities to race to: the reference's final one first, then the growth run's final, a few
    easier multiples of the reference's, and the user's fixed targets; duplicates dropped."""
    targets = [(main.val_ppl, f"final of {main.name}")]
    if reference is not None:
        name = name or reference.name
        targets.insert(0, (reference.val_ppl, f"final of {name}"))
        targets += [(reference.val_ppl * m, f"{m:g}× final of {name}") for m in RELATIVE_TARGETS]
    targets += [(float(p), "fixed") for p in fixed]
    seen, out = set(), []
    for ppl, what in targets:
        if round(ppl, 6) not in seen:
            seen.add(round(ppl, 6))
            out.append({"ppl": ppl, "label": what})
    return out


def group_row(group: RunGroup) -> dict:
    finished = group.finished
    runs = finished or group.runs
    out = {"label": group.label, "kind": group.kind, "family": group.family}
    out["seeds"] = [r.seed for r in group.runs]
    out["n_finished"] = len(finished)
    for key in ("val_loss", "val_ppl", "flops", "device_hours", "wall_hours"):
        out[key], out[f"{key}_std"] = mean_std([getattr(r, key) for r in runs])
    mfus = [r.mfu for r in runs if r.mfu is not None]
    out["mfu"] = sum(mfus) / len(mfus) if mfus else None
    out["params"], out["tokens"] = runs[0].params, runs[0].tokens
    return out


def build_report(
    main: RunSummary | RunGroup,
    others: list[RunSummary | RunGroup],
    targets: list[float] | None = None,
    commands: list[str] | None = None,
) -> dict:
    main, groups = as_group(main), [as_group(g) for g in others]
    pairs = references(groups)
    families = {}
    for group in groups:
        if group.family is not None:
            families.setdefault(group.family, []).append(group)
    frontiers = {f: m for f, m in families.items() if len(m) > 1}
    first = main.runs[0]
    for group in groups:  # short labels: a sibling `tiny.baseline-scratch` of `tiny` is `baseline-scratch`
        if group.runs and group.label == group.runs[0].name:
            group.label = label(group.runs[0], first)
    reference = pairs[0][0] if pairs and pairs[0][0].runs else None
    ref_run = reference.runs[0] if reference else None
    raced = [main, *(g for g in groups if g.kind != "growth" or not pairs)]  # variants: their own table
    leads = [g.runs[0] for g in raced if g.runs]
    races = []
    for target in target_list(first, ref_run, list(targets or []), reference.label if reference else ""):
        reached = {r.name: flops_to_reach(r.curve.flops, r.curve.ppl, target["ppl"]) for r in leads}
        ratios = {n: speedup(reached[ref_run.name], f) for n, f in reached.items()} if ref_run else {}
        races.append({**target, "flops": reached, "speedup": ratios})
    runs = [
        {**r.to_dict(), "label": label(r, first), "group": g.label, "raced": g in raced}
        for g in [main, *groups]
        for r in g.runs
    ]
    heads = [headline(main, ref, family) for ref, family in pairs]
    for h in heads:
        h["verdict"] = verdict(h)
    return {
        "run": main.label,
        "reference": ref_run.name if ref_run else None,
        "runs": runs,
        "groups": [group_row(g) for g in [main, *groups] if g.runs],
        "headline": heads,
        "stage_ends": stage_ends(main, frontiers),
        "variants": [
            {"label": g.label, **end}
            for g in groups
            if g.kind == "growth"
            for end in stage_ends(g, frontiers)[-1:]
            if g.finished
        ],
        "flops_to_reach": races,
        "mid_schedule_note": MID_SCHEDULE,
        "commands": commands or [],
    }


# ------------------------------------------------------------------------------------------------- formatting
def _flops(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _spread(value: float | None, std: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _hours(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" + ("" if std is None else f" ± {std:.2g}")


RUN_COLUMNS = ["run", "kind", "val loss", "val ppl", "params", "tokens", "train FLOPs", "device-hours", "MFU"]


def run_values(report: dict) -> tuple[list[str], list[list]]:
    """Every run (each seed its own row) with numbers as numbers (W&B sorts and plots them)."""
    fields = ("label", "kind", "val_loss", "val_ppl", "params", "tokens", "flops", "device_hours", "mfu")
    return RUN_COLUMNS, [[r[f] for f in fields] for r in report["runs"]]


def _as_row(run: dict) -> dict:
    """A report run as a one-seed group row (reports written before groups existed)."""
    row = {key: run.get(key) for key in ("label", "kind", "params", "tokens", "mfu")}
    for key in ("val_loss", "val_ppl", "flops", "device_hours"):
        row[key], row[f"{key}_std"] = run.get(key), None
    return {**row, "seeds": [run.get("seed")], "n_finished": 1}


def run_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per run and its seeds: mean ± std."""
    columns = [
        "run",
        "kind",
        "seeds",
        "val loss",
        "val ppl",
        "params",
        "tokens",
        "train FLOPs",
        "device-hours",
        "MFU",
    ]
    rows = [
        [
            g["label"],
            g["kind"],
            f"{g['n_finished']}/{len(g['seeds'])}",
            _spread(g["val_loss"], g["val_loss_std"], 4),
            _spread(g["val_ppl"], g["val_ppl_std"]),
            format_count(g["params"]),
            format_count(g["tokens"]),
            _flops(g["flops"]),
            _hours(g["device_hours"], g["device_hours_std"]),
            "—" if g["mfu"] is None else f"{g['mfu']:.2%}",
        ]
        for g in report.get("groups") or [_as_row(r) for r in report["runs"]]
    ]
    return columns, rows


def headline_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    columns = [
        "against",
        "seeds",
        f"ppl {report['run']}",
        "ppl against",
        "ppl gap",
        "FLOPs ratio",
        "device-hours ratio",
        "frontier FLOPs ratio",
        "noise",
    ]
    rows = []
    for h in report["headline"]:
        std = h["std"]
        noise = {None: "one seed", True: "within noise", False: "beyond noise"}[h["within_noise"]]
        rows.append(
            [
                h["against_label"],
                str(h["n_seeds"]),
                _spread(h["ppl_growth"], std["ppl_growth"]),
                _spread(h["ppl_reference"], std["ppl_reference"]),
                "—" if h["ppl_gap_pct"] is None else _spread(h["ppl_gap_pct"], std["ppl_gap_pct"], 1) + " %",
                _ratio(h["flops_ratio"]),
                _ratio(h["device_hours_ratio"]),
                _ratio(h["frontier_flops_ratio"]),
                noise if h["n_seeds"] else "no finished pair",
            ]
        )
    return columns, rows


def stage_end_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    families = sorted({name for row in report["stage_ends"] for name in row["frontier_flops_ratio"]})
    columns = ["stage end", "seeds", "val ppl", "cumulative FLOPs", "device-hours"]
    columns += [f"frontier FLOPs ratio ({name})" for name in families]
    rows = [
        [
            row["stage"],
            str(row["n_seeds"]),
            _spread(row["val_ppl"], row["val_ppl_std"]),
            _flops(row["flops"]),
            _hours(row["device_hours"]),
            *[_ratio(row["frontier_flops_ratio"].get(name)) for name in families],
        ]
        for row in report["stage_ends"]
    ]
    return columns, rows


def variant_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Other growth runs (ablations, `--with`): their final stage end against each family's frontier."""
    families = sorted({name for row in report.get("variants", []) for name in row["frontier_flops_ratio"]})
    columns = ["growth run", "seeds", "val ppl", "cumulative FLOPs", "device-hours"]
    columns += [f"frontier FLOPs ratio ({name})" for name in families]
    rows = [
        [
            row["label"],
            str(row["n_seeds"]),
            _spread(row["val_ppl"], row["val_ppl_std"]),
            _flops(row["flops"]),
            _hours(row["device_hours"]),
            *[_ratio(row["frontier_flops_ratio"].get(name)) for name in families],
        ]
        for row in report.get("variants", [])
    ]
    return columns, rows


def target_values(report: dict) -> tuple[list[str], list[list]]:
    """The FLOPs-to-reach table (the first seed of each run), easiest target first, numbers as numbers."""
    leads: dict[str, dict] = {}
    for r in report["runs"]:
        if r.get("raced", True):
            leads.setdefault(r.get("group", r["label"]), r)
    columns = ["target ppl", "target", *[f"FLOPs {group}" for group in leads]]
    if report["reference"]:
        columns.append(f"speed-up {report['run']}")
    rows = []
    for race in sorted(report["flops_to_reach"], key=lambda race: -race["ppl"]):
        row = [race["ppl"], race["label"], *[race["flops"].get(r["name"]) for r in leads.values()]]
        if report["reference"]:
            row.append(race["speedup"].get(leads[report["run"]]["name"]))
        rows.append(row)
    return columns, rows


def wandb_tables(report: dict) -> dict[str, tuple[list[str], list[list]]]:
    """The comparison's W&B tables, numbers as numbers (W&B sorts them)."""
    return {"compare/runs": run_values(report), "compare/flops_to_reach": target_values(report)}


def wandb_summary(report: dict) -> dict:
    """The comparison's headline numbers as W&B summary values: "<run>/<field>", "<key>/<against>"."""
    summary = {}
    for r in report["runs"]:
        for field in ("val_ppl", "val_loss", "flops", "device_hours", "params", "tokens"):
            summary[f"{r['name']}/{field}"] = r[field]
    for h in report["headline"]:
        for key in ("flops_ratio", "ppl_gap_pct", "device_hours_ratio", "frontier_flops_ratio", "n_seeds"):
            summary[f"{key}/{h['against']}"] = h.get(key)
    if report["flops_to_reach"] and report["reference"]:
        summary["speedup_to_reference_ppl"] = report["flops_to_reach"][0]["speedup"].get(report["run"])
    return summary


def target_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    columns, values = target_values(report)
    speedup = bool(report["reference"])
    rows = []
    for ppl, label, *flops in values:
        ratio = flops.pop() if speedup else None
        rows.append([f"{ppl:.2f}", label, *map(_flops, flops), *([_ratio(ratio)] if speedup else [])])
    return columns, rows


def headline_lines(report: dict) -> list[str]:
    return [h["verdict"] for h in report["headline"]]


def _markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict, figure: str | None = None) -> str:
    parts = [f"# tfctl compare: {report['run']}", "", _markdown_table(*run_rows(report)), ""]
    parts += ["## Headline (finished runs, final against final)", ""]
    parts += [_markdown_table(*headline_rows(report)), ""]
    parts += [f"**{line}**  " for line in headline_lines(report)] + [""]
    parts += [
        "FLOPs are cumulative training FLOPs (6·N + attention per token; a growth run sums its stages). "
        "Device-hours are wall time × world size, worker start-up included. The perplexity gap is "
        "ppl(run) / ppl(baseline) − 1; ratios are the growth run's over the other's. The frontier FLOPs "
        "ratio is the growth run's FLOPs over those the from-scratch family needs for the same final "
        "perplexity (log-FLOPs interpolated between its finished runs; — outside its range, never "
        "extrapolated). With several seeds: mean ± sample std; a perplexity difference below 2× the larger "
        "seed spread is within noise.",
        "",
    ]
    if report.get("time_split"):  # tfctl/compare/time_split.py says how each phase is measured
        parts += ["## Where the growth run's wall time went, per stage", ""]
        parts += [_markdown_table(*time_split_rows(report["time_split"])), ""]
    if report["stage_ends"]:
        parts += ["## Stage ends against the from-scratch frontier", ""]
        parts += [_markdown_table(*stage_end_rows(report)), ""]
    if report.get("variants"):
        parts += ["## Other growth runs against the from-scratch frontier", ""]
        parts += [_markdown_table(*variant_rows(report)), ""]
    parts += ["## Mid-schedule: FLOPs to first reach a perplexity", "", MID_SCHEDULE, ""]
    parts += [_markdown_table(*target_rows(report)), ""]
    if figure:
        parts += [f"![validation perplexity against training FLOPs and device-hours]({figure})", ""]
    if report["commands"]:
        parts += ["## Reproduce", "", "```sh", *report["commands"], "```", ""]
    return "\n".join(parts)
