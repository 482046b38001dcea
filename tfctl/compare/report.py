"""The comparison as numbers (report.json), as a document (report.md) and as rich tables on the console.

`build_report` is pure: run groups in (a run and its seed siblings), a JSON-ready dict out. The headline
(tfctl.compare.headline) compares finished runs only, final against final, per reference: each baseline, a
from-scratch family by its largest member and its frontier. The growth run's stage ends are set against each
family's frontier. The "FLOPs to reach" races read whole eval curves, mid-schedule points included: they are
labelled as such and never part of a headline.
"""

from tfctl.compare.headline import flagged_seeds, headline, losses, stage_ends
from tfctl.compare.races import MID_SCHEDULE, races, target_list
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.seeds import mean_std, seed_ppl
from tfctl.compare.wording import (
    frontier_ratio_text,
    iso_gap_text,
    iso_ppl_text,
    ppl_gap_text,
    ppl_text,
    ratio_text,
    sentence,
)
from tfctl.model.sizes import format_count


def as_group(run: RunSummary | RunGroup) -> RunGroup:
    return run if isinstance(run, RunGroup) else RunGroup(label=run.name, kind=run.kind, runs=[run])


def label(run: RunSummary, main: RunSummary) -> str:
    """A short name for tables: a sibling baseline `tiny.baseline-scratch` of `tiny` is `baseline-scratch`."""
    return run.name if run is main else run.name.removeprefix(f"{main.name}.")


def architecture(family: str | None) -> str | None:
    """The frontier a family belongs to: its architecture, over every size and budget (a family recorded as
    "transformer, 200k tokens" is one budget of the "transformer" frontier)."""
    return None if family is None else family.split(",")[0].strip()


def frontier_groups(groups: list[RunGroup]) -> dict[str, list[RunGroup]]:
    """The from-scratch runs of each architecture (every size and budget) that has two or more of them."""
    by_architecture: dict[str, list[RunGroup]] = {}
    for group in groups:
        if group.family is not None:
            by_architecture.setdefault(architecture(group.family), []).append(group)
    return {name: members for name, members in by_architecture.items() if len(members) > 1}


def references(groups: list[RunGroup]) -> list[tuple[RunGroup, list[RunGroup]]]:
    """(reference, its frontier's runs) per headline: an architecture's largest member (the largest budget on
    a tie) with every run of that architecture (when it has more than one); any other group alone. Other
    growth runs (`--with`) are variants, not references, unless there is nothing else to compare with."""
    if any(g.kind != "growth" for g in groups):
        groups = [g for g in groups if g.kind != "growth"]
    fronts = frontier_groups(groups)
    out, seen = [], set()
    for group in groups:
        name = architecture(group.family)
        if name is None:
            out.append((group, []))
        elif name not in seen:
            seen.add(name)
            members = [g for g in groups if architecture(g.family) == name]
            largest = max(members, key=_size)
            out.append((largest, fronts.get(name, [])))
    return out


def _size(group: RunGroup) -> tuple[int, float]:
    params = group.params or max((r.params for r in group.runs), default=0)
    return params, max((r.flops for r in group.runs), default=0.0)


def group_row(group: RunGroup) -> dict:
    """A run over its seeds: mean ± std of each number; `val_ppl` is exp(mean loss) with the median beside
    it, and `outlier_seeds` the seeds whose loss is far from the others' (flagged, still counted)."""
    finished = group.finished
    runs = finished or group.runs
    out = {"label": group.label, "kind": group.kind, "family": group.family}
    out["seeds"] = [r.seed for r in group.runs]
    out["n_finished"] = len(finished)
    for key in ("val_loss", "val_ppl", "flops", "device_hours", "wall_hours"):
        out[key], out[f"{key}_std"] = mean_std([getattr(r, key) for r in runs])
    out["val_ppl"], out["val_ppl_median"] = seed_ppl(losses(runs))
    out["outlier_seeds"] = flagged_seeds(RunGroup(group.label, group.kind, runs))
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
    frontiers = frontier_groups(groups)
    first = main.runs[0]
    for group in groups:  # short labels: a sibling `tiny.baseline-scratch` of `tiny` is `baseline-scratch`
        if group.runs and group.label == group.runs[0].name:
            group.label = label(group.runs[0], first)
    reference = pairs[0][0] if pairs and pairs[0][0].runs else None
    ref_run = reference.runs[0] if reference else None
    raced = [main, *(g for g in groups if g.kind != "growth" or g is reference)]  # variants: their own table
    raced = [g for g in raced if g.runs]
    wanted = target_list(first, ref_run, list(targets or []), reference.label if reference else "")
    runs = [
        {**r.to_dict(), "label": label(r, first), "group": g.label, "raced": g in raced}
        for g in [main, *groups]
        for r in g.runs
    ]
    heads = [headline(main, ref, family) for ref, family in pairs]
    for h in heads:
        h["sentence"] = sentence(h)
    return {
        "run": main.label,
        "reference": ref_run.name if ref_run else None,
        "reference_label": reference.label if reference else None,
        "runs": runs,
        "groups": [group_row(g) for g in [main, *groups] if g.runs],
        "headline": heads,
        "stage_ends": stage_ends(main, frontiers),
        "variants": [  # other growth runs: their final stage end and, like the main run, a headline per reference
            {"label": g.label, **end, "headlines": [headline(g, ref, family) for ref, family in pairs]}
            for g in groups
            if g.kind == "growth" and g is not reference
            for end in stage_ends(g, frontiers)[-1:]
            if g.finished
        ],
        "flops_to_reach": races(raced, reference, wanted),
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
            _ppl_cell(g),
            format_count(g["params"]),
            format_count(g["tokens"]),
            _flops(g["flops"]),
            _hours(g["device_hours"], g["device_hours_std"]),
            "—" if g["mfu"] is None else f"{g['mfu']:.2%}",
        ]
        for g in report.get("groups") or [_as_row(r) for r in report["runs"]]
    ]
    return columns, rows


