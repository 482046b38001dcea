"""The comparison as numbers (report.json); tables.py formats them for report.md, the console and W&B.

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
    sentence,
)


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