def _ppl_cell(group: dict) -> str:
    """exp(mean loss) ± std, and the median beside it with several seeds."""
    cell = _spread(group["val_ppl"], group["val_ppl_std"])
    median = group.get("val_ppl_median")
    return cell if group["val_ppl_std"] is None or median is None else f"{cell} (median {median:.2f})"


def headline_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per reference; each interval sits on the number it was computed for."""
    columns = [
        "against",
        "seeds",
        f"ppl {report['run']}",
        "ppl against",
        "ppl gap [90 %]",
        "FLOPs ratio",
        "device-hours ratio",
        "frontier FLOPs ratio [90 %]",
        "iso-FLOP ppl [90 %]",
        "iso-FLOP gap [90 %]",
        "verdict",
    ]
    rows = []
    for h in report["headline"]:
        if not h["n_seeds"]:
            rows.append([h["against_label"], "0", *["—"] * 8, "no finished pair"])
            continue
        frontier = bool(h.get("frontier"))
        rows.append(
            [
                h["against_label"],
                str(h["n_seeds"]),
                ppl_text(h["ppl_growth"]),
                ppl_text(h["ppl_reference"]),
                ppl_gap_text(h),
                ratio_text(h["flops_ratio"]),
                ratio_text(h["device_hours_ratio"]),
                frontier_ratio_text(h) if frontier else "no frontier",
                iso_ppl_text(h) if frontier else "—",
                iso_gap_text(h) if frontier else "—",
                h["verdict"],
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
            *[_frontier_ratio(row, name) for name in families],
        ]
        for row in report["stage_ends"]
    ]
    return columns, rows


def _frontier_ratio(row: dict, name: str) -> str:
    bound = row.get("frontier_flops_ratio_bound", {}).get(name)
    return ratio_text(row["frontier_flops_ratio"].get(name), bound)


def variant_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Other growth runs (ablations, `--with`): each against each reference, read off the same frontiers as
    the main run, each interval on the number it was computed for."""
    columns = [
        "growth run",
        "against",
        "seeds",
        "val ppl",
        "cumulative FLOPs",
        "device-hours",
        "frontier FLOPs ratio [90 %]",
        "iso-FLOP ppl [90 %]",
        "iso-FLOP gap [90 %]",
        "verdict",
    ]
    rows = []
    for row in report.get("variants", []):
        for h in row.get("headlines", []):
            frontier = bool(h.get("frontier"))
            rows.append(
                [
                    row["label"],
                    h["against_label"],
                    str(h["n_seeds"]),
                    _spread(row["val_ppl"], row["val_ppl_std"]),
                    _flops(row["flops"]),
                    _hours(row["device_hours"]),
                    frontier_ratio_text(h) if frontier else "no frontier",
                    iso_ppl_text(h) if frontier else "—",
                    iso_gap_text(h) if frontier else "—",
                    h["verdict"],
                ]
            )
    return columns, rows


def outlier_lines(report: dict) -> list[str]:
    """One line per run with an outlier seed (flagged by the robust z-score of its loss; still counted)."""
    lines = []
    for g in report.get("groups", []):
        for seed in g.get("outlier_seeds") or []:
            lines.append(
                f"{g['label']}: seed {seed} is an outlier (its final loss is far from the other seeds'; "
                f"kept: ppl {g['val_ppl']:.2f} is exp(mean loss), the median {g['val_ppl_median']:.2f})"
            )
    return lines


def target_values(report: dict) -> tuple[list[str], list[list]]:
    """The FLOPs-to-reach table (the mean over each run's seeds), easiest target first, numbers as numbers."""
    names = list(dict.fromkeys(r.get("group", r["label"]) for r in report["runs"] if r.get("raced", True)))
    columns = ["target ppl", "target", *[f"FLOPs {name}" for name in names]]
    if report["reference"]:
        columns.append(f"speed-up {report['run']}")
    rows = []
    for race in sorted(report["flops_to_reach"], key=lambda race: -race["ppl"]):
        row = [race["ppl"], race["label"], *[race["group_flops"].get(name) for name in names]]
        if report["reference"]:
            row.append(race["speedup"].get(report["run"]))
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
        for key in (
            "flops_ratio",
            "ppl_gap_pct",
            "device_hours_ratio",
            "frontier_flops_ratio",
            "iso_flops_ppl",
            "iso_flops_ppl_gap_pct",
            "n_seeds",
        ):
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
    return [h["sentence"] for h in report["headline"]]


def stage_end_title(report: dict) -> str:
    """The stage-end table's title: against the frontier only when there is one."""
    if any(row["frontier_flops_ratio"] for row in report["stage_ends"]):
        return "stage ends against the from-scratch frontier"
    return "stage ends"
